"""The strategy base class's contract checks, pending bookkeeping and helpers, case by case.

Written to kill the mutants of engine/strategies/_base.py that the conformance
suite lets live (bench/mutation.py, bench/results/mutation.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from engine.spaces import Architecture, ChainSpace, NB201Space, SearchSpace
from engine.strategies import Strategy
from engine.strategies._random import RandomSearch
from engine.types import Evaluation, Query


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return NB201Space()


class Fixed(Strategy):
    """Asks whatever ``plan`` holds next (one item per ask, or a list to return as is)."""

    fidelities = ("default", "cheap")

    def __init__(self, space: SearchSpace, seed: int = 0, plan: Sequence[Any] = ()) -> None:
        super().__init__(space, seed)
        self.plan = list(plan)

    def _ask(self, n: int) -> list[Any]:
        item = self.plan.pop(0)
        return item if isinstance(item, list) else [item]


def _archs(space: SearchSpace, n: int) -> list[Architecture]:
    return list(itertools.islice(space.enumerate(), n))


@pytest.mark.parametrize("seed", [True, -1, 1.5, "1", None])
def test_bad_seeds_are_refused(space: SearchSpace, seed: Any) -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        RandomSearch(space, seed=seed)


def test_seeds_default_to_zero_and_numpy_integers_count(space: SearchSpace) -> None:
    assert RandomSearch(space).seed == 0
    assert RandomSearch(space, seed=0).seed == 0
    assert RandomSearch(space, seed=np.int64(3)).seed == 3
    assert [q.arch for q in RandomSearch(space).ask(4)] == [q.arch for q in RandomSearch(space, seed=0).ask(4)]
    with pytest.raises(TypeError, match="SearchSpace"):
        RandomSearch("nb201")  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, -2, True, 1.5, "2"])
def test_ask_refuses_bad_n(space: SearchSpace, n: Any) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        RandomSearch(space).ask(n)


def test_ask_defaults_to_one_and_takes_numpy_integers(space: SearchSpace) -> None:
    s = RandomSearch(space)
    assert len(s.ask()) == 1
    assert len(s.ask(np.int64(3))) == 3
    assert len(s.pending) == 4


def test_ask_holds_subclasses_to_the_contract(space: SearchSpace) -> None:
    a, b = _archs(space, 2)
    with pytest.raises(RuntimeError, match=r"returned 2 queries"):
        Fixed(space, plan=[[a, b]]).ask(1)
    with pytest.raises(RuntimeError, match="not in space"):
        Fixed(space, plan=[a.decisions]).ask(1)  # a tuple of decisions, not an Architecture
    other = ChainSpace(stages=1, depths=(1, 2), kernels=(3, 5), expands=(3,))
    with pytest.raises(RuntimeError, match="not in space"):
        Fixed(space, plan=[next(iter(other.enumerate()))]).ask(1)
    with pytest.raises(RuntimeError, match="asked fidelity 'expensive'"):
        Fixed(space, plan=[Query(a, "expensive")]).ask(1)
    ok = Fixed(space, plan=[[a, Query(b, "cheap")]])
    assert ok.ask(2) == [Query(a), Query(b, "cheap")]


def test_the_same_query_pending_twice_is_told_twice_then_refused(space: SearchSpace) -> None:
    a, b = _archs(space, 2)
    s = Fixed(space, plan=[a, b, a])
    s.ask(1), s.ask(1), s.ask(1)
    assert s.pending == [Query(a), Query(b), Query(a)]
    s.tell([Evaluation(a, objective=1.0)])
    assert s.pending == [Query(b), Query(a)]
    s.tell([Evaluation(a, objective=1.0)])
    assert s.pending == [Query(b)]
    with pytest.raises(ValueError, match="not asked"):
        s.tell([Evaluation(a, objective=1.0)])
    # a batch answering more than is pending is refused whole: nothing is told
    with pytest.raises(ValueError, match="not asked"):
        s.tell([Evaluation(b, objective=1.0), Evaluation(b, objective=2.0)])
    assert s.pending == [Query(b)] and len(s.history) == 2
    s.tell([Evaluation(b, objective=3.0)])
    assert s.pending == [] and [e.objective for e in s.history] == [1.0, 1.0, 3.0]


def test_told_history_drops_report_only_metrics(space: SearchSpace) -> None:
    (a,) = _archs(space, 1)
    s = Fixed(space, plan=[a])
    s.ask(1)
    s.tell([Evaluation(a, objective=1.0, metrics={"m": 2.0}, reported={"test_acc": 9.0})])
    assert s.history[0].reported == {} and s.history[0].metrics == {"m": 2.0}


def test_draw_new_skips_asked_and_taken_then_falls_back(space: SearchSpace) -> None:
    a, b, c = _archs(space, 3)
    s = Fixed(space, plan=[a])
    s.ask(1)  # a is asked
    draws = iter([a, b, c])
    assert s.draw_new(lambda: next(draws), tries=3, taken=[b]) == c
    draws = iter([b])
    assert s.draw_new(lambda: next(draws), tries=1) == b
    # a distribution collapsed onto asked architectures: a random new one after ``tries`` draws
    calls = []

    def stuck() -> Architecture:
        calls.append(1)
        return a

    got = s.draw_new(stuck, tries=4)
    assert len(calls) == 4 and isinstance(got, Architecture) and got != a and space.contains(got)


def test_sample_new_avoids_asked_architectures_per_fidelity() -> None:
    tiny = ChainSpace(stages=1, depths=(1, 2), kernels=(3, 5), expands=(3,))
    everything = list(tiny.enumerate())
    s = Fixed(tiny, plan=[everything[:-1]])
    s.ask(len(everything))
    for _ in range(5):
        assert s.sample_new() == everything[-1]
        assert s.was_asked(everything[0]) and not s.was_asked(everything[0], "cheap")


def test_best_takes_the_highest_ok_objective_at_the_fidelity_asked(space: SearchSpace) -> None:
    a, b, c = _archs(space, 3)
    s = Fixed(space, plan=[[Query(a), Query(b, "cheap"), Query(c)]])
    assert s.best() is None
    s.ask(3)
    s.tell([Evaluation(a, objective=-3.0), Evaluation(b, "cheap", objective=5.0),
            Evaluation.failure(c, "default", "x")])
    best = s.best()
    assert best is not None and best.arch == b and best.objective == 5.0
    best_default = s.best("default")
    assert best_default is not None and best_default.arch == a and best_default.objective == -3.0
    assert s.best("expensive") is None


def test_state_dict_of_a_plain_strategy_and_its_checks(space: SearchSpace) -> None:
    s = RandomSearch(space, seed=5)
    s.ask(2)
    state = s.state_dict()
    assert state["own"] == {} and state["n_told"] == 0 and state["seed"] == 5 and len(state["pending"]) == 2
    assert s.report() == {}
    fresh = RandomSearch(space, seed=0)
    fresh.load_state_dict(state)
    assert fresh.seed == 5 and fresh.pending == s.pending and fresh.ask(3) == s.ask(3)
    assert fresh.was_asked(state["pending"][0][0])
    with pytest.raises(ValueError, match="saved after 0 told evaluations"):
        RandomSearch(space).load_state_dict(state, history=[Evaluation(state["pending"][0][0], objective=1.0)])
    with pytest.raises(ValueError, match="state is for strategy"):
        Fixed(space).load_state_dict(state)
