"""Search spaces: architectures as data, independent of any network or oracle."""

from __future__ import annotations

from engine.spaces._base import Architecture, Decision, SearchSpace
from engine.spaces._chain import ChainSpace
from engine.spaces._choices import ChoicesSpace
from engine.spaces._nb201 import NB201_EDGES, NB201_OPS, NB201Space
from engine.spaces._registry import ENTRY_POINT_GROUP, get_space, list_spaces, register_space
from engine.spaces._subset import SubsetSpace, restrict

register_space("nb201")(NB201Space)
register_space("chain")(ChainSpace)


__all__ = [
    "ENTRY_POINT_GROUP",
    "NB201_EDGES",
    "NB201_OPS",
    "Architecture",
    "ChainSpace",
    "ChoicesSpace",
    "Decision",
    "NB201Space",
    "SearchSpace",
    "SubsetSpace",
    "get_space",
    "list_spaces",
    "register_space",
    "restrict",
]
