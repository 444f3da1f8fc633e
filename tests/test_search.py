"""The search loop: cache, failures, report-only metrics, budgets, journal order, resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.journal import Journal
from engine.search import Budget, Search
from engine.spaces import Architecture, ChainSpace, SearchSpace, get_space
from engine.strategies import Strategy, create_strategy
from engine.strategies._random import RandomSearch
from engine.types import Evaluation, Query, Status
from oracles.tabular import TabularOracle

TABLE = Path("/work/shared/data/nb201_cifar10.csv")


@pytest.fixture(scope="module")
def nb201() -> SearchSpace:
    return get_space("nb201")


@pytest.fixture(scope="module")
def tabular(nb201: SearchSpace) -> TabularOracle:
    return TabularOracle(nb201)


class Counting:
    """Wraps an oracle and records every architecture it is asked to evaluate."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[Architecture] = []

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        self.calls.extend(archs)
        return self.inner.evaluate(archs)


class Scripted(Strategy):
    """Asks a fixed list of architectures (repeats included) and records what it is told."""

    script: list[Architecture] = []

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.i = 0
        self.told: list[Evaluation] = []

    def _ask(self, n: int) -> list[Query]:
        out = self.script[self.i : self.i + n]
        self.i += len(out)
        return [Query(a) for a in out]

    def _tell(self, evaluations: Sequence[Evaluation]) -> None:
        self.told.extend(evaluations)


def _scripted(space: SearchSpace, script: list[Architecture]) -> Scripted:
    cls = type("ScriptedRun", (Scripted,), {"script": script})
    return cls(space)


def test_identical_architecture_is_not_evaluated_twice(nb201: SearchSpace, tabular: TabularOracle) -> None:
    a, b = nb201.architecture([3] * 6), nb201.architecture([2] * 6)
    counting = Counting(tabular)
    strategy = _scripted(nb201, [a, b, a, a, b])
    result = Search(strategy, counting, Budget(evaluations=10)).run()
    assert counting.calls == [a, b]
    assert result.evaluations == 2
    assert [e.cached for e in result.history] == [False, False, True, True, True]
    assert all(e.cost == 0.0 for e in result.history if e.cached)
    assert result.history[2].objective == result.history[0].objective
    assert result.stop_reason == "strategy finished"


def test_duplicates_inside_one_batch_are_evaluated_once(nb201: SearchSpace, tabular: TabularOracle) -> None:
    a, b = nb201.architecture([3] * 6), nb201.architecture([1] * 6)
    counting = Counting(tabular)
    result = Search(_scripted(nb201, [a, a, b, a]), counting, Budget(evaluations=10), batch_size=4).run()
    assert counting.calls == [a, b]
    assert [e.cached for e in result.history] == [False, True, False, True]


def test_cache_is_per_fidelity(nb201: SearchSpace, tabular: TabularOracle) -> None:
    class TwoFid(Scripted):
        fidelities = ("cheap", "expensive")
        final_fidelity = "expensive"

        def _ask(self, n: int) -> list[Query]:
            qs = [Query(a, f) for a, f in self.script[self.i : self.i + n]]  # type: ignore[misc]
            self.i += len(qs)
            return qs

    a = nb201.architecture([3] * 6)
    cheap, expensive = Counting(tabular), Counting(tabular)
    strategy = type("T", (TwoFid,), {"script": [(a, "cheap"), (a, "expensive"), (a, "cheap")]})(nb201)
    result = Search(strategy, {"cheap": cheap, "expensive": expensive}, Budget(evaluations=10)).run()
    assert cheap.calls == [a] and expensive.calls == [a]
    assert result.per_fidelity == {"cheap": 1, "expensive": 1}
    assert result.best is not None and result.best.fidelity == "expensive"


class Raising:
    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        raise RuntimeError("the GPU caught fire")


class Short:
    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        return []


@pytest.mark.parametrize("oracle", [Raising(), Short()], ids=["raises", "miscounts"])
def test_failing_oracle_gives_failed_evaluations_not_a_crash(nb201: SearchSpace, oracle: Any) -> None:
    strategy = RandomSearch(nb201, seed=0)
    result = Search(strategy, oracle, Budget(evaluations=5), batch_size=2).run()
    assert result.evaluations == 5 and result.failures == 5 and result.best is None
    assert all(e.status is Status.FAILED and e.error for e in result.history)
    assert len(strategy.history) == 5
    text = result.history[0].error or ""
    assert ("GPU caught fire" in text) if isinstance(oracle, Raising) else ("returned 0 evaluations" in text)


def test_non_finite_objective_is_a_failure(nb201: SearchSpace) -> None:
    ev = Evaluation(nb201.architecture([0] * 6), objective=float("nan"))
    assert ev.status is Status.FAILED and ev.objective is None and "not finite" in (ev.error or "")


