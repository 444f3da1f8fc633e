"""W&B tracking (real wandb, offline mode, read back with wandb's own reader) and progress display."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from engine.cli import config_dir
from engine.runner import ConfigError, run_search
from engine.tracking import exit_code, open_tracking, resolve_mode
from engine.tracking.progress import Progress, format_eta


@pytest.fixture(autouse=True)
def _wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep W&B's caches and credentials lookups inside the test's directory."""
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.delenv("WANDB_MODE", raising=False)


def make_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def offline_runs(job_dir: Path) -> list[Path]:
    return sorted((job_dir / "wandb").glob("offline-run-*"))


def _leet(run_dir: Path, *flags: str) -> str:
    cmd = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", *flags, str(run_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout


def inspect_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of an offline run's transaction log, read by wandb's own reader (``wandb leet inspect``)."""
    return [json.loads(line) for line in _leet(run_dir).splitlines() if line.strip().startswith("{")]


def inspect_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's state and summary as W&B reports them, and its records."""
    return json.loads(_leet(run_dir, "--summary")), inspect_records(run_dir)


def of_type(records: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r[kind] for r in records if r.get("type") == kind]


# -- W&B offline -------------------------------------------------------------------------
def test_wandb_offline_run_has_config_metrics_table_and_artifact(tmp_path: Path) -> None:
    cfg = make_cfg("tracker=wandb", "budget.evaluations=8", "progress=none", "seed=3")
    summary = run_search(cfg, tmp_path / "job")
    runs = offline_runs(tmp_path / "job")
    assert len(runs) == 1
    run, records = inspect_run(runs[0])
    assert run["state"] == "finished" and run["exit_code"] == 0
    assert run["project"] == "nas-engine"
    # Config: the resolved Hydra config.
    assert run["config"]["seed"] == 3
    assert run["config"]["strategy"]["name"] == "regularized_evolution"
    assert run["config"]["budget"]["evaluations"] == 8
    (run_record,) = of_type(records, "run")
    assert run_record["job_type"] == "search"
    # Metrics against the evaluation count, one history row per evaluation (+ the final table).
    metric_defs = of_type(records, "metric")
    assert any(m.get("glob_name") == "*" and m.get("step_metric") == "evaluation" for m in metric_defs)
    evals = [h["item"]["evaluation"] for h in of_type(records, "history") if "objective" in h["item"]]
    assert evals == list(range(1, 9))
    best_curve = [h["item"]["best/objective"] for h in of_type(records, "history") if "objective" in h["item"]]
    assert best_curve == sorted(best_curve)
    # Best so far in the summary equals the search's own result, report-only metric included.
    s = run["summary"]
    assert s["best/objective"] == pytest.approx(summary["best"]["objective"])
    assert s["best/test_acc"] == pytest.approx(summary["best"]["metrics"]["test_acc"])
    assert s["best/arch"] == summary["best"]["arch"]
    assert s["evaluations"] == 8 and s["stop_reason"] == "evaluations"
    table = s["evaluated_architectures"]
    assert table["_type"] == "table-file" and table["nrows"] == 8
    table_file = runs[0] / "files" / table["path"]
    rows = json.loads(table_file.read_text())
    assert "reported/test_acc" in rows["columns"] and len(rows["data"]) == 8
    artifacts = of_type(records, "artifact")
    paths = [c["path"] for a in artifacts for c in a["manifest"]["contents"]]
    assert "summary.json" in paths


class Explode:
    """A callback failing mid-search, like a crash in the job itself."""

    def __init__(self, after: int, exc: BaseException) -> None:
        self.after = after
        self.exc = exc

    def on_evaluations(self, search: Any, evaluations: Any) -> None:
        if search.n_evaluations >= self.after:
            raise self.exc


def test_failed_job_still_finishes_its_run_with_nonzero_exit_code(tmp_path: Path) -> None:
    cfg = make_cfg("tracker=wandb", "budget.evaluations=20", "progress=none")
    with pytest.raises(RuntimeError, match="boom"):
        run_search(cfg, tmp_path / "job", callbacks=[Explode(4, RuntimeError("boom"))])
    (run_dir,) = offline_runs(tmp_path / "job")
    run, records = inspect_run(run_dir)
    assert run["exit_code"] == 1
    assert run["state"] != "running"
    assert of_type(records, "exit")[-1]["exit_code"] == 1
    assert "boom" in run["summary"]["error"]
    assert run["summary"]["evaluation"] >= 3  # what was logged before the crash is kept
    assert not (tmp_path / "job" / "summary.json").exists()


