"""Stopping poor trainings early, measured: ASHA, Hyperband and Optuna's Hyperband pruner against full training.

On the default stand-alone task (digits, the NB201 network of ``conf/oracle/standalone.yaml``,
one CPU thread), every method gets the same total of training epochs and runs one after the
other in this process, per seed:

- ``random (full)``: random search, every architecture trained to the full ``--epochs``;
- ``asha`` and ``hyperband``: the engine's rung strategies (rungs 1, 3, 9 for 9 epochs,
  eta 3), a promotion continuing its training from the checkpoint;
- ``optuna hyperband``: what an Optuna user writes: ``TPESampler`` with ``HyperbandPruner``
  (min 1, max ``--epochs``, reduction 3), the same training code trained one epoch at a
  time in memory, reporting the validation accuracy after every epoch.

The figure is the wall time until a method's best *full-training* validation accuracy reaches
the best that random search with full training found (its own time to that best is the
reference), and the method's final best within the epoch budget. A method that never reaches
it says so. Writes ``bench/results/early_stopping.md`` and ``.jsonl``.

    python bench/early_stopping.py [--seeds 0 1] [--full-trainings 18] [--epochs 9]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import torch

from engine.fidelity import EpochView, fidelity_epochs
from engine.search import Budget, Search
from engine.spaces import get_space
from engine.strategies import create_strategy
from engine.types import Evaluation, Oracle
from oracles.data import dataset_from_config
from oracles.models import build_model
from oracles.standalone import StandaloneOracle, evaluate_accuracy, job_seed, train_model

RESULTS = Path(__file__).resolve().parent / "results" / "early_stopping"
SPACE = get_space("nb201")


class _Spent(Exception):
    """The epoch budget is used up."""


class Trace:
    """Epochs used and the best full-training validation accuracy over wall time."""

    def __init__(self, total_epochs: int, full: int) -> None:
        self.total, self.full = total_epochs, full
        self.start = time.perf_counter()
        self.epochs = 0
        self.best: float = -math.inf
        self.best_test: float | None = None
        self.points: list[tuple[float, float]] = []  # (seconds, best full val) at every improvement
        self.jobs = self.full_trainings = 0

    def add(self, epochs_trained: int, epochs: int, val: float | None, test: float | None) -> None:
        self.epochs += epochs_trained
        if epochs == self.full and val is not None:
            self.full_trainings += 1
            if val > self.best:
                self.best, self.best_test = val, test
                self.points.append((time.perf_counter() - self.start, val))

    def time_to(self, target: float) -> float | None:
        return next((t for t, v in self.points if v >= target - 1e-12), None)

    def record(self, method: str, seed: int) -> dict[str, Any]:
        return {"method": method, "seed": seed, "best_val": self.best, "test_of_best": self.best_test,
                "jobs": self.jobs, "full_trainings": self.full_trainings, "epochs": self.epochs,
                "wall_seconds": time.perf_counter() - self.start, "points": self.points}


def _oracle(epochs: int, seed: int) -> StandaloneOracle:
    return StandaloneOracle(SPACE, dataset="digits", epochs=epochs, hardware={"latency": False}, seed=seed)


def run_engine(name: str, seed: int, epochs: int, total: int) -> Trace:
    """An engine strategy through the search loop, stopped once ``total`` epochs are trained."""
    opts = {"max_epochs": epochs} if name != "random" else {}
    strategy = create_strategy(name, SPACE, seed=seed, **opts)
    oracle = _oracle(epochs, seed)
    oracles: dict[str, Oracle] = {}
    for fid in strategy.fidelities:
        e = fidelity_epochs(fid)
        oracles[fid] = oracle if e is None else EpochView(oracle, e)
    trace = Trace(total, epochs)

    class Stop:
        def on_evaluations(self, search: Search, evaluations: Sequence[Evaluation]) -> None:
            for ev in evaluations:
                if ev.ok and not ev.cached:
                    trace.jobs += 1
                    trace.add(int(ev.metrics["epochs_trained"]), int(ev.metrics["epochs"]), ev.objective,
                              ev.reported.get("test_acc"))
            if trace.epochs >= total:
                raise _Spent

    try:
        Search(strategy, oracles, Budget(evaluations=100_000), callbacks=[Stop()]).run()
    except _Spent:
        pass
    finally:
        oracle.close()
    return trace


def run_optuna(seed: int, epochs: int, total: int) -> Trace:
    """TPE with Optuna's Hyperband pruner, training in memory one epoch at a time."""
    ds = dataset_from_config("digits")
    like = _oracle(epochs, seed)  # the engine's network options and recipe, so both train the same networks
    recipe, model_options = like.recipe, like.model_options
    like.close()
    names = [d.name for d in SPACE.decisions]
    trace = Trace(total, epochs)
    torch.set_num_threads(1)

    def objective(trial: optuna.Trial) -> float:
        decisions = [trial.suggest_categorical(n, list(range(d.n))) for n, d in zip(names, SPACE.decisions)]
        arch = SPACE.architecture(decisions)
        trace.jobs += 1
        s = job_seed(seed, arch.string)
        with torch.random.fork_rng():
            torch.manual_seed(s)
            model = build_model(SPACE, arch, ds.input_shape, ds.num_classes, **model_options)
        state: dict[str, Any] | None = None

        def keep(st: dict[str, Any]) -> None:
            nonlocal state
            state = st

        val = math.nan
        for e in range(1, epochs + 1):
            train_model(model, ds, recipe, s, torch.device("cpu"), epochs=e, checkpoint=state, on_epoch=keep)
            val, _ = evaluate_accuracy(model, *ds.val)
            test = evaluate_accuracy(model, *ds.test)[0] if e == epochs else None
            trace.add(1, e, val, test)
            if trace.epochs >= total:
                raise _Spent
            trial.report(val, e)
            if e < epochs and trial.should_prune():
                raise optuna.TrialPruned
        return val

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3),
    )
    with contextlib.suppress(_Spent):
        study.optimize(objective, n_trials=100_000, catch=())
    return trace


