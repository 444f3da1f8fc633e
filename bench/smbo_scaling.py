"""smbo's ask time as the history grows: the refit must not explode with the number of evaluations.

Drives ``smbo`` (defaults) on the NAS-Bench-201 table to ``--evaluations``
(1,000) and times every ask; prints the median ask time around 100, 250, 500
and 1,000 evaluations and their ratio to the time at 100, measured side by side
in one run. The ensemble is refit from scratch with a fixed number of
minibatch steps on a bounded minibatch, so the ratio should stay near 1; a refit
over the full history would grow about linearly.

    python bench/smbo_scaling.py [--evaluations 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.spaces import get_space
from engine.strategies import create_strategy

RESULTS = Path(__file__).resolve().parent / "results" / "smbo_scaling.md"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluations", type=int, default=1000, help="evaluations to grow the history to")
    parser.add_argument("--seed", type=int, default=0, help="strategy seed")
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown file for the results")
    args = parser.parse_args(argv)
    if args.evaluations < 100:
        parser.error("--evaluations must be at least 100")
    from oracles.tabular import TabularOracle

    space = get_space("nb201")
    oracle = TabularOracle(space)
    strategy = create_strategy("smbo", space, seed=args.seed)
    ask_wall, ask_cpu = [], []
    for i in range(args.evaluations):
        w, c = time.perf_counter(), time.process_time()
        queries = strategy.ask(1)
        ask_wall.append(time.perf_counter() - w)
        ask_cpu.append(time.process_time() - c)
        if not queries:
            break
        strategy.tell(oracle.evaluate([q.arch for q in queries]))
        if (i + 1) % 100 == 0:
            print(f"  {i + 1} evaluations, last ask {ask_wall[-1] * 1000:.0f} ms", file=sys.stderr, flush=True)
    marks = [m for m in (100, 250, 500, 1000, args.evaluations) if m <= len(ask_wall)]
    marks = sorted(set(marks))

    def around(values: list[float], m: int) -> float:
        return float(np.median(values[max(0, m - 20):m]))

    base_w, base_c = around(ask_wall, 100), around(ask_cpu, 100)
    lines = [
        f"# smbo ask time vs history size (NAS-Bench-201 table, seed {args.seed}, defaults)",
        "",
        "Median over the 20 asks before each mark; wall and CPU time of this process (other load on the machine"
        " inflates wall time only).",
        "",
        "| evaluations | ask ms (wall) | ask ms (CPU) | CPU ratio to 100 |",
        "|---|---|---|---|",
    ]
    for m in marks:
        lines.append(f"| {m} | {around(ask_wall, m) * 1000:.1f} | {around(ask_cpu, m) * 1000:.1f}"
                     f" | {around(ask_cpu, m) / base_c:.2f} |")
    best = strategy.best()
    lines += ["", f"Best val_acc found: {best.objective if best else float('nan'):.2f}"
              f" (wall ratio at the last mark {around(ask_wall, marks[-1]) / base_w:.2f})."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
