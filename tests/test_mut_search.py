"""The search loop's budgets, retries, stall and result, value by value.

Written to kill the mutants of engine/search.py that tests/test_search.py lets
live (bench/mutation.py, bench/results/mutation.md). Oracles here are pure
functions of the architecture, so every count below is known exactly.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.journal import Journal
from engine.search import Budget, RetryPolicy, Search, SearchResult
from engine.spaces import Architecture, NB201Space, SearchSpace
from engine.strategies import Strategy
from engine.strategies._random import RandomSearch
from engine.types import DEFAULT_FIDELITY, Evaluation, Query, Status


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return NB201Space()  # get_space would load every space plugin (torch, seconds) first


class Sum:
    """Objective = sum of the decisions; ``cost`` simulated seconds each; records its calls."""

    def __init__(self, cost: float = 1.0, fidelity: str = DEFAULT_FIDELITY, sleep: float = 0.0) -> None:
        self.cost = cost
        self.fidelity = fidelity
        self.sleep = sleep
        self.calls: list[Architecture] = []

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        self.calls.extend(archs)
        if self.sleep:
            time.sleep(self.sleep)
        return [Evaluation(a, self.fidelity, objective=float(sum(a.decisions)), cost=self.cost) for a in archs]


class Script(Strategy):
    """Asks ``queries`` in order; records each ``n`` it is asked for and the budget it was shown."""

    fidelities = ("cheap", "expensive")
    final_fidelity = "expensive"
    queries: list[Query] = []

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.i = 0
        self.asked_n: list[int] = []
        self.seen_budget: list[dict[str, int | None]] = []

    def _ask(self, n: int) -> list[Query]:
        self.asked_n.append(n)
        self.seen_budget.append(dict(self.budget_left))
        out = self.queries[self.i : self.i + n]
        self.i += len(out)
        return out

    def _state_dict(self) -> dict[str, Any]:
        return {"i": self.i}

    def _load_state_dict(self, state: Any) -> None:
        self.i = state["i"]


def _script(queries: list[Query], fidelities: tuple[str, ...] = ("cheap", "expensive"),
            final: str = "expensive") -> type[Script]:
    return type("S", (Script,), {"queries": queries, "fidelities": fidelities, "final_fidelity": final})


def _archs(space: SearchSpace, n: int) -> list[Architecture]:
    return list(itertools.islice(space.enumerate(), n))


# -- Budget and RetryPolicy validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"evaluations": True}, "budget.evaluations"),
        ({"evaluations": 2.0}, "budget.evaluations"),
        ({"evaluations": "3"}, "budget.evaluations"),
        ({"oracle_seconds": -1.0}, "budget.oracle_seconds"),
        ({"oracle_seconds": float("nan")}, "budget.oracle_seconds"),
        ({"oracle_seconds": True}, "budget.oracle_seconds"),
        ({"oracle_seconds": "1"}, "budget.oracle_seconds"),
        ({"wall_seconds": -0.5}, "budget.wall_seconds"),
        ({"wall_seconds": False}, "budget.wall_seconds"),
        ({"per_fidelity": [1]}, "budget.per_fidelity"),
        ({"per_fidelity": {"x": True}}, "budget.per_fidelity.x"),
        ({"per_fidelity": {"x": 1.0}}, "budget.per_fidelity.x"),
        ({"max_stall": True}, "budget.max_stall"),
        ({"max_stall": 1.0}, "budget.max_stall"),
        ({"evaluations": None, "per_fidelity": {}}, "no limit"),
    ],
)
def test_budget_refuses(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        Budget(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"evaluations": 0},
        {"evaluations": None, "oracle_seconds": 0.0},
        {"evaluations": None, "oracle_seconds": 3},
        {"evaluations": None, "wall_seconds": 0},
        {"evaluations": None, "per_fidelity": {"x": 0}},
        {"max_stall": 1},
    ],
)
def test_budget_accepts_the_boundaries(kwargs: dict[str, Any]) -> None:
    Budget(**kwargs)


def test_retry_policy_validation_and_matching(space: SearchSpace) -> None:
    for bad, match in (({"attempts": -1}, "attempts"), ({"attempts": True}, "attempts"),
                       ({"attempts": 1.0}, "attempts"), ({"errors": "OutOfMemoryError"}, "string"),
                       ({"errors": ["x", ""]}, "empty")):
        with pytest.raises(ValueError, match=match):
            RetryPolicy(**bad)
    assert RetryPolicy(attempts=0).attempts == 0
    policy = RetryPolicy(attempts=2, errors=["OutOfMemoryError", "WorkerDied"])
    assert policy.errors == ("OutOfMemoryError", "WorkerDied")
    a = _archs(space, 1)[0]
    assert policy.matches(Evaluation.failure(a, "default", "torch.OutOfMemoryError: CUDA"))
    assert policy.matches(Evaluation.failure(a, "default", "ray: WorkerDied"))
    assert not policy.matches(Evaluation.failure(a, "default", "ValueError: bad"))
    assert not policy.matches(Evaluation.failure(a, "default", ""))
    assert not policy.matches(Evaluation(a, objective=1.0, error="OutOfMemoryError earlier"))
    assert not RetryPolicy().matches(Evaluation.failure(a, "default", "OutOfMemoryError"))


# -- budgets --------------------------------------------------------------------------------------


def test_a_batch_is_asked_whole_and_cut_to_the_evaluations_left(space: SearchSpace) -> None:
    oracle = Sum()
    strategy = RandomSearch(space, seed=0)
    asked: list[int] = []
    inner = strategy._ask

    def spy(n: int) -> Any:
        asked.append(n)
        return inner(n)

    strategy._ask = spy  # type: ignore[method-assign]
    result = Search(strategy, oracle, Budget(evaluations=8), batch_size=3).run()
    assert asked == [3, 3, 3] and result.evaluations == 8 == len(oracle.calls)
    assert result.stop_reason == "evaluations"
    assert len(strategy.pending) == 1  # the query the budget cut stays pending, for a resume with more budget


def test_oracle_seconds_budget_stops_on_reaching_it_exactly(space: SearchSpace) -> None:
    result = Search(RandomSearch(space, seed=0), Sum(cost=2.0), Budget(evaluations=None, oracle_seconds=10.0)).run()
    assert result.evaluations == 5 and result.oracle_seconds == 10.0 and result.stop_reason == "oracle_seconds"


def test_budget_left_per_fidelity_under_a_total(space: SearchSpace) -> None:
    a = _archs(space, 6)
    queries = [Query(a[0], "cheap"), Query(a[1], "cheap"), Query(a[2], "expensive"), Query(a[3], "cheap"),
               Query(a[4], "expensive")]
    strategy = _script(queries)(space)
    oracles = {"cheap": Sum(fidelity="cheap"), "expensive": Sum(fidelity="expensive")}
    result = Search(strategy, oracles, Budget(evaluations=5, per_fidelity={"cheap": 2})).run()
    assert strategy.seen_budget == [
        {"cheap": 2, "expensive": 5},
        {"cheap": 1, "expensive": 4},
        {"cheap": 0, "expensive": 3},
        {"cheap": 0, "expensive": 2},  # the third cheap query is skipped: its fidelity is spent
        {"cheap": 0, "expensive": 2},
        {"cheap": 0, "expensive": 1},  # the script is done: "strategy finished"
    ]
    assert result.stop_reason == "strategy finished"
    assert [e.status for e in result.history] == [Status.OK, Status.OK, Status.OK, Status.SKIPPED, Status.OK]
    assert result.per_fidelity == {"cheap": 2, "expensive": 2} and result.evaluations == 4
    skipped = result.history[3]
    assert skipped.cost == 0.0 and "cheap" in (skipped.error or "") and not skipped.cached


def test_budget_left_without_a_total_is_unlimited_where_uncapped(space: SearchSpace) -> None:
    a = _archs(space, 3)
    strategy = _script([Query(a[0], "cheap"), Query(a[1], "expensive"), Query(a[2], "cheap")])(space)
    oracles = {"cheap": Sum(fidelity="cheap"), "expensive": Sum(fidelity="expensive")}
    result = Search(strategy, oracles, Budget(evaluations=None, per_fidelity={"cheap": 2}), batch_size=2).run()
    assert strategy.seen_budget[0] == {"cheap": 2, "expensive": None}
    assert strategy.seen_budget[1] == {"cheap": 1, "expensive": None}
    # cheap spent and expensive uncapped: the per-fidelity budget stops it only once every cap is reached
    assert result.stop_reason == "per_fidelity" and result.per_fidelity == {"cheap": 2, "expensive": 1}


def test_a_batch_larger_than_the_fidelity_budget_skips_the_rest(space: SearchSpace) -> None:
    a = _archs(space, 4)
    strategy = _script([Query(x, "cheap") for x in a])(space)
    cheap = Sum(fidelity="cheap")
    oracles = {"cheap": cheap, "expensive": Sum(fidelity="expensive")}
    result = Search(strategy, oracles, Budget(evaluations=None, per_fidelity={"cheap": 2}), batch_size=4).run()
    assert cheap.calls == a[:2]
    assert [e.status for e in result.history] == [Status.OK, Status.OK, Status.SKIPPED, Status.SKIPPED]
    assert result.stop_reason == "per_fidelity"


def test_per_fidelity_caps_on_every_fidelity_stop_before_the_total(space: SearchSpace) -> None:
    a = _archs(space, 10)
    queries = [Query(x, f) for x in a for f in ("cheap", "expensive")]
    strategy = _script(queries)(space)
    oracles = {"cheap": Sum(fidelity="cheap"), "expensive": Sum(fidelity="expensive")}
    budget = Budget(evaluations=100, per_fidelity={"cheap": 2, "expensive": 3})
    result = Search(strategy, oracles, budget).run()
    assert result.stop_reason == "per_fidelity" and result.per_fidelity == {"cheap": 2, "expensive": 3}


def test_a_cap_on_one_fidelity_under_a_total_does_not_stop_the_other(space: SearchSpace) -> None:
    a = _archs(space, 10)
    queries = [Query(x, f) for x in a for f in ("cheap", "expensive")]
    strategy = _script(queries)(space)
    oracles = {"cheap": Sum(fidelity="cheap"), "expensive": Sum(fidelity="expensive")}
    result = Search(strategy, oracles, Budget(evaluations=8, per_fidelity={"cheap": 2})).run()
    assert result.stop_reason == "evaluations" and result.per_fidelity == {"cheap": 2, "expensive": 6}


def test_stall_counts_batches_that_bring_nothing_new(space: SearchSpace) -> None:
    a = _archs(space, 1)[0]
    strategy = _script([Query(a)] * 50, fidelities=(DEFAULT_FIDELITY,), final=DEFAULT_FIDELITY)(space)
    oracle = Sum()
    result = Search(strategy, oracle, Budget(evaluations=10, max_stall=3)).run()
    assert result.stop_reason == "stalled" and len(result.history) == 4 and oracle.calls == [a]
    assert [e.cached for e in result.history] == [False, True, True, True]
    assert all(e.cost == 0.0 for e in result.history[1:]) and result.history[0].cost == 1.0
    assert result.evaluations == 1 and result.oracle_seconds == 1.0


def test_strategy_finished_and_callbacks(space: SearchSpace) -> None:
    a = _archs(space, 2)
    strategy = _script([Query(x) for x in a], fidelities=(DEFAULT_FIDELITY,), final=DEFAULT_FIDELITY)(space)
    calls: list[str] = []

    class OnlyEnd:
        def on_end(self, search: Search, result: Any) -> None:
            calls.append(f"end:{result.stop_reason}")

    class All(OnlyEnd):
        def on_start(self, search: Search) -> None:
            calls.append("start")

        def on_evaluations(self, search: Search, evaluations: Sequence[Evaluation]) -> None:
            calls.append(f"evals:{len(evaluations)}")

    result = Search(strategy, Sum(), Budget(evaluations=10), callbacks=[OnlyEnd(), All()]).run()
    assert result.stop_reason == "strategy finished" and result.evaluations == 2
    assert calls == ["start", "evals:1", "evals:1", "end:strategy finished", "end:strategy finished"]


# -- failures, retries, result ------------------------------------------------------------------


class Flaky:
    """Fails each architecture's first ``fails`` evaluations with ``error``, then succeeds."""

    def __init__(self, error: str, fails: int = 1) -> None:
        self.error = error
        self.fails = fails
        self.seen: dict[Architecture, int] = {}
        self.batches: list[int] = []

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        self.batches.append(len(archs))
        out = []
        for a in archs:
            self.seen[a] = self.seen.get(a, 0) + 1
            if self.seen[a] <= self.fails:
                out.append(Evaluation.failure(a, DEFAULT_FIDELITY, self.error, cost=0.5))
            else:
                out.append(Evaluation(a, objective=1.0, cost=2.0))
        return out


