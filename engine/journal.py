"""The append-only journal of a search (SQLite, WAL mode).

Every evaluation is committed before the strategy is told about it, and the
strategy's state is committed after each tell, so a search killed at any point
can resume without losing or repeating an evaluation.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from engine import serialize
from engine.spaces import Architecture
from engine.types import Evaluation, Status

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY,
    arch TEXT NOT NULL,
    space TEXT NOT NULL,
    decisions TEXT NOT NULL,
    fidelity TEXT NOT NULL,
    status TEXT NOT NULL,
    objective REAL,
    metrics TEXT NOT NULL,
    reported TEXT NOT NULL,
    cost REAL NOT NULL,
    error TEXT,
    cached INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS states (
    id INTEGER PRIMARY KEY,
    last_evaluation INTEGER NOT NULL,
    state TEXT NOT NULL
);
"""


class JournalError(RuntimeError):
    """A journal that cannot be used: locked by another search, or corrupted."""


def _finite_json(values: Mapping[str, float]) -> str:
    return json.dumps({k: (float(v) if math.isfinite(float(v)) else str(float(v))) for k, v in values.items()})


def _from_json(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in json.loads(text).items()}


def _acquire_lock(lock_path: Path, journal_path: Path, attempts: int = 100) -> int:
    """Open and exclusively lock ``lock_path``; the descriptor holding the lock.

    The holder removes the lock file when it closes, so between our ``open`` and
    our ``flock`` the file may have been removed (and possibly recreated and
    locked by a third process): a lock on the removed file protects nothing.
    After locking, the path must therefore still name the locked file; if not,
    the lock is dropped and taken again on the file now at the path.

    Raises:
        JournalError: if another process holds the lock.
    """
    for _ in range(attempts):
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(
                f"journal {journal_path} is in use by another search; wait for it or choose another output directory"
            ) from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock_path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # we locked a file its holder has just removed: try again on the current one
    raise JournalError(f"journal {journal_path}: its lock file {lock_path} keeps being replaced; is another search"
                       " opening and closing it in a loop?")


def _check_file(path: Path) -> None:
    """Check an existing journal through a read-only connection.

    Read-only, so that a damaged file is reported as it is: a read-write
    connection could add tables to a foreign database or checkpoint a WAL
    into a corrupted file when it closes.

    Raises:
        JournalError: naming the path and the problem.
    """
    if path.stat().st_size == 0:
        raise JournalError(
            f"journal {path} is empty (truncated?); it was left as it is: move it away to start a new search"
        )
    db = _read_only(path)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = sorted({"meta", "evaluations", "states"} - tables)
        if missing:
            raise JournalError(f"{path} is not a nas-engine journal: it has no table(s) {missing}")
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = None if row is None else json.loads(row[0])
        if version != SCHEMA_VERSION:
            raise JournalError(f"journal {path} has schema {version}, expected {SCHEMA_VERSION}")
        problems = [r[0] for r in db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise JournalError(f"journal {path} is corrupted: {'; '.join(problems[:3])}")
    finally:
        db.close()


@contextlib.contextmanager
def new_database(path: Path, tag: str, schema: str, version: int) -> Iterator[Path]:
    """A WAL-mode SQLite file with ``schema`` and ``meta.schema_version``, built beside ``path``.

    The caller moves the yielded temporary file into place (rename, or link when several
    processes may race to create ``path``); whatever is left of it is removed afterwards, so
    a file at ``path`` always has its schema. ``tag`` keeps concurrent creators apart.
    """
    tmp = path.with_name(f".{path.name}.{tag}.tmp")
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)
            db.execute("INSERT INTO meta VALUES (?, ?)", ("schema_version", json.dumps(version)))
        finally:
            db.close()
        yield tmp
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)


_COLUMNS = "id, arch, space, decisions, fidelity, status, objective, metrics, reported, cost, error, cached"


def _decode(path: Path, row: tuple[Any, ...]) -> Evaluation:
    rid, arch, space, decisions, fidelity, status, objective, metrics, reported, cost, error, cached = row
    try:
        return Evaluation(
            arch=Architecture(space, tuple(json.loads(decisions)), arch),
            fidelity=fidelity,
            objective=objective,
            metrics=_from_json(metrics),
            reported=_from_json(reported),
            cost=cost,
            status=Status(status),
            error=error,
            cached=bool(cached),
        )
    except (TypeError, ValueError, AttributeError) as exc:  # json.JSONDecodeError is a ValueError
        raise JournalError(f"journal {path} is corrupted: evaluation row {rid} cannot be read ({exc})") from None


def read_journal(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Evaluation]]:
    """The meta values and the evaluations of a journal, read without taking its lock.

    For using another search's results (a warm start): that search may still be
    running, and SQLite's WAL lets a reader see its committed rows meanwhile.

    Raises:
        JournalError: if the file is missing, damaged or not a journal.
    """
    p = Path(path)
    if not p.is_file():
        raise JournalError(f"there is no journal at {p}")
    try:
        _check_file(p)
        db = _read_only(p)
        try:
            meta = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
            rows = [_decode(p, r) for r in db.execute(f"SELECT {_COLUMNS} FROM evaluations ORDER BY id")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"journal {p} is corrupted or not a journal: {exc}") from None
    return meta, rows


