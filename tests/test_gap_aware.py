"""gap_aware: measures the agreement of the cheap fidelity online and trusts it no further."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from engine.cli import config_dir
from engine.runner import run_search
from engine.search import Budget, Search
from engine.spaces import get_space
from engine.strategies import create_strategy


def _search(cheap_column: str, seed: int = 0, expensive: int = 20):  # type: ignore[no-untyped-def]
    from oracles.tabular import TabularOracle

    space = get_space("nb201")
    strategy = create_strategy("gap_aware", space, seed=seed, pool_size=1500, steps=60)
    oracles = {
        "cheap": TabularOracle(space, objective=cheap_column, metrics=[]),
        "expensive": TabularOracle(space, objective="val_acc"),
    }
    result = Search(strategy, oracles, Budget(evaluations=None, per_fidelity={"expensive": expensive})).run()
    return strategy, result


def test_a_misleading_supernet_is_detected_and_not_followed() -> None:
    strategy, result = _search("oneshot_supernet_acc")
    rep = strategy.report()
    assert result.per_fidelity["expensive"] == 20 and result.per_fidelity["cheap"] >= 1500
    # Among its own top picks the supernet disagrees with stand-alone accuracy: the filter stays loose.
    assert rep["tau_top"] is not None and rep["tau_top"] < 0.3
    assert rep["pool_fraction_kept"] > 0.7
    # Only the n_top probes come from the supernet's top; the rest of the escalations do not.
    cheap = {e.arch: e.objective for e in result.history if e.fidelity == "cheap"}
    top20 = sorted(cheap, key=lambda a: -cheap[a])[:20]
    escalated = [e.arch for e in result.history if e.fidelity == "expensive"]
    assert len(set(escalated) & set(top20)) <= 6
    # And it ends better than escalating the supernet's top 20 would have.
    from oracles.tabular import TabularOracle

    naive = max(TabularOracle(get_space("nb201")).lookup(a)["val_acc"] for a in top20)
    assert result.best is not None and result.best.objective > naive + 1.0


def test_a_faithful_cheap_fidelity_is_trusted() -> None:
    strategy, result = _search("val_acc")
    rep = strategy.report()
    assert rep["tau_all"] > 0.9 and rep["pool_fraction_kept"] < 0.2
    assert rep["cheap_score_in_surrogate"] is True
    assert result.best is not None and result.best.objective > 91.0


def test_table_config_just_works(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="config", overrides=[
            "strategy=gap_aware", "tracker=none", "strategy.pool_size=300", "strategy.steps=30",
            "budget.per_fidelity.expensive=12",
        ])
    summary = run_search(cfg, tmp_path)
    # The pool, plus candidates from outside it (neighbours of the best) scored cheaply before escalation.
    assert summary["per_fidelity"]["expensive"] == 12 and summary["per_fidelity"]["cheap"] >= 300
    assert summary["stop_reason"] in ("per_fidelity", "strategy finished")
    assert summary["best"]["fidelity"] == "expensive"
    assert "val_acc" in summary["best"]["metrics"]
    assert summary["gap_aware"]["escalated"] == 12
