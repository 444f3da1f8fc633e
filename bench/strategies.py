"""Every registered strategy, Optuna's TPE and random search on NAS-Bench-201 CIFAR-10.

Each method runs ``S`` seeds x each budget of unique evaluations on the shipped
tabular oracle (the search sees ``val_acc``), picks its best cell by ``val_acc``
and is scored by that cell's ``test_acc``: mean +- std over seeds, in one run, so
the numbers are comparable side by side. Published references (same table):
random 93.58 / 93.76 / 93.86 at 50 / 100 / 200 evaluations.

Engine strategies are driven by :class:`engine.search.Search`, which answers a
repeated architecture from its cache for free, so a budget counts *unique*
architectures; TPE is counted the same way (a repeated suggestion is told its
cached value and not counted). TPE, and every engine strategy that does not
plan with its budget (``Strategy.plans_with_budget``), runs once at the largest
budget and is read at every smaller one; the others run once per budget.

    python bench/strategies.py [--seeds 100] [--budgets 50 100 200] [--strategies random regularized_evolution tpe]
        [--jobs 2]

Every finished seed is appended to ``<out>.jsonl`` at once; a rerun with the same
budgets takes the seeds found there and runs only the rest, so a killed
benchmark loses at most the runs in flight.

Strategies that ask a fidelity other than ``default`` run only with an entry in
:data:`BENCH_SETTINGS` saying which table column answers each fidelity.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.search import Budget, Search
from engine.spaces import NB201_OPS, get_space
from engine.strategies import get_strategy, list_strategies
from engine.types import DEFAULT_FIDELITY

# Per-strategy settings: which table column answers each fidelity (the final
# fidelity's column is the objective the pick is made by), options for the
# strategy, and how many evaluations each non-final fidelity gets per budget unit.
BENCH_SETTINGS: dict[str, dict[str, Any]] = {
    # Strategies whose defaults name metrics of the torch oracles: the table's latency column instead.
    "nsga2": {"options": {"objectives": [{"metric": "val_acc", "direction": "max"},
                                         {"metric": "latency_ms_raspi4", "direction": "min"}],
                          "reference": [80.0, 100.0]}},
    "coordinate_descent": {"options": {"constraint": {"metric": "latency_ms_raspi4", "max": 60.0}}},
    "gap_aware": {
        "fidelities": {"cheap": "oneshot_supernet_acc", "expensive": "val_acc"},
        "cheap_per_budget": 10,
    },
}
PEERS = ("tpe", "tpe_independent", "gp")
"""Optuna's samplers as peers: TPE with its defaults (since Optuna 5.0 multivariate, modelling the edges
jointly, with the constant liar), TPE with independent per-edge models (the default before 5.0), and GPSampler."""
RESULTS = Path(__file__).resolve().parent / "results" / "strategies.md"

_ORACLES: dict[str, Any] = {}


def _oracle(column: str) -> Any:
    """One tabular oracle per objective column per worker process (the table is parsed once)."""
    from oracles.tabular import TabularOracle

    if column not in _ORACLES:
        _ORACLES[column] = TabularOracle(get_space("nb201"), objective=column, metrics=("latency_ms_raspi4",),
                                         reported=("test_acc",))
    return _ORACLES[column]


def runnable(name: str) -> tuple[bool, str]:
    """Whether a registered strategy can run here, and why not."""
    cls = get_strategy(name)
    if tuple(cls.fidelities) == (DEFAULT_FIDELITY,):
        return True, ""
    if name in BENCH_SETTINGS and set(cls.fidelities) <= set(BENCH_SETTINGS[name]["fidelities"]):
        return True, ""
    return False, f"asks fidelities {cls.fidelities}; add a BENCH_SETTINGS entry mapping them to table columns"


def run_engine(name: str, seed: int, budgets: Sequence[int]) -> dict[int, tuple[float, float, int]]:
    """Searches of one seed; per budget: (test_acc of the pick, val_acc of the pick, unique final evaluations).

    A strategy that does not plan with its budget (``plans_with_budget`` is False,
    held by the conformance check ``budget_prefix``) runs once at the largest
    budget and is read at every smaller one: its first ``b`` unique evaluations
    are exactly those of a search with budget ``b``. Others run once per budget.
    """
    cls = get_strategy(name)
    if cls.plans_with_budget:
        return {b: _pick(_search(name, seed, b), cls.final_fidelity, b) for b in budgets}
    history = _search(name, seed, max(budgets))
    return {b: _pick(history, cls.final_fidelity, b) for b in budgets}


def _search(name: str, seed: int, budget: int, warm_start: Sequence[Any] = ()) -> list[Any]:
    """The journal-ordered history of one search (report-only metrics included).

    ``warm_start``: evaluations of an earlier search told first (they open the history).
    """
    cls = get_strategy(name)
    settings = BENCH_SETTINGS.get(name, {})
    space = _oracle("val_acc").space
    strategy = cls(space, seed=seed, **settings.get("options", {}))
    if tuple(cls.fidelities) == (DEFAULT_FIDELITY,):
        oracles = {DEFAULT_FIDELITY: _oracle("val_acc")}
        b = Budget(evaluations=budget)
    else:
        oracles = {f: _oracle(settings["fidelities"][f]) for f in cls.fidelities}
        per = {f: budget if f == cls.final_fidelity else settings.get("cheap_per_budget", 10) * budget
               for f in cls.fidelities}
        b = Budget(evaluations=None, per_fidelity=per, max_stall=50)
    return Search(strategy, oracles, b, warm_start=warm_start).run().history


def _pick(history: Sequence[Any], fidelity: str, budget: int) -> tuple[float, float, int]:
    """Best ``val_acc`` among the first ``budget`` unique evaluations at ``fidelity``: (test, val, count)."""
    seen: set[Any] = set()
    best = None
    for ev in history:
        if ev.fidelity != fidelity or ev.arch in seen:
            continue
        if len(seen) == budget:
            break
        seen.add(ev.arch)
        if ev.ok and (best is None or ev.objective > best.objective):
            best = ev
    if best is None:
        return math.nan, math.nan, 0
    return float(best.reported["test_acc"]), float(best.objective), len(seen)


def _sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "tpe_independent":
        return optuna.samplers.TPESampler(seed=seed, multivariate=False, constant_liar=False)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(f"unknown Optuna peer {name!r}")


def run_optuna(name: str, seed: int, budgets: Sequence[int]) -> dict[int, tuple[float, float, int]]:
    """An Optuna sampler through ask/tell, one categorical per edge; read at each budget of unique cells."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    oracle = _oracle("val_acc")
    space = oracle.space
    study = optuna.create_study(direction="maximize", sampler=_sampler(name, seed))
    seen: dict[tuple[int, ...], tuple[float, float]] = {}
    best: tuple[float, float] | None = None
    out: dict[int, tuple[float, float, int]] = {}
    want = sorted(budgets)
    trials = 0
    while want and trials < 50 * want[-1]:
        trials += 1
        trial = study.ask()
        decisions = [NB201_OPS.index(trial.suggest_categorical(dec.name, list(NB201_OPS)))
                     for dec in space.decisions]
        arch = space.architecture(decisions)
        if arch.decisions not in seen:
            row = oracle.lookup(arch)
            seen[arch.decisions] = (row["val_acc"], row["test_acc"])
            if best is None or row["val_acc"] > best[0]:
                best = (row["val_acc"], row["test_acc"])
        study.tell(trial, seen[arch.decisions][0])
        if best is not None and len(seen) == want[0]:
            out[want.pop(0)] = (best[1], best[0], len(seen))
    for b in want:  # the sampler stopped proposing new cells
        out[b] = (best[1], best[0], len(seen)) if best else (math.nan, math.nan, 0)
    return out


