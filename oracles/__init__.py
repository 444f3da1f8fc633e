"""Oracles: everything that measures architectures (tables, supernets, training, proxies, hardware).

``oracles.load_exported(path)`` rebuilds a network written by ``nas-export`` (see
:mod:`oracles.export`); it is imported on first use so that ``import oracles.tabular``
does not pay for torch.
"""

from __future__ import annotations

import logging
from typing import Any

# torch.utils.cpp_extension warns "No CUDA runtime is found, using CUDA_HOME=..." when it is imported
# (by torch.export, flop counting) on a CPU-only machine that has a CUDA directory: nothing here
# compiles extensions, so the line is noise in every command's output.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

__all__ = ["load_exported"]


def __getattr__(name: str) -> Any:
    if name == "load_exported":
        from oracles.export import load_exported

        return load_exported
    raise AttributeError(f"module 'oracles' has no attribute {name!r}")
