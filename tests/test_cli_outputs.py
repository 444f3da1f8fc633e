"""What nas-search prints and leaves behind, as a user runs it (issue 12's reproductions, as subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.spaces import get_space


def _nas_search(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    flags = [a for a in args if a.startswith("-")]  # Hydra's flags come before the overrides
    rest = [a for a in args if not a.startswith("-")]
    return subprocess.run([sys.executable, "-m", "engine.cli", *flags, "progress=none", *rest], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["budget.evaluations=-3"], "budget.evaluations"),
        (["budget.evaluations=1.5"], "budget.evaluations"),
        (["budget.evaluations=abc"], "budget.evaluations"),
        (["+budget.evalutions=10"], "budget.evalutions"),
        (["resume=maybe"], "resume"),
        (["resume=true", "hydra.run.dir=outputs/nothere"], "no journal"),
        (["oracle=supernet", "dataset=npz"], "dataset.path is required"),
        (["oracle=supernet", "dataset=cifar10"], "dataset.root is required"),
        (["space=choices"], "space.params.decisions is required"),
    ],
)
def test_refusal_is_one_stderr_line_and_writes_nothing(tmp_path: Path, args: list[str], key: str) -> None:
    proc = _nas_search(tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""  # results go to stdout, errors to stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert _tree(tmp_path) == []


def test_constrained_search_headline_meets_the_constraint(tmp_path: Path) -> None:
    proc = _nas_search(tmp_path, "strategy=coordinate_descent", "strategy.constraint.max=25", "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best"]["metrics"]["latency_ms_raspi4"] <= 25
    assert summary["best"]["arch"] == summary["coordinate_descent"]["best_feasible"]["arch"]
    assert "latency_ms_raspi4 <= 25" in proc.stdout and summary["best"]["arch"] in proc.stdout
    # The unconstrained best (over the limit here) is kept, but is not the headline.
    assert summary["best_unconstrained"]["metrics"]["latency_ms_raspi4"] > 25


def test_ignored_dataset_is_a_warning_and_the_summary_names_what_measured(tmp_path: Path) -> None:
    proc = _nas_search(tmp_path, "dataset=synthetic", "budget.evaluations=3", "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stderr
    assert "dataset=synthetic has no effect" in proc.stderr and "has no effect" not in proc.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["oracle"] == "TabularOracle" and summary["dataset"] is None and summary["space"] == "nb201"
    assert "measured by  oracle TabularOracle" in proc.stdout


def _small_table(tmp_path: Path, n: int, value: str) -> tuple[Path, set[str]]:
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    cells = {space.sample(rng).string for _ in range(n)}
    (tmp_path / "t.csv").write_text("arch,accuracy\n" + "".join(f"{a},{value}\n" for a in sorted(cells)))
    return tmp_path / "t.csv", cells


def test_partial_table_restricts_the_search_to_its_cells(tmp_path: Path) -> None:
    table, cells = _small_table(tmp_path, 5, "50")
    # Before: random search (seed 3) asked none of the five cells and failed every evaluation.
    proc = _nas_search(tmp_path, f"oracle.table={table}", "oracle.objective=accuracy", "strategy=random",
                       "seed=3", "budget.evaluations=8", "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stderr
    assert "can measure 5 of the 15625 architectures of space nb201: the search is restricted" in proc.stderr
    assert "budget.evaluations=8 is more than the 5 architectures searched" in proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["failures"] == 0 and summary["evaluations"] == 5
    assert summary["stop_reason"] == "space exhausted" and summary["best"]["arch"] in cells


def test_search_without_a_successful_evaluation_exits_non_zero(tmp_path: Path) -> None:
    table, _ = _small_table(tmp_path, 3, "nan")  # a table whose every objective is missing
    proc = _nas_search(tmp_path, f"oracle.table={table}", "oracle.objective=accuracy", "strategy=random",
                       "budget.evaluations=3", "hydra.run.dir=run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best"] is None and summary["failures"] == 3
    assert proc.returncode == 1 and "no successful evaluation" in proc.stderr


def test_launcher_from_a_missing_extra_is_refused_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import cli

    assert cli.missing_launcher(["seed=1"]) is None
    monkeypatch.setitem(cli._LAUNCHER_EXTRAS, "joblib", ("hydra_plugins.not_installed_launcher", "launchers"))
    message = cli.missing_launcher(["-m", "hydra/launcher=joblib", "seed=0,1"])
    assert message is not None and "pip install 'nas-engine[launchers]'" in message


def test_diverged_supernet_is_a_one_line_refusal(tmp_path: Path) -> None:
    proc = _nas_search(tmp_path, "oracle=supernet", "dataset=digits", "supernet.lr=1e12", "supernet.epochs=2",
                       "budget.evaluations=4")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "[ERROR]" in line]  # after the supernet's log lines
    assert len(errors) == 1 and "diverged" in errors[0] and "Traceback" not in proc.stderr, proc.stderr
    assert _tree(tmp_path) == []


def test_sweep_with_one_bad_job_starts_none(tmp_path: Path) -> None:
    proc = _nas_search(tmp_path, "-m", "seed=abc,1", "budget.evaluations=3")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    refusals = [line for line in proc.stderr.splitlines() if line.startswith("nas-search: ")]
    assert len(refusals) == 1 and "job 0" in refusals[0] and "seed must be a non-negative integer" in refusals[0]
    assert _tree(tmp_path) == []  # job 1, valid, did not run either: no multirun/ directory


def test_summary_says_which_metric_the_objective_is_and_its_scale() -> None:
    from engine.runner import format_summary

    base = {"strategy": "random", "space": "nb201", "seed": 0, "evaluations": 1, "failures": 0,
            "stop_reason": "evaluations", "wall_seconds": 1.0, "oracle_seconds": 1.0, "journal": None}
    pct = {**base, "best": {"arch": "a", "objective": 89.2, "metrics": {"val_acc": 89.2, "test_acc": 93.2}}}
    frac = {**base, "best": {"arch": "a", "objective": 0.975, "metrics": {"val_acc": 0.975, "params": 5.0}}}
    assert "89.2000  (val_acc, in %)" in format_summary(pct)
    assert "0.9750  (val_acc, a fraction of 1)" in format_summary(frac)
