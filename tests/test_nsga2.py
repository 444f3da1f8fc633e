"""NSGA-II: objectives from config, a true Pareto front and its hypervolume in summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from engine.cli import config_dir
from engine.runner import run_search
from engine.spaces import get_space
from engine.strategies import Strategy, create_strategy
from engine.strategies._nsga2 import default_reference, hypervolume, pareto_front
from engine.testing import ToyOracle
from engine.types import Evaluation


def _hv2d(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Hypervolume of (max, min) points by a sweep, written independently of DEAP."""
    pts = sorted((p for p in points if p[0] > ref[0] and p[1] < ref[1]), key=lambda p: p[1])
    area, best_acc = 0.0, ref[0]
    for i, (acc, lat) in enumerate(pts):
        best_acc = max(best_acc, acc)
        nxt = pts[i + 1][1] if i + 1 < len(pts) else ref[1]
        area += (best_acc - ref[0]) * (nxt - lat)
    return area


def test_hypervolume_matches_an_independent_sweep() -> None:
    rng = np.random.default_rng(0)
    points = [(float(a), float(b)) for a, b in zip(rng.uniform(70, 95, 40), rng.uniform(1, 120, 40))]
    ref = (80.0, 100.0)
    assert hypervolume(points, (1.0, -1.0), ref) == pytest.approx(_hv2d(points, ref))
    assert hypervolume([(79.0, 5.0)], (1.0, -1.0), ref) == 0.0  # worse than the reference: nothing


def test_pareto_front_is_exactly_the_non_dominated_points() -> None:
    rng = np.random.default_rng(1)
    points = [tuple(map(float, p)) for p in rng.integers(0, 8, size=(60, 2))]
    front = set(pareto_front(points, (1.0, -1.0)))
    for i, (a, b) in enumerate(points):
        dominated = any(x >= a and y <= b and (x, y) != (a, b) for x, y in points)
        assert (i in front) == (not dominated)


