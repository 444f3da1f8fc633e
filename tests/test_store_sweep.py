"""A sweep through the real CLI sharing one evaluation store (``cache.path=``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_sweeps import run_cli

# The table behind a tracing wrapper: every real oracle call leaves a line `<pid>\t<arch>`;
# 0.05 s per evaluation so that two joblib workers overlap in time.
_ORACLE = ["oracle=faulty", "oracle.seed=0", "oracle.delay_seconds=0.05"]
_SWEEP = ["-m", "strategy=random,regularized_evolution,local_search", "seed=0,1", "budget.evaluations=8",
          "progress=none", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def _journals(sweep: Path) -> dict[tuple[str, int], list[tuple[Any, ...]]]:
    out = {}
    for job in sorted(p for p in sweep.iterdir() if p.is_dir() and (p / "summary.json").exists()):
        summary = json.loads((job / "summary.json").read_text())
        db = sqlite3.connect(job / "journal.sqlite")
        try:
            rows = db.execute("SELECT arch, fidelity, status, objective, metrics, reported FROM evaluations"
                              " ORDER BY id").fetchall()
        finally:
            db.close()
        out[(summary["strategy"], summary["seed"])] = rows
    return out


@pytest.mark.slow
def test_a_shared_store_evaluates_each_architecture_once_with_the_unshared_results(tmp_path: Path) -> None:
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    run_cli([*_SWEEP, *_ORACLE, f"oracle.trace={tmp_path / 'alone.trace'}", f"hydra.sweep.dir={alone}"],
            cwd=tmp_path)
    store = tmp_path / "store.sqlite"
    run_cli([*_SWEEP, *_ORACLE, f"oracle.trace={tmp_path / 'shared.trace'}", f"cache.path={store}",
             f"hydra.sweep.dir={shared}"], cwd=tmp_path)
    expected, got = _journals(alone), _journals(shared)
    assert len(expected) == 6 and got == expected  # every job journaled exactly what it does alone
    calls = [line.split("\t")[1] for line in (tmp_path / "shared.trace").read_text().splitlines()]
    distinct = {row[0] for rows in got.values() for row in rows}
    assert len(calls) == len(set(calls)) == len(distinct)  # each distinct architecture evaluated once
    unshared = (tmp_path / "alone.trace").read_text().splitlines()
    assert len(unshared) == 6 * 8 > len(calls)  # the jobs do overlap: without the store they repeat
    summaries = [json.loads(p.read_text()) for p in shared.glob("*/summary.json")]
    assert sum(s["cache"]["evaluated"] for s in summaries) == len(calls)
    assert sum(s["cache"]["hits"] for s in summaries) == 6 * 8 - len(calls)
    db = sqlite3.connect(store)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def test_an_oracle_seeded_by_the_run_does_not_share_unless_told(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hydra import compose, initialize_config_dir

    from engine.cli import config_dir
    from engine.runner import format_summary, run_search

    store = tmp_path / "store.sqlite"

    def run(name: str, *overrides: str) -> dict[str, Any]:
        with initialize_config_dir(config_dir=config_dir(), version_base=None):
            cfg = compose("config", overrides=["oracle=faulty", "budget.evaluations=3", "progress=none",
                                               f"cache.path={store}", *overrides])
        return run_search(cfg, tmp_path / name)

    alone = run("a")
    assert "oracle takes the run's seed (oracle.seed is null), so its results are not shared" in caplog.text
    assert "not used: no oracle of this run gives results it may share" in format_summary(alone)
    assert run("b", "cache.seed_in_key=true")["cache"]["hits"] == 0
    assert run("c", "cache.seed_in_key=true", "seed=1")["cache"]["hits"] == 0  # seed 1 is another key
    assert run("d", "cache.seed_in_key=true")["cache"]["hits"] == 3  # seed 0 again: all from the store


@pytest.mark.parametrize(
    ("override", "message"),
    [("cache.lease_seconds=-1", "cache.lease_seconds must be a positive number"),
     ("cache.seed_in_key=maybe", "cache.seed_in_key must be true or false"),
     ("+cache.where=here", "unknown cache key")],
)
def test_bad_cache_options_are_refused_naming_the_key(tmp_path: Path, override: str, message: str) -> None:
    from hydra import compose, initialize_config_dir

    from engine.cli import config_dir
    from engine.runner import ConfigError, run_search

    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose("config", overrides=["budget.evaluations=2", "progress=none", override])
    with pytest.raises(ConfigError, match=message):
        run_search(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "journal.sqlite").exists()
