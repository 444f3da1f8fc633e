"""nas-export: the winner of a real run as a plain model, and refusals that write nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from oracles import load_exported
from oracles.data import dataset_from_config
from oracles.export import read_export
from oracles.export_cli import main
from oracles.standalone import evaluate_accuracy


def _search(run: Path, *overrides: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", *overrides, "progress=none", f"hydra.run.dir={run}"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((run / "summary.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export")
    _search(root / "supernet", "oracle=supernet", "dataset=digits", "budget.evaluations=6", "supernet.epochs=2",
            "calibration.size=0")
    _search(root / "tabular", "budget.evaluations=3")
    return {"supernet": root / "supernet", "tabular": root / "tabular"}


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_inherited_export_is_the_network_that_was_scored(runs: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    summary = json.loads((runs["supernet"] / "summary.json").read_text())
    out = tmp_path / "inherited"
    assert main([str(runs["supernet"]), f"out={out}"]) == 0
    printed = capsys.readouterr().out
    spec = read_export(out)
    best = summary["best"]
    assert spec["arch"] == best["arch"] and spec["weights"] == "inherited"
    # Issue 10: build_model's defaults had 192,634 parameters for a network scored with 132,826.
    assert spec["metrics"]["params"] == best["metrics"]["params"]
    assert spec["metrics"]["val_acc"] == pytest.approx(best["objective"], abs=1e-6)
    model = load_exported(out)
    x, y = dataset_from_config(spec["dataset"]).val
    assert evaluate_accuracy(model, x, y)[0] == pytest.approx(spec["metrics"]["val_acc"], abs=1e-9)
    assert f"{best['metrics']['params']:,.0f}" in printed and "load with" in printed
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.pt", "model.pt2"]


def test_retrain_export_trains_the_same_network(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "retrained"
    assert main([str(runs["tabular"]), f"out={out}", "epochs=1", "device=cpu"]) == 0
    spec = read_export(out)
    assert spec["weights"] == "retrain" and spec["recipe"]["epochs"] == 1
    summary = json.loads((runs["tabular"] / "summary.json").read_text())
    assert spec["arch"] == summary["best"]["arch"]
    assert "note" in spec  # a table trains nothing: the accuracy is not the run's objective
    x, y = dataset_from_config(spec["dataset"]).test
    assert evaluate_accuracy(load_exported(out), x, y)[0] == pytest.approx(spec["metrics"]["test_acc"], abs=1e-9)


@pytest.mark.parametrize(
    ("run", "args", "message"),
    [
        ("supernet", ["bogus=1"], "unknown option"),
        ("supernet", ["weights=maybe"], "weights must be inherited or retrain"),
        ("tabular", ["weights=inherited"], "weights=inherited needs a supernet run"),
        ("supernet", ["epochs=3"], "epochs applies to weights=retrain only"),
        ("supernet", ["finetune_epochs=-1"], "finetune_epochs must be an integer >= 0"),
        ("supernet", ["arch=depth=3"], "arch: "),
        ("missing", [], "does not exist"),
    ],
)
def test_refusal_is_one_line_and_writes_nothing(runs: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                run: str, args: list[str], message: str) -> None:
    run_dir = runs.get(run, runs["supernet"].parent / "missing")
    before = _files(run_dir.parent)
    assert main([str(run_dir), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("nas-export: ") and captured.err.count("\n") == 1 and message in captured.err
    assert _files(run_dir.parent) == before


def test_existing_output_is_refused_unless_overwrite(runs: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main([str(runs["supernet"]), f"out={out}"]) == 2
    assert "already exists" in capsys.readouterr().err and [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main([str(runs["supernet"]), f"out={out}", "overwrite=true"]) == 0
    assert (out / "model.pt").is_file()
