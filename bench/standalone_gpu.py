"""Stand-alone training on one GPU: jobs per hour with each of the GPU options (issue 13).

Measures, side by side in one run and for the same seeded sample of NAS-Bench-201 cells,
how many stand-alone trainings (``StandaloneOracle.evaluate``) one GPU finishes per hour:

- (a) ``fp32``: ``precision=fp32, channels_last=False, data_on_device=True``, the reference;
- (b) ``auto``: every option ``auto`` (bf16 autocast and channels-last on a GPU with bf16);
- (c) ``auto + compile``: (b) with ``compile=True`` (every job pays its own compilation);
- (d) ``auto x K``: (b) with ``K`` jobs at once on the one GPU (``ProcessExecutor(workers=K)``,
  ``--jobs-per-gpu``).

Each variant first runs a warm-up batch of other cells for one epoch (one job per worker),
which is not timed: the CUDA context, the dataset, the cuDNN and inductor start-up are paid
there, not by the measured jobs. It prints jobs per hour (wall clock of the timed batch),
the ratio against (a), the mean seconds of one job and the mean validation accuracy of each
variant (so that one sees bf16 does not break training), and writes a markdown table with
the device name, torch version and command to ``bench/results/standalone_gpu.md``, rewritten
after every variant so that a run cut short keeps what it measured. Variants run in the order
a, b, d, c: the compiled one, the slowest to measure, comes last; it runs on the first
``--compile-archs`` cells only (default 2: every job compiles its own network, which can take a
minute), and its ratio is taken against (a) on those same cells.

The data are built in (nothing is downloaded): ``synthetic`` images of ``--image-size``
pixels (3 channels by default), or ``digits``. Default sizes are meant to take about three
minutes on an H200-class GPU::

    python bench/standalone_gpu.py [--device cuda] [--archs 8] [--epochs 3] [--jobs-per-gpu 4]
        [--dataset synthetic] [--image-size 32] [--num-samples 16384] [--batch-size 256] [--compile-archs 2]

``--device cpu`` is a smoke check of the script only (every ``auto`` is fp32 there); it is marked
as such and writes no results file unless ``--output`` is given::

    python bench/standalone_gpu.py --device cpu --archs 1 --epochs 1 --num-samples 64 --image-size 8 \\
        --batch-size 16 --jobs-per-gpu 2 --compile-archs 0
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engine.spaces import get_space

DEFAULT_OUTPUT = "bench/results/standalone_gpu.md"


@dataclass
class Variant:
    """One column of the comparison: its oracle options and what it measured."""

    key: str
    label: str
    options: dict[str, Any]
    workers: int = 0  # 0: in this process (LocalExecutor); K: ProcessExecutor(workers=K)
    archs: int | None = None  # how many of the cells it trains (None: all, 0: skipped)
    wall: float = float("nan")
    costs: list[float] = field(default_factory=list)
    accs: list[float | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return bool(self.costs)

    @property
    def jobs_per_hour(self) -> float:
        return 3600.0 * len(self.costs) / self.wall

    @property
    def mean_acc(self) -> float:
        ok = [a for a in self.accs if a is not None]
        return statistics.fmean(ok) if ok else float("nan")


def _reference_rate(ref: Variant, n: int) -> tuple[float, float]:
    """(a)'s jobs per hour and mean accuracy on its first ``n`` cells (its wall time shared out by job cost)."""
    wall = ref.wall * sum(ref.costs[:n]) / sum(ref.costs)
    ok = [a for a in ref.accs[:n] if a is not None]
    return 3600.0 * n / wall, (statistics.fmean(ok) if ok else float("nan"))


def run_variant(v: Variant, space: Any, archs: Sequence[Any], warm: Sequence[Any], common: dict[str, Any]) -> None:
    """Warm up (not timed), then time one ``evaluate`` of ``archs`` under ``v``'s options."""
    from oracles.executors import ProcessExecutor
    from oracles.standalone import StandaloneOracle

    executor: Any = ProcessExecutor(workers=v.workers) if v.workers else "local"
    oracle = StandaloneOracle(space, executor=executor, **common, **v.options)
    try:
        oracle.prepare()
        # Distinct cells (a checkpoint of a warm-up cell would otherwise be continued), one epoch each.
        oracle.evaluate_epochs(list(warm[: max(1, v.workers)]), 1)
        sync()
        start = time.perf_counter()
        evals = oracle.evaluate(list(archs))
        sync()
        v.wall = time.perf_counter() - start
    finally:
        oracle.close()
    v.costs = [e.cost for e in evals]
    v.accs = [e.objective if e.ok else None for e in evals]
    v.errors = [f"{e.arch.string}: {e.error}" for e in evals if not e.ok]


def sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def table(variants: Sequence[Variant], n_all: int) -> list[str]:
    """The markdown rows of the variants measured so far; ratios against (a) on the same cells."""
    ref = variants[0]
    rows = [
        "| variant | options | executor | cells | wall s | jobs/h | vs (a) | mean s/job | mean val acc | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in variants:
        if not v.done:
            continue
        n = len(v.costs)
        ratio, note = "", ""
        if ref.done:
            rate, acc = _reference_rate(ref, n)
            ratio = f"{v.jobs_per_hour / rate:.2f}x"
            if n != n_all:
                note = f" ((a) on these {n}: {acc:.4f})"
        opts = ", ".join(f"{k}={val}" for k, val in v.options.items()) or "all auto"
        executor = f"process x{v.workers}" if v.workers else "local"
        rows.append(
            f"| ({v.key}) {v.label} | {opts} | {executor} | {n} | {v.wall:.1f} | {v.jobs_per_hour:.0f} | {ratio}"
            f" | {statistics.fmean(v.costs):.2f} | {v.mean_acc:.4f}{note} | {len(v.errors)} |"
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a smoke check")
    parser.add_argument("--archs", type=int, default=8, help="NB201 cells trained by every variant")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cell sample and of the oracle")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--channels", type=int, default=16, help="NB201 width C")
    parser.add_argument("--cells", type=int, default=2, help="NB201 cells per stage N")
    parser.add_argument("--dataset", default="synthetic", choices=["synthetic", "digits"])
    parser.add_argument("--image-size", type=int, default=32, help="synthetic: height and width")
    parser.add_argument("--image-channels", type=int, default=3, help="synthetic: input channels")
    parser.add_argument("--num-samples", type=int, default=16384, help="synthetic: examples (half of them train)")
    parser.add_argument("--num-classes", type=int, default=10, help="synthetic: classes")
    parser.add_argument("--noise", type=float, default=1.0, help="synthetic: noise std relative to the templates")
    parser.add_argument("--jobs-per-gpu", type=int, default=4, help="K of variant (d)")
    parser.add_argument("--compile-archs", type=int, default=2,
                        help="cells of variant (c), the first of the sample (0: skip it; -1: all)")
    parser.add_argument("--output", default=None, help=f"markdown results (default {DEFAULT_OUTPUT} on cuda,"
                                                        " none on cpu)")
    args = parser.parse_args(argv)
    from oracles.accel import Accel
    from oracles.data import dataset_from_config
    from oracles.models import resolve_device

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"standalone_gpu: --device {args.device} but CUDA is not available (use --device cpu for a smoke"
              " check)", file=sys.stderr)
        return 2
    try:
        dev = resolve_device(args.device)
    except ValueError as exc:
        print(f"standalone_gpu: {exc}", file=sys.stderr)
        return 2
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.set_device(dev)
    output = args.output or (DEFAULT_OUTPUT if cuda else None)
    command = shlex.join(["python", "bench/standalone_gpu.py", *(sys.argv[1:] if argv is None else argv)])

    if args.dataset == "synthetic":
        dataset: dict[str, Any] = {
            "name": "synthetic", "num_samples": args.num_samples, "num_classes": args.num_classes,
            "shape": [args.image_channels, args.image_size, args.image_size], "noise": args.noise, "seed": args.seed,
        }
    else:
        dataset = {"name": "digits"}
    ds = dataset_from_config(dataset)
    space = get_space("nb201")
    rng = np.random.default_rng(args.seed)
    picked: list[Any] = []
    while len(picked) < args.archs + max(1, args.jobs_per_gpu):  # distinct cells: timed ones, then warm-up ones
        a = space.sample(rng)
        if a not in picked:
            picked.append(a)
    archs, warm = picked[: args.archs], picked[args.archs :]
    common = {
        "dataset": dataset, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "seed": args.seed, "device": str(dev), "hardware": {"latency": False},
        "model": {"channels": args.channels, "cells": args.cells},
    }
    train_bytes = ds.train[0].element_size() * ds.train[0].nelement()
    auto = Accel().resolve(dev, len(ds.input_shape), train_bytes)
    n_compile = args.archs if args.compile_archs < 0 else min(args.compile_archs, args.archs)
    variants = [
        Variant("a", "fp32", {"precision": "fp32", "channels_last": False, "data_on_device": True}),
        Variant("b", "auto", {}),
        Variant("c", "auto + compile", {"compile": True}, archs=n_compile),
        Variant("d", f"auto x {args.jobs_per_gpu}", {}, workers=args.jobs_per_gpu),
    ]

    where = (f"{torch.cuda.get_device_name(dev)} ({dev})" if cuda
             else "CPU SMOKE CHECK (device cpu: not a GPU measurement, every auto is fp32 here)")
    steps = -(-len(ds.train[1]) // args.batch_size)
    header = [
        f"## `{command}`",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, {where}, torch {torch.__version__}"
        f" (CUDA {torch.version.cuda}), {torch.get_num_threads()} host threads",
        "",
        f"{args.archs} NB201 cells (seed {args.seed}), C={args.channels}, N={args.cells};"
        f" dataset {ds.describe()}; {args.epochs} epochs of {steps} steps, batch {args.batch_size}, lr {args.lr};"
        f" `auto` resolves to bf16={auto.bf16}, channels_last={auto.channels_last},"
        f" data_on_device={auto.data_on_device}. Warm-up batch (other cells, 1 epoch, one per worker) not timed;"
        " jobs/h is the timed batch's wall clock.",
        "",
    ]
    print("\n".join(header[2:5:2]))

    def write() -> None:
        rows = table(variants, args.archs)
        errors = [f"- ({v.key}) {e}" for v in variants for e in v.errors]
        text = "\n".join([*header, *rows, *(["", "Failed trainings:", *errors] if errors else [])]) + "\n"
        if output:
            with open(output, "w") as f:
                f.write(text)

    for v in (variants[0], variants[1], variants[3], variants[2]):  # the compiled variant, the slowest, last
        cells = archs if v.archs is None else archs[: v.archs]
        if not cells:
            print(f"({v.key}) {v.label}: skipped")
            continue
        print(f"({v.key}) {v.label}: {len(cells)} cells ...", flush=True)
        run_variant(v, space, cells, warm, common)
        print(f"    wall {v.wall:.1f} s, {v.jobs_per_hour:.0f} jobs/h, mean val acc {v.mean_acc:.4f},"
              f" {len(v.errors)} failed", flush=True)
        for e in v.errors:
            print(f"    failed: {e}", flush=True)
        write()
    print()
    print("\n".join(table(variants, args.archs)))
    print(f"wrote {output}" if output else "no results file written (cpu smoke check; --output to write one)")
    return 1 if any(v.errors for v in variants) else 0


if __name__ == "__main__":
    sys.exit(main())
