"""Search spaces: architectures as data, independent of any network or oracle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.spaces._base import Architecture, Decision, SearchSpace
from engine.spaces._chain import ChainSpace
from engine.spaces._nb201 import NB201_EDGES, NB201_OPS, NB201Space

_SPACES: dict[str, Callable[..., SearchSpace]] = {"nb201": NB201Space, "chain": ChainSpace}


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """Build a space by name (``nb201`` or ``chain``), passing ``kwargs`` to it.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    try:
        factory = _SPACES[name]
    except KeyError:
        raise ValueError(f"unknown space {name!r}; available: {sorted(_SPACES)}") from None
    return factory(**kwargs)


__all__ = [
    "NB201_EDGES",
    "NB201_OPS",
    "Architecture",
    "ChainSpace",
    "Decision",
    "NB201Space",
    "SearchSpace",
    "get_space",
]
