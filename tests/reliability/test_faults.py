"""Fault injection: every oracle fault becomes a failed evaluation with its error text, the search goes on.

The fault matrix of docs/reliability.md is this file: each fault kind of
:class:`oracles.testing.FaultyOracle` injected into the real tabular oracle, run
through the real runner (Hydra-composed config, journal, summary.json).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from engine.runner import ConfigError, run_search
from engine.search import Budget, RetryPolicy, Search
from engine.spaces import get_space
from engine.strategies import create_strategy
from engine.types import Status
from oracles.tabular import TabularOracle
from oracles.testing import FAULT_ERRORS as EXPECTED_ERROR
from oracles.testing import FAULT_KINDS, FaultyOracle


def _rows(journal: Path) -> list[tuple[str, str, str | None, int]]:
    db = sqlite3.connect(journal)
    try:
        return list(db.execute("SELECT arch, status, error, cached FROM evaluations ORDER BY id"))
    finally:
        db.close()


def test_matrix_covers_every_fault_kind() -> None:
    assert set(EXPECTED_ERROR) == set(FAULT_KINDS)


def test_every_fault_kind_through_the_runner(make_cfg, tmp_path: Path) -> None:
    """All fault kinds at once through Hydra config, runner, journal and summary.json."""
    kinds = [k for k in FAULT_KINDS if k not in ("batch", "short")]  # whole-batch kinds: see test_fault_matrix
    cfg = make_cfg(
        "oracle=faulty", "oracle.rate=0.4", f"oracle.kinds=[{','.join(kinds)}]", "strategy=random",
        "budget.evaluations=40", "batch_size=2", "seed=3",
    )
    summary = run_search(cfg, tmp_path)
    rows = [r for r in _rows(tmp_path / "journal.sqlite") if not r[3]]
    space = get_space("nb201")
    probe = FaultyOracle(space, TabularOracle(space), rate=0.4, kinds=kinds, seed=3)
    injected = {r[0]: probe.fault_of(space.parse(r[0])) for r in rows}
    assert set(injected.values()) >= set(kinds), "the seed must inject every kind"
    assert summary["evaluations"] == 40 and summary["stop_reason"] == "evaluations"
    assert summary["best"] is not None and summary["best"]["status"] == "ok"
    for arch, status, error, _ in rows:
        kind = injected[arch]
        assert (status == "failed") == (kind is not None)
        if kind is not None:
            assert EXPECTED_ERROR[kind] in error
    failed = [r for r in rows if r[1] == "failed"]
    assert summary["failures"] == len(failed) == sum(summary["failures_by_error"].values())
    assert summary["retries"] == sum(k == "oom" for k in injected.values())  # OOM retried once, failing again


def test_transient_oom_is_retried_and_succeeds(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        "oracle=faulty", "oracle.rate=0.3", "oracle.kinds=[oom,memory]", "oracle.transient=1",
        "strategy=random", "budget.evaluations=20", "seed=2", "retry.errors=[OutOfMemoryError]",
    )
    summary = run_search(cfg, tmp_path)
    rows = _rows(tmp_path / "journal.sqlite")
    space = get_space("nb201")
    probe = FaultyOracle(space, TabularOracle(space), rate=0.3, kinds=["oom", "memory"], seed=2)
    kinds = [probe.fault_of(space.parse(r[0])) for r in rows]
    assert "oom" in kinds and "memory" in kinds
    # OOM is in retry.errors: retried and recovered; MemoryError is not: it stays failed.
    assert summary["retries"] == kinds.count("oom")
    assert all((r[1] == "ok") == (k != "memory") for r, k in zip(rows, kinds))
    assert summary["failures_by_error"] == {"MemoryError": kinds.count("memory")}


def test_no_retry_when_attempts_is_zero(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        "oracle=faulty", "oracle.rate=0.3", "oracle.kinds=[oom]", "oracle.transient=1",
        "strategy=random", "budget.evaluations=12", "seed=1", "retry.attempts=0",
    )
    summary = run_search(cfg, tmp_path)
    assert summary["retries"] == 0
    assert summary["failures"] > 0
    assert set(summary["failures_by_error"]) == {"torch.OutOfMemoryError"}


class _DyingOracle:
    """An oracle without BaseOracle's isolation that raises on every other call."""

    def __init__(self) -> None:
        self.calls = 0
        self.inner = TabularOracle(get_space("nb201"))

    def evaluate(self, archs):
        self.calls += 1
        if self.calls % 2 == 0:
            raise ConnectionError("worker lost")
        return self.inner.evaluate(archs)


def test_raising_oracle_in_search_loop_is_isolated() -> None:
    space = get_space("nb201")
    oracle = _DyingOracle()
    search = Search(create_strategy("random", space, seed=0), oracle, Budget(evaluations=10), batch_size=2)
    result = search.run()
    assert result.evaluations == 10
    failed = [e for e in result.history if e.status is Status.FAILED]
    assert len(failed) == 4 and all(e.error == "ConnectionError: worker lost" for e in failed)
    assert result.failures == 4


def test_retry_policy_is_validated(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"retry\.attempts"):
        RetryPolicy(attempts=-1)
    with pytest.raises(ValueError, match="empty string"):
        RetryPolicy(attempts=1, errors=("",))
    with pytest.raises(ConfigError, match=r"retry\.errors"):
        run_search(make_cfg("retry.errors=OutOfMemoryError"), tmp_path)
    assert not any(tmp_path.iterdir())


def test_fault_kinds_are_validated() -> None:
    space = get_space("nb201")
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultyOracle(space, TabularOracle(space), rate=0.5, kinds=["segfault"])
    with pytest.raises(ValueError, match="rate"):
        FaultyOracle(space, TabularOracle(space), rate=1.5)


def test_summary_json_counts_failures(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("oracle=faulty", "oracle.rate=0.5", "oracle.kinds=[raise]", "budget.evaluations=10")
    run_search(cfg, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failures"] == summary["failures_by_error"]["oracles.testing.InjectedFault"] > 0
