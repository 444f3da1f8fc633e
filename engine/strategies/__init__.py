"""Search strategies: ask/tell classes registered by name.

Every module of this package that does not start with ``_base`` or ``_registry``
is imported here, so a new strategy module registers itself just by existing;
modules that need torch are listed in ``_LAZY_MODULES`` and imported on first use.
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
    register_lazy,
)

# Modules that import torch are registered lazily: importing the engine stays fast.
_LAZY_MODULES = {"_rl": "rl"}
for _mod in pkgutil.iter_modules(__path__):
    if _mod.name in _LAZY_MODULES:
        register_lazy(_LAZY_MODULES[_mod.name], f"{__name__}.{_mod.name}")
    elif _mod.name not in ("_base", "_registry"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "ENTRY_POINT_GROUP",
    "Strategy",
    "create_strategy",
    "get_strategy",
    "list_strategies",
    "register",
    "register_lazy",
]