class Journal:
    """An SQLite journal of evaluations and strategy snapshots.

    Opening takes an exclusive lock (``<path>.lock``, released by the OS even
    when the process is killed), so two searches never write one journal.
    :meth:`close` removes the lock file, so a finished run leaves none; a
    killed process leaves an empty, unlocked one that the next open reuses.

    Args:
        path: The SQLite file; created if missing.

    Raises:
        JournalError: if another process holds the journal, or the file is not a
            readable journal (the file is left untouched).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = Path(f"{self.path}.lock")
        self._lock_fd = -1
        self._lock_fd = _acquire_lock(self._lock_path, self.path)
        self._lock_pid = os.getpid()
        try:
            if self.path.exists():
                self._check_existing()
            else:
                self._create()
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            self.close()
            raise JournalError(f"journal {self.path} is corrupted or not a journal: {exc}") from None
        except JournalError:
            self.close()
            raise

    def _create(self) -> None:
        """Write an empty journal under a temporary name, then rename it into place.

        A journal file therefore either holds the schema or does not exist: an
        empty or headless file at ``path`` can only be damage, never a search
        killed while it was starting.
        """
        with new_database(self.path, str(os.getpid()), _SCHEMA, SCHEMA_VERSION) as tmp:
            os.replace(tmp, self.path)

    def _check_existing(self) -> None:
        _check_file(self.path)

    def close(self) -> None:
        """Close the database, remove the lock file and release the lock.

        The file is removed while the lock is still held, and only when the path
        still names the file this journal locked, so a lock another process holds
        is never removed; an opener that raced with the removal notices it
        locked a removed file and locks the new one (:func:`_acquire_lock`). A
        process forked from the opener shares the lock, so there ``close`` only
        closes its copy of the descriptor: unlocking or removing would take the
        lock away from the process that owns it.
        """
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None  # type: ignore[assignment]
        if self._lock_fd >= 0:
            if os.getpid() == self._lock_pid:
                try:
                    if os.path.samestat(os.fstat(self._lock_fd), os.stat(self._lock_path)):
                        self._lock_path.unlink()
                except OSError:  # already gone, or a read-only directory: an empty lock file harms nobody
                    pass
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta -----------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key``."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- evaluations --------------------------------------------------------
    def append(self, evaluations: Iterable[Evaluation], meta: Mapping[str, Any] | None = None) -> int:
        """Append evaluations in one transaction; returns the id of the last row.

        ``meta`` values are stored in the same transaction, so a row that needs its
        meta to be understood (the origin of warm-start rows) never exists without it.
        """
        rows = [
            (
                e.arch.string,
                e.arch.space,
                json.dumps(list(e.arch.decisions)),
                e.fidelity,
                e.status.value,
                e.objective,
                _finite_json(e.metrics),
                _finite_json(e.reported),
                float(e.cost),
                e.error,
                int(e.cached),
            )
            for e in evaluations
        ]
        with self._transaction():
            self._db.executemany(
                "INSERT INTO evaluations (arch, space, decisions, fidelity, status, objective, metrics,"
                " reported, cost, error, cached) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            for key, value in (meta or {}).items():
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        return self.last_id()

    def last_id(self) -> int:
        """Id of the last evaluation row (0 when empty)."""
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM evaluations").fetchone()[0])

    def evaluations(self, after: int = 0, upto: int | None = None) -> Iterator[tuple[int, Evaluation]]:
        """``(id, evaluation)`` pairs with ``after < id <= upto``, in order."""
        sql = f"SELECT {_COLUMNS} FROM evaluations WHERE id > ?"
        args: list[Any] = [after]
        if upto is not None:
            sql += " AND id <= ?"
            args.append(upto)
        for row in self._db.execute(sql + " ORDER BY id", args):
            yield row[0], _decode(self.path, row)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])

    # -- strategy snapshots -------------------------------------------------
    def save_state(self, state: Mapping[str, Any], last_evaluation: int) -> None:
        """Store a strategy snapshot taken after evaluation ``last_evaluation`` was told.

        Only the latest snapshot is needed to resume, so older ones are replaced.
        """
        text = serialize.dumps(state)
        with self._transaction():
            self._db.execute("DELETE FROM states")
            self._db.execute("INSERT INTO states (last_evaluation, state) VALUES (?, ?)", (last_evaluation, text))

    def load_state(self) -> tuple[dict[str, Any], int] | None:
        """The latest snapshot and the id of the last evaluation it includes."""
        row = self._db.execute("SELECT state, last_evaluation FROM states ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        try:
            return serialize.loads(row[0]), int(row[1])
        except (TypeError, ValueError, KeyError) as exc:
            raise JournalError(
                f"journal {self.path} is corrupted: its strategy snapshot cannot be read ({exc})"
            ) from None

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