def test_retry_repeats_matching_failures_and_adds_their_cost(space: SearchSpace) -> None:
    oracle = Flaky("OutOfMemoryError: try again", fails=2)
    retry = RetryPolicy(attempts=2, errors=["OutOfMemoryError"])
    result = Search(RandomSearch(space, seed=0), oracle, Budget(evaluations=3), batch_size=3, retry=retry).run()
    assert oracle.batches == [3, 3, 3] and result.retries == 6
    assert all(e.ok and e.cost == pytest.approx(3.0) for e in result.history)
    assert result.failures == 0 and result.oracle_seconds == pytest.approx(9.0)


def test_retry_gives_up_after_its_attempts_and_skips_other_errors(space: SearchSpace) -> None:
    oracle = Flaky("OutOfMemoryError", fails=5)
    retry = RetryPolicy(attempts=1, errors=["OutOfMemoryError"])
    result = Search(RandomSearch(space, seed=0), oracle, Budget(evaluations=2), batch_size=2, retry=retry).run()
    assert oracle.batches == [2, 2] and result.retries == 2 and result.failures == 2 and result.best is None
    assert all(e.cost == pytest.approx(1.0) for e in result.history)
    other = Flaky("ValueError: deterministic", fails=5)
    result = Search(RandomSearch(space, seed=0), other, Budget(evaluations=2), batch_size=2, retry=retry).run()
    assert other.batches == [2] and result.retries == 0 and result.failures == 2


