"""Supernet oracle speed, measured side by side with the naive path in one run.

Two ratios (issue 3's targets in brackets):

1. Inherited-weight evaluation throughput, in architectures per second, BN
   recalibration included: the supernet's batched path (architectures stacked
   along the batch dimension, per-architecture BN statistics, computations that
   several architectures share done once) against the naive path, which builds
   the stand-alone module of each architecture, copies the inherited weights
   into it, recalibrates its BN statistics on the same examples and evaluates it
   on the same validation set [>= 3x].
2. One supernet training step (one sampled path, forward + backward + SGD
   update) against one training step of the largest architecture's extracted
   stand-alone network at the same batch size [<= 1.3x]. Reported for the largest path through the
   supernet (same FLOPs as the stand-alone network: pure weight-sharing
   overhead) and for uniformly sampled paths.

Both paths use one torch thread, the same data and the same weights; the
accuracies of the two evaluation paths are printed so that one can see they
compute the same thing.

    python bench/supernet_throughput.py [--space nb201] [--dataset digits] [--archs 32] [--repeats 5]
        [--channels 16] [--cells 2] [--device cpu]

``--device cuda`` (issue 13) moves the supernet, the naive modules and the data to the GPU,
synchronizes around every timed region and writes ``bench/results/supernet_throughput_cuda.md``
(device name, torch version, command and the printed output; ``--output`` to change it). On the
CPU, the default, nothing is written and the behaviour is what it was. On a GPU the naive path's
time includes copying each extracted module to the device, and the ``cpu`` column is host CPU time.

The naive path builds each module once (``supernet.extract``) and is timed in both memory
layouts; the training-step comparison runs the supernet's largest path against that path's
extracted network in the supernet's own layout, so both steps compute the same thing (the
loss difference before training is printed).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.spaces import Architecture, get_space


def _no_sync() -> None:
    pass


def _median_seconds(fn: Callable[[], Any], repeats: int, sync: Callable[[], None] = _no_sync) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``fn`` (CPU time is the steadier one on a shared machine).

    ``sync`` (``torch.cuda.synchronize`` on a GPU) runs before the clock starts and before it stops,
    so that queued kernels are counted in the region that launched them.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        sync()
        w, c = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def naive_evaluate(
    supernet: nn.Module, archs: Sequence[Architecture], recal_x: torch.Tensor, batch_size: int,
    val: tuple[torch.Tensor, torch.Tensor], channels_last: bool,
) -> list[float]:
    """Extract (one module build with the inherited weights), recalibrate BN cumulatively, evaluate."""
    accs = []
    recal = _layout(recal_x, channels_last)
    x, y = val
    x = _layout(x, channels_last)
    for arch in archs:
        model = supernet.extract(arch).to(recal_x.device)  # type: ignore[operator]
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        model.train()
        with torch.no_grad():
            for s in range(0, len(recal), batch_size):
                model(recal[s : s + batch_size])
            model.eval()
            accs.append(float((model(x).argmax(1) == y).float().mean()))
    return accs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201", choices=["nb201"])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--archs", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per path (the median is reported)")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--batch-archs", type=int, default=16, help="supernet.eval_batch_archs")
    parser.add_argument("--channels", type=int, default=16, help="width C of the NB201 skeleton (nas-gap uses 8)")
    parser.add_argument("--cells", type=int, default=2, help="cells per stage N (the oracles' default is 2)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--output", default=None,
                        help="markdown file of the results (default: none on cpu,"
                             " bench/results/supernet_throughput_cuda.md on cuda)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from oracles.data import load_dataset
    from oracles.models import resolve_device
    from oracles.supernet import SupernetConfig, build_supernet
    from oracles.supernet.evaluation import InheritedEvaluator

    try:
        dev = resolve_device(args.device)
    except ValueError as exc:
        print(f"supernet_throughput: {exc}", file=sys.stderr)
        return 2
    cuda = dev.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(dev)) if cuda else _no_sync
    where = f"device {dev} ({torch.cuda.get_device_name(dev)}), torch {torch.__version__}" if cuda else "1 thread"
    lines: list[str] = []

    def say(line: str) -> None:
        print(line)
        lines.append(line)

    space = get_space(args.space)
    data = load_dataset(args.dataset)
    train = (data.train[0].to(dev), data.train[1].to(dev))
    val = (data.val[0].to(dev), data.val[1].to(dev))
    cfg = SupernetConfig(eval_batch_archs=args.batch_archs)
    options = {"channels": args.channels, "cells": args.cells}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        supernet = build_supernet(space, data.input_shape, data.num_classes, **options).to(dev)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(args.archs)]
    evaluator = InheritedEvaluator(cfg, train, {"val": val}, seed=0)

    # -- 1. evaluation throughput -------------------------------------------------------------
    fast_acc: list[float] = []

    def fast() -> None:
        fast_acc[:] = [r["val_acc"] for r in evaluator.evaluate(supernet, [a.decisions for a in archs])]

    naive_acc: list[float] = []

    def naive(channels_last: bool) -> Callable[[], None]:
        def run() -> None:
            naive_acc[:] = naive_evaluate(supernet, archs, evaluator.recal_x, cfg.batch_size, val, channels_last)
        return run

    fast()
    # The naive path in both memory layouts (the batched path runs channels-last); the faster one is compared.
    naive_times = {}
    for name, cl in (("NCHW", False), ("channels-last", True)):
        naive(cl)()  # warm-up
        naive_times[name] = _median_seconds(naive(cl), args.repeats, sync)
    t_fast = _median_seconds(fast, args.repeats, sync)
    best_layout = min(naive_times, key=lambda k: naive_times[k][1])
    t_naive = naive_times[best_layout]
    naive(best_layout == "channels-last")()
    diff = max(abs(a - b) for a, b in zip(fast_acc, naive_acc))
    say(f"space {space.name} (C={args.channels}, N={args.cells}), dataset {data.describe()}, {len(archs)}"
        f" architectures, {where}")
    say(f"recalibration: {len(evaluator.recal_x)} training examples; validation: {len(data.val[1])} examples;"
        f" {cfg.eval_batch_archs} architectures per batched forward")
    say("evaluation throughput (archs/s)      wall    cpu")
    say(f"  supernet batched path          {len(archs) / t_fast[0]:8.2f} {len(archs) / t_fast[1]:6.2f}")
    for name, t in naive_times.items():
        say(f"  naive path, {name:<18} {len(archs) / t[0]:8.2f} {len(archs) / t[1]:6.2f}")
    say(f"  ratio to the faster naive ({best_layout}; target >= 3x)"
        f" {t_naive[0] / t_fast[0]:7.2f}x {t_naive[1] / t_fast[1]:5.2f}x")
    say(f"  max |val acc difference|       {diff:8.4f}   (recalibration in one batch vs {cfg.batch_size}-example"
        " batches)")

    # -- 2. training step ------------------------------------------------------------------------
    x, y = train
    xb, yb = x[: cfg.batch_size], y[: cfg.batch_size]
    largest = space.architecture([3] * len(space.decisions))  # nor_conv_3x3 on every edge
    # The identical computation: the supernet's largest path against its extracted stand-alone network
    # (same weights, same layout as the supernet's forward), so the ratio is the weight-sharing overhead only.
    alone = supernet.extract(largest).to(dev, memory_format=torch.channels_last)  # type: ignore[operator]
    xb = _layout(xb, True)
    alone.train()
    supernet.train()
    with torch.no_grad():
        same = float((F.cross_entropy(alone(xb), yb) - F.cross_entropy(supernet(xb, [largest.decisions]), yb)).abs())
    opt_alone = torch.optim.SGD(alone.parameters(), lr=0.01, momentum=0.9)
    opt_super = torch.optim.SGD(supernet.parameters(), lr=0.01, momentum=0.9)
    supernet.train()
    paths = [space.sample(rng).decisions for _ in range(args.train_steps)]

    def step_alone() -> None:
        for _ in range(args.train_steps):
            opt_alone.zero_grad(set_to_none=True)
            F.cross_entropy(alone(xb), yb).backward()
            opt_alone.step()

    def step_super_largest() -> None:
        for _ in range(args.train_steps):
            opt_super.zero_grad(set_to_none=True)
            F.cross_entropy(supernet(xb, [largest.decisions]), yb).backward()
            opt_super.step()

    def step_super_random() -> None:
        for p in paths:
            opt_super.zero_grad(set_to_none=True)
            F.cross_entropy(supernet(xb, [p]), yb).backward()
            opt_super.step()

    for fn in (step_alone, step_super_largest, step_super_random):
        fn()
    steps = args.train_steps
    t_alone, t_largest, t_random = (
        [t / steps for t in _median_seconds(fn, args.repeats, sync)]
        for fn in (step_alone, step_super_largest, step_super_random)
    )
    say(f"training step, batch {cfg.batch_size} (ms)       wall    cpu   (|loss difference| of the two largest"
        f" networks before training: {same:.2e})")
    say(f"  extracted stand-alone largest  {t_alone[0] * 1e3:8.2f} {t_alone[1] * 1e3:6.2f}")
    say(f"  supernet, largest path         {t_largest[0] * 1e3:8.2f} {t_largest[1] * 1e3:6.2f}"
        f"   ratio {t_largest[0] / t_alone[0]:.2f}x / {t_largest[1] / t_alone[1]:.2f}x (target <= 1.3x)")
    say(f"  supernet, random paths         {t_random[0] * 1e3:8.2f} {t_random[1] * 1e3:6.2f}"
        f"   ratio {t_random[0] / t_alone[0]:.2f}x / {t_random[1] / t_alone[1]:.2f}x")
    output = args.output or ("bench/results/supernet_throughput_cuda.md" if cuda else None)
    if output:
        command = shlex.join(["python", "bench/supernet_throughput.py", *(sys.argv[1:] if argv is None else argv)])
        with open(output, "w") as f:
            f.write(f"## `{command}`\n\n{time.strftime('%Y-%m-%d %H:%M')}, {where}"
                    f"{'' if cuda else f', device {dev}'}\n\n```\n" + "\n".join(lines) + "\n```\n")
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
