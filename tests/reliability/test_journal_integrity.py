"""Journal integrity: one writer at a time, damage reported with the path, the damaged file never touched."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import cli_env
from kill_resume import journal_rows

from engine.journal import Journal, JournalError
from engine.runner import run_search


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def good_journal(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a finished 12-evaluation journal (checkpointed: no WAL beside it)."""
    from hydra import compose, initialize_config_dir

    from engine.cli import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="config", overrides=["budget.evaluations=12", "batch_size=3"])
    out = tmp_path_factory.mktemp("good")
    run_search(cfg, out)
    return (out / "journal.sqlite").read_bytes()


def _garble(data: bytes, start: int, length: int) -> bytes:
    b = bytearray(data)
    for i in range(start, min(start + length, len(b))):
        b[i] ^= 0x5A
    return bytes(b)


def _foreign(_: bytes) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "other.sqlite"
        db = sqlite3.connect(p)
        db.execute("CREATE TABLE notes (text TEXT)")
        db.commit()
        db.close()
        return p.read_bytes()


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda d: b"",
    "truncated_half": lambda d: d[: len(d) // 2],
    "truncated_header": lambda d: d[:100],
    "garbled_header": lambda d: _garble(d, 0, 16),
    "garbled_btree_pages": lambda d: _garble(d, 4096, 4096 * 3),
    "not_sqlite": lambda d: b"this is not a journal\n" * 50,
    "foreign_sqlite": _foreign,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_journal_is_reported_and_left_untouched(
    damage: str, good_journal: bytes, make_cfg, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite"
    journal.write_bytes(DAMAGE[damage](good_journal))
    before = _digest(journal)
    cfg = make_cfg("budget.evaluations=12", "batch_size=3", "resume=true")
    with pytest.raises(JournalError) as info:
        run_search(cfg, tmp_path)
    message = str(info.value)
    assert str(journal) in message and "\n" not in message
    assert _digest(journal) == before
    assert not (tmp_path / "summary.json").exists()


def _edit_rows(path: Path, sql: str) -> None:
    db = sqlite3.connect(path)
    db.execute(sql)
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("UPDATE evaluations SET metrics = '{not json' WHERE id = 5", "evaluation row 5"),
        ("UPDATE evaluations SET status = 'exploded' WHERE id = 2", "evaluation row 2"),
        ("UPDATE states SET state = '[1, 2' ", "strategy snapshot"),
    ],
)
def test_garbled_row_is_reported_with_its_id(
    sql: str, what: str, good_journal: bytes, make_cfg, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite"
    journal.write_bytes(good_journal)
    _edit_rows(journal, sql)
    before = _digest(journal)
    with pytest.raises(JournalError, match=what) as info:
        run_search(make_cfg("budget.evaluations=12", "batch_size=3", "resume=true"), tmp_path)
    assert str(journal) in str(info.value)
    assert _digest(journal) == before


@pytest.mark.slow
def test_second_search_on_a_journal_in_use_is_refused(tmp_path: Path, make_cfg) -> None:
    """A real ``nas-search`` process holds the journal; a search in this process is refused."""
    run_dir = tmp_path / "run"
    args = ["oracle=faulty", "oracle.delay_seconds=0.1", "budget.evaluations=200", "resume=auto"]
    first = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args, f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=cli_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        journal = run_dir / "journal.sqlite"
        deadline = time.monotonic() + 120
        while not journal.exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert journal.exists() and first.poll() is None
        with pytest.raises(JournalError) as info:
            run_search(make_cfg(*args), run_dir)
        message = str(info.value)
        assert "in use by another search" in message and str(journal) in message and "\n" not in message
        assert first.poll() is None, "the first search must still be running"
        # Kill it only once it has recorded an evaluation (a slow machine may still be starting).
        while not journal_rows(journal) and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert journal_rows(journal) and first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # The killed first search left a readable journal that a new process may open.
    with Journal(journal) as j:
        assert len(j) > 0


def test_lock_is_per_journal_and_released_on_close(tmp_path: Path) -> None:
    a = Journal(tmp_path / "a.sqlite")
    with pytest.raises(JournalError, match="in use"):
        Journal(tmp_path / "a.sqlite")
    with Journal(tmp_path / "b.sqlite") as b:
        assert len(b) == 0
    a.close()
    with Journal(tmp_path / "a.sqlite") as again:
        assert len(again) == 0


def test_journal_uses_wal_and_one_transaction_per_batch(tmp_path: Path, make_cfg) -> None:
    run_search(make_cfg("budget.evaluations=9", "batch_size=3"), tmp_path)
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 9
    finally:
        db.close()
