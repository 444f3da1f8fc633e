"""The example plugin (examples/plugin_strategy) installed as a user would, found by entry point and Hydra."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests._venv import child_env, child_venv, pip_install

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plugin_strategy"


@pytest.mark.slow
def test_plugin_installs_runs_from_its_config_and_passes_conformance(tmp_path: Path) -> None:
    src = tmp_path / "plugin_src"  # a copy: building writes build/ and egg-info next to the sources
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    bin_dir = child_venv(tmp_path / "venv", with_project=True)
    pip_install(bin_dir, str(src))
    env = child_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()

    # strategy=simulated_annealing: the yaml comes from the plugin's SearchPathPlugin,
    # the class from its entry point.
    proc = subprocess.run(
        [str(bin_dir / "python"), "-m", "engine.cli", "strategy=simulated_annealing", "budget.evaluations=5",
         "strategy.n_init=2", "progress=none", f"hydra.run.dir={work / 'run'}"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["strategy"] == "simulated_annealing" and summary["evaluations"] == 5
    config = (work / "run" / ".hydra" / "config.yaml").read_text()
    assert "cooling: 0.95" in config  # the plugin's own defaults were composed

    # Found through its entry point, and held to the engine's conformance suite
    # (what the plugin's own tests/test_simulated_annealing.py runs, without pytest's start-up).
    check = (
        "from engine.strategies import get_strategy, list_strategies\n"
        "from engine.testing import check_strategy\n"
        "from nas_plugin_example import SimulatedAnnealing\n"
        "assert 'simulated_annealing' in list_strategies()\n"
        "assert get_strategy('simulated_annealing') is SimulatedAnnealing\n"
        "check_strategy(SimulatedAnnealing)\n"
        "print('conformant')\n"
    )
    proc = subprocess.run([str(bin_dir / "python"), "-c", check], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "conformant" in proc.stdout
