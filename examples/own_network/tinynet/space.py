"""The search space of :class:`tinynet.net.TinyNet`, registered as ``space=tinynet`` by entry point."""

from __future__ import annotations

from typing import Any

from oracles.choices import ModuleSpace


def space(**params: Any) -> ModuleSpace:
    """TinyNet's choices as a space named ``tinynet`` (``params`` are ModuleSpace's, e.g. ``input_shape``)."""
    return ModuleSpace(network="tinynet.net:TinyNet", name="tinynet", **params)
