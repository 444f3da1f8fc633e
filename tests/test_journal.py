"""The SQLite journal and the JSON state encoding it stores snapshots with."""

from __future__ import annotations

import math
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from engine import serialize
from engine.journal import Journal, JournalError
from engine.spaces import get_space
from engine.strategies import create_strategy
from engine.types import Evaluation, Status


def _evals() -> list[Evaluation]:
    space = get_space("nb201")
    a, b = space.architecture([3] * 6), space.architecture([1, 2, 3, 4, 0, 1])
    return [
        Evaluation(a, objective=91.5, metrics={"val_acc": 91.5, "loss": float("inf")}, reported={"test_acc": 94.1},
                   cost=2.5),
        Evaluation.failure(b, "cheap", "RuntimeError: diverged", cost=0.25),
        Evaluation(a, objective=91.5, metrics={"val_acc": 91.5}, cost=0.0, cached=True),
        Evaluation(b, fidelity="expensive", status=Status.SKIPPED, error="budget spent"),
    ]


def test_evaluations_round_trip(tmp_path: Path) -> None:
    evals = _evals()
    with Journal(tmp_path / "j.sqlite") as j:
        assert len(j) == 0 and j.last_id() == 0 and j.load_state() is None
        assert j.append(evals[:2]) == 2
        assert j.append(evals[2:]) == 4
    with Journal(tmp_path / "j.sqlite") as j:  # reopened: everything persisted
        rows = list(j.evaluations())
        assert [rid for rid, _ in rows] == [1, 2, 3, 4]
        got = [e for _, e in rows]
        for g, e in zip(got, evals):
            assert (g.arch, g.arch.string, g.fidelity, g.status, g.objective, g.error, g.cached, g.cost) == (
                e.arch, e.arch.string, e.fidelity, e.status, e.objective, e.error, e.cached, e.cost
            )
            assert dict(g.reported) == dict(e.reported)
        assert math.isinf(got[0].metrics["loss"]) and got[0].metrics["val_acc"] == 91.5
        assert [rid for rid, _ in j.evaluations(after=1, upto=3)] == [2, 3]


def test_only_the_latest_snapshot_is_kept(tmp_path: Path) -> None:
    space = get_space("nb201")
    strategy = create_strategy("regularized_evolution", space, seed=1)
    with Journal(tmp_path / "j.sqlite") as j:
        j.save_state({"n": 1}, last_evaluation=3)
        state = strategy.state_dict()
        j.save_state({"strategy": state, "wall_seconds": 1.5}, last_evaluation=7)
        loaded, last = j.load_state()  # type: ignore[misc]
        assert last == 7 and loaded["strategy"] == state and loaded["wall_seconds"] == 1.5
        assert j._db.execute("SELECT COUNT(*) FROM states").fetchone()[0] == 1


def test_meta(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as j:
        assert j.get_meta("config", "none") == "none"
        j.set_meta("config", {"seed": 3, "budget": {"evaluations": 10}})
        j.set_meta("config", {"seed": 4})
    with Journal(tmp_path / "j.sqlite") as j:
        assert j.get_meta("config") == {"seed": 4}


def _try_open(path: str, queue: mp.Queue) -> None:
    try:
        Journal(path).close()
        queue.put("opened")
    except JournalError as exc:
        queue.put(str(exc))


def test_a_journal_is_locked_by_its_search(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    ctx = mp.get_context("fork")
    with Journal(path):
        queue: mp.Queue = ctx.Queue()
        p = ctx.Process(target=_try_open, args=(str(path), queue))
        p.start()
        p.join(30)
        assert "in use by another search" in queue.get(timeout=5)
        with pytest.raises(JournalError, match="in use"):  # also within one process
            Journal(path)
    with Journal(path):  # released on close
        pass


def test_not_a_journal_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    before = path.read_bytes()
    with pytest.raises(JournalError, match=str(path)):
        Journal(path)
    assert path.read_bytes() == before


def test_serialize_round_trip() -> None:
    space = get_space("chain")
    arch = space.sample(np.random.default_rng(0))
    state = {
        "arch": arch,
        "archs": [arch, (arch, 1.5)],
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "ints": np.int64(7),
        "by_arch": {arch: 3},
        "nan": float("nan"),
        "rng": np.random.default_rng(5).bit_generator.state,
        "nested": {"a": [None, True, "x"]},
    }
    back = serialize.loads(serialize.dumps(state))
    assert back["arch"] == arch and back["arch"].string == arch.string
    assert back["archs"] == [arch, (arch, 1.5)] and isinstance(back["archs"][1], tuple)
    assert back["array"].dtype == np.float32 and np.array_equal(back["array"], state["array"])
    assert back["ints"] == 7 and back["by_arch"] == {arch: 3} and math.isnan(back["nan"])
    assert back["rng"] == state["rng"] and back["nested"] == state["nested"]
    with pytest.raises(TypeError, match="cannot serialise object"):
        serialize.dumps({"x": object()})
    with pytest.raises(ValueError, match="object arrays"):
        serialize.loads('{"__ndarray__": "", "dtype": "|O", "shape": [0]}')
