"""Resume with a larger budget, and journals written by an earlier release (issue 14, items 1 and upgrade).

The fixture ``tests/fixtures/journal_2026-12-03/journal.sqlite`` was written by ``nas-search
strategy=regularized_evolution budget.evaluations=6 seed=3`` on the main branch of that day and is
kept as it was: each later release must still resume it. If a release changes a default that
decides what the search measures, the resume is refused (as it should be) and this test says which
key; the fixture is then rewritten by that release and the change named in its notes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from kill_resume import journal_rows

from engine.runner import ConfigError, resume_differences, run_search

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "journal_2026-12-03" / "journal.sqlite"
FIXTURE_OVERRIDES = ("strategy=regularized_evolution", "seed=3")


def _stored_config(journal: Path) -> dict:
    db = sqlite3.connect(journal)
    try:
        return json.loads(db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
    finally:
        db.close()


def _rewrite_config(journal: Path, config: dict) -> None:
    db = sqlite3.connect(journal)
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
    db.close()


def test_a_finished_run_given_more_budget_equals_one_run_with_it(make_cfg, tmp_path: Path) -> None:
    run_search(make_cfg("budget.evaluations=10", "seed=1"), tmp_path / "extended")
    summary = run_search(make_cfg("budget.evaluations=20", "seed=1", "resume=true"), tmp_path / "extended")
    run_search(make_cfg("budget.evaluations=20", "seed=1"), tmp_path / "once")
    extended = journal_rows(tmp_path / "extended" / "journal.sqlite")
    once = journal_rows(tmp_path / "once" / "journal.sqlite")
    assert len(extended) == 20 and extended == once
    assert summary["evaluations"] == 20
    assert _stored_config(tmp_path / "extended" / "journal.sqlite")["budget"]["evaluations"] == 20  # the latest budget


def test_a_changed_strategy_option_is_refused_naming_it_and_changes_nothing(make_cfg, tmp_path: Path) -> None:
    run_search(make_cfg("budget.evaluations=4"), tmp_path)
    journal = tmp_path / "journal.sqlite"
    rows, config = journal_rows(journal), _stored_config(journal)
    with pytest.raises(ConfigError, match=r"differs in strategy\.population \(10 -> 12\)") as err:
        run_search(make_cfg("budget.evaluations=8", "resume=true", "strategy.population=12"), tmp_path)
    assert "\n" not in str(err.value)
    assert journal_rows(journal) == rows and _stored_config(journal) == config


def test_the_journal_of_an_earlier_release_resumes_and_extends(make_cfg, tmp_path: Path) -> None:
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    shutil.copy(FIXTURE, run_dir / "journal.sqlite")
    before = journal_rows(run_dir / "journal.sqlite")
    assert len(before) == 6
    summary = run_search(make_cfg(*FIXTURE_OVERRIDES, "budget.evaluations=12", "resume=true"), run_dir)
    run_search(make_cfg(*FIXTURE_OVERRIDES, "budget.evaluations=12"), tmp_path / "once")
    after = journal_rows(run_dir / "journal.sqlite")
    assert after[:6] == before and summary["evaluations"] == 12
    assert after == journal_rows(tmp_path / "once" / "journal.sqlite")


def test_a_key_added_after_the_journal_counts_as_unchanged_unless_set(make_cfg, tmp_path: Path) -> None:
    """A journal from before ``executor.threads`` existed: its default is what that release did."""
    journal = tmp_path / "journal.sqlite"
    shutil.copy(FIXTURE, journal)
    config = _stored_config(journal)
    del config["executor"]["threads"]
    _rewrite_config(journal, config)
    with pytest.raises(ConfigError, match=r"differs in executor\.threads \('absent' -> 2\)"):
        run_search(make_cfg(*FIXTURE_OVERRIDES, "budget.evaluations=8", "resume=true", "executor.threads=2"),
                   tmp_path, overrides=[*FIXTURE_OVERRIDES, "executor.threads=2"])
    summary = run_search(make_cfg(*FIXTURE_OVERRIDES, "budget.evaluations=8", "resume=true"), tmp_path,
                         overrides=[*FIXTURE_OVERRIDES, "budget.evaluations=8", "resume=true"])
    assert summary["evaluations"] == 8


def test_resume_differences() -> None:
    stored = {"seed": 0, "budget": {"evaluations": 10}, "strategy": {"name": "x", "population": 10},
              "old_key": 1, "output": {"summary": "s.json", "journal": "j.sqlite"}}
    same = {"seed": 0, "budget": {"evaluations": 50, "wall_seconds": 9}, "strategy": {"name": "x", "population": 10},
            "output": {"summary": "other.json", "journal": "j.sqlite"}, "progress": "none"}
    assert resume_differences(stored, same) == []  # budget, presentation and a removed key decide nothing
    assert resume_differences(stored, {**same, "seed": 1, "strategy": {"name": "x", "population": 3}}) == [
        "seed", "strategy.population"]
    added = {**same, "strategy": {"name": "x", "population": 10, "sample": 5}}
    assert resume_differences(stored, added) == []
    assert resume_differences(stored, added, overrides=["strategy.sample=5"]) == ["strategy.sample"]
    assert resume_differences(stored, {**same, "output": {"summary": "s.json", "journal": "k.sqlite"}}) == [
        "output.journal"]
