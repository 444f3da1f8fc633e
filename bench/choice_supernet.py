"""The generic choice-module supernet (``oracles.choices``), measured side by side in one run.

For a network written with choice modules, two ratios (issue 10's targets in brackets):

1. One supernet training step (forward + backward + SGD update, one path) against
   one training step of the plain network of its largest path, the same
   architecture extracted with no choice module left [<= 1.3x]; also for
   uniformly sampled paths.
2. Inherited-weight evaluation throughput (architectures per second, BN
   recalibration included): the generic batched evaluator (architectures one
   after the other on the shared input, per-architecture BN statistics in one
   fused pass) against the naive path (extract each architecture, recalibrate
   its BN statistics on the same examples, evaluate it).

Networks: ``tinynet`` (the example package's 1-D network, examples/own_network, on
its generated signals) and ``nb201`` (the NAS-Bench-201 supernet rewritten with
one ``LayerChoice`` per edge, labels tied across cells, on digits), the latter
beside the built-in hand-written NB201 supernet, which also shares the work of
common prefixes between architectures; that comparison is why the built-in
supernets stay hand-written (docs/design.md).

    python bench/choice_supernet.py [--network tinynet|nb201|all] [--archs 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "own_network"))  # the example network, without installing it
sys.path.insert(0, str(ROOT / "bench"))  # this module (the nb201 network's factory) and its sibling benchmarks

from supernet_throughput import _median_seconds  # noqa: E402

from engine.spaces import NB201_EDGES, NB201_OPS  # noqa: E402
from oracles import models  # noqa: E402
from oracles.choices import LayerChoice  # noqa: E402


class _ChoiceCell(models._FixedCell):
    """A NAS-Bench-201 cell with one LayerChoice per edge (labels shared by every cell: one cell searched).

    The fixed cell's forward (the DAG over the edges) serves unchanged: only the edges differ.
    """

    def __init__(self, channels: int, dim: int) -> None:
        nn.Module.__init__(self)
        self.edges = nn.ModuleList(
            LayerChoice({op: models.make_op(op, channels, channels, 1, dim) for op in NB201_OPS}, f"edge({d}<-{s})")
            for s, d in NB201_EDGES
        )


def _sgd_steps(opt: torch.optim.Optimizer, logits: Callable[[Any], torch.Tensor], paths: Sequence[Any],
               y: torch.Tensor) -> None:
    """One SGD step per entry of ``paths`` on the loss of ``logits(path)`` (the step every row times)."""
    for p in paths:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(logits(p), y).backward()
        opt.step()


def nb201_choices(input_shape: Sequence[int], num_classes: int, channels: int = 16, cells: int = 1) -> nn.Module:
    """The NAS-Bench-201 supernet written with choice modules (``bench.choice_supernet:nb201_choices``)."""
    dim = len(input_shape) - 1
    return models.NB201Network(lambda c, _s, _i: _ChoiceCell(c, dim), channels, cells, int(input_shape[0]),
                               num_classes, dim)


def _largest(space: Any, supernet: Any, rng: np.random.Generator) -> Any:
    """The architecture with the most parameters (enumerated when small, else among 300 samples)."""
    from oracles.hardware import count_params

    archs = list(space.enumerate()) if space.size <= 500 else [space.sample(rng) for _ in range(300)]
    return max(archs, key=lambda a: count_params(supernet.extract(a)))


def measure(name: str, args: argparse.Namespace) -> None:
    from oracles.data import load_dataset
    from oracles.export import recalibrate_bn
    from oracles.supernet import NB201Supernet, SupernetConfig
    from oracles.supernet.evaluation import InheritedEvaluator
    from oracles.supernet.module import ModuleSupernet

    if name == "tinynet":
        from tinynet.data import make_signals

        from oracles.choices import ModuleSpace

        x, y = make_signals(1200, seed=0)
        path = Path(tempfile.mkdtemp()) / "signals.npz"
        np.savez(path, x=x, y=y)
        data = load_dataset("npz", path=str(path))
        space: Any = ModuleSpace("tinynet.net:TinyNet", name="tinynet")
        spec, kwargs = "tinynet.net:TinyNet", {}
    else:
        from engine.spaces import get_space

        data = load_dataset("digits")
        space = get_space("nb201")
        spec, kwargs = "choice_supernet:nb201_choices", {"channels": args.channels, "cells": args.cells}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        supernet = ModuleSupernet(space, spec, data.input_shape, data.num_classes, **kwargs)
    rng = np.random.default_rng(0)
    largest = _largest(space, supernet, rng)
    cfg = SupernetConfig(eval_batch_archs=args.batch_archs)
    print(f"\n== {name}: space {space.name} ({space.size} architectures), {data.describe()}, 1 thread")

    # -- 1. training step ---------------------------------------------------------------------
    xt, yt = data.train
    xb, yb = xt[: cfg.batch_size], yt[: cfg.batch_size]
    alone = supernet.extract(largest)
    for m in alone.modules():
        if m is not alone and callable(getattr(m, "reset_parameters", None)):
            m.reset_parameters()
    opt_alone = torch.optim.SGD(alone.parameters(), lr=0.01, momentum=0.9)
    opt_super = torch.optim.SGD(supernet.parameters(), lr=0.01, momentum=0.9)
    supernet.train()
    alone.train()
    paths = [space.sample(rng).decisions for _ in range(args.train_steps)]
    steps = args.train_steps

    same = [largest.decisions] * steps

    def step_alone() -> None:
        _sgd_steps(opt_alone, lambda _: alone(xb), same, yb)

    def step_largest() -> None:
        _sgd_steps(opt_super, lambda p: supernet(xb, [p]), same, yb)

    def step_random() -> None:
        _sgd_steps(opt_super, lambda p: supernet(xb, [p]), paths, yb)

    rows: list[tuple[str, Callable[[], None]]] = [("plain network of the largest path", step_alone),
                                                  ("choice supernet, largest path", step_largest),
                                                  ("choice supernet, random paths", step_random)]
    if name == "nb201":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            built_in = NB201Supernet(space, data.input_shape, data.num_classes, **kwargs)
        opt_builtin = torch.optim.SGD(built_in.parameters(), lr=0.01, momentum=0.9)
        built_in.train()

        def step_builtin() -> None:
            _sgd_steps(opt_builtin, lambda p: built_in(xb, [p]), same, yb)

        rows.append(("built-in NB201 supernet, largest path", step_builtin))
    for _, fn in rows:
        fn()  # warm-up
    times = {label: [t / steps for t in _median_seconds(fn, args.repeats)] for label, fn in rows}
    base = times[rows[0][0]]
    print(f"training step, batch {cfg.batch_size} (ms)               wall     cpu   ratio wall / cpu")
    print(f"  largest path: {largest.string}")
    for label, t in times.items():
        ratio = "" if label == rows[0][0] else f"   {t[0] / base[0]:.2f}x / {t[1] / base[1]:.2f}x"
        target = " (target <= 1.3x)" if label == "choice supernet, largest path" else ""
        print(f"  {label:<40} {t[0] * 1e3:7.2f} {t[1] * 1e3:7.2f}{ratio}{target}")

    # -- 2. evaluation throughput ---------------------------------------------------------------
    supernet.eval()
    archs = [space.sample(rng) for _ in range(args.archs)]
    evaluator = InheritedEvaluator(cfg, data.train, {"val": data.val}, seed=0)
    fast_acc: list[float] = []
    naive_acc: list[float] = []

    def fast() -> None:
        fast_acc[:] = [r["val_acc"] for r in evaluator.evaluate(supernet, [a.decisions for a in archs])]

    def naive() -> None:
        out = []
        for arch in archs:
            model = supernet.extract(arch)
            recalibrate_bn(model, evaluator.recal_x)
            with torch.no_grad():
                out.append(float((model(data.val[0]).argmax(1) == data.val[1]).float().mean()))
        naive_acc[:] = out

    evals: list[tuple[str, Callable[[], None]]] = [("choice supernet, batched evaluator", fast),
                                                   ("naive: extract, recalibrate, evaluate", naive)]
    if name == "nb201":
        from engine.spaces import NB201_OPS

        def renamed(key: str) -> str:  # edges.<e>.candidates.<op name>.<rest> -> edges.<e>.<op index>.<rest>
            head, sep, tail = key.partition(".candidates.")
            if not sep:
                return "net." + key
            op, _, rest = tail.partition(".")
            return f"net.{head}.{NB201_OPS.index(op)}.{rest}"

        built_in.load_state_dict({renamed(k): v for k, v in supernet.net.state_dict().items()})  # the same weights
        built_in.eval()
        builtin_acc: list[float] = []

        def fast_builtin() -> None:
            builtin_acc[:] = [r["val_acc"] for r in evaluator.evaluate(built_in, [a.decisions for a in archs])]

        evals.append(("built-in NB201 supernet, batched", fast_builtin))
    for _, fn in evals:
        fn()
    t_eval = {label: _median_seconds(fn, args.repeats) for label, fn in evals}
    naive_t = t_eval[evals[1][0]]
    print(f"evaluation of {len(archs)} architectures, {len(evaluator.recal_x)} recalibration and"
          f" {len(data.val[1])} validation examples       archs/s wall   cpu   speed-up vs naive")
    for label, t in t_eval.items():
        print(f"  {label:<40} {len(archs) / t[0]:9.2f} {len(archs) / t[1]:7.2f}   {naive_t[0] / t[0]:.2f}x /"
              f" {naive_t[1] / t[1]:.2f}x")
    diff = max(abs(a - b) for a, b in zip(fast_acc, naive_acc))
    print(f"  max |val acc difference| batched vs naive: {diff:.4f}")
    if name == "nb201":
        diff = max(abs(a - b) for a, b in zip(fast_acc, builtin_acc))
        print(f"  max |val acc difference| choice vs built-in supernet (same weights): {diff:.4f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="all", choices=["tinynet", "nb201", "all"])
    parser.add_argument("--archs", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per path (the median is reported)")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--batch-archs", type=int, default=16, help="supernet.eval_batch_archs")
    parser.add_argument("--channels", type=int, default=16, help="nb201 width C")
    parser.add_argument("--cells", type=int, default=1, help="nb201 cells per stage (the supernet oracle's default)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name in (["tinynet", "nb201"] if args.network == "all" else [args.network]):
        measure(name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
