"""Hardware costs of a network: parameters, FLOPs and latency, as metrics of every torch oracle.

API:

- :func:`count_params` ``(model) -> int``.
- :func:`count_flops` ``(model, input_shape) -> int``: FLOPs of one forward pass of one
  example, counted by torch's own :class:`torch.utils.flop_counter.FlopCounterMode`
  (a multiply-add counts as 2 FLOPs; convolutions and matrix products only, as in
  most NAS papers).
- :func:`measure_latency` ``(model, input_shape, batch_size, device) -> ms``: median
  forward time measured with :class:`torch.utils.benchmark.Timer` on the current device.
- :class:`LatencyTable`: a user's CSV (``arch`` and a latency column, ms) that replaces
  the measurement, e.g. latencies measured on the target phone.
- :class:`HardwareCost`: all three for an architecture; what the stand-alone, supernet
  and proxy oracles put in ``Evaluation.metrics`` as ``params``, ``flops`` and ``latency_ms``.

Why measured here and not looked up: latency depends on the device the user deploys to;
a measured value on the current device is honest about that, and the table lets the
user bring the numbers of the real target.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

from engine.spaces import Architecture, SearchSpace
from oracles.models import build_model, resolve_device
from oracles.tabular import load_table

__all__ = ["HardwareCost", "LatencyTable", "count_flops", "count_params", "measure_latency"]


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass on one example (eval mode, no gradients).

    The model is put in eval mode for the count and its previous mode restored, so
    counting never changes BatchNorm statistics.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    device: str | torch.device = "auto",
    min_run_time: float = 0.05,
    num_threads: int = 1,
) -> float:
    """Median forward latency in milliseconds of a batch of ``batch_size`` on ``device``.

    Measured with :class:`torch.utils.benchmark.Timer` (warm-up and CUDA synchronisation
    handled by it), in eval mode without gradients; the model's mode is restored.

    Args:
        model: The network.
        input_shape: Shape of one example.
        batch_size: Examples per forward pass.
        device: Where to measure (``auto``: CUDA when present); the model is moved there.
        min_run_time: Seconds of repeated runs the median is taken over.
        num_threads: CPU threads the timer may use (1: comparable across machines with busy cores).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"latency batch_size must be a positive integer, got {batch_size!r}")
    dev = resolve_device(device)
    was_training = model.training
    model.eval()
    try:
        model.to(dev)
        x = torch.zeros(batch_size, *input_shape, device=dev)
        timer = Timer(
            stmt="with torch.no_grad(): model(x)",
            globals={"model": model, "x": x, "torch": torch},
            num_threads=num_threads,
        )
        return float(timer.blocked_autorange(min_run_time=min_run_time).median * 1000.0)
    finally:
        model.train(was_training)


class LatencyTable:
    """Latencies (ms) from a CSV with an architecture column and a latency column.

    Args:
        space: The space the table's architectures belong to (strings are parsed with it).
        path: CSV (or ``.csv.gz``) file.
        arch_column: Column of canonical architecture strings.
        latency_column: Column of latencies in milliseconds.

    Raises:
        ValueError: naming the file, line and column of the first problem.
    """

    def __init__(
        self,
        space: SearchSpace,
        path: str | os.PathLike[str],
        arch_column: str = "arch",
        latency_column: str = "latency_ms",
    ) -> None:
        self.path = path
        self.latency_column = latency_column
        self.table = load_table(space, path, arch_column, [latency_column])

    def __call__(self, arch: Architecture) -> float:
        """The table's latency of ``arch``.

        Raises:
            KeyError: naming the architecture and the file when it has no row.
        """
        try:
            return self.table[arch.decisions][self.latency_column]
        except KeyError:
            raise KeyError(f"latency table {self.path} has no row for {arch.string!r}") from None


class HardwareCost:
    """Parameters, FLOPs and latency of architectures of one space at one input shape.

    Args:
        space: The search space.
        input_shape: Shape of one example, ``(C, H, W)`` or ``(C, L)``.
        num_classes: Classifier outputs.
        model_options: Options of :func:`oracles.models.build_model`.
        latency: Measure latency (``False``: no ``latency_ms`` metric unless a table is given).
        latency_batch_size: Batch size of the latency measurement.
        latency_table: Optional CSV path (``arch``, ``latency_ms``) used instead of measuring.
        latency_column: The table's latency column.
        device: Device of the measurement (``auto``: CUDA when present).
        min_run_time: Seconds each latency measurement runs for.
    """

    def __init__(
        self,
        space: SearchSpace,
        input_shape: Sequence[int],
        num_classes: int,
        model_options: Mapping[str, Any] | None = None,
        latency: bool = True,
        latency_batch_size: int = 1,
        latency_table: str | None = None,
        latency_column: str = "latency_ms",
        device: str = "auto",
        min_run_time: float = 0.05,
    ) -> None:
        if isinstance(latency_batch_size, bool) or not isinstance(latency_batch_size, int) or latency_batch_size < 1:
            raise ValueError(f"hardware.latency_batch_size must be a positive integer, got {latency_batch_size!r}")
        self.space = space
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.model_options = dict(model_options or {})
        self.latency = bool(latency)
        self.latency_batch_size = latency_batch_size
        self.table = LatencyTable(space, latency_table, latency_column=latency_column) if latency_table else None
        self.device = device
        self.min_run_time = float(min_run_time)

    def __call__(self, arch: Architecture, model: nn.Module | None = None) -> dict[str, float]:
        """``params``, ``flops`` and (if enabled) ``latency_ms`` of ``arch``.

        Args:
            arch: The architecture.
            model: Its built network, if at hand (saves building it again); its
                weights do not matter.
        """
        if model is None:
            model = build_model(self.space, arch, self.input_shape, self.num_classes, **self.model_options)
        out = {"params": float(count_params(model)), "flops": float(count_flops(model, self.input_shape))}
        if self.table is not None:
            out["latency_ms"] = self.table(arch)
        elif self.latency:
            out["latency_ms"] = measure_latency(
                model, self.input_shape, self.latency_batch_size, self.device, self.min_run_time
            )
        return out
