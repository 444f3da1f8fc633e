"""Search strategies: ask/tell classes registered by name.

Third-party strategies register with :func:`register` or through the entry-point
group ``nas_engine.strategies``.
"""

from __future__ import annotations

from engine.strategies import _evolution, _local_search, _random  # noqa: F401  (register)
from engine.strategies._base import Strategy
from engine.strategies._registry import (
    ENTRY_POINT_GROUP,
    create_strategy,
    get_strategy,
    list_strategies,
    register,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Strategy",
    "create_strategy",
    "get_strategy",
    "list_strategies",
    "register",
]
