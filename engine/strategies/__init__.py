"""Search strategies: ask/tell classes registered by name.

Every module of this package that does not start with ``_base`` or ``_registry``
is imported here, so a new strategy module registers itself just by existing.
Third-party strategies register with :func:`register` or through the entry-point
group ``nas_engine.strategies``.
"""

from __future__ import annotations

import importlib
import pkgutil

from engine.strategies._base import Strategy
from engine.strategies._registry import (
    ENTRY_POINT_GROUP,
    create_strategy,
    get_strategy,
    list_strategies,
    register,
)

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in ("_base", "_registry"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "ENTRY_POINT_GROUP",
    "Strategy",
    "create_strategy",
    "get_strategy",
    "list_strategies",
    "register",
]
