"""Strategy registry: register by decorator, list by pattern, plugins by entry point."""

from __future__ import annotations

import fnmatch
import importlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from engine._plugins import load_entry_points
from engine.spaces import SearchSpace
from engine.strategies._base import Strategy

ENTRY_POINT_GROUP = "nas_engine.strategies"
_REGISTRY: dict[str, type[Strategy]] = {}
# Strategies whose module pulls a heavy dependency (torch): name -> module, imported on first use
# so that a search with another strategy does not pay for it at start-up.
_LAZY: dict[str, str] = {}
_plugins_loaded = False
_log = logging.getLogger(__name__)

S = TypeVar("S", bound=type[Strategy])


def register(name: str) -> Callable[[S], S]:
    """Class decorator registering a strategy under ``name``.

    Raises:
        ValueError: if ``name`` is already taken by another class.
    """

    def deco(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise TypeError(f"@register({name!r}) needs a Strategy subclass, got {cls!r}")
        existing = _REGISTRY.get(name)
        if name in _LAZY and cls.__module__ != _LAZY[name]:
            raise ValueError(f"strategy name {name!r} is already registered by module {_LAZY[name]}")
        if existing is not None and existing is not cls:
            raise ValueError(
                f"strategy name {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def register_lazy(name: str, module: str) -> None:
    """Declare that importing ``module`` registers strategy ``name``; import it on first use."""
    if name in _REGISTRY or name in _LAZY:
        raise ValueError(f"strategy name {name!r} is already registered")
    _LAZY[name] = module


def _load_plugins() -> None:
    """Import third-party strategies advertised in the ``nas_engine.strategies`` group."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name, obj in load_entry_points(ENTRY_POINT_GROUP, "strategy", _log):
        if isinstance(obj, type) and issubclass(obj, Strategy) and name not in _REGISTRY:
            register(name)(obj)


def list_strategies(pattern: str = "*") -> list[str]:
    """Registered strategy names matching a glob ``pattern``, sorted."""
    _load_plugins()
    return sorted(n for n in {*_REGISTRY, *_LAZY} if fnmatch.fnmatchcase(n, pattern))


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered as ``name``.

    Raises:
        ValueError: for an unknown name, listing the available ones.
    """
    _load_plugins()
    if name not in _REGISTRY and name in _LAZY:
        importlib.import_module(_LAZY[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(list_strategies())}") from None


def create_strategy(name: str, space: SearchSpace, seed: int = 0, **kwargs: Any) -> Strategy:
    """Instantiate a registered strategy.

    Raises:
        ValueError: for an unknown strategy or an option it does not take.
    """
    cls = get_strategy(name)
    try:
        return cls(space, seed=seed, **kwargs)
    except TypeError as exc:
        raise ValueError(f"bad options for strategy {name!r}: {exc}") from None
