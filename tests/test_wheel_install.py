"""The wheel installed non-editable into a fresh environment runs a search, far from the source tree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from tests._venv import child_env, child_venv, pip_install

ROOT = Path(__file__).resolve().parent.parent
_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "outputs", "multirun", "wandb", "__pycache__", "*.pyc",
    ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis", "tests", "bench", "examples", "docs",
)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path: Path) -> None:
    pytest.importorskip("build")
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE)  # build in a copy: no build/ or egg-info in the checkout
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
          "--outdir", str(dist), str(src)], cwd=tmp_path, env=child_env(tmp_path))
    (wheel,) = dist.glob("nas_engine-*.whl")

    bin_dir = child_venv(tmp_path / "venv")  # sees the parent's dependencies, not its editable install
    pip_install(bin_dir, str(wheel))
    env = child_env(tmp_path)
    work = tmp_path / "elsewhere"  # the cwd is outside the source tree: nothing of it is importable
    work.mkdir()

    where = _run([str(bin_dir / "python"), "-c",
                  "import engine, engine.cli; print(engine.__file__); print(engine.cli.config_dir())"], work, env)
    engine_file, conf_dir = where.stdout.split()
    site = tmp_path / "venv" / "lib"
    assert Path(engine_file).is_relative_to(site), f"engine imported from {engine_file}, not from the wheel"
    assert Path(conf_dir).is_relative_to(site) and Path(conf_dir, "config.yaml").is_file()

    # The console scripts of the wheel, with configs of every group read from the package.
    _run([str(bin_dir / "nas-search"), "budget.evaluations=5", "progress=log", "tracker=wandb",
          "tracker.mode=disabled", f"hydra.run.dir={work / 'run'}"], work, env)
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["evaluations"] == 5 and summary["best"]["metrics"]["test_acc"] > 0
    report = _run([str(bin_dir / "nas-report"), str(work / "run")], work, env)
    assert "test_acc @ 5" in report.stdout and (work / "run" / "report" / "best_so_far.png").is_file()

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    if "nas-gap" in scripts:
        gap = _run([str(bin_dir / "nas-gap"), "--help"], work, env)
        assert gap.stdout.strip()
