"""Space registry: register by decorator, list by pattern, plugins by entry point.

The same contract as the strategies' registry (:mod:`engine.strategies._registry`):
a space is a class or factory returning a :class:`SearchSpace`, registered under a
name that ``space=<name>`` selects from the CLI; a second registration of a taken
name is an error, so two plugins never silently shadow each other.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from engine._plugins import load_entry_points
from engine.spaces._base import SearchSpace

ENTRY_POINT_GROUP = "nas_engine.spaces"
_REGISTRY: dict[str, Callable[..., SearchSpace]] = {}
_plugins_loaded = False
_log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., SearchSpace])


def register_space(name: str) -> Callable[[F], F]:
    """Decorator registering a space class (or a factory returning a space) under ``name``.

    Raises:
        ValueError: if ``name`` is already taken by another object.
        TypeError: if the decorated object is not callable.
    """

    def deco(factory: F) -> F:
        if not callable(factory):
            raise TypeError(f"@register_space({name!r}) needs a SearchSpace class or factory, got {factory!r}")
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not factory:
            where = f"{getattr(existing, '__module__', '?')}.{getattr(existing, '__qualname__', existing)}"
            raise ValueError(f"space name {name!r} is already registered by {where}")
        _REGISTRY[name] = factory
        return factory

    return deco


def _load_plugins() -> None:
    """Register the spaces advertised in the ``nas_engine.spaces`` entry-point group (once)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name, obj in load_entry_points(ENTRY_POINT_GROUP, "space", _log, skip=_REGISTRY):
        if name not in _REGISTRY:  # loading may have registered it by decorator already
            register_space(name)(obj)


def list_spaces(pattern: str = "*") -> list[str]:
    """Registered space names matching a glob ``pattern``, sorted (plugins included)."""
    _load_plugins()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_space(name: str, /, **kwargs: Any) -> SearchSpace:
    """Build the space registered as ``name`` with ``kwargs`` (``space.params`` from the config).

    Raises:
        ValueError: for an unknown name (listing the known ones), options the space
            does not take, or a factory that does not return a :class:`SearchSpace`.
    """
    _load_plugins()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown space {name!r}; available: {', '.join(list_spaces())}"
            f" (a plugin registers more under the entry-point group {ENTRY_POINT_GROUP!r})"
        ) from None
    try:
        space = factory(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad options for space {name!r}: {exc}") from None
    if not isinstance(space, SearchSpace):
        raise ValueError(f"space {name!r} was built as {type(space).__name__}, not an engine.spaces.SearchSpace")
    return space
