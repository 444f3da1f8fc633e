"""Does a stand-alone recipe separate architectures? Spread and seed-to-seed rank agreement.

Trains N random NAS-Bench-201 cells with two training seeds each (the oracle seed changes
every job's seed) and prints the accuracy spread, the Kendall tau between the two seeds
over all cells and within the better half (the noise ceiling any gap measurement is
bounded by), and the seconds per training. Results are appended to a JSON-lines file as
they arrive, so a killed run keeps what it measured and a rerun skips it.

    python bench/standalone_recipe.py --dataset digits --cells 24 --out runs/recipe_digits.jsonl
    python bench/standalone_recipe.py --dataset mnist1d --cells 24 --batch-size 128 --epochs 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from engine.spaces import NB201Space
from oracles.standalone import StandaloneOracle


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Spread and seed-to-seed agreement of the cells measured with both seeds."""
    by: dict[str, dict[int, float]] = {}
    secs = []
    for r in rows:
        if r["val_acc"] is not None:
            by.setdefault(r["arch"], {})[r["seed"]] = r["val_acc"]
            secs.append(r["seconds"])
    pairs = [(v[0], v[1]) for v in by.values() if 0 in v and 1 in v]
    if len(pairs) < 4:
        return {"cells": len(pairs)}
    a, b = np.array(pairs).T
    mean = (a + b) / 2
    top = mean >= np.median(mean)
    q = np.quantile(mean, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {
        "cells": len(pairs),
        "acc_min_q1_median_q3_max": [round(float(v), 4) for v in q],
        "acc_std_across_cells": round(float(mean.std()), 4),
        "seed_abs_diff_mean": round(float(np.abs(a - b).mean()), 4),
        "tau_all": round(float(kendalltau(a, b).statistic), 3),
        "spearman_all": round(float(spearmanr(a, b).statistic), 3),
        "tau_top_half": round(float(kendalltau(a[top], b[top]).statistic), 3),
        "seconds_per_training_mean": round(statistics.fmean(secs), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--dataset-options", default="{}", help="JSON of extra dataset options")
    p.add_argument("--cells", type=int, default=24)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells-per-stage", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=None, help="JSON-lines file of per-training results")
    args = p.parse_args()

    space = NB201Space()
    rng = np.random.default_rng(2026)
    archs = []
    while len(archs) < args.cells:  # distinct random cells, the same list for every dataset
        a = space.sample(rng)
        if a not in archs:
            archs.append(a)
    dataset = {"name": args.dataset, **json.loads(args.dataset_options)}
    recipe = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    tag = json.dumps({"dataset": dataset, "recipe": recipe, "channels": args.channels,
                      "cells": args.cells_per_stage}, sort_keys=True)
    out = Path(args.out or f"runs/recipe_{args.dataset}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    rows = [r for r in rows if r["tag"] == tag]
    done = {(r["arch"], r["seed"]) for r in rows}
    executor = {"name": "process", "workers": args.workers, "threads": 1}
    print(f"{args.dataset}: {len(archs)} cells x 2 seeds, recipe {recipe}, C={args.channels} N={args.cells_per_stage}")
    start = time.perf_counter()
    for seed in (0, 1):
        oracle = StandaloneOracle(
            space, dataset=dataset, seed=seed, executor=executor,
            model={"channels": args.channels, "cells": args.cells_per_stage},
            hardware={"latency": False}, **recipe,
        )
        todo = [a for a in archs if (a.string, seed) not in done]
        for i in range(0, len(todo), args.workers):
            for ev in oracle.evaluate(todo[i : i + args.workers]):
                row = {"tag": tag, "arch": ev.arch.string, "seed": seed, "val_acc": ev.objective,
                       "test_acc": ev.reported.get("test_acc"), "seconds": ev.cost, "error": ev.error}
                rows.append(row)
                with out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
            print(f"  seed {seed}: {min(i + args.workers, len(todo))}/{len(todo)} trained,"
                  f" {time.perf_counter() - start:.0f} s", flush=True)
        oracle.close()
    print(json.dumps(summarize(rows), indent=1))


if __name__ == "__main__":
    main()
