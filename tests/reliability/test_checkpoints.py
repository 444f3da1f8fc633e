"""Supernet checkpoints through the runner: a damaged one stops the run with its path and is never overwritten."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine.runner import ConfigError, run_search

TINY = [
    "oracle=supernet", "dataset=synthetic", "dataset.num_samples=128", "supernet.epochs=2",
    "supernet.measure_latency=false", "supernet.model={channels: 4, cells: 1}", "supernet.batch_size=32",
    "supernet.keep_last_epochs=1", "strategy=random", "budget.evaluations=2", "calibration.size=0",
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The checkpoint of a finished tiny supernet search."""
    from hydra import compose, initialize_config_dir

    from engine.cli import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="config", overrides=TINY)
    out = tmp_path_factory.mktemp("supernet")
    summary = run_search(cfg, out)
    assert summary["evaluations"] == 2 and summary["failures"] == 0
    return (out / "supernet.pt").read_bytes()


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b[:10], lambda b: b"", lambda b: b[:100] + bytes(200) + b[300:]],
    ids=["half", "header", "empty", "garbled"],
)
def test_damaged_checkpoint_stops_the_run_and_is_left_alone(
    damage, trained: bytes, make_cfg, tmp_path: Path
) -> None:
    ckpt = tmp_path / "given.pt"
    ckpt.write_bytes(damage(trained))
    before = _digest(ckpt)
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError) as info:
        run_search(make_cfg(*TINY, f"oracle.checkpoint={ckpt}"), run_dir)
    message = str(info.value)
    assert message.startswith("oracle: ") and str(ckpt) in message and "\n" not in message
    assert _digest(ckpt) == before
    assert not run_dir.exists(), "a refused run leaves no journal or directory behind"


def test_checkpoint_of_another_setup_is_refused_by_name(trained: bytes, make_cfg, tmp_path: Path) -> None:
    ckpt = tmp_path / "other.pt"
    ckpt.write_bytes(trained)
    with pytest.raises(ConfigError, match=r"supernet\.epochs") as info:
        run_search(make_cfg(*TINY, "supernet.epochs=3", f"oracle.checkpoint={ckpt}"), tmp_path / "run")
    assert str(ckpt) in str(info.value)
    assert ckpt.read_bytes() == trained


def test_resume_with_damaged_checkpoint_keeps_the_journal(trained: bytes, make_cfg, tmp_path: Path) -> None:
    """A killed run whose checkpoint got damaged: the resume is refused, journal and checkpoint stay as they were."""
    cfg = make_cfg(*TINY, "budget.evaluations=4")
    first = run_search(make_cfg(*TINY, "budget.evaluations=4", "budget.wall_seconds=0.0"), tmp_path)
    assert first["stop_reason"] == "wall_seconds"
    (tmp_path / "summary.json").unlink()
    journal = tmp_path / "journal.sqlite"
    ckpt = tmp_path / "supernet.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    before = {p: _digest(p) for p in (journal, ckpt)}
    with pytest.raises(ConfigError):
        run_search(cfg, tmp_path)
    assert {p: _digest(p) for p in (journal, ckpt)} == before
