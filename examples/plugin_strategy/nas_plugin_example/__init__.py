"""An example third-party strategy package for nas-engine."""

from __future__ import annotations

from nas_plugin_example.annealing import SimulatedAnnealing

__all__ = ["SimulatedAnnealing"]
