"""``nas-gap`` end to end on tiny data: table, plots, caches that survive a rerun."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir

from engine.cli import config_dir
from oracles.gap_cli import GapConfigError, run_gap

torch.set_num_threads(1)

TINY = [
    "dataset=synthetic", "dataset.num_samples=96", "dataset.num_classes=3", "dataset.shape=[1,6,6]",
    "executor=local", "standalone.epochs=1", "standalone.batch_size=16", "standalone.model.nb201.channels=4",
    "standalone.hardware.latency=false", "supernet.epochs=2", "supernet.batch_size=16", "supernet.few_shot_epochs=1",
    "supernet.recalibration_batches=2", "n_archs=4", "standalone_seeds=2", "supernet_seeds=2",
    "proxies=[synflow,nn_degree]", "supernet.measure_latency=false",
    "settings=[{name: one-shot, bn_recalibration: false}, {name: recal}, {name: few-shot, few_shot_splits: 5}]",
]


def _cfg(*extra: str):  # type: ignore[no-untyped-def]
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        return compose("gap", overrides=[*TINY, *extra])


def test_nas_gap_smoke_writes_table_plots_and_reuses_its_caches(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_gap(_cfg(), out)
    saved = json.loads((out / "gap.json").read_text())
    assert saved["n_archs"] == 4 and len(set(saved["archs"])) == 4
    names = [r["name"] for r in saved["table"]]
    assert names == ["one-shot", "recal", "few-shot", "proxy:synflow", "proxy:nn_degree",
                     "proxy:ensemble"]
    assert saved["table"][-1]["members"] == ["synflow", "nn_degree"]
    for row in saved["table"][:3]:
        assert row["n"] == 4
        for key in ("kendall_tau", "tau_top", "stability_seeds", "stability_epochs"):  # None: a constant score
            assert row[key] is None or -1 <= row[key] <= 1
        assert 1 <= row["pick_rank"] <= 4
    assert saved["standalone"]["ok"] == 4
    assert all(len(v) == 2 for v in saved["standalone"]["per_seed"].values())
    for png in ("gap_scatter.png", "gap_rank_agreement.png"):
        assert (out / png).stat().st_size > 1000
    assert "noise ceiling" in result["table_text"]
    lines = (out / "standalone.jsonl").read_text().splitlines()
    assert len(lines) == 8  # 4 architectures x 2 seeds
    # one-shot and recal share one trained supernet per seed; few-shot reuses it as its parent
    ckpts = sorted(p.name for p in out.glob("supernet-*.pt"))
    assert len(ckpts) == 4  # (one-shot, few-shot) x 2 seeds
    # a rerun pointed at the same caches trains nothing again
    again = run_gap(_cfg(f"standalone_cache={out / 'standalone.jsonl'}", f"supernet_cache={out}"), tmp_path / "again")
    assert len((out / "standalone.jsonl").read_text().splitlines()) == 8
    assert again["table"][1]["kendall_tau"] == saved["table"][1]["kendall_tau"]
    assert again["standalone"]["per_seed"] == saved["standalone"]["per_seed"]


def test_nas_gap_refuses_bad_config_before_training(tmp_path: Path) -> None:
    with pytest.raises(GapConfigError, match="n_archs"):
        run_gap(_cfg("n_archs=2"), tmp_path)
    with pytest.raises(GapConfigError, match=r"settings 'x'.*supernet\.sampling"):
        run_gap(_cfg("settings=[{name: x, sampling: greedy}]"), tmp_path)
    with pytest.raises(GapConfigError, match=r"metric must be one of \['val_acc', 'val_loss'\], got 'val_f1'"):
        run_gap(_cfg("metric=val_f1"), tmp_path)
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.jsonl"))


def test_nas_gap_on_the_loss_ranks_negated_losses_from_the_same_caches(tmp_path: Path) -> None:
    """``metric=val_loss`` measures the gap on cross-entropy (lowest first) without training anything again."""
    from engine.gap import kendall_tau

    out = tmp_path / "acc"
    acc = run_gap(_cfg("settings=[{name: recal}]", "supernet_seeds=1", "proxies=[]"), out)
    caches = [f"standalone_cache={out / 'standalone.jsonl'}", f"supernet_cache={out}"]
    loss = run_gap(_cfg("settings=[{name: recal}]", "supernet_seeds=1", "proxies=[]", "metric=val_loss", *caches),
                   tmp_path / "loss")
    assert len((out / "standalone.jsonl").read_text().splitlines()) == 8 and len(list(out.glob("*.pt"))) == 1
    assert acc["metric"] == "val_acc" and loss["metric"] == "val_loss"
    assert "val_loss (ranked lowest first)" in loss["table_text"]
    records = [json.loads(line) for line in (out / "standalone.jsonl").read_text().splitlines()]
    for arch, per_seed in loss["standalone"]["per_seed"].items():
        mine = sorted(-r["metrics"]["val_loss"] for r in records if r["arch"] == arch)
        assert sorted(per_seed) == pytest.approx(mine)
    assert loss["standalone"]["mean_val_acc"] == acc["standalone"]["mean_val_acc"]  # still accuracies
    run = loss["settings"][0]["seeds"]["0"]
    keys = list(loss["standalone"]["per_seed"])
    truth = [sum(loss["standalone"]["per_seed"][a]) for a in keys]
    expected = kendall_tau([-run["val_loss"][a] for a in keys], truth)
    got = loss["table"][0]["kendall_tau"]
    assert (got is None and expected != expected) or got == pytest.approx(expected)
    assert len(run["epochs_loss"]) == len(run["epochs"]) >= 1


# -- the command line, as a subprocess -----------------------------------------------------------
def _cli(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    """``python -m oracles.gap_cli`` as a user runs it, with the run directory pinned to ``run_dir``."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "oracles.gap_cli", *overrides, f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=Path(__file__).resolve().parents[1])


