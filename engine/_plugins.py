"""Loading the objects installed packages advertise under an entry-point group (strategies, spaces)."""

from __future__ import annotations

import logging
from collections.abc import Container, Iterator
from importlib.metadata import entry_points
from typing import Any


def load_entry_points(
    group: str, kind: str, log: logging.Logger, skip: Container[str] = ()
) -> Iterator[tuple[str, Any]]:
    """``(name, object)`` of every entry point of ``group`` that loads, names in ``skip`` not even imported.

    A plugin that fails to import is a warning naming it (``could not load <kind> plugin ...``),
    never an error: one broken package must not hide the others.
    """
    for ep in entry_points(group=group):
        if ep.name in skip:
            continue
        try:
            obj = ep.load()
        except Exception as exc:
            log.warning("could not load %s plugin %r (%s): %s", kind, ep.name, ep.value, exc)
            continue
        yield ep.name, obj
