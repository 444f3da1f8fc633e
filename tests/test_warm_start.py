"""Warm start: a new search begins from the evaluations of earlier ones (``warm_start=RUN_DIR``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from engine.cli import config_dir
from engine.journal import Journal, read_journal
from engine.runner import ConfigError, run_search
from engine.search import Budget, Search
from engine.spaces import get_space
from engine.strategies import get_strategy
from engine.testing import ToyOracle


@pytest.fixture(scope="module")
def hydra_ctx() -> Iterator[None]:
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        yield


def _cfg(*overrides: str) -> DictConfig:
    return compose(config_name="config", overrides=["progress=none", *overrides])


def _rows(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT arch, fidelity, objective, cached FROM evaluations ORDER BY id").fetchall()
    finally:
        db.close()


def test_a_warm_started_run_begins_with_the_earlier_results_and_never_measures_them_again(
    hydra_ctx: None, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    run_search(_cfg("strategy=random", "budget.evaluations=15", "seed=4"), first)
    earlier = _rows(first / "journal.sqlite")
    second = tmp_path / "second"
    summary = run_search(_cfg("budget.evaluations=10", "seed=0", f"warm_start={first}"), second)
    rows = _rows(second / "journal.sqlite")
    assert [r[:3] for r in rows[:15]] == [r[:3] for r in earlier] and all(r[3] == 1 for r in rows[:15])
    own = rows[15:]
    assert len(own) == 10 and summary["evaluations"] == 10  # the warm start costs no budget
    assert not {r[0] for r in own if not r[3]} & {r[0] for r in earlier}  # nothing measured twice
    meta, _ = read_journal(second / "journal.sqlite")
    assert meta["warm_start"]["evaluations"] == 15
    assert meta["warm_start"]["sources"][0]["path"] == str((first / "journal.sqlite").resolve())
    best_known = max(r[2] for r in rows)
    assert summary["best"]["objective"] == best_known
    assert summary["warm_start"]["evaluations"] == 15
    assert summary["warm_start"]["best_is_warm_start"] == (best_known == max(r[2] for r in earlier)
                                                           and best_known > max(r[2] for r in own))


def test_a_warm_started_run_resumes_without_naming_its_sources_again(hydra_ctx: None, tmp_path: Path) -> None:
    first = tmp_path / "first"
    run_search(_cfg("strategy=random", "budget.evaluations=12"), first)
    once = tmp_path / "once"
    run_search(_cfg("budget.evaluations=20", f"warm_start={first}"), once)
    twice = tmp_path / "twice"
    run_search(_cfg("budget.evaluations=8", f"warm_start={first}"), twice)
    extended = run_search(_cfg("budget.evaluations=20", "resume=true"), twice)
    assert _rows(twice / "journal.sqlite") == _rows(once / "journal.sqlite")
    assert extended["warm_start"]["sources"] == [str(first)]
    with pytest.raises(ConfigError, match="config differs in warm_start"):
        run_search(_cfg("budget.evaluations=30", "resume=true", f"warm_start=[{first},{once}]"), twice)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("oracle.objective=test_acc oracle.reported=[]", "measured something else: oracle.objective"),
        ("oracle.metrics=[latency_ms_raspi4]", "measured something else: oracle.metrics"),
    ],
)
def test_a_source_that_measured_something_else_is_refused_and_nothing_is_written(
    hydra_ctx: None, tmp_path: Path, override: str, message: str
) -> None:
    first = tmp_path / "first"
    run_search(_cfg("strategy=random", "budget.evaluations=5"), first)
    before = (first / "journal.sqlite").read_bytes()
    target = tmp_path / "new"
    cfg = _cfg("budget.evaluations=5", *override.split(), f"warm_start={first}")
    with pytest.raises(ConfigError, match=message):
        run_search(cfg, target)
    assert not (target / "journal.sqlite").exists() and not (target / "summary.json").exists()
    assert (first / "journal.sqlite").read_bytes() == before


def test_a_missing_source_is_refused_naming_it(hydra_ctx: None, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"warm_start: there is no journal at .*nowhere"):
        run_search(_cfg("budget.evaluations=5", f"warm_start={tmp_path / 'nowhere'}"), tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_a_running_search_can_be_a_source(hydra_ctx: None, tmp_path: Path) -> None:
    """The source's lock is not taken: a search still running (holding its journal) can be read."""
    first = tmp_path / "first"
    run_search(_cfg("strategy=random", "budget.evaluations=6"), first)
    with Journal(first / "journal.sqlite"):  # as a running search holds it
        summary = run_search(_cfg("budget.evaluations=4", f"warm_start={first}"), tmp_path / "new")
    assert summary["warm_start"]["evaluations"] == 6


