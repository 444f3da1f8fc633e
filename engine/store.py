"""A store of evaluations shared by concurrent searches (SQLite, WAL mode).

Jobs of a sweep (joblib, SLURM) often ask for the same architecture under the
same oracle settings. The store lets one of them measure it while the others
wait for its result, or take it at once when it is already stored. A row is
keyed by ``(fingerprint, fidelity, arch string)`` and holds either a finished
result or a *claim*: who is measuring it (owner, host, pid) and when it last
said it was alive (heartbeat).

A claim dies with its owner: on the same host as soon as its pid no longer runs
(a SIGKILLed job's claims are taken over at once), elsewhere when its heartbeat
is older than the owner's lease. Only OK evaluations become results: a failure
may be transient, so it just releases the claim and the next caller tries again.

SQLite's WAL mode needs shared memory between the processes using a file, so
jobs on *different hosts* need a filesystem whose locking SQLite supports; on
NFS prefer one store per node or a local disk shared by the jobs of a node.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.journal import _finite_json, _from_json, new_database
from engine.spaces import Architecture
from engine.types import Evaluation, Oracle, Status

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 120.0
"""How long a writer waits for another one's transaction before SQLite gives up."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    fingerprint TEXT NOT NULL, fidelity TEXT NOT NULL, arch TEXT NOT NULL,
    status TEXT, objective REAL, metrics TEXT, reported TEXT, cost REAL, error TEXT,
    owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL, lease REAL NOT NULL,
    PRIMARY KEY (fingerprint, fidelity, arch)
);
"""
_KEY = "fingerprint = ? AND fidelity = ? AND arch = ?"
_SELECT = ("SELECT status, objective, metrics, reported, cost, error, owner, host, pid, heartbeat, lease"
           f" FROM entries WHERE {_KEY}")


def fingerprint(config: Mapping[str, Any]) -> str:
    """The sha256 hex digest of the canonical JSON of ``config``.

    Pass everything that determines a result (the resolved oracle config, the
    dataset, the seed policy): two jobs share results exactly when their
    fingerprints are equal. Key order does not matter; values JSON cannot hold
    (paths, enums) count through their ``str``.
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class StoreError(RuntimeError):
    """A store file that cannot be used: not a store database, or another schema."""


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        pass
    return True