def _ours(stderr: str) -> list[str]:
    """Lines ``nas-gap`` itself wrote to stderr (not torch's import-time CUDA notice on a CPU-only box)."""
    return [line for line in stderr.splitlines() if "No CUDA runtime is found" not in line]


@pytest.mark.parametrize("bad", ["n_archs=-1", "metric=acc"])
def test_nas_gap_cli_refusal_is_one_stderr_line_and_creates_no_run_dir(tmp_path: Path, bad: str) -> None:
    """A config refused by its scalar checks is refused before Hydra creates the run directory."""
    run_dir = tmp_path / "outputs" / "run"
    proc = _cli(run_dir, bad)
    assert proc.returncode != 0 and proc.stdout == ""
    assert len(_ours(proc.stderr)) == 1 and bad.split("=")[0] in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_nas_gap_cli_late_refusal_removes_only_what_hydra_made_for_it(tmp_path: Path) -> None:
    """A refusal after Hydra wrote (a bad supernet setting) undoes ``.hydra/`` and the log, nothing else."""
    fresh = tmp_path / "new" / "run"
    proc = _cli(fresh, "n_archs=3", "settings=[{name: x, sampling: greedy}]")
    assert proc.returncode != 0 and proc.stdout == ""
    assert len(_ours(proc.stderr)) == 1 and "sampling" in proc.stderr
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    proc = _cli(existing, "n_archs=3", "settings=[{name: x, sampling: greedy}]")
    assert proc.returncode != 0
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]


def test_nas_gap_ceiling_text_prints_each_stored_value() -> None:
    """An undefined top-fraction ceiling must not hide the defined overall one that gap.json and the plot show."""
    from oracles.gap_cli import format_ceiling

    text = format_ceiling({"noise_ceiling": 0.764, "noise_ceiling_top": None, "noise_ceiling_split": None}, 0.2, 2)
    assert "0.764 overall" in text and "undefined within the top 20%" in text and "needs" not in text
    one_seed = format_ceiling({"noise_ceiling": None, "noise_ceiling_top": None, "noise_ceiling_split": None}, 0.2, 1)
    assert "undefined (needs standalone_seeds >= 2)" in one_seed