def _task(args: tuple[str, int, tuple[int, ...]]) -> tuple[str, int, dict[int, tuple[float, float, int]], float]:
    method, seed, budgets = args
    start = time.perf_counter()
    res = run_optuna(method, seed, budgets) if method in PEERS else run_engine(method, seed, budgets)
    return method, seed, res, time.perf_counter() - start


def _init_worker() -> None:
    logging.getLogger("engine").setLevel(logging.ERROR)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def _load(
    journal: Path, methods: Sequence[str], budgets: tuple[int, ...], seeds: int
) -> tuple[dict[str, dict[int, dict[int, tuple[float, float, int]]]], dict[str, dict[int, float]]]:
    """Per-seed results already in ``journal`` for these methods and budgets (a killed run resumes)."""
    results: dict[str, dict[int, dict[int, tuple[float, float, int]]]] = {m: {} for m in methods}
    seconds: dict[str, dict[int, float]] = {m: {} for m in methods}
    if not journal.exists():
        return results, seconds
    for line in journal.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        m, s = row.get("method"), row.get("seed")
        if m in results and isinstance(s, int) and s < seeds and tuple(row.get("budgets", ())) == budgets:
            results[m][s] = {int(b): (float(r[0]), float(r[1]), int(r[2])) for b, r in row["results"].items()}
            seconds[m][s] = float(row["seconds"])
    return results, seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="seeds per method and budget")
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 200], help="unique evaluations")
    parser.add_argument("--strategies", nargs="+", default=None,
                        help="registered strategies and/or Optuna peers (tpe, tpe_independent, gp; default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown file for the results table")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1 or min(args.budgets) < 1:
        parser.error("--seeds, --jobs and --budgets must be positive")

    known = list_strategies()
    methods: list[str] = []
    skipped: dict[str, str] = {}
    for name in args.strategies or [*known, *PEERS]:
        if name in PEERS:
            methods.append(name)
        elif name not in known:
            parser.error(f"unknown strategy {name!r}; available: {', '.join([*known, *PEERS])}")
        else:
            ok, why = runnable(name)
            if ok:
                methods.append(name)
            else:
                skipped[name] = why
    for name, why in skipped.items():
        print(f"skipping {name}: {why}", file=sys.stderr)

    budgets = tuple(sorted(set(args.budgets)))
    journal = args.out.with_suffix(".jsonl")
    results, seconds = _load(journal, methods, budgets, args.seeds)
    tasks = [(m, s, budgets) for m in methods for s in range(args.seeds) if s not in seconds[m]]
    if len(tasks) < len(methods) * args.seeds:
        print(f"resuming: {len(methods) * args.seeds - len(tasks)} runs taken from {journal}", file=sys.stderr)
    start = time.perf_counter()
    ctx = mp.get_context("fork" if sys.platform != "win32" else "spawn")
    journal.parent.mkdir(parents=True, exist_ok=True)
    with ctx.Pool(args.jobs, initializer=_init_worker) as pool, journal.open("a") as fh:
        for done, (method, seed, res, secs) in enumerate(pool.imap_unordered(_task, tasks, chunksize=4), 1):
            results[method][seed] = res
            seconds[method][seed] = secs
            fh.write(json.dumps({"method": method, "seed": seed, "budgets": list(budgets), "seconds": secs,
                                 "results": {str(b): list(r) for b, r in res.items()}}) + "\n")
            fh.flush()
            if done % max(1, len(tasks) // 20) == 0 or done == len(tasks):
                print(f"  {done}/{len(tasks)} runs, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    header = ("| method | " + " | ".join(f"test_acc @ {b}" for b in budgets)
              + " | unique evals @ max | CPU s / seed |")
    lines = [
        f"# Strategies on NAS-Bench-201 CIFAR-10 ({args.seeds} seeds)",
        "",
        "Pick = best `val_acc` among the evaluated cells; score = its `test_acc` (%), mean +- std over seeds.",
        "Budgets count unique architectures: the engine's search loop answers repeats from its cache for free,",
        "and TPE's repeated suggestions are told their cached value without being counted. TPE and strategies",
        "that do not plan with their budget are read at every budget from one run of the largest (the",
        "conformance check `budget_prefix` holds them to it); the others run once per budget.",
        "Reference (same table): random 93.58 / 93.76 / 93.86 at 50 / 100 / 200.",
        f"The standard error of a mean is std / sqrt({args.seeds}), e.g. 0.25 / {math.sqrt(args.seeds):.0f}"
        f" = {0.25 / math.sqrt(args.seeds):.3f}: smaller differences are ties.",
        "",
        header,
        "|" + "---|" * (len(budgets) + 3),
    ]
    for m in methods:
        runs = list(results[m].values())
        cells = []
        for b in budgets:
            acc = np.array([r[b][0] for r in runs], dtype=float)
            cells.append(f"{np.nanmean(acc):.2f} +- {np.nanstd(acc):.2f}")
        uniq = np.mean([r[budgets[-1]][2] for r in runs])
        cpu = np.mean(list(seconds[m].values()))
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {uniq:.1f} | {cpu:.2f} |")
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"`{k}` ({v})" for k, v in skipped.items())]
    lines += ["", f"Wall time {time.perf_counter() - start:.0f} s with {args.jobs} worker processes"
              f" (runs taken from an earlier, interrupted invocation not included); per-seed results in"
              f" `{journal.name}`."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