def test_exit_codes() -> None:
    assert exit_code(None) == 0
    assert exit_code(RuntimeError("x")) == 1
    assert exit_code(KeyboardInterrupt()) == 130
    assert exit_code(SystemExit(3)) == 3
    assert exit_code(SystemExit(0)) == 0


def test_bad_tracker_config_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tracker\.mode"):
        run_search(make_cfg("tracker=wandb", "tracker.mode=cloud"), tmp_path / "a")
    with pytest.raises(ConfigError, match=r"tracker\.name"):
        run_search(make_cfg("tracker.name=mlflow"), tmp_path / "b")
    with pytest.raises(ConfigError, match="progress"):
        run_search(make_cfg("progress=fancy"), tmp_path / "c")
    with pytest.raises(ConfigError, match="unknown tracker keys"):
        run_search(make_cfg("tracker=wandb", "+tracker.projekt=x"), tmp_path / "d")
    assert not any((tmp_path / d).exists() for d in "abcd")


def test_online_mode_without_credentials_fails_clearly_without_prompting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # a prompt would read this and fail differently
    with pytest.raises(ConfigError, match=r"tracker\.mode=online needs W&B credentials"):
        run_search(make_cfg("tracker=wandb", "tracker.mode=online"), tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_disabled_mode_runs_without_files(tmp_path: Path) -> None:
    summary = run_search(make_cfg("tracker=wandb", "tracker.mode=disabled", "budget.evaluations=3",
                                  "progress=none"), tmp_path / "job")
    assert summary["evaluations"] == 3
    assert offline_runs(tmp_path / "job") == []


def test_resumed_search_logs_its_whole_history(tmp_path: Path) -> None:
    out = tmp_path / "job"
    with pytest.raises(KeyboardInterrupt):
        run_search(make_cfg("budget.evaluations=9", "progress=none"), out, callbacks=[Explode(5, KeyboardInterrupt())])
    run_search(make_cfg("tracker=wandb", "budget.evaluations=9", "progress=none", "resume=true"), out)
    (run_dir,) = offline_runs(out)
    records = inspect_records(run_dir)
    evals = [h["item"]["evaluation"] for h in of_type(records, "history") if "objective" in h["item"]]
    assert evals == list(range(1, 10))
    assert of_type(records, "exit")[-1]["exit_code"] == 0


# -- progress ---------------------------------------------------------------------------
class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_mode_follows_the_terminal() -> None:
    assert resolve_mode("auto", io.StringIO()) == "log"
    assert resolve_mode("auto", FakeTTY()) == "bar"
    assert resolve_mode("none") == "none" and resolve_mode(None) == "none"
    with pytest.raises(ValueError, match="progress must be one of"):
        resolve_mode("fancy")


def test_log_mode_writes_counts_rate_and_eta(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.progress")
    run_search(make_cfg("progress=log", "budget.evaluations=30"), tmp_path / "job")
    lines = [r.getMessage() for r in caplog.records if r.name == "engine.progress"]
    assert 3 <= len(lines) <= 12  # a line per tenth of the budget, not one per evaluation
    assert any("3/30 eval (10%)" in x and "ETA" in x for x in lines)
    assert "30/30 eval (100%)" in lines[-2] or "30/30 eval (100%)" in lines[-1]
    assert "stopped: evaluations" in lines[-1]
    assert "best" in lines[-2]


def test_bar_mode_draws_a_tqdm_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_search(make_cfg("progress=bar", "budget.evaluations=12"), tmp_path / "job")
    err = capsys.readouterr().err
    assert "12/12" in err and "search regularized_evolution" in err


def test_progress_helper_eta_and_format() -> None:
    assert format_eta(3725) == "1h02m05s" and format_eta(65) == "1m05s" and format_eta(None) == "?"
    p = Progress(10, desc="epochs", mode="none")
    assert p.eta() is None
    p.update(5)
    eta = p.eta()
    assert eta is not None and eta >= 0


def test_session_without_tracker_has_only_progress(tmp_path: Path) -> None:
    session = open_tracking(make_cfg("progress=log"), tmp_path)
    assert session.tracker is None and len(session.callbacks) == 1
    session.close()
