"""What a warm start is worth: each strategy cold and warm-started, side by side on NAS-Bench-201 CIFAR-10.

Per seed, an earlier search is random search with ``W`` evaluations (its own seed
stream). Each strategy then runs ``B`` evaluations twice: cold, and warm-started with
that earlier search's results (``warm_start=`` on the command line). Reported, mean
over seeds, paired:

- ``cold``: test accuracy of the cold search's pick (best ``val_acc``);
- ``warm``: test accuracy of the warm-started search's pick among everything it knows
  (what its summary reports);
- ``warm own``: its pick among its own ``B`` evaluations only, the part that shows
  whether the strategy *used* the earlier results rather than only inheriting them;
- ``warm - cold`` with its standard error, and the same for ``own - cold``.

    python bench/warm_start.py [--seeds 20] [--warm 25] [--budget 25] [--strategies smbo ...]

Writes ``bench/results/warm_start.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategies import _search, runnable

from engine.strategies import get_strategy, list_strategies
from engine.types import Evaluation

RESULTS = Path(__file__).resolve().parent / "results" / "warm_start.md"


def _run(name: str, seed: int, budget: int, warm: Sequence[Evaluation] = ()) -> list[Evaluation]:
    """The final-fidelity history of one search of the strategies benchmark, warm-started with ``warm``."""
    final = get_strategy(name).final_fidelity
    # The earlier search measured val_acc, the final fidelity's column.
    history = _search(name, seed, budget, warm_start=[replace(e, fidelity=final) for e in warm])
    return [e for e in history if e.fidelity == final]


def _pick(history: Sequence[Evaluation]) -> float:
    ok = [e for e in history if e.ok]
    return float(max(ok, key=lambda e: e.objective or 0.0).reported["test_acc"]) if ok else math.nan


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--warm", type=int, default=25, help="evaluations of the earlier (random) search")
    p.add_argument("--budget", type=int, default=25, help="evaluations of each compared search")
    p.add_argument("--strategies", nargs="*", default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    names = args.strategies or [n for n in list_strategies() if n != "random" and runnable(n)[0]]
    rows: list[dict[str, Any]] = []
    for name in names:
        t0 = time.perf_counter()
        cold, warm, own = [], [], []
        for seed in range(args.seeds):
            earlier = _run("random", 10_000 + seed, args.warm)
            cold.append(_pick(_run(name, seed, args.budget)))
            history = _run(name, seed, args.budget, earlier)
            warm.append(_pick(history))
            own.append(_pick(history[len(earlier):]))
        c, w, o = (np.asarray(x) for x in (cold, warm, own))
        n = len(c)
        row = {"strategy": name, "cold": c.mean(), "warm": w.mean(), "own": o.mean(),
               "d_warm": (w - c).mean(), "se_warm": (w - c).std(ddof=1) / math.sqrt(n),
               "d_own": (o - c).mean(), "se_own": (o - c).std(ddof=1) / math.sqrt(n),
               "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(f"{name:<22} cold {row['cold']:.2f}"
              f"  warm {row['warm']:.2f} ({row['d_warm']:+.2f} +- {row['se_warm']:.2f})"
              f"  warm own {row['own']:.2f} ({row['d_own']:+.2f} +- {row['se_own']:.2f})  {row['seconds']:.0f} s",
              flush=True)
    lines = [
        "# Warm start: cold vs warm-started searches on NAS-Bench-201 CIFAR-10",
        "",
        f"`python bench/warm_start.py --seeds {args.seeds} --warm {args.warm} --budget {args.budget}`: per seed the"
        f" earlier search is random search with {args.warm} evaluations; each strategy runs {args.budget}"
        " evaluations cold and warm-started with it. Test accuracy (%) of the pick by `val_acc`, mean over"
        f" {args.seeds} seeds; differences paired, +- one standard error. `warm own`: the pick among the"
        " warm-started search's own evaluations only (did it use the earlier results, or only inherit them?).",
        "",
        "| strategy | cold | warm | warm - cold | warm own | own - cold |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['strategy']} | {r['cold']:.2f} | {r['warm']:.2f} | {r['d_warm']:+.2f} +- {r['se_warm']:.2f}"
                     f" | {r['own']:.2f} | {r['d_own']:+.2f} +- {r['se_own']:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
