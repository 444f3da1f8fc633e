"""NSGA-II against random search and Optuna's NSGA-II on NAS-Bench-201: val_acc vs Raspberry Pi 4 latency.

Prints the mean (and standard error) hypervolume of everything evaluated after
100 and 200 evaluations, over 30 seeds, in the metrics' units (accuracy points
times milliseconds) against the reference point of ``conf/strategy/nsga2.yaml``.
All methods see the same shipped table through the same oracle, in one run.

    python bench/multiobjective.py [--seeds 30] [--evaluations 100 200] [--out bench/results/multiobjective.md]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.spaces import get_space
from engine.strategies import create_strategy
from engine.strategies._nsga2 import hypervolume, parse_objectives
from oracles.tabular import TabularOracle

RESULTS = Path(__file__).resolve().parent / "results" / "multiobjective.md"

OBJECTIVES = [{"metric": "val_acc", "direction": "max"}, {"metric": "latency_ms_raspi4", "direction": "min"}]
REFERENCE = (80.0, 100.0)


def run_engine(name: str, seed: int, n: int, oracle: TabularOracle, **options: object) -> list[tuple[float, float]]:
    """Drive a registered strategy by ask/tell for ``n`` evaluations; the (val_acc, latency) of each."""
    strategy = create_strategy(name, oracle.space, seed=seed, **options)
    points: list[tuple[float, float]] = []
    while len(points) < n:
        queries = strategy.ask(1)
        if not queries:
            break
        evals = oracle.evaluate([q.arch for q in queries])
        strategy.tell(evals)
        points.extend((e.metrics["val_acc"], e.metrics["latency_ms_raspi4"]) for e in evals)
    return points


def run_optuna(seed: int, n: int, oracle: TabularOracle, population: int) -> list[tuple[float, float]]:
    """Optuna's NSGAIISampler on the same cells (one categorical parameter per edge)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = oracle.space
    points: list[tuple[float, float]] = []

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        decisions = [
            trial.suggest_categorical(d.name, list(range(d.n))) for d in space.decisions
        ]
        ev = oracle.evaluate([space.architecture(decisions)])[0]
        point = (ev.metrics["val_acc"], ev.metrics["latency_ms_raspi4"])
        points.append(point)
        return point

    sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=n)
    return points


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--evaluations", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown file for the results table")
    args = parser.parse_args(argv)
    logging.getLogger("engine").setLevel(logging.WARNING)
    space = get_space("nb201")
    oracle = TabularOracle(space, metrics=["latency_ms_raspi4"])
    signs = [s for _, s in parse_objectives(OBJECTIVES)]
    n_max = max(args.evaluations)
    methods: dict[str, Callable[[int], list[tuple[float, float]]]] = {
        "random": lambda s: run_engine("random", s, n_max, oracle),
        "nsga2 (engine)": lambda s: run_engine(
            "nsga2", s, n_max, oracle, objectives=OBJECTIVES, reference=list(REFERENCE)
        ),
        "optuna NSGAIISampler (pop 50, default)": lambda s: run_optuna(s, n_max, oracle, 50),
        "optuna NSGAIISampler (pop 20)": lambda s: run_optuna(s, n_max, oracle, 20),
        "optuna NSGAIISampler (pop 10, as nsga2)": lambda s: run_optuna(s, n_max, oracle, 10),
    }
    rows = []
    for label, fn in methods.items():
        hv: dict[int, list[float]] = {n: [] for n in args.evaluations}
        start = time.perf_counter()
        for seed in tqdm(range(args.seeds), desc=label, leave=False):
            points = fn(seed)
            for n in args.evaluations:
                hv[n].append(hypervolume(points[:n], signs, REFERENCE))
        rows.append((label, hv, time.perf_counter() - start))
    everything = [(row["val_acc"], row["latency_ms_raspi4"]) for row in oracle.table.values()]
    lines = [
        f"# NSGA-II on NAS-Bench-201 CIFAR-10 ({args.seeds} seeds)",
        "",
        f"Maximise `val_acc`, minimise `latency_ms_raspi4`; hypervolume (accuracy points x ms) of everything"
        f" evaluated, against the reference point {REFERENCE}; mean +- standard error over seeds.",
        f"The whole table's Pareto front has hypervolume {hypervolume(everything, signs, REFERENCE):.1f}.",
        "",
        "| method | " + " | ".join(f"HV @ {n}" for n in args.evaluations) + " | seconds |",
        "|---" * (len(args.evaluations) + 2) + "|",
    ]
    for label, hv, secs in rows:
        cells = " | ".join(
            f"{np.mean(hv[n]):.1f} +- {np.std(hv[n], ddof=1) / np.sqrt(len(hv[n])):.1f}" for n in args.evaluations
        )
        lines.append(f"| {label} | {cells} | {secs:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
