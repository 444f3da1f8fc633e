"""The own-network example (examples/own_network) as a user runs it: install, search, export, reload.

Acceptance of "your own network, your own space, the winner as a model you keep":
the example package registers ``space=tinynet`` by entry point and Hydra search
path, the supernet searches its network on its own ``.npz`` data, ``nas-export``
writes the winner with inherited and with retrained weights, and a fresh process
that has only the export files gets the accuracy the export reported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests._venv import child_env, child_venv, pip_install

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "own_network"

def _run(bin_dir: Path, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_own_network_search_export_and_reload(tmp_path: Path) -> None:
    src = tmp_path / "example_src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    bin_dir = child_venv(tmp_path / "venv", with_project=True)  # the engine from these sources: run by module
    pip_install(bin_dir, str(src))
    env = child_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()

    _run(bin_dir, ["tinynet-data", "signals.npz", "--n", "600"], work, env)
    _run(bin_dir, ["python", "-m", "engine.cli", "space=tinynet", "oracle=supernet", "dataset=npz",
                   f"dataset.path={work}/signals.npz",
                   "budget.evaluations=12", "supernet.epochs=10", "progress=none", "hydra.run.dir=run"], work, env)
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["space"] == "tinynet" and summary["evaluations"] == 12
    best = summary["best"]

    for weights, out in (("inherited", "exported"), ("retrain", "retrained")):
        export = ["python", "-m", "oracles.export_cli", "run", f"weights={weights}", f"out={out}"]
        proc = _run(bin_dir, export, work, env)
        spec = json.loads((work / out / "model.json").read_text())
        assert spec["arch"] == best["arch"] and spec["space"]["name"] == "tinynet"
        # The network that was scored is the one exported: same size, and with inherited
        # weights the same validation accuracy as the search's objective.
        assert spec["metrics"]["params"] == best["metrics"]["params"]
        if weights == "inherited":
            assert spec["metrics"]["val_acc"] == pytest.approx(best["objective"], abs=1e-6)
        assert f"{spec['metrics']['val_acc']:.4f}" in proc.stdout

        # A fresh process with nothing but the export: the module, its parameter count, and the
        # reported accuracy on the same validation split.
        check = (
            "import json, sys, torch\n"
            "import oracles\n"
            "from oracles.export import read_export\n"
            "from oracles.standalone import evaluate_accuracy\n"
            "from oracles.data import dataset_from_config\n"
            "spec = read_export(sys.argv[1])\n"
            "model = oracles.load_exported(sys.argv[1])\n"
            "from oracles.choices import choices_of\n"
            "try:\n"
            "    choices_of(model)\n"
            "    raise SystemExit('the export still holds choice modules')\n"
            "except ValueError:\n"
            "    pass\n"
            "x, y = dataset_from_config(spec['dataset']).val\n"
            "acc, _ = evaluate_accuracy(model, x, y)\n"
            "n = sum(p.numel() for p in model.parameters())\n"
            "prog = torch.export.load(sys.argv[1] + '/model.pt2').module()\n"
            "with torch.no_grad():\n"
            "    diff = (prog(x[:7]) - model(x[:7])).abs().max().item()\n"
            "print(json.dumps({'acc': acc, 'params': n, 'diff': diff}))\n"
        )
        proc = _run(bin_dir, ["python", "-c", check, out], work, env)
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got["params"] == spec["metrics"]["params"]
        assert got["acc"] == pytest.approx(spec["metrics"]["val_acc"], abs=1e-9)
        assert got["diff"] < 1e-5
