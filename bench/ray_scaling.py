"""Stand-alone training throughput on Ray: two concurrent workers vs one, measured side by side.

One local Ray instance with 2 CPUs runs the same batch of stand-alone trainings twice:
with ``num_cpus_per_job=2`` (Ray runs one job at a time) and with ``num_cpus_per_job=1``
(two at a time), after a warm-up batch so that worker start-up (importing torch, loading
the data) is not counted. Prints jobs per second of each and the ratio (target >= 1.7x on
a 2-core machine; it cannot exceed the cores that are actually free, so run it on an idle
machine).

    python bench/ray_scaling.py --jobs 8 --epochs 3
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import ray

from engine.spaces import NB201Space
from oracles.ray_executor import RayExecutor
from oracles.standalone import StandaloneOracle


def main() -> None:
    """Run the benchmark and print the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=8, help="stand-alone trainings per measurement")
    ap.add_argument("--epochs", type=int, default=3, help="training epochs per job")
    ap.add_argument("--dataset", default="digits", help="dataset name (digits, mnist1d, synthetic)")
    ap.add_argument("--channels", type=int, default=16, help="NB201 width C")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    space = NB201Space()
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.jobs)]
    opts = {"dataset": args.dataset, "epochs": args.epochs, "model": {"channels": args.channels, "cells": 1},
            "hardware": {"latency": False}, "seed": args.seed}
    results: dict[int, float] = {}
    accs: dict[int, list[float | None]] = {}
    try:
        for per_job in (2, 1):
            oracle = StandaloneOracle(space, **opts, executor=RayExecutor(num_cpus_per_job=per_job))
            oracle.evaluate(archs[:2])  # warm-up: workers import torch and load the data once
            start = time.perf_counter()
            evals = oracle.evaluate(archs)
            elapsed = time.perf_counter() - start
            results[per_job] = args.jobs / elapsed
            accs[per_job] = [e.objective for e in evals]
            concurrent = 2 // per_job
            print(f"{concurrent} concurrent job(s): {args.jobs} trainings in {elapsed:.1f} s"
                  f" = {results[per_job]:.3f} jobs/s", flush=True)
    finally:
        ray.shutdown()
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"same accuracies with 1 and 2 workers: {accs[1] == accs[2]}")
    print(f"throughput ratio 2 workers / 1 worker: {results[1] / results[2]:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    main()