METHODS: dict[str, Callable[[int, int, int], Trace]] = {
    "random (full)": lambda seed, ep, total: run_engine("random", seed, ep, total),
    "asha": lambda seed, ep, total: run_engine("asha", seed, ep, total),
    "hyperband": lambda seed, ep, total: run_engine("hyperband", seed, ep, total),
    "optuna hyperband": run_optuna,
}


def main() -> None:
    """Run every method per seed and write the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--full-trainings", type=int, default=18, help="epoch budget, in full trainings")
    ap.add_argument("--epochs", type=int, default=9, help="epochs of a full training")
    args = ap.parse_args()
    total = args.full_trainings * args.epochs
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    RESULTS.parent.mkdir(exist_ok=True)
    for seed in args.seeds:
        for method, fn in METHODS.items():
            rec = fn(seed, args.epochs, total).record(method, seed)
            rows.append(rec)
            print(f"seed {seed} {method:17s} best val {rec['best_val']:.4f} after {rec['full_trainings']} full"
                  f" trainings, {rec['jobs']} jobs, {rec['epochs']} epochs, {rec['wall_seconds']:.0f} s", flush=True)
            with open(f"{RESULTS}.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
    write_table(rows, args, total)


def write_table(rows: list[dict[str, Any]], args: argparse.Namespace, total: int) -> None:
    """Markdown: per seed and method, time to random search's best and the final best."""
    lines = [
        "# Early stopping vs full training (`bench/early_stopping.py`)", "",
        f"Default stand-alone task (digits, NB201 C=16 N=2, SGD+cosine), {args.epochs} epochs per full"
        f" training, budget {total} epochs ({args.full_trainings} full trainings) per method, 1 thread,"
        " methods one after the other in one process.",
        f"Command: `python bench/early_stopping.py --seeds {' '.join(map(str, args.seeds))}"
        f" --full-trainings {args.full_trainings} --epochs {args.epochs}`", "",
        "`target` is the best full-training validation accuracy of random search with full training;"
        " `time to target` is when a method's best full-training validation accuracy first reached it"
        " (for random search: when it found it); `speed-up` is random's time over the method's.", "",
        "| seed | method | time to target (s) | speed-up | final best val | its test acc | full trainings | jobs |"
        " wall (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for seed in args.seeds:
        mine = [r for r in rows if r["seed"] == seed]
        ref = next(r for r in mine if r["method"] == "random (full)")
        target = ref["best_val"]
        ref_t = next((t for t, v in ref["points"] if v >= target - 1e-12), None)
        for r in mine:
            t = next((t for t, v in r["points"] if v >= target - 1e-12), None)
            speed = f"{ref_t / t:.2f}x" if t and ref_t else "never reached"
            test = f"{r['test_of_best']:.4f}" if r["test_of_best"] is not None else "-"
            shown = f"{t:.0f}" if t is not None else "-"
            lines.append(f"| {seed} | {r['method']} | {shown} | {speed} | {r['best_val']:.4f} | {test}"
                         f" | {r['full_trainings']} | {r['jobs']} |"
                         f" {r['wall_seconds']:.0f} |")
    Path(f"{RESULTS}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