def test_a_raising_oracle_charges_its_time_per_architecture(space: SearchSpace) -> None:
    class Slow:
        def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
            time.sleep(0.05)
            raise RuntimeError("boom")

    result = Search(RandomSearch(space, seed=0), Slow(), Budget(evaluations=2), batch_size=2).run()
    costs = [e.cost for e in result.history]
    assert all(0.02 <= c <= 0.5 for c in costs) and result.failures == 2
    assert all("RuntimeError: boom" in (e.error or "") for e in result.history)


def test_result_best_is_the_highest_ok_objective_at_the_final_fidelity(space: SearchSpace) -> None:
    a = _archs(space, 4)

    class Scores:
        def __init__(self, fidelity: str, scores: dict[Architecture, float | None]) -> None:
            self.fidelity, self.scores = fidelity, scores

        def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
            return [Evaluation(x, self.fidelity, objective=self.scores[x]) for x in archs]

    queries = [Query(a[0], "cheap"), Query(a[1], "expensive"), Query(a[2], "expensive"), Query(a[3], "expensive"),
               Query(a[1], "expensive")]
    oracles = {"cheap": Scores("cheap", {a[0]: 100.0}),
               "expensive": Scores("expensive", {a[1]: -5.0, a[2]: -1.0, a[3]: None})}
    result = Search(_script(queries)(space), oracles, Budget(evaluations=10)).run()
    assert result.best is not None and result.best.arch == a[2] and result.best.objective == -1.0
    assert result.failures == 1 and result.evaluations == 4 and result.history[-1].cached


