"""The shared evaluation store: round trips, claims, concurrent jobs, killed jobs, stale leases, bad files.

Real SQLite files and real processes (spawned, so each job is a fresh interpreter as in a sweep).
"""

from __future__ import annotations

import concurrent.futures
import copy
import json
import logging
import math
import multiprocessing
import os
import pickle
import signal
import socket
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.spaces import Architecture, NB201Space
from engine.store import EvaluationStore, StoredOracle, StoreError, fingerprint
from engine.testing import ToyOracle
from engine.types import Evaluation, Status

FP = fingerprint({"oracle": "toy", "seed": 3})
FID = "default"


class _Slow:
    """ToyOracle that takes ``sleep`` seconds per architecture and appends ``pid arch`` to a trace first."""

    def __init__(self, inner: ToyOracle, trace: str | Path, sleep: float = 0.05) -> None:
        self.inner = inner
        self.trace = str(trace)
        self.sleep = sleep
        self.calls: list[str] = []

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        for a in archs:
            self.calls.append(a.string)
            fd = os.open(self.trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, f"{os.getpid()} {a.string}\n".encode())
            finally:
                os.close(fd)
            time.sleep(self.sleep)
        return self.inner.evaluate(archs)


class _Raising:
    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        raise RuntimeError("simulated crash")


class _Failing:
    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        self.calls += len(archs)
        return [Evaluation.failure(a, FID, "diverged", cost=1.0) for a in archs]


def _space() -> NB201Space:
    return NB201Space()  # not get_space: it loads every space plugin, seconds in each spawned job


def _archs(n: int, seed: int = 0) -> list[Architecture]:
    space, rng = _space(), np.random.default_rng(seed)
    out: dict[str, Architecture] = {}
    while len(out) < n:
        a = space.sample(rng)
        out[a.string] = a
    return list(out.values())


def _values(e: Evaluation) -> list[Any]:
    """What must be the same with or without the store, in a JSON-able form."""
    return [e.arch.string, e.objective, dict(e.metrics), dict(e.reported), e.cost, e.status.value]


def _trace(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    return [(int(p), s) for p, s in (line.split(" ", 1) for line in path.read_text().splitlines())]


def _fake_claim(path: Path, arch: Architecture, host: str, heartbeat: float, lease: float, pid: int = 4242) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO entries (fingerprint, fidelity, arch, owner, host, pid, heartbeat, lease)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (FP, FID, arch.string, f"{host}:{pid}:x", host, pid, heartbeat,
                                                        lease))