class EvaluationStore:
    """Results and claims of evaluations in one SQLite file shared by processes.

    Args:
        path: The SQLite file; created (with its parent folders) if missing.
        lease_seconds: How long a claim of ours outlives our last heartbeat for
            processes on other hosts; the heartbeat thread refreshes it every quarter.
        poll_seconds: How often :meth:`wait` looks for the results it waits for.

    Raises:
        StoreError: if the file is not a store; it is left untouched.
    """

    def __init__(self, path: str | os.PathLike[str], *, lease_seconds: float = 60.0, poll_seconds: float = 0.2) -> None:
        self.path = Path(path)
        self.lease_seconds = float(lease_seconds)
        self.poll_seconds = float(poll_seconds)
        self.counts = dict.fromkeys(("found", "busy", "claimed", "taken_over", "stored", "released", "waited"), 0)
        self._db: sqlite3.Connection | None = None
        self._inherited: sqlite3.Connection | None = None
        self._open(create=True)

    def _open(self, create: bool = False) -> None:
        """Open the file as a new owner (again in a process forked from the opener)."""
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:12]}"
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                self._create()
            self._check()
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"evaluation store {self.path} cannot be opened: {exc}") from None

    def _conn(self) -> sqlite3.Connection:
        """Our connection; a forked child opens its own, as the parent's and its owner id are not its."""
        if self._db is None:
            raise StoreError(f"evaluation store {self.path} is closed")
        if os.getpid() != self.pid:
            self._inherited = self._db  # never closed here: closing could disturb the parent's locks
            self._open()
        assert self._db is not None
        return self._db

    # -- file ---------------------------------------------------------------
    def _create(self) -> None:
        """Build the schema under a temporary name and link it into place.

        A link fails when the path exists, so of several jobs starting at once one
        creates the store and the others open it; a store file always has its schema.
        """
        with new_database(self.path, self.owner.replace(":", "."), _SCHEMA, SCHEMA_VERSION) as tmp:
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another job created it first: use theirs
            except OSError:  # a filesystem without hard links
                if not self.path.exists():
                    os.replace(tmp, self.path)

    def _check(self) -> None:
        """Check the file read-only, so a foreign or damaged file is reported as it is."""
        if self.path.is_file() and self.path.stat().st_size == 0:
            raise StoreError(f"evaluation store {self.path} is an empty file; move it away or choose another path")
        try:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
            try:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if not {"meta", "entries"} <= tables:
                    raise StoreError(f"{self.path} is not an evaluation store (it has tables {sorted(tables)})")
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not an evaluation store or is damaged: {exc}") from None
        version = None if row is None else json.loads(row[0])
        if version != SCHEMA_VERSION:
            raise StoreError(f"evaluation store {self.path} has schema {version}, expected {SCHEMA_VERSION}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: it takes the write lock first, so two
        jobs cannot both read a row as free and both claim it."""
        db = self._conn()
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- claims and results -------------------------------------------------
    def _alive(self, owner: str, host: str, pid: int, heartbeat: float, lease: float) -> bool:
        """Whether another owner's claim still counts (ours never blocks us).

        On our host a vanished pid is conclusive; everywhere, a heartbeat older than
        the owner's own lease means it is dead or stuck (which also covers pid reuse).
        """
        if owner == self.owner or (host == self.host and not _pid_runs(pid)):
            return False
        return time.time() - heartbeat <= lease

    def _decode(self, row: tuple[Any, ...], arch: Architecture, fidelity: str) -> Evaluation:
        status, objective, metrics, reported, cost, error = row[:6]
        try:
            return Evaluation(arch=arch, fidelity=fidelity, objective=objective, metrics=_from_json(metrics),
                              reported=_from_json(reported), cost=cost, status=Status(status), error=error)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"evaluation store {self.path}: the row of {arch.string!r} is damaged ({exc})") from None

    def claim(
        self, fp: str, fidelity: str, archs: Sequence[Architecture]
    ) -> tuple[dict[int, Evaluation], list[int], list[int]]:
        """Take each architecture from the store, or claim it for us, in one transaction.

        Returns:
            ``(found, busy, claimed)``: stored results by index (with the caller's
            ``arch`` and ``fidelity``, ``cached=False``), indices a live owner is
            measuring, and indices now claimed by us (no row, or a dead owner's claim).
            A repeated architecture is claimed once, at its first index; its other
            indices are found when the first is, otherwise busy (they are done as
            soon as our result is stored).
        """
        found: dict[int, Evaluation] = {}
        busy: list[int] = []
        claimed: list[int] = []
        first: dict[str, int] = {}
        with self._transaction() as db:
            ours = (self.owner, self.host, self.pid, time.time(), self.lease_seconds)
            for i, arch in enumerate(archs):
                if arch.string in first:
                    j = first[arch.string]
                    if j in found:
                        found[i] = replace(found[j], arch=arch)
                    else:
                        busy.append(i)
                    continue
                first[arch.string] = i
                row = db.execute(_SELECT, (fp, fidelity, arch.string)).fetchone()
                if row is None:
                    db.execute("INSERT INTO entries (fingerprint, fidelity, arch, owner, host, pid, heartbeat, lease)"
                               " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (fp, fidelity, arch.string, *ours))
                    claimed.append(i)
                elif row[0] is not None:
                    found[i] = self._decode(row, arch, fidelity)
                elif self._alive(*row[6:]):
                    busy.append(i)
                else:
                    if row[6] != self.owner:
                        log.info("taking over the claim of %s on %s (its owner is gone)", row[6], arch.string)
                        self.counts["taken_over"] += 1
                    db.execute("UPDATE entries SET owner = ?, host = ?, pid = ?, heartbeat = ?, lease = ?"
                               f" WHERE {_KEY}", (*ours, fp, fidelity, arch.string))
                    claimed.append(i)
        for key, n in (("found", len(found)), ("busy", len(busy)), ("claimed", len(claimed))):
            self.counts[key] += n
        if claimed:
            self._start_heartbeat()
        return found, busy, claimed

    def put(self, fp: str, fidelity: str, evaluations: Sequence[Evaluation]) -> None:
        """Store the OK evaluations as results and release our claims on the others.

        One transaction, so a kill leaves all of it or none. A result already
        stored (by a job that took over a claim it thought dead) is kept, so every
        reader sees the same values.
        """
        with self._transaction() as db:
            for e in evaluations:
                if e.ok:
                    cur = db.execute(
                        "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (fingerprint, fidelity, arch) DO UPDATE SET status = excluded.status,"
                        " objective = excluded.objective, metrics = excluded.metrics, reported = excluded.reported,"
                        " cost = excluded.cost, error = excluded.error, owner = excluded.owner,"
                        " heartbeat = excluded.heartbeat WHERE entries.status IS NULL",
                        (fp, fidelity, e.arch.string, e.status.value, e.objective, _finite_json(e.metrics),
                         _finite_json(e.reported), float(e.cost), e.error, self.owner, self.host, self.pid,
                         time.time(), self.lease_seconds),
                    )
                    self.counts["stored"] += cur.rowcount
                else:
                    self._drop(db, fp, fidelity, e.arch.string)

    def release(self, fp: str, fidelity: str, archs: Sequence[Architecture]) -> None:
        """Drop our claims on ``archs`` (their evaluation raised), so others may claim them."""
        with self._transaction() as db:
            for arch in archs:
                self._drop(db, fp, fidelity, arch.string)

    def _drop(self, db: sqlite3.Connection, fp: str, fidelity: str, arch: str) -> None:
        cur = db.execute(f"DELETE FROM entries WHERE {_KEY} AND owner = ? AND status IS NULL",
                         (fp, fidelity, arch, self.owner))
        self.counts["released"] += cur.rowcount

    def wait(
        self, fp: str, fidelity: str, archs: Sequence[Architecture], timeout: float | None = None
    ) -> dict[int, Evaluation]:
        """Wait until each architecture is stored, or nobody is measuring it any more.

        Returns:
            The stored results by index. Indices whose claim vanished (released
            after a failure) or whose owner died are left out: claim them yourself.

        Raises:
            TimeoutError: if live owners still hold claims after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = dict(enumerate(archs))
        done: dict[int, Evaluation] = {}
        logged = False
        self.counts["waited"] += len(pending)
        while True:
            owners: set[str] = set()
            db = self._conn()
            with self._lock:
                rows = {i: db.execute(_SELECT, (fp, fidelity, a.string)).fetchone()
                        for i, a in pending.items()}
            for i, row in rows.items():
                if row is not None and row[0] is not None:
                    done[i] = self._decode(row, pending.pop(i), fidelity)
                elif row is None or not self._alive(*row[6:]):
                    del pending[i]
                else:
                    owners.add(row[6])
            if not pending:
                return done
            if not logged:
                names = [a.string for a in pending.values()]
                log.info("waiting for %d architecture(s) at %r being evaluated by %s: %s%s", len(names), fidelity,
                         ", ".join(sorted(owners)), ", ".join(names[:5]), " ..." if len(names) > 5 else "")
                logged = True
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"evaluation store {self.path}: {len(pending)} architecture(s) still being"
                                   f" evaluated by {', '.join(sorted(owners))} after {timeout} s")
            time.sleep(self.poll_seconds)

    # -- heartbeat, stats, lifetime ------------------------------------------
    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._beat is None or not self._beat.is_alive():
                self._beat = threading.Thread(target=self._heartbeat, name=f"store-heartbeat {self.path}", daemon=True)
                self._beat.start()

    def _heartbeat(self) -> None:
        """Refresh our claims' heartbeat on a connection of its own, so a long
        evaluation (or a busy main connection) never lets them look stale."""
        db = self._connect()
        try:
            while not self._stop.wait(self.lease_seconds / 4):
                try:
                    db.execute("UPDATE entries SET heartbeat = ? WHERE owner = ? AND status IS NULL",
                               (time.time(), self.owner))
                except sqlite3.Error as exc:  # a transient lock or I/O error: the next beat may succeed
                    log.warning("evaluation store %s: heartbeat failed: %s", self.path, exc)
        finally:
            db.close()

    def stats(self) -> dict[str, int]:
        """This store's counters, and the ``results`` and ``claims`` now in the file."""
        db = self._conn()
        with self._lock:
            results, claims = db.execute(
                "SELECT COUNT(status), COUNT(*) - COUNT(status) FROM entries").fetchone()
        return {**self.counts, "results": int(results), "claims": int(claims)}

    def close(self) -> None:
        """Stop the heartbeat and release the claims we still hold (idempotent).

        In a forked child that never used the store it only drops the parent's
        connection: the claims are the parent's.
        """
        if os.getpid() != self.pid:
            self._inherited, self._db = self._db, None
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        with self._lock:
            if self._db is not None:
                with suppress(sqlite3.Error):
                    self._db.execute("DELETE FROM entries WHERE owner = ? AND status IS NULL", (self.owner,))
                self._db.close()
                self._db = None

    def __enter__(self) -> EvaluationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled as its settings: the receiving process opens the file as a new owner."""
        return {"path": self.path, "lease_seconds": self.lease_seconds, "poll_seconds": self.poll_seconds}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.pop("path"), **state)  # type: ignore[misc]


class StoredOracle:
    """An oracle that measures through an :class:`EvaluationStore` (one per fidelity).

    Stored results are returned as the inner oracle returned them when it measured
    them, so a search sees the same values with or without the store. Other
    attributes (``covers``, ``prepare``, ``space``...) are the inner oracle's.

    Args:
        inner: The oracle that measures.
        store: The shared store.
        fp: The :func:`fingerprint` of the settings that determine a result.
        fidelity: The fidelity this oracle answers.
        timeout: Longest wait, in seconds, for another job's result (None: no limit).

    Attributes:
        hits: Architectures taken from the store (stored before, or after a wait).
        evaluated: Architectures the inner oracle measured here.
        waited: Architectures found being measured by another job.
    """

    concurrent = False  # one SQLite connection: calls from the asynchronous loop's threads take turns

    def __init__(self, inner: Oracle, store: EvaluationStore, fp: str, fidelity: str,
                 timeout: float | None = None) -> None:
        self.inner = inner
        self.store = store
        self.fp = fp
        self.fidelity = fidelity
        self.timeout = timeout
        self.hits = self.evaluated = self.waited = 0

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")
        if name.startswith("_") or inner is None:  # unpickling or copying: no inner yet
            raise AttributeError(name)
        return getattr(inner, name)

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """One evaluation per architecture, in order; each is measured once across jobs.

        A repeated architecture is measured once and its evaluation repeated.
        """
        first: dict[str, Architecture] = {}
        for a in archs:
            first.setdefault(a.string, a)
        unique = list(first.values())  # first occurrences, in the caller's order
        done: dict[str, Evaluation] = {}
        while len(done) < len(unique):
            todo = [a for a in unique if a.string not in done]
            found, busy, claimed = self.store.claim(self.fp, self.fidelity, todo)
            self.hits += len(found)
            done.update((todo[i].string, e) for i, e in found.items())
            if claimed:
                batch = [todo[i] for i in claimed]
                try:
                    evals = list(self.inner.evaluate(batch))
                    if [e.arch.string for e in evals] != [a.string for a in batch]:
                        raise RuntimeError(f"oracle {self.inner!r} did not return one evaluation per architecture,"
                                           " in order")
                except BaseException:
                    with suppress(Exception):
                        self.store.release(self.fp, self.fidelity, batch)
                    raise
                self.store.put(self.fp, self.fidelity, evals)
                self.evaluated += len(batch)
                done.update((a.string, e) for a, e in zip(batch, evals))
            if busy:
                self.waited += len(busy)
                got = self.store.wait(self.fp, self.fidelity, [todo[i] for i in busy], self.timeout)
                self.hits += len(got)
                done.update((todo[busy[i]].string, e) for i, e in got.items())
        out = []
        for a in archs:
            e = done[a.string]
            out.append(e if e.arch is a else replace(e, arch=a))
        return out
