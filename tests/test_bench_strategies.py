"""bench/strategies.py reads one long run at every smaller budget only where that is exact."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_strategies", ROOT / "bench" / "strategies.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["local_search", "regularized_evolution"])
def test_prefix_reading_equals_separate_runs_at_each_budget(name: str) -> None:
    bench = _bench()
    read = bench.run_engine(name, seed=3, budgets=(15, 40))
    for budget in (15, 40):
        alone = bench._pick(bench._search(name, 3, budget), "default", budget)
        assert read[budget] == alone
        assert read[budget][2] == budget


def test_pick_counts_unique_architectures_and_keeps_the_best_by_validation() -> None:
    bench = _bench()
    history = bench._search("random", 0, 30)
    test, val, count = bench._pick(history, "default", 10)
    first = [e for e in history if e.ok][:10]
    assert count == 10
    assert val == max(e.objective for e in first)
    assert test == next(e.reported["test_acc"] for e in first if e.objective == val)


def _committed(method: str, seed: int) -> tuple[dict[str, list[float]], list[int]]:
    """The committed result of ``method`` and ``seed`` (per budget) and its budgets."""
    import json

    for line in (ROOT / "bench" / "results" / "strategies.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["method"] == method and row["seed"] == seed:
            return dict(row["results"]), list(row["budgets"])
    raise AssertionError(f"bench/results/strategies.jsonl has no row for {method} seed {seed}")


@pytest.mark.parametrize(("method", "seed"), [("random", 5), ("regularized_evolution", 0), ("local_search", 1),
                                              ("nsga2", 2), ("manas", 0), ("coordinate_descent", 3), ("tpe", 1)])
def test_committed_rows_reproduce_seed_for_seed(method: str, seed: int) -> None:
    """The table in bench/results is what the committed code produces (cheap methods; smbo is rerun by hand)."""
    bench = _bench()
    results, budgets = _committed(method, seed)
    got = bench.run_optuna(method, seed, budgets) if method in bench.PEERS else bench.run_engine(method, seed, budgets)
    assert {str(b): list(r) for b, r in got.items()} == results
