"""The SQLite journal and the JSON state encoding it stores snapshots with."""

from __future__ import annotations

import fcntl
import math
import multiprocessing as mp
import os
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


def _lock_file(path: Path) -> Path:
    return Path(f"{path}.lock")


def test_close_removes_the_lock_file(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    assert not _lock_file(path).exists()
    with Journal(path) as j:
        assert _lock_file(path).exists()  # held while open
        j.append(_evals()[:1])
    assert not _lock_file(path).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.sqlite"]
    path.write_bytes(b"not a journal")  # a refused open closes too, and leaves no lock behind
    with pytest.raises(JournalError):
        Journal(path)
    assert not _lock_file(path).exists()


def test_a_stale_lock_file_of_a_killed_search_is_reused_then_removed(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    _lock_file(path).touch()  # what a killed process leaves: an empty file nobody locks
    with Journal(path), pytest.raises(JournalError, match="in use"):
        Journal(path)
    assert not _lock_file(path).exists()


def test_an_open_racing_with_the_removal_does_not_lock_the_removed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between our open and our flock the holder closes (removing the file) and a third search locks a new one."""
    import engine.journal as journal_module

    path = tmp_path / "j.sqlite"
    real_flock = fcntl.flock
    third: list[int] = []

    def racing_flock(fd: int, op: int) -> None:
        if not third and op & fcntl.LOCK_EX:
            os.unlink(_lock_file(path))
            third.append(os.open(_lock_file(path), os.O_RDWR | os.O_CREAT, 0o644))
            real_flock(third[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        real_flock(fd, op)

    monkeypatch.setattr(journal_module.fcntl, "flock", racing_flock)
    with pytest.raises(JournalError, match="in use"):  # the third search holds the journal now
        Journal(path)
    monkeypatch.undo()
    real_flock(third[0], fcntl.LOCK_UN)
    os.close(third[0])
    with Journal(path) as j:  # once it is gone, the journal opens and its lock is the file at the path
        assert os.path.samestat(os.fstat(j._lock_fd), os.stat(_lock_file(path)))


def _close_inherited(journal: Journal) -> None:
    journal.close()


def test_a_forked_child_closing_an_inherited_journal_keeps_the_parents_lock(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    ctx = mp.get_context("fork")
    with Journal(path) as j:
        p = ctx.Process(target=_close_inherited, args=(j,))
        p.start()
        p.join(30)
        assert p.exitcode == 0
        assert _lock_file(path).exists()
        with pytest.raises(JournalError, match="in use"):
            Journal(path)
        j.append(_evals()[:1])  # the parent's journal still works
    assert not _lock_file(path).exists()


def _open_close_many(path: str, marker: str, n: int, queue: mp.Queue) -> None:
    opened = overlaps = 0
    for _ in range(n):
        try:
            j = Journal(path)
        except JournalError:
            continue
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # fails if another holder is inside
        except FileExistsError:
            overlaps += 1
        else:
            opened += 1
            os.close(fd)
            os.unlink(marker)
        j.close()
    queue.put((opened, overlaps))


def test_opens_stay_exclusive_while_closes_remove_the_lock_file(tmp_path: Path) -> None:
    path, marker = str(tmp_path / "j.sqlite"), str(tmp_path / "inside")
    Journal(path).close()
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_open_close_many, args=(path, marker, 40, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(o for o, _ in results) > 0
    assert [v for _, v in results] == [0, 0, 0]  # never two holders at once
    assert not _lock_file(Path(path)).exists()