def test_nas_gap_tau_is_the_mean_over_supernet_seeds() -> None:
    """Two supernet seeds that rank perfectly and in reverse give tau 0, not the first seed's 1."""
    from oracles.gap_cli import build_report

    archs = [f"a{i}" for i in range(5)]
    standalone = {a: [{"ok": True, "val_acc": 0.1 * i}, {"ok": True, "val_acc": 0.1 * i}] for i, a in enumerate(archs)}

    def run(sign: float) -> dict[str, Any]:
        return {"val_acc": {a: sign * i for i, a in enumerate(archs)}, "training_seconds": 1.0, "archs_per_second": 1.0}

    _, rows = build_report(standalone, [{"name": "s", "seeds": {"0": run(1.0), "1": run(-1.0)}}], {}, 0.4)
    row = rows[0]
    assert row["kendall_tau_per_supernet_seed"] == {"0": pytest.approx(1.0), "1": pytest.approx(-1.0)}
    assert row["kendall_tau"] == pytest.approx(0.0) == row["kendall_tau_mean_over_supernet_seeds"]
    assert row["kendall_tau_spread"] == [pytest.approx(-1.0), pytest.approx(1.0)]
    assert row["kendall_tau_definition"] == "mean over 2 supernet seeds"


def test_nas_gap_cli_prints_what_gap_json_holds_and_where_it_went(tmp_path: Path) -> None:
    """The printed tau (with its definition), ceiling and spread agree with gap.json, rounded; paths are printed."""
    from engine.gap import kendall_tau

    run_dir = tmp_path / "run"
    proc = _cli(run_dir, *[o for o in TINY if not o.startswith(("settings=", "proxies="))],
                "settings=[{name: recal}]", "proxies=[]")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    saved = json.loads((run_dir / "gap.json").read_text())
    assert f"gap.json: {run_dir / 'gap.json'}" in out
    for plot in ("gap_scatter.png", "gap_rank_agreement.png"):
        assert f"plot: {run_dir / plot}" in out
    assert not re.search(r"\d\.\d{5,}", out), out  # no raw floats
    lo, hi = saved["standalone"]["spread"]
    assert f"{lo:.3f} to {hi:.3f} (a fraction of 1)" in out  # the torch oracles' scale, said
    row = saved["table"][0]
    per_arch = saved["standalone"]["per_seed"]
    keys = list(per_arch)
    taus = [kendall_tau([run["val_acc"][a] for a in keys], [sum(per_arch[a]) for a in keys])
            for run in saved["settings"][0]["seeds"].values()]
    defined = [t for t in taus if t == t]
    assert len(taus) == 2 and row["kendall_tau_definition"].startswith(f"mean over {len(defined)}")
    expected = sum(defined) / len(defined) if defined else None
    assert row["kendall_tau"] == saved["kendall_tau_mean_over_supernet_seeds"]["recal"]
    assert (row["kendall_tau"] is None and expected is None) or row["kendall_tau"] == pytest.approx(expected)
    table_line = next(line for line in out.splitlines() if line.startswith("recal "))
    tau_text = "-" if row["kendall_tau"] is None else f"{row['kendall_tau']:.3f}"
    assert table_line.split()[1] == tau_text
    assert row["kendall_tau_definition"] in out
    ceiling = saved["standalone"]["noise_ceiling"]
    ceiling_line = next(line for line in out.splitlines() if line.startswith("noise ceiling"))
    assert (f"{ceiling:.3f} overall" in ceiling_line) if ceiling is not None else ("undefined" in ceiling_line)