def test_search_summary_carries_front_and_hypervolume(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(
            config_name="config",
            overrides=["strategy=nsga2", "oracle=tabular", "space=nb201", "budget.evaluations=60", "seed=3",
                       "tracker=none"],
        )
    summary = run_search(cfg, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["nsga2"] == summary["nsga2"]
    rep = summary["nsga2"]
    assert [o["metric"] for o in rep["objectives"]] == ["val_acc", "latency_ms_raspi4"]
    front = [(p["val_acc"], p["latency_ms_raspi4"]) for p in rep["pareto_front"]]
    assert front and rep["hypervolume"] == pytest.approx(_hv2d(front, tuple(rep["reference"])))
    assert rep["hypervolume"] > 0
    # Every front member is a real evaluated cell with the table's values.
    from oracles.tabular import TabularOracle

    space = get_space("nb201")
    table = TabularOracle(space, metrics=["latency_ms_raspi4"])
    for p in rep["pareto_front"]:
        row = table.lookup(space.parse(p["arch"]))
        assert (row["val_acc"], row["latency_ms_raspi4"]) == (p["val_acc"], p["latency_ms_raspi4"])


def _drive(strategy: Strategy, oracle: ToyOracle, n: int) -> None:
    while len(strategy.history) < n:
        qs = strategy.ask(1)
        strategy.tell(oracle.evaluate([q.arch for q in qs]))


def test_front_improves_on_random_under_the_toy_tradeoff() -> None:
    space = get_space("nb201")
    objectives = [{"metric": "objective", "direction": "max"}, {"metric": "params", "direction": "min"}]
    hv: dict[str, list[float]] = {"nsga2": [], "random": []}
    for seed in range(6):
        oracle = ToyOracle(space, seed=seed)
        for name in hv:
            opts = {"objectives": objectives} if name == "nsga2" else {}
            s = create_strategy(name, space, seed=seed, **opts)
            _drive(s, oracle, 80)
            pts = [(e.objective, e.metrics["params"]) for e in s.history]
            hv[name].append(hypervolume(pts, (1.0, -1.0), (40.0, 6.0)))
    assert np.mean(hv["nsga2"]) > np.mean(hv["random"])


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"objectives": []}, "strategy.objectives"),
        ({"objectives": [{"metric": "val_acc", "direction": "up"}]}, r"objectives\[0\]\.direction"),
        ({"objectives": [{"metric": "a", "direction": "max"}, {"metric": "a", "direction": "min"}]}, "twice"),
        ({"reference": [1.0]}, "strategy.reference"),
        ({"population": 1}, "strategy.population"),
        ({"crossover_prob": 2.0}, "strategy.crossover_prob"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        create_strategy("nsga2", get_space("nb201"), **options)


def test_missing_metric_is_a_clear_error() -> None:
    space = get_space("chain")
    s = create_strategy("nsga2", space, objectives=[{"metric": "val_acc", "direction": "max"},
                                                    {"metric": "energy_mj", "direction": "min"}])
    q = s.ask(1)[0]
    with pytest.raises(ValueError, match="energy_mj"):
        s.tell([Evaluation(arch=q.arch, objective=1.0, metrics={"val_acc": 1.0})])


def test_a_metric_list_uses_the_first_name_the_oracle_reports() -> None:
    space = get_space("chain")
    oracle = ToyOracle(space)
    s = create_strategy("nsga2", space, seed=0, objectives=[
        {"metric": "objective", "direction": "max"},
        {"metric": ["latency_ms_raspi4", "latency_ms"], "direction": "min"}])
    _drive(s, oracle, 25)
    rep = s.report()
    assert [o["metric"] for o in rep["objectives"]] == ["objective", "latency_ms"]
    lat = {e.arch.string: e.metrics["latency_ms"] for e in s.history}
    assert all(p["latency_ms"] == lat[p["arch"]] for p in rep["pareto_front"])


def test_default_reference_is_the_worst_value_pushed_out_by_a_tenth_of_the_range() -> None:
    points = [(90.0, 1.0), (80.0, 11.0), (85.0, 4.0), (70.0, float("nan"))]  # a non-finite point is ignored
    assert default_reference(points, (1.0, -1.0)) == pytest.approx((79.0, 12.0))
    assert default_reference([(0.5, 3.0)], (1.0, -1.0)) == pytest.approx((0.45, 3.3))  # one point: 10% of it
    assert default_reference([(0.0, 0.0)], (1.0, -1.0)) == pytest.approx((-0.1, 0.1))
    assert default_reference([], (1.0, -1.0)) is None


def test_without_a_reference_the_summary_names_one_on_the_datas_scale(tmp_path: Path) -> None:
    """The latency table spans a few ms: a fixed (80, 100) would dwarf it; the derived reference follows the data."""
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(
            config_name="config",
            overrides=["strategy=nsga2", "oracle=tabular", "space=nb201", "budget.evaluations=40", "seed=1",
                       "tracker=none", "strategy.reference=null"],
        )
    rep = run_search(cfg, tmp_path)["nsga2"]
    assert json.loads((tmp_path / "summary.json").read_text())["nsga2"]["reference"] == rep["reference"]
    assert rep["reference_source"].startswith("derived")
    from engine.journal import Journal

    with Journal(tmp_path / "journal.sqlite") as j:
        seen = [(e.metrics["val_acc"], e.metrics["latency_ms_raspi4"]) for _, e in j.evaluations() if e.ok]
    acc, lat = zip(*seen)
    ref_acc, ref_lat = rep["reference"]
    assert ref_acc == pytest.approx(min(acc) - 0.1 * (max(acc) - min(acc)))
    assert ref_lat == pytest.approx(max(lat) + 0.1 * (max(lat) - min(lat)))
    front = [(p["val_acc"], p["latency_ms_raspi4"]) for p in rep["pareto_front"]]
    assert rep["hypervolume"] == pytest.approx(_hv2d(front, (ref_acc, ref_lat))) and rep["hypervolume"] > 0


def test_an_explicit_reference_is_kept_and_named() -> None:
    space = get_space("nb201")
    objectives = [{"metric": "objective", "direction": "max"}, {"metric": "params", "direction": "min"}]
    s = create_strategy("nsga2", space, seed=0, objectives=objectives, reference=[40, 6])
    _drive(s, ToyOracle(space, seed=0), 20)
    rep = s.report()
    assert rep["reference"] == [40.0, 6.0] and rep["reference_source"] == "strategy.reference"
    pts = [(e.objective, e.metrics["params"]) for e in s.history]
    assert rep["hypervolume"] == pytest.approx(hypervolume(pts, (1.0, -1.0), (40.0, 6.0)))
