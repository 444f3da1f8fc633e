"""The asynchronous search loop: workers kept busy, results told as they arrive, budgets exact, resume."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from engine.fidelity import EpochView, fidelity_epochs
from engine.journal import Journal
from engine.search import Budget, Search
from engine.spaces import Architecture, SearchSpace, get_space
from engine.strategies import Strategy, create_strategy
from engine.testing import ToyOracle
from engine.types import DEFAULT_FIDELITY, Evaluation, Oracle

SPACE = get_space("nb201")


class SlowEpochOracle:
    """A toy epoch oracle whose calls sleep: longer for more epochs and for some architectures.

    Records how many calls ran at once and the order in which calls started and ended, so the
    tests can see what the loop overlapped.
    """

    def __init__(self, space: SearchSpace, epochs: int = 9, unit: float = 0.01, concurrent: bool = True) -> None:
        self.toy = ToyOracle(space, seed=3)
        self.epochs = epochs
        self.unit = unit
        self.concurrent = concurrent
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.events: list[tuple[str, str, int]] = []  # (start|end, arch, epochs)
        self.ended: dict[str, float] = {}  # arch -> when its last call ended

    def _seconds(self, arch: Architecture, epochs: int) -> float:
        return self.unit * epochs * (1 + zlib.crc32(arch.string.encode()) % 4)

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        return self.evaluate_epochs(archs, self.epochs)

    def evaluate_epochs(self, archs: Sequence[Architecture], epochs: int) -> list[Evaluation]:
        out = []
        for arch in archs:
            with self._lock:
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
                self.events.append(("start", arch.string, epochs))
            time.sleep(self._seconds(arch, epochs))
            truth = self.toy.true_objective(arch)
            objective = truth - 5.0 / epochs * (zlib.crc32(arch.string.encode()) % 7)
            with self._lock:
                self.running -= 1
                self.events.append(("end", arch.string, epochs))
                self.ended[arch.string] = time.monotonic()
            out.append(Evaluation(arch=arch, objective=objective, metrics={"objective": objective},
                                  cost=self._seconds(arch, epochs)))
        return out


def rung_oracles(strategy: Strategy, oracle: SlowEpochOracle) -> dict[str, Oracle]:
    out: dict[str, Oracle] = {}
    for fid in strategy.fidelities:
        epochs = fidelity_epochs(fid)
        out[fid] = oracle if epochs is None else EpochView(oracle, epochs)  # type: ignore[arg-type]
    return out


def history_keys(history: Sequence[Evaluation]) -> list[tuple[str, str, float | None]]:
    return [(e.arch.string, e.fidelity, e.objective) for e in history]


def test_one_worker_asynchronous_is_the_synchronous_search() -> None:
    """With one evaluation at a time there is nothing to overlap: the same search, evaluation for evaluation."""
    runs = []
    for asynchronous in (False, True):
        strategy = create_strategy("regularized_evolution", SPACE, seed=4)
        result = Search(strategy, ToyOracle(SPACE, seed=1), Budget(evaluations=40), asynchronous=asynchronous).run()
        runs.append(history_keys(result.history))
    assert len(runs[0]) == 40
    assert runs[0] == runs[1]


def test_asha_keeps_every_worker_busy_and_promotes_while_others_run() -> None:
    strategy = create_strategy("asha", SPACE, seed=0, max_epochs=9)
    oracle = SlowEpochOracle(SPACE)
    result = Search(strategy, rung_oracles(strategy, oracle), Budget(evaluations=60), batch_size=4,
                    asynchronous=True).run()
    assert result.evaluations == 60  # never more than the budget, although 4 run at once
    assert len(result.history) == 60
    assert oracle.most_at_once == 4
    # A promotion started while a lower-rung training of another configuration was still running:
    # the rung did not wait for its stragglers.
    running: set[tuple[str, int]] = set()
    overlapped = False
    for kind, arch, epochs in oracle.events:
        if kind == "start" and epochs > 1 and any(e < epochs for a, e in running if a != arch):
            overlapped = True
        (running.add if kind == "start" else running.discard)((arch, epochs))
    assert overlapped
    fids = {e.fidelity for e in result.history}
    assert fids == set(strategy.fidelities)  # promotions reached the full training
    # Four workers for the whole search but the last results: busy most of the time.
    assert result.busy_seconds / (4 * result.wall_seconds) > 0.7


def test_results_are_told_in_the_order_they_finish() -> None:
    strategy = create_strategy("random", SPACE, seed=2)
    oracle = SlowEpochOracle(SPACE, unit=0.02)
    result = Search(strategy, oracle, Budget(evaluations=12), batch_size=3, asynchronous=True).run()
    starts = [a for kind, a, _ in oracle.events if kind == "start"]
    told = [e.arch.string for e in result.history]
    assert sorted(told) == sorted(starts)
    assert told != starts  # some short evaluation overtook a long one
    for i, a in enumerate(told):  # told in the order they ended (up to ties closer than 10 ms)
        assert all(oracle.ended[a] < oracle.ended[b] + 0.01 for b in told[i + 1:])


def test_an_oracle_that_is_not_concurrent_is_called_one_at_a_time() -> None:
    strategy = create_strategy("random", SPACE, seed=2)
    oracle = SlowEpochOracle(SPACE, concurrent=False)
    result = Search(strategy, oracle, Budget(evaluations=8), batch_size=3, asynchronous=True).run()
    assert result.evaluations == 8
    assert oracle.most_at_once == 1


def test_per_fidelity_budget_counts_running_evaluations() -> None:
    strategy = create_strategy("asha", SPACE, seed=1, max_epochs=9)
    oracle = SlowEpochOracle(SPACE, unit=0.005)
    cap = {DEFAULT_FIDELITY: 2}
    result = Search(strategy, rung_oracles(strategy, oracle), Budget(evaluations=50, per_fidelity=cap),
                    batch_size=4, asynchronous=True).run()
    full = [e for e in result.history if e.fidelity == DEFAULT_FIDELITY and not e.cached and e.ok]
    assert len(full) <= 2
    assert sum(1 for kind, _, ep in oracle.events if kind == "start" and ep == 9) == len(full)


class Stop(BaseException):
    """Ends a search from a callback, as a kill would, while other evaluations are running."""


def test_a_killed_asynchronous_search_resumes_what_was_running(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    budget = Budget(evaluations=30)

    class KillAfter:
        def __init__(self, n: int) -> None:
            self.n = n

        def on_evaluations(self, search: Search, evaluations: Sequence[Evaluation]) -> None:
            if search.n_evaluations >= self.n:
                raise Stop

    strategy = create_strategy("asha", SPACE, seed=5, max_epochs=9)
    first = SlowEpochOracle(SPACE, unit=0.005)
    with Journal(path) as journal, pytest.raises(Stop):
        Search(strategy, rung_oracles(strategy, first), budget, journal=journal, batch_size=3,
               asynchronous=True, callbacks=[KillAfter(12)]).run()
    time.sleep(0.5)  # let the abandoned worker threads finish (their results were never journaled)
    with Journal(path) as journal:
        snap = journal.load_state()
        assert snap is not None
        pending = [tuple(p) for p in snap[0]["strategy"]["pending"]]
        assert pending  # the kill came while evaluations were running
        done = len(journal)
    assert done >= 12
    again = create_strategy("asha", SPACE, seed=5, max_epochs=9)
    second = SlowEpochOracle(SPACE, unit=0.005)
    with Journal(path) as journal:
        result = Search(again, rung_oracles(again, second), budget, journal=journal, batch_size=3,
                        asynchronous=True).run()
        rows = [ev for _, ev in journal.evaluations()]
    assert result.evaluations == 30
    assert len(rows) == 30
    first_started = [(a, e) for kind, a, e in second.events if kind == "start"][: len(pending)]
    assert sorted(first_started) == sorted((a.string, fidelity_epochs(f) or 9) for a, f in pending)
    assert len({(e.arch.string, e.fidelity) for e in rows}) == 30  # nothing measured twice


def test_asynchronous_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="asynchronous must be true or false"):
        Search(create_strategy("random", SPACE), ToyOracle(SPACE), Budget(evaluations=3),
               asynchronous="yes")  # type: ignore[arg-type]