# -- 1. round trip ---------------------------------------------------------------------------------
def test_round_trip_keeps_values_and_skips_failures(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "store.sqlite"
    a, b, c = _archs(3)
    odd = Evaluation(arch=a, fidelity=FID, objective=71.25, metrics={"x": math.inf, "y": math.nan, "z": 0.1},
                     reported={"r": -math.inf}, cost=2.5)
    with EvaluationStore(path) as store:
        assert store.claim(FP, FID, [a, b]) == ({}, [], [0, 1])
        store.put(FP, FID, [odd, Evaluation.failure(b, FID, "diverged")])
        assert store.stats()["results"] == 1 and store.stats()["claims"] == 0
    other = Architecture(a.space, a.decisions, a.string)
    with EvaluationStore(path) as store:
        found, busy, claimed = store.claim(FP, "cheap-fid", [other])  # fidelity is part of the key
        assert (found, busy, claimed) == ({}, [], [0])
        found, busy, claimed = store.claim(FP, FID, [other, b])
        assert busy == [] and claimed == [1]  # the failure was not stored
        e = found[0]
        assert e.arch is other and e.fidelity == FID and not e.cached and e.status is Status.OK
        assert (e.objective, e.cost, dict(e.reported)) == (71.25, 2.5, {"r": -math.inf})
        assert e.metrics["x"] == math.inf and math.isnan(e.metrics["y"]) and e.metrics["z"] == 0.1
        store.claim(FP, FID, [c])
    with EvaluationStore(path) as store:  # close() released the claims on b and c
        assert store.claim(FP, FID, [b, c])[2] == [0, 1]

    # Through StoredOracle: the stored values are the oracle's, in a new store too.
    toy = ToyOracle(_space(), seed=3)
    archs = _archs(6, seed=1)
    direct = toy.evaluate(archs)
    with EvaluationStore(tmp_path / "o.sqlite") as store:
        first = StoredOracle(toy, store, FP, FID)
        assert first.evaluate(archs) == direct and (first.evaluated, first.hits) == (6, 0)
    with EvaluationStore(tmp_path / "o.sqlite") as store:
        second = StoredOracle(toy, store, FP, FID)
        assert second.evaluate(archs[::-1]) == direct[::-1] and (second.evaluated, second.hits) == (0, 6)
        # Forwarding, copying and pickling (the store re-opens as a new owner).
        assert second.space is toy.space and not hasattr(second, "covers")
        assert copy.copy(second).inner is toy
        clone = pickle.loads(pickle.dumps(second))
        assert clone.evaluate(archs[:2]) == direct[:2] and clone.hits == 8
        assert clone.store.owner != store.owner
        clone.store.close()


def test_duplicates_are_measured_once(tmp_path: Path) -> None:
    a, b, c, d = _archs(4)
    toy = ToyOracle(_space(), seed=3)
    with EvaluationStore(tmp_path / "s.sqlite") as store:
        assert store.claim(FP, FID, [a, a]) == ({}, [1], [0])
        store.put(FP, FID, toy.evaluate([a]))
        found, busy, claimed = store.claim(FP, FID, [a, a])
        assert sorted(found) == [0, 1] and busy == claimed == []
        slow = _Slow(toy, tmp_path / "trace", sleep=0)
        oracle = StoredOracle(slow, store, FP, FID)
        out = oracle.evaluate([b, a, b])
        assert slow.calls == [b.string] and [_values(e) for e in out] == [_values(e) for e in toy.evaluate([b, a, b])]
        out = oracle.evaluate([d, c, d, b, c])
        assert slow.calls == [b.string, d.string, c.string] and out == toy.evaluate([d, c, d, b, c])


# -- 2. fingerprints -----------------------------------------------------------------------------------
def test_fingerprints(tmp_path: Path) -> None:
    cfg = {"oracle": {"lr": 0.1, "epochs": 12}, "dataset": "cifar10", "seed": 0, "root": tmp_path}
    same = {"seed": 0, "root": tmp_path, "dataset": "cifar10", "oracle": {"epochs": 12, "lr": 0.1}}
    assert fingerprint(cfg) == fingerprint(same) and len(fingerprint(cfg)) == 64
    assert len({fingerprint(cfg), fingerprint({**cfg, "seed": 1}), fingerprint({**cfg, "oracle": {"lr": 0.1}})}) == 3
    a = _archs(1)[0]
    toy = ToyOracle(_space(), seed=3)
    with EvaluationStore(tmp_path / "s.sqlite") as store:
        store.claim(fingerprint(cfg), FID, [a])
        store.put(fingerprint(cfg), FID, toy.evaluate([a]))
        assert store.claim(fingerprint(same), FID, [a])[0]
        assert store.claim(fingerprint({**cfg, "seed": 1}), FID, [a])[2] == [0]
        assert store.claim(fingerprint(cfg), "cheap", [a])[2] == [0]


# -- 3. concurrent jobs -----------------------------------------------------------------------------------
def _sweep_job(path: str, trace: str, out: str, strings: list[str], barrier: Any) -> None:
    space = _space()
    archs = [space.parse(s) for s in strings]
    with EvaluationStore(path, poll_seconds=0.02) as store:
        oracle = StoredOracle(_Slow(ToyOracle(space, seed=3), trace), store, FP, FID, timeout=60)
        barrier.wait(timeout=60)
        evals: list[Evaluation] = []
        for k in range(0, len(archs), 3):
            evals.extend(oracle.evaluate(archs[k : k + 3]))
        counts = {"hits": oracle.hits, "evaluated": oracle.evaluated, "waited": oracle.waited}
    Path(out).write_text(json.dumps({"evals": [_values(e) for e in evals], **counts}))


def test_concurrent_jobs_evaluate_each_architecture_once(tmp_path: Path) -> None:
    pool = _archs(40, seed=7)
    lists = []
    for k in range(3):
        idx = np.random.default_rng(k).permutation(len(pool))[:30]
        lists.append([pool[i].string for i in idx])
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    path, trace = tmp_path / "store.sqlite", tmp_path / "trace"
    jobs = [ctx.Process(target=_sweep_job, args=(str(path), str(trace), str(tmp_path / f"out{k}.json"), lists[k],
                                                  barrier)) for k in range(3)]
    for p in jobs:
        p.start()
    for p in jobs:
        p.join(timeout=120)
        if p.is_alive():
            p.kill()
        assert p.exitcode == 0, f"job exited with {p.exitcode}"
    traced = [s for _, s in _trace(trace)]
    distinct = {s for strings in lists for s in strings}
    assert sorted(traced) == sorted(distinct), "an architecture was evaluated twice, or not at all"
    toy, space = ToyOracle(_space(), seed=3), _space()
    outs = [json.loads((tmp_path / f"out{k}.json").read_text()) for k in range(3)]
    for strings, got in zip(lists, outs):
        expected = json.loads(json.dumps([_values(e) for e in toy.evaluate([space.parse(s) for s in strings])]))
        assert got["evals"] == expected
    assert sum(o["evaluated"] for o in outs) == len(distinct)
    assert sum(o["hits"] for o in outs) == 90 - len(distinct)
    with EvaluationStore(path) as store:
        stats = store.stats()
    assert (stats["results"], stats["claims"]) == (len(distinct), 0)


# -- 4. a killed job ---------------------------------------------------------------------------------------
def _killed_job(path: str, trace: str, string: str) -> None:
    space = _space()
    store = EvaluationStore(path, lease_seconds=600)
    StoredOracle(_Slow(ToyOracle(space, seed=3), trace, sleep=120), store, FP, FID).evaluate([space.parse(string)])


def test_claim_of_killed_job_is_taken_over_at_once(tmp_path: Path) -> None:
    a = _archs(1, seed=5)[0]
    path, trace = tmp_path / "store.sqlite", tmp_path / "trace"
    EvaluationStore(path).close()
    child = multiprocessing.get_context("spawn").Process(target=_killed_job, args=(str(path), str(trace), a.string))
    child.start()
    deadline = time.monotonic() + 60
    while not _trace(trace) and time.monotonic() < deadline and child.is_alive():
        time.sleep(0.02)
    assert _trace(trace) == [(child.pid, a.string)], "the child never started evaluating"
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("SELECT pid, status FROM entries").fetchall() == [(child.pid, None)]

    toy = ToyOracle(_space(), seed=3)
    with EvaluationStore(path, lease_seconds=600) as store:
        slow = _Slow(toy, trace, sleep=0)
        started = time.monotonic()
        assert StoredOracle(slow, store, FP, FID, timeout=10).evaluate([a]) == toy.evaluate([a])
        assert time.monotonic() - started < 5, "waited for the lease of a dead job"
        assert slow.calls == [a.string] and store.counts["taken_over"] == 1
    with EvaluationStore(path) as store:
        found, _, _ = store.claim(FP, FID, [a])
        assert [_values(e) for e in found.values()] == [_values(e) for e in toy.evaluate([a])]


# -- 5. claims of other hosts -----------------------------------------------------------------------------
def test_claims_of_other_hosts_expire_with_their_lease(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b = _archs(2, seed=9)
    path = tmp_path / "store.sqlite"
    toy = ToyOracle(_space(), seed=3)
    with EvaluationStore(path, poll_seconds=0.05) as store:
        _fake_claim(path, a, "node-b", heartbeat=time.time() - 3600, lease=60)
        oracle = StoredOracle(toy, store, FP, FID, timeout=10)
        started = time.monotonic()
        assert oracle.evaluate([a]) == toy.evaluate([a])
        assert time.monotonic() - started < 2 and store.counts["taken_over"] == 1 and oracle.waited == 0

        written = time.time()
        _fake_claim(path, b, "node-b", heartbeat=written, lease=1.0)
        assert store.claim(FP, FID, [b]) == ({}, [0], [])
        with caplog.at_level(logging.INFO, logger="engine.store"), pytest.raises(TimeoutError, match="node-b"):
            store.wait(FP, FID, [b], timeout=0.3)
        waits = [r for r in caplog.records if "waiting for" in r.getMessage()]
        assert len(waits) == 1 and "node-b:4242:x" in waits[0].getMessage() and b.string in waits[0].getMessage()
        assert oracle.evaluate([b]) == toy.evaluate([b])
        assert time.time() - written >= 1.0 and oracle.waited == 1 and oracle.evaluated == 2

        # A fresh claim on this host by a process that runs is waited for, not taken.
        _fake_claim(path, _archs(3, seed=9)[2], socket.gethostname(), time.time(), lease=60, pid=os.getpid())
        assert store.claim(FP, FID, _archs(3, seed=9)[2:])[1] == [0]


# -- 6. failures release claims ---------------------------------------------------------------------------
def test_failures_release_claims(tmp_path: Path) -> None:
    a, b = _archs(2, seed=11)
    path = tmp_path / "store.sqlite"
    with EvaluationStore(path) as first, EvaluationStore(path) as second:
        with pytest.raises(RuntimeError, match="simulated crash"):
            StoredOracle(_Raising(), first, FP, FID).evaluate([a, b])
        assert first.stats()["claims"] == 0
        assert second.claim(FP, FID, [a, b]) == ({}, [], [0, 1])
        second.release(FP, FID, [a, b])

        failing = _Failing()
        oracle = StoredOracle(failing, first, FP, FID)
        out = oracle.evaluate([a])
        assert [e.status for e in out] == [Status.FAILED] and out[0].error == "diverged"
        assert (first.stats()["results"], first.stats()["claims"]) == (0, 0)
        oracle.evaluate([a])
        assert failing.calls == 2 and oracle.evaluated == 2

        # A waiter sees a released claim vanish and is told to claim it itself.
        assert first.claim(FP, FID, [b])[2] == [0]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(second.wait, FP, FID, [b], 30)
            time.sleep(0.3)
            assert not waiting.done()
            first.release(FP, FID, [b])
            assert waiting.result(timeout=10) == {}


# -- 7. files that are not stores ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["foreign sqlite", "junk", "empty"])
def test_non_store_files_are_refused_untouched(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "store.sqlite"
    if kind == "foreign sqlite":
        with closing(sqlite3.connect(path)) as db, db:
            db.execute("CREATE TABLE results (x INTEGER)")
            db.execute("INSERT INTO results VALUES (1)")
    else:
        path.write_bytes(b"" if kind == "empty" else b"this is not a database\n" * 100)
    before, listing = path.read_bytes(), sorted(os.listdir(tmp_path))
    with pytest.raises(StoreError, match=str(path)):
        EvaluationStore(path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == listing


# -- heartbeat, fork --------------------------------------------------------------------------------------
def test_heartbeat_keeps_claims_alive(tmp_path: Path) -> None:
    a = _archs(1, seed=13)[0]
    path = tmp_path / "store.sqlite"
    with EvaluationStore(path, lease_seconds=0.4) as holder, EvaluationStore(path) as other:
        assert holder.claim(FP, FID, [a])[2] == [0]
        time.sleep(1.0)  # 2.5 leases: without the heartbeat the claim would look stale
        assert other.claim(FP, FID, [a]) == ({}, [0], [])
        with closing(sqlite3.connect(path)) as db:
            (beat,) = db.execute("SELECT heartbeat FROM entries").fetchone()
        assert time.time() - beat < 0.4
