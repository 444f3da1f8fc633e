"""Oracles: everything that measures architectures (tables, supernets, training, proxies, hardware).

``oracles.load_exported(path)`` rebuilds a network written by ``nas-export`` (see
:mod:`oracles.export`); it is imported on first use so that ``import oracles.tabular``
does not pay for torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_exported"]


def __getattr__(name: str) -> Any:
    if name == "load_exported":
        from oracles.export import load_exported

        return load_exported
    raise AttributeError(f"module 'oracles' has no attribute {name!r}")
