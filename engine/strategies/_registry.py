"""Strategy registry: register by decorator, list by pattern, plugins by entry point."""

from __future__ import annotations

import fnmatch
import importlib
import logging
import types
import typing
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
    _check_option_types(cls, kwargs)
    try:
        return cls(space, seed=seed, **kwargs)
    except TypeError as exc:
        raise ValueError(f"bad options for strategy {name!r}: {exc}") from None


_SCALARS: dict[type, str] = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _accepts(hint: Any, value: Any) -> bool | None:
    """Whether ``value`` fits a scalar annotation; None where the annotation is not a plain scalar (not checked)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        answers = [_accepts(h, value) for h in typing.get_args(hint)]
        return None if None in answers else any(answers)
    if hint is type(None):
        return value is None
    if hint not in _SCALARS:
        return None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _check_option_types(cls: type[Strategy], options: dict[str, Any]) -> None:
    """Refuse an option whose value does not fit the constructor's scalar annotation.

    Why: a strategy reads most options only when it first needs them, so ``mutation_tries=abc``
    would run a short search without complaint and fail (or not) much later; the annotation
    already says what is meant, so the check is made once here for every strategy, plugins too.

    Raises:
        ValueError: naming ``strategy.<option>`` and the expected type.
    """
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that cannot be resolved is simply not checked
        return
    for key, value in options.items():
        hint = hints.get(key)
        if hint is None or _accepts(hint, value) is not False:
            continue
        wanted = [_SCALARS.get(h, "null") for h in typing.get_args(hint)] or [_SCALARS[hint]]
        raise ValueError(f"strategy.{key} must be {' or '.join(wanted)}, got {value!r}")