# -- wall time, summed over resumes --------------------------------------------------------------


def test_wall_time_is_measured_and_stops_the_search(space: SearchSpace) -> None:
    result = Search(RandomSearch(space, seed=0), Sum(sleep=0.01), Budget(evaluations=5, wall_seconds=1000.0)).run()
    assert result.stop_reason == "evaluations" and result.evaluations == 5
    assert 0.05 <= result.wall_seconds < 1000.0
    result = Search(RandomSearch(space, seed=0), Sum(sleep=0.02), Budget(evaluations=None, wall_seconds=0.1)).run()
    assert result.stop_reason == "wall_seconds" and 1 <= result.evaluations <= 10
    assert result.wall_seconds >= 0.1


def test_resumed_wall_budget_counts_the_earlier_sessions(tmp_path: Path, space: SearchSpace) -> None:
    """budget.wall_seconds is "summed across resumes": the journal's snapshot carries the time spent so far."""
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        first = Search(RandomSearch(space, seed=3), Sum(sleep=0.01), Budget(evaluations=4, wall_seconds=1000.0),
                       journal=j).run()
        state, last = j.load_state()  # type: ignore[misc]
    assert first.evaluations == 4 and state["wall_seconds"] == pytest.approx(first.wall_seconds, abs=0.05)
    assert state["wall_seconds"] >= 0.04

    # Say the earlier sessions took 600 s: a resume under a 500 s budget has nothing left to spend.
    with Journal(path) as j:
        state["wall_seconds"] = 600.0
        j.save_state(state, last)
    oracle = Sum()
    with Journal(path) as j:
        again = Search(RandomSearch(space, seed=3), oracle, Budget(evaluations=10, wall_seconds=500.0),
                       journal=j).run()
    assert again.stop_reason == "wall_seconds" and oracle.calls == [] and again.evaluations == 4
    assert 600.0 <= again.wall_seconds < 601.0

    # Under a 700 s budget it goes on, and what it journals adds this session's time to the 600 s.
    with Journal(path) as j:
        more = Search(RandomSearch(space, seed=3), oracle, Budget(evaluations=6, wall_seconds=700.0),
                      journal=j).run()
        state2, _ = j.load_state()  # type: ignore[misc]
    assert more.stop_reason == "evaluations" and len(oracle.calls) == 2 and more.evaluations == 6
    assert 600.0 < more.wall_seconds < 601.0 and 600.0 < state2["wall_seconds"] <= more.wall_seconds


