"""Coordinate descent: multi-decision moves, NetAdaptV2 shrinking, steps that keep the constraint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from engine.cli import config_dir
from engine.runner import run_search
from engine.spaces import get_space
from engine.strategies import Strategy, create_strategy
from engine.testing import ToyOracle
from engine.types import Evaluation
from oracles.tabular import TabularOracle


def _drive(strategy: Strategy, oracle: object, n: int) -> list[tuple]:
    """Ask/tell ``n`` evaluations; the incumbent after each."""
    trace = []
    while len(strategy.history) < n:
        qs = strategy.ask(1)
        strategy.tell(oracle.evaluate([q.arch for q in qs]))  # type: ignore[attr-defined]
        trace.append(strategy.incumbent)  # type: ignore[attr-defined]
    return trace


def test_proposals_change_several_decisions_of_the_incumbent() -> None:
    space = get_space("nb201")
    s = create_strategy("coordinate_descent", space, seed=0, changes=3, samples=6, constraint=None)
    oracle = ToyOracle(space)
    _drive(s, oracle, 1)
    base = s.incumbent[0]  # type: ignore[attr-defined]
    proposals = [q.arch for q in s.ask(6)]
    assert len(proposals) == 6 and len(set(proposals)) == 6
    for arch in proposals:
        assert 1 <= sum(a != b for a, b in zip(arch.decisions, base.decisions)) <= 3


def test_shrinks_from_the_largest_network_until_feasible_then_keeps_the_constraint() -> None:
    space = get_space("chain")
    oracle = ToyOracle(space, seed=2)
    s = create_strategy("coordinate_descent", space, seed=1, start="largest", patience=1000,
                        constraint={"metric": "latency_ms", "max": 8.0})
    first = s.ask(1)[0].arch
    assert first.decisions == tuple(d.n - 1 for d in space.decisions)
    s.tell(oracle.evaluate([first]))
    trace = [s.incumbent]  # type: ignore[attr-defined]
    trace += _drive(s, oracle, 120)
    costs = [inc[2] for inc in trace if inc is not None]
    assert costs[0] > 8.0  # the largest network violates the constraint
    infeasible = [c for c in costs if c > 8.0]
    assert infeasible == sorted(infeasible, reverse=True)  # every shrinking step saves cost
    k = next(i for i, c in enumerate(costs) if c <= 8.0)
    assert all(c <= 8.0 for c in costs[k:])  # once feasible, no step leaves the feasible set
    report = s.report()
    assert report["best_feasible"]["cost"] <= 8.0


def test_beats_random_under_a_tight_latency_budget_on_nb201() -> None:
    space = get_space("nb201")
    oracle = TabularOracle(space, metrics=["latency_ms_raspi4"])
    constraint = {"metric": "latency_ms_raspi4", "max": 20.0}
    best: dict[str, list[float]] = {"coordinate_descent": [], "random": []}
    for seed in range(30):
        for name in best:
            opts = {"constraint": constraint} if name == "coordinate_descent" else {}
            s = create_strategy(name, space, seed=seed, **opts)
            while len(s.history) < 60:
                s.tell(oracle.evaluate([q.arch for q in s.ask(1)]))
            feasible = [e.objective for e in s.history if e.ok and e.metrics["latency_ms_raspi4"] <= 20.0]
            best[name].append(max(feasible))
    assert np.mean(best["coordinate_descent"]) > np.mean(best["random"])


def test_cli_summary_reports_the_best_feasible_architecture(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="config", overrides=[
            "strategy=coordinate_descent", "space=nb201", "oracle=tabular", "budget.evaluations=40",
            "strategy.constraint.max=25", "tracker=none"])
    summary = run_search(cfg, tmp_path)
    rep = summary["coordinate_descent"]
    assert rep["constraint"]["max"] == 25.0
    assert rep["best_feasible"]["cost"] <= 25.0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"start": "not-an-arch"}, "strategy.start"),
        ({"constraint": {"metric": "latency_ms"}}, "strategy.constraint"),
        ({"constraint": {"metric": "latency_ms", "max": "fast"}}, r"strategy.constraint.max"),
        ({"samples": 0}, "strategy.samples"),
        ({"changes": 1.5}, "strategy.changes"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        create_strategy("coordinate_descent", get_space("nb201"), **options)


def test_missing_constraint_metric_is_a_clear_error() -> None:
    space = get_space("nb201")
    s = create_strategy("coordinate_descent", space, constraint={"metric": "energy_mj", "max": 1.0})
    q = s.ask(1)[0]
    with pytest.raises(ValueError, match="energy_mj"):
        s.tell([Evaluation(arch=q.arch, objective=1.0, metrics={"latency_ms": 3.0})])