class _KilledAtFirstSnapshot(Journal):
    def save_state(self, state: Mapping[str, Any], last_evaluation: int) -> None:
        raise KeyboardInterrupt


def test_killed_between_journaling_the_warm_start_and_its_snapshot_the_search_tells_it_again(
    tmp_path: Path,
) -> None:
    space = get_space("nb201")
    cls = get_strategy("regularized_evolution")
    rng = np.random.default_rng(3)
    warm = ToyOracle(space, seed=1).evaluate([space.sample(rng) for _ in range(12)])

    def search(path: Path, journal_cls: type[Journal] = Journal) -> Search:
        return Search(cls(space, seed=2), ToyOracle(space, seed=1), Budget(evaluations=10),
                      journal=journal_cls(path), warm_start=warm)

    ref = search(tmp_path / "ref.sqlite")
    ref.run()
    ref.journal.close()  # type: ignore[union-attr]
    killed = search(tmp_path / "killed.sqlite", _KilledAtFirstSnapshot)
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    killed.journal.close()  # type: ignore[union-attr]
    assert len(_rows(tmp_path / "killed.sqlite")) == 12  # the warm rows are there, no snapshot
    again = Search(cls(space, seed=2), ToyOracle(space, seed=1), Budget(evaluations=10),
                   journal=Journal(tmp_path / "killed.sqlite"))  # resumed: the warm start is in the journal
    result = again.run()
    again.journal.close()  # type: ignore[union-attr]
    assert result.warm_started == 12 and result.evaluations == 10
    assert _rows(tmp_path / "killed.sqlite") == _rows(tmp_path / "ref.sqlite")


def test_warm_start_refuses_what_the_strategy_cannot_use() -> None:
    space = get_space("nb201")
    strategy = get_strategy("random")(space, seed=0)
    other = get_space("chain")
    alien = ToyOracle(other, seed=0).evaluate([other.sample(np.random.default_rng(0))])
    with pytest.raises(ValueError, match="not in space"):
        strategy.warm_start(alien)
    ev = ToyOracle(space, seed=0).evaluate([space.sample(np.random.default_rng(0))])[0]
    from dataclasses import replace

    with pytest.raises(ValueError, match="fidelity 'cheap'"):
        strategy.warm_start([replace(ev, fidelity="cheap")])
    assert strategy.history == []  # nothing was told
    strategy.warm_start([ev])
    strategy.warm_start([])  # several sources: allowed until the first ask
    assert strategy.was_asked(ev.arch) and strategy.history == [ev.visible()]
    strategy.ask(1)
    with pytest.raises(ValueError, match="before the first ask"):
        strategy.warm_start([ev])


def test_summary_says_when_the_best_comes_from_the_warm_start(hydra_ctx: None, tmp_path: Path) -> None:
    first = tmp_path / "first"
    run_search(_cfg("strategy=random", "budget.evaluations=200", "seed=1"), first)
    summary = run_search(_cfg("strategy=random", "budget.evaluations=1", f"warm_start={first}"), tmp_path / "new")
    assert summary["warm_start"]["best_is_warm_start"]
    on_disk = json.loads((tmp_path / "new" / "summary.json").read_text())
    assert on_disk["best"]["arch"] in {r[0] for r in _rows(first / "journal.sqlite")}
    from engine.runner import format_summary

    assert "the best is one of them" in format_summary(summary)