# -- defaults, stall, replay ----------------------------------------------------------------------


def test_python_defaults_agree_with_the_config_defaults(space: SearchSpace) -> None:
    """Budget() in Python and nas-search with no overrides stop at the same point."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(__file__).resolve().parent.parent / "conf" / "config.yaml")
    b = Budget()
    assert b.evaluations == cfg.budget.evaluations == 100
    assert b.max_stall == cfg.budget.max_stall == 1000
    assert b.per_fidelity == dict(cfg.budget.per_fidelity) and b.oracle_seconds is cfg.budget.oracle_seconds
    assert b.wall_seconds is cfg.budget.wall_seconds
    assert Search(RandomSearch(space), Sum(), b).batch_size == cfg.batch_size == 1
    # the Python default policy never retries (the config's policy names its transient errors)
    assert RetryPolicy().attempts == 0 and RetryPolicy().errors == ()
    assert SearchResult(None, 0, {}, 0, 0.0, 0.0, [], "").retries == 0


@pytest.mark.parametrize("kwargs", [{"per_fidelity": {"x": -1}}, {"evaluations": -1}])
def test_minus_one_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        Budget(**kwargs)


@pytest.mark.parametrize("batch_size", [True, 2.0, "2", 0])
def test_batch_size_must_be_a_positive_integer(space: SearchSpace, batch_size: Any) -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        Search(RandomSearch(space), Sum(), Budget(), batch_size=batch_size)


def test_stall_counts_from_the_first_batch(space: SearchSpace) -> None:
    """Batches of skipped queries bring nothing new from the start: max_stall of them end the search."""
    a = _archs(space, 5)
    strategy = _script([Query(x, "cheap") for x in a])(space)
    oracles = {"cheap": Sum(fidelity="cheap"), "expensive": Sum(fidelity="expensive")}
    result = Search(strategy, oracles, Budget(evaluations=10, per_fidelity={"cheap": 0}, max_stall=2)).run()
    assert result.stop_reason == "stalled" and len(result.history) == 2
    assert all(e.status is Status.SKIPPED for e in result.history)


def test_a_batch_with_one_new_evaluation_is_progress(space: SearchSpace) -> None:
    a = _archs(space, 6)
    queries = [Query(a[0]), Query(a[1])] + [q for x in a[2:] for q in (Query(a[0]), Query(x))]
    strategy = _script(queries, fidelities=(DEFAULT_FIDELITY,), final=DEFAULT_FIDELITY)(space)
    result = Search(strategy, Sum(), Budget(evaluations=10, max_stall=2), batch_size=2).run()
    assert result.stop_reason == "strategy finished" and result.evaluations == 6


def test_a_raising_oracle_splits_its_time_over_the_batch(space: SearchSpace) -> None:
    class Slow:
        def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
            time.sleep(0.1)
            raise RuntimeError("boom")

    result = Search(RandomSearch(space, seed=0), Slow(), Budget(evaluations=4), batch_size=4).run()
    costs = [e.cost for e in result.history]
    assert len(set(costs)) == 1 and 0.1 <= sum(costs) <= result.wall_seconds


class _Killed(Exception):
    pass


def _dies_after_append(at: int) -> type[Journal]:
    class DiesAfterAppend(Journal):
        appends = 0

        def append(self, evaluations: Any) -> int:
            rid = super().append(evaluations)
            type(self).appends += 1
            if type(self).appends == at:
                raise _Killed
            return rid

    return DiesAfterAppend


def test_resume_replays_a_batch_with_a_repeat_in_order_and_snapshots_its_last_row(
    tmp_path: Path, space: SearchSpace, caplog: pytest.LogCaptureFixture
) -> None:
    a = _archs(space, 3)
    queries = [Query(a[0]), Query(a[1]), Query(a[2]), Query(a[2])]  # the second batch repeats a[2]

    def run(journal: Journal, oracle: Sum) -> Any:
        strategy = _script(queries, fidelities=(DEFAULT_FIDELITY,), final=DEFAULT_FIDELITY)(space)
        return Search(strategy, oracle, Budget(evaluations=10), journal=journal, batch_size=2).run()

    with Journal(tmp_path / "ref.sqlite") as j:
        ref = run(j, Sum())
    path = tmp_path / "j.sqlite"
    with caplog.at_level("INFO", logger="engine.search"):
        with _dies_after_append(2)(path) as j, pytest.raises(_Killed):
            run(j, Sum())
        assert "resuming" not in caplog.text  # a fresh journal is no resume
        oracle = Sum()
        with Journal(path) as j:
            again = run(j, oracle)
            _, last = j.load_state()  # type: ignore[misc]
            assert last == j.last_id() == 4
        assert "resuming from" in caplog.text and "2 to replay" in caplog.text
    assert oracle.calls == []  # the second batch, repeat included, comes from the journal
    assert [(e.arch, e.cached) for e in again.history] == [(e.arch, e.cached) for e in ref.history]
    assert [(e.arch, e.cached) for e in again.history][2:] == [(a[2], False), (a[2], True)]
    # and a third session finds a consistent snapshot: nothing to do, nothing evaluated
    with Journal(path) as j:
        third = run(j, oracle)
    assert oracle.calls == [] and third.evaluations == 3


def test_resume_logs_a_replay_without_a_snapshot(tmp_path: Path, space: SearchSpace,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "j.sqlite"
    with _dies_after_append(1)(path) as j, pytest.raises(_Killed):
        Search(RandomSearch(space, seed=1), Sum(), Budget(evaluations=4), journal=j, batch_size=2).run()
    oracle = Sum()
    with caplog.at_level("INFO", logger="engine.search"), Journal(path) as j:
        s = Search(RandomSearch(space, seed=1), oracle, Budget(evaluations=4), journal=j, batch_size=2)
        result = s.run()
    assert "resuming from" in caplog.text and "0 evaluations told, 2 to replay" in caplog.text
    assert len(oracle.calls) == 2 and result.evaluations == 4


def test_a_resume_under_a_smaller_budget_has_nothing_left(tmp_path: Path, space: SearchSpace) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        Search(RandomSearch(space, seed=2), Sum(), Budget(evaluations=5), journal=j).run()
    oracle = Sum()
    with Journal(path) as j:
        s = Search(RandomSearch(space, seed=2), oracle, Budget(evaluations=3), journal=j)
        result = s.run()
    assert result.stop_reason == "evaluations" and oracle.calls == [] and result.evaluations == 5
    assert s.budget_left() == {DEFAULT_FIDELITY: 0}