def test_report_only_metrics_never_reach_the_strategy(nb201: SearchSpace, tabular: TabularOracle) -> None:
    archs = [nb201.sample(__import__("numpy").random.default_rng(i)) for i in range(6)]
    strategy = _scripted(nb201, [*archs, archs[0]])
    result = Search(strategy, tabular, Budget(evaluations=10), batch_size=3).run()
    assert strategy.told and all(not e.reported and "test_acc" not in e.metrics for e in strategy.told)
    assert all(not e.reported for e in strategy.history)
    assert result.best is not None and "test_acc" in result.best.reported
    assert all("test_acc" in e.reported for e in result.history)  # kept for the report


def test_evaluation_budget_is_exact(nb201: SearchSpace, tabular: TabularOracle) -> None:
    counting = Counting(tabular)
    result = Search(RandomSearch(nb201, seed=1), counting, Budget(evaluations=17), batch_size=5).run()
    assert result.evaluations == 17 == len(counting.calls)
    assert result.stop_reason == "evaluations"


def test_oracle_seconds_budget(nb201: SearchSpace) -> None:
    oracle = TabularOracle(nb201, cost_seconds=2.0)
    result = Search(RandomSearch(nb201, seed=0), oracle, Budget(evaluations=None, oracle_seconds=11.0)).run()
    assert result.evaluations == 6 and result.oracle_seconds == 12.0
    assert result.stop_reason == "oracle_seconds"


def test_zero_wall_clock_budget_evaluates_nothing(nb201: SearchSpace, tabular: TabularOracle) -> None:
    result = Search(RandomSearch(nb201), tabular, Budget(evaluations=None, wall_seconds=0.0)).run()
    assert result.evaluations == 0 and result.stop_reason == "wall_seconds"


def test_per_fidelity_budget_skips_the_spent_fidelity(nb201: SearchSpace, tabular: TabularOracle) -> None:
    class Greedy(RandomSearch):
        fidelities = ("cheap", "expensive")
        final_fidelity = "expensive"

        def _ask(self, n: int) -> list[Query]:
            return [Query(a, "expensive") for a in super()._ask(n)]

    counting = Counting(tabular)
    b = Budget(evaluations=20, per_fidelity={"expensive": 4}, max_stall=3)
    result = Search(Greedy(nb201), {"cheap": tabular, "expensive": counting}, b, batch_size=3).run()
    assert len(counting.calls) == 4 == result.per_fidelity["expensive"]
    assert any(e.status is Status.SKIPPED for e in result.history)
    assert result.stop_reason == "stalled"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"evaluations": -1}, "budget.evaluations"),
        ({"evaluations": None}, "no limit"),
        ({"per_fidelity": {"x": -2}}, "budget.per_fidelity.x"),
        ({"max_stall": 0}, "budget.max_stall"),
    ],
)
def test_bad_budget_names_the_key(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        Budget(**kwargs)


def test_bad_search_arguments(nb201: SearchSpace, tabular: TabularOracle) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Search(RandomSearch(nb201), tabular, Budget(), batch_size=0)
    with pytest.raises(TypeError, match="evaluate"):
        Search(RandomSearch(nb201), object(), Budget())  # type: ignore[arg-type]

    class TwoFid(RandomSearch):
        fidelities = ("cheap", "expensive")
        final_fidelity = "expensive"

    with pytest.raises(ValueError, match="cheap"):
        Search(TwoFid(nb201), {"expensive": tabular}, Budget())


def test_random_search_stops_when_the_space_is_exhausted() -> None:
    space = ChainSpace(stages=1, depths=(1, 2), kernels=(3, 5), expands=(3,))
    assert space.size == 2 + 4

    class Everything:
        def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
            return [Evaluation(a, objective=float(sum(a.decisions))) for a in archs]

    result = Search(RandomSearch(space, seed=0), Everything(), Budget(evaluations=100)).run()
    assert result.stop_reason == "space exhausted"
    assert sorted(e.arch.string for e in result.history) == sorted(a.string for a in space.enumerate())
    # Evolution never says it is finished: without the exhaustion stop it asked repeats until max_stall.
    evolution = create_strategy("regularized_evolution", space, seed=0, population=4, sample=2)
    result = Search(evolution, Everything(), Budget(evaluations=100, max_stall=10_000)).run()
    assert result.stop_reason == "space exhausted" and result.evaluations == space.size


def test_evaluations_are_journaled_before_the_strategy_is_told(
    tmp_path: Path, nb201: SearchSpace, tabular: TabularOracle
) -> None:
    path = tmp_path / "j.sqlite"
    seen: list[int] = []

    class Peeking(RandomSearch):
        def _tell(self, evaluations: Sequence[Evaluation]) -> None:
            with sqlite3.connect(path) as db:  # another connection: only committed rows are visible
                seen.append(db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])

    with Journal(path) as journal:
        Search(Peeking(nb201), tabular, Budget(evaluations=6), journal=journal, batch_size=2).run()
        assert len(journal) == 6
    assert seen == [2, 4, 6]


