"""Hydra multiruns through the real CLI: basic and joblib launchers, one W&B run per job, presets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir

from engine.cli import config_dir
from engine.tracking.report import main as report_main

NAS_SEARCH = [sys.executable, "-m", "engine.cli"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "WANDB_SILENT": "true",
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "OMP_NUM_THREADS": "1",
    })
    env.pop("WANDB_MODE", None)
    env.pop("WANDB_SERVICE", None)  # set by an in-process wandb.init of another test: a child must start its own
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*NAS_SEARCH, *args], cwd=cwd, env=_env(cwd), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def wandb_records(run_dirs: list[Path]) -> list[list[dict[str, Any]]]:
    """Each offline run's records, read by wandb's own reader (``wandb leet inspect``), in parallel."""
    procs = [subprocess.Popen([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(d)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for d in run_dirs]
    out = []
    for p in procs:
        text, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        out.append([json.loads(line) for line in text.splitlines() if line.strip().startswith("{")])
    return out


def test_basic_launcher_sweep_one_wandb_run_per_job_then_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "multirun"
    run_cli(["-m", "strategy=random,local_search", "seed=0,1", "budget.evaluations=12", "progress=none",
             "tracker=wandb", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    strategies = []
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["evaluations"] == 12 and Path(summary["journal"]) == job / "journal.sqlite"
        strategies.append((summary["strategy"], summary["seed"]))
    assert sorted(strategies) == [("local_search", 0), ("local_search", 1), ("random", 0), ("random", 1)]

    # One W&B run per job although the basic launcher runs them all in one process.
    run_dirs = [d for job in jobs for d in sorted((job / "wandb").glob("offline-run-*"))]
    assert len(run_dirs) == 4
    groups, names = set(), []
    for records in wandb_records(run_dirs):
        (run,) = [r["run"] for r in records if r["type"] == "run"]
        exits = [r["exit"] for r in records if r["type"] == "exit"]
        assert exits and exits[-1].get("exit_code", 0) == 0  # finished
        assert run["job_type"] == "search"
        groups.add(run["run_group"])
        names.append(run["display_name"])
        history = [r for r in records if r["type"] == "history" and "objective" in r["history"]["item"]]
        assert len(history) == 12
    assert groups == {"multirun"}  # one group: the sweep directory
    assert sorted(names) == sorted(f"strategy={s},seed={k}" for s in ("random", "local_search") for k in (0, 1))

    assert report_main([str(sweep), "--budgets", "5,12"]) == 0
    out = capsys.readouterr().out
    assert "| `random` | 2 |" in out and "| `local_search` | 2 |" in out
    assert "test_acc @ 5" in out and "test_acc @ 12" in out
    assert (sweep / "report" / "best_so_far.png").stat().st_size > 10_000


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_each_in_its_own_directory(tmp_path: Path) -> None:
    sweep = tmp_path / "multirun"
    proc = run_cli(["-m", "strategy=random,regularized_evolution", "seed=0", "budget.evaluations=10",
                    "progress=none", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}"],
                   cwd=tmp_path)
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]
    seen = set()
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["evaluations"] == 10 and Path(summary["journal"]) == job / "journal.sqlite"
        seen.add(summary["strategy"])
    assert seen == {"random", "regularized_evolution"}


def test_experiment_preset_defines_the_benchmark_sweep() -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose("config", overrides=["+experiment=nb201_tabular_100"], return_hydra_config=True)
    assert cfg.budget.evaluations == 100
    assert cfg.oracle._target_ == "oracles.tabular.TabularOracle"
    params = cfg.hydra.sweeper.params
    assert set(params.strategy.split(",")) >= {"random", "regularized_evolution", "local_search"}
    assert params.seed == "range(0,10)"
    assert str(cfg.hydra.sweep.dir).startswith("multirun/nb201_tabular_100/")


def test_slurm_preset_composes_to_submitit() -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose("config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.timeout_min == 240 and launcher.tasks_per_node == 1
