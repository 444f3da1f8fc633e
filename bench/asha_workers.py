"""ASHA on Ray workers: asynchronous with 2 workers against 1, and against synchronous rounds of 2.

One local Ray instance with 2 CPUs; the stand-alone oracle on the default task (digits, NB201,
one torch thread per job), ASHA with rungs 1, 3, 9 epochs, the same budget of rung evaluations
for every row, run one after the other:

- ``1 worker``: ``num_cpus_per_job=2``, so Ray runs one job at a time (``asynchronous``, batch 1);
- ``2 workers, rounds``: two jobs at a time, ``batch_size=2`` synchronous (a round waits for its
  slower job);
- ``2 workers, asynchronous``: two jobs at a time, each result told as it arrives and the free
  worker given the next query at once.

A warm-up on the same Ray workers (other seeds, so no checkpoint is shared) keeps worker
start-up out of the timing. Printed: jobs and training epochs per hour, how busy the 2 cores were
(training seconds of the jobs over 2 x wall time), and the ratios against one worker (target for asynchronous
2 vs 1: >= 1.7x jobs per hour on an idle 2-core machine). Writes ``bench/results/asha_workers.md``.

    python bench/asha_workers.py [--evaluations 40] [--epochs 9]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray

from engine.fidelity import EpochView, fidelity_epochs
from engine.search import Budget, Search
from engine.spaces import get_space
from engine.strategies import create_strategy
from engine.types import Oracle
from oracles.ray_executor import RayExecutor
from oracles.standalone import StandaloneOracle

RESULTS = Path(__file__).resolve().parent / "results" / "asha_workers.md"
SPACE = get_space("nb201")


def run(per_job: int, batch: int, asynchronous: bool, args: argparse.Namespace, warm_seed: int) -> dict[str, Any]:
    """One ASHA search; returns its throughput figures."""
    executor = RayExecutor(num_cpus_per_job=per_job)
    opts = {"dataset": "digits", "epochs": args.epochs, "hardware": {"latency": False}, "executor": executor}
    warm = StandaloneOracle(SPACE, **opts, seed=warm_seed)
    rng = np.random.default_rng(warm_seed)
    warm.evaluate_epochs([SPACE.sample(rng) for _ in range(2)], 1)  # both workers import torch, load the data
    oracle = StandaloneOracle(SPACE, **opts, seed=args.seed)
    strategy = create_strategy("asha", SPACE, seed=args.seed, max_epochs=args.epochs)
    oracles: dict[str, Oracle] = {}
    for fid in strategy.fidelities:
        e = fidelity_epochs(fid)
        oracles[fid] = oracle if e is None else EpochView(oracle, e)
    start = time.perf_counter()
    try:
        result = Search(strategy, oracles, Budget(evaluations=args.evaluations), batch_size=batch,
                        asynchronous=asynchronous).run()
    finally:
        wall = time.perf_counter() - start
        oracle.close()
        warm.close()
    epochs = sum(int(e.metrics.get("epochs_trained", 0)) for e in result.history if e.ok and not e.cached)
    best = result.best.objective if result.best is not None else float("nan")
    return {"jobs_h": result.evaluations / wall * 3600, "epochs_h": epochs / wall * 3600, "wall": wall,
            # Training seconds of every job over the workers' time: the same measure for rounds and asynchronous.
            "busy": sum(e.cost for e in result.history if not e.cached) / (2 * wall),
            "jobs": result.evaluations, "epochs": epochs,
            "best": best}


def main() -> None:
    """Run the three rows and write the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--evaluations", type=int, default=40, help="rung evaluations per search")
    ap.add_argument("--epochs", type=int, default=9, help="full training (the top rung)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = {"1 worker": (2, 1, True), "2 workers, rounds": (1, 2, False), "2 workers, asynchronous": (1, 2, True)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    out: dict[str, dict[str, Any]] = {}
    try:
        for k, (name, spec) in enumerate(rows.items()):
            out[name] = run(*spec, args=args, warm_seed=1000 + k)
            r = out[name]
            print(f"{name:24s} {r['jobs']} jobs ({r['epochs']} epochs) in {r['wall']:.1f} s: {r['jobs_h']:.0f} jobs/h,"
                  f" {r['epochs_h']:.0f} epochs/h, 2 cores busy {r['busy']:.0%}", flush=True)
    finally:
        ray.shutdown()
    load = os.getloadavg()[0]
    one = out["1 worker"]
    lines = [
        "# ASHA on Ray workers (`bench/asha_workers.py`)", "",
        f"Stand-alone oracle on digits (NB201 C=16 N=2, {args.epochs} epochs at the top rung, rungs eta 3),"
        f" {args.evaluations} rung evaluations per search, local Ray instance with 2 CPUs, one torch thread"
        f" per job, rows run one after the other. Load average at the end: {load:.1f} (2 cores).",
        f"Command: `python bench/asha_workers.py --evaluations {args.evaluations} --epochs {args.epochs}`", "",
        "| workers | jobs/h | epochs/h | jobs/h vs 1 worker | epochs/h vs 1 worker | 2 cores busy | wall (s) |"
        " best val |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in out.items():
        lines.append(f"| {name} | {r['jobs_h']:.0f} | {r['epochs_h']:.0f} | {r['jobs_h'] / one['jobs_h']:.2f}x |"
                     f" {r['epochs_h'] / one['epochs_h']:.2f}x | {r['busy']:.0%} | {r['wall']:.1f} |"
                     f" {r['best']:.4f} |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