def _journal_rows(path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT arch, status, cached FROM evaluations ORDER BY id"))


@pytest.mark.parametrize("strategy", ["random", "regularized_evolution", "local_search"])
@pytest.mark.parametrize("kill_at", [1, 7, 13])
def test_resume_in_process_matches_uninterrupted_run(
    tmp_path: Path, nb201: SearchSpace, tabular: TabularOracle, strategy: str, kill_at: int
) -> None:
    """Killed right after journaling batch ``kill_at`` (before its snapshot), resumed: same journal, same best."""

    class Killed(Exception):
        pass

    class DiesAfterAppend(Journal):
        appends = 0

        def append(self, evaluations: Any) -> int:
            rid = super().append(evaluations)
            DiesAfterAppend.appends += 1
            if DiesAfterAppend.appends == kill_at:
                raise Killed
            return rid

    with Journal(tmp_path / "ref.sqlite") as j:
        ref = Search(create_strategy(strategy, nb201, seed=4), tabular, Budget(evaluations=40), journal=j,
                     batch_size=3).run()
    counting = Counting(tabular)
    path = tmp_path / "killed.sqlite"
    with DiesAfterAppend(path) as j, pytest.raises(Killed):
        Search(create_strategy(strategy, nb201, seed=4), counting, Budget(evaluations=40), journal=j,
               batch_size=3).run()
    with Journal(path) as j:
        res = Search(create_strategy(strategy, nb201, seed=4), counting, Budget(evaluations=40), journal=j,
                     batch_size=3).run()
    assert _journal_rows(path) == _journal_rows(tmp_path / "ref.sqlite")
    assert len(counting.calls) == len(set(counting.calls)) == 40
    assert res.best is not None and ref.best is not None
    assert res.best.arch == ref.best.arch and res.evaluations == ref.evaluations == 40


def test_resume_of_a_finished_search_evaluates_nothing(
    tmp_path: Path, nb201: SearchSpace, tabular: TabularOracle
) -> None:
    with Journal(tmp_path / "j.sqlite") as j:
        first = Search(RandomSearch(nb201, seed=2), tabular, Budget(evaluations=10), journal=j).run()
    counting = Counting(tabular)
    with Journal(tmp_path / "j.sqlite") as j:
        again = Search(RandomSearch(nb201, seed=2), counting, Budget(evaluations=10), journal=j).run()
    assert counting.calls == [] and again.evaluations == 10
    assert again.best is not None and first.best is not None and again.best.arch == first.best.arch


# -- a real process, killed with SIGKILL ----------------------------------------------------------
def _nas_search(*args: str) -> list[str]:
    return [sys.executable, "-c", "from engine.cli import main; main()", *args]


def _rows(path: Path) -> int:
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_and_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    common = [
        "oracle=faulty",
        "oracle.delay_seconds=0.03",
        "strategy=regularized_evolution",
        "budget.evaluations=60",
        "seed=5",
        "progress=none",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"}
    killed_dir, ref_dir = tmp_path / "killed", tmp_path / "ref"
    trace = tmp_path / "trace.tsv"
    args = [*common, f"oracle.trace={trace}", f"hydra.run.dir={killed_dir}"]
    # The uninterrupted run with the same seed goes on beside the one that gets killed.
    reference = subprocess.Popen(
        _nas_search(*common, f"oracle.trace={tmp_path / 'ref.tsv'}", f"hydra.run.dir={ref_dir}"),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    proc = subprocess.Popen(_nas_search(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = killed_dir / "journal.sqlite"
    deadline = time.monotonic() + 60
    while _rows(journal) < 20 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"the search ended before it could be killed: {proc.stderr.read()!r}"  # type: ignore[union-attr]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = {row[0] for row in _journal_rows(journal)}
    assert 20 <= len(before) < 60

    resumed = subprocess.run(_nas_search(*args, "resume=true"), env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    _, ref_err = reference.communicate(timeout=120)
    assert reference.returncode == 0, ref_err

    rows = _journal_rows(journal)
    assert rows == _journal_rows(ref_dir / "journal.sqlite")  # nothing lost, nothing repeated, same order
    assert sum(1 for r in rows if not r[2]) == 60
    # The resumed process never asked the oracle for an architecture journaled before the kill.
    calls = [line.split("\t") for line in trace.read_text().splitlines()]
    after = [arch for pid, arch in calls if int(pid) != proc.pid]
    assert after and not (set(after) & before)
    s_res = json.loads((killed_dir / "summary.json").read_text())
    s_ref = json.loads((ref_dir / "summary.json").read_text())
    assert s_res["best"] == s_ref["best"] and s_res["evaluations"] == s_ref["evaluations"] == 60
