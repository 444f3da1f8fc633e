"""The journal's on-disk format and its refusals, pinned where tests/test_journal.py lets a mutant live.

Written for bench/mutation.py (bench/results/mutation.md): what is stored is
read back through a second, plain SQLite connection, so that a change of format
that would still round-trip through the journal itself is seen.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from engine.journal import SCHEMA_VERSION, Journal, JournalError
from engine.spaces import NB201Space
from engine.types import Evaluation


def _eval() -> Evaluation:
    a = NB201Space().architecture([3] * 6)
    return Evaluation(a, objective=91.5, metrics={"val_acc": 91.5, "loss": float("inf"), "nll": float("nan")},
                      reported={"test_acc": 94.0, "bad": float("-inf")}, cost=2.5)


def test_metrics_are_stored_as_strict_json_with_non_finite_values_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.append([_eval()])
    with sqlite3.connect(path) as db:
        metrics, reported = db.execute("SELECT metrics, reported FROM evaluations").fetchone()

    def strict(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    assert json.loads(metrics, parse_constant=strict) == {"val_acc": 91.5, "loss": "inf", "nll": "nan"}
    assert json.loads(reported, parse_constant=strict) == {"test_acc": 94.0, "bad": "-inf"}
    with Journal(path) as j:
        (_, back), = j.evaluations()
    assert back.metrics["val_acc"] == 91.5 and back.metrics["loss"] == float("inf")
    assert back.reported == {"test_acc": 94.0, "bad": float("-inf")}


def test_schema_version_one_is_read_and_others_are_refused(tmp_path: Path) -> None:
    """Journals already on disk say schema 1: that number is part of the format."""
    assert SCHEMA_VERSION == 1
    path = tmp_path / "j.sqlite"
    with Journal(path):
        pass
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(JournalError, match="has schema 2, expected 1"):
        Journal(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Journal(path) as j:
        assert len(j) == 0


def test_an_empty_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.touch()
    with pytest.raises(JournalError, match="is empty"):
        Journal(path)
    assert path.read_bytes() == b""
    one = tmp_path / "one.sqlite"
    one.write_bytes(b"x")
    with pytest.raises(JournalError, match="is not a nas-engine journal"):  # one byte is not "empty"
        Journal(one)


def test_a_journal_in_a_new_nested_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "j.sqlite"
    with Journal(path) as j:
        j.append([_eval()])
    with Journal(path) as j:
        assert len(j) == 1


def test_the_lock_file_is_readable_by_all_and_writable_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    umask = os.umask(0o022)
    try:
        with Journal(path):
            mode = stat.S_IMODE(os.stat(f"{path}.lock").st_mode)
    finally:
        os.umask(umask)
    assert mode == 0o644


def test_closing_twice_is_harmless_and_leaves_the_standard_streams_open(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    j.close()
    j.close()
    for fd in (0, 1, 2):
        os.fstat(fd)  # raises if close() closed a descriptor that was not its lock
    assert not Path(f"{path}.lock").exists()
    with Journal(path):  # and the journal can be opened again
        pass
