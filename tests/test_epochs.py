"""Training epochs as a fidelity: continued training equals uninterrupted training, rungs, the epoch gap."""

from __future__ import annotations

import copy
import csv
import json
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from scipy import stats

from engine.cli import config_dir
from engine.fidelity import EpochView, epochs_fidelity, fidelity_epochs, rung_epochs
from engine.gap import rung_gap
from engine.journal import Journal
from engine.runner import ConfigError, run_search
from engine.spaces import get_space
from engine.types import DEFAULT_FIDELITY, Evaluation, Status
from oracles.data import dataset_from_config
from oracles.models import build_model
from oracles.standalone import Recipe, StandaloneOracle, train_job, train_model
from oracles.tabular import TabularOracle

DATA = {"name": "synthetic", "num_samples": 256, "num_classes": 4, "shape": [1, 8, 8], "noise": 2.0}
MODEL = {"channels": 8, "cells": 1}
SPACE = get_space("nb201")
ARCH = SPACE.parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|")
FIT = ("val_acc", "val_loss", "train_loss", "train_acc", "params", "flops")


def _oracle(tmp_path: Path | None, epochs: int = 6, **kw: Any) -> StandaloneOracle:
    return StandaloneOracle(SPACE, DATA, epochs=epochs, batch_size=32, model=MODEL, hardware={"latency": False},
                            output_dir=tmp_path, **kw)


@pytest.mark.parametrize("schedule,optimizer", [("cosine", "sgd"), ("constant", "adam")])
def test_training_to_3_then_on_to_9_equals_9_in_one_go(schedule: str, optimizer: str) -> None:
    ds = dataset_from_config(DATA)
    recipe = Recipe(epochs=9, schedule=schedule, optimizer=optimizer, batch_size=32)
    dev = torch.device("cpu")

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(SPACE, ARCH, ds.input_shape, ds.num_classes, **MODEL)

    whole = fresh()
    one_go = train_model(whole, ds, recipe, 7, dev)
    saved: list[dict[str, Any]] = []
    short = fresh()
    train_model(short, ds, recipe, 7, dev, epochs=3, on_epoch=lambda s: saved.append(copy.deepcopy(s)))
    assert [s["epoch"] for s in saved] == [1, 2, 3]
    # Continued in a new module, from the state alone, as a later job would.
    resumed = fresh()
    continued = train_model(resumed, ds, recipe, 7, dev, epochs=9, checkpoint=saved[-1])
    assert continued == one_go
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    # A short training is not the full one: the schedule had not ended.
    assert not all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), short.state_dict().values()))


def test_oracle_promotion_continues_and_equals_one_training(tmp_path: Path) -> None:
    promoted = _oracle(tmp_path / "a")
    low = promoted.evaluate_epochs([ARCH], 2)[0]
    ckpt = Path(promoted.checkpoint_path(ARCH))
    assert ckpt.is_file() and torch.load(ckpt, weights_only=True)["epoch"] == 2
    full = promoted.evaluate([ARCH])[0]
    alone = _oracle(tmp_path / "b").evaluate([ARCH])[0]
    assert low.ok and full.ok and alone.ok
    assert {k: full.metrics[k] for k in FIT} == {k: alone.metrics[k] for k in FIT}
    assert full.reported == alone.reported and "test_acc" in full.reported
    assert low.reported == {}  # the test split is measured at the full training only
    assert (low.metrics["epochs"], full.metrics["epochs"], alone.metrics["epochs"]) == (2, 6, 6)
    assert (low.metrics["epochs_trained"], full.metrics["epochs_trained"], alone.metrics["epochs_trained"]) == (2, 4, 6)
    assert full.metrics["train_seconds_total"] > full.metrics["train_seconds"]
    assert not ckpt.exists()  # a full training is never continued, so its checkpoint goes
    with pytest.raises(ValueError, match=r"between 1 and oracle\.epochs=6"):
        promoted.evaluate_epochs([ARCH], 7)


def test_a_shorter_rung_after_a_longer_one_trains_afresh_and_keeps_the_longer_checkpoint(tmp_path: Path) -> None:
    o = _oracle(tmp_path)
    o.evaluate_epochs([ARCH], 4)
    again = o.evaluate_epochs([ARCH], 2)[0]
    fresh = _oracle(tmp_path / "other").evaluate_epochs([ARCH], 2)[0]
    assert {k: again.metrics[k] for k in FIT} == {k: fresh.metrics[k] for k in FIT}
    assert torch.load(o.checkpoint_path(ARCH), weights_only=True)["epoch"] == 4


def test_a_changed_recipe_never_continues_a_stale_checkpoint(tmp_path: Path) -> None:
    a, b = _oracle(tmp_path), _oracle(tmp_path, lr=0.01)
    assert a.checkpoint_path(ARCH) != b.checkpoint_path(ARCH)
    assert a.checkpoint_path(ARCH) == _oracle(tmp_path).checkpoint_path(ARCH)


def _run_job(job: dict[str, Any]) -> None:
    train_job(job)


def test_a_training_killed_mid_way_continues_from_its_last_epoch(tmp_path: Path) -> None:
    oracle = _oracle(tmp_path, epochs=40)
    job = oracle.job(ARCH)
    ckpt = Path(job["checkpoint"])
    proc = mp.get_context("spawn").Process(target=_run_job, args=(job,))
    proc.start()
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline and proc.is_alive():
        time.sleep(0.05)
    os.kill(proc.pid, 9)  # type: ignore[arg-type]
    proc.join()
    assert ckpt.exists(), "the job wrote no checkpoint before it was killed"
    done = torch.load(ckpt, weights_only=True)["epoch"]
    assert 1 <= done < 40
    resumed = train_job(job)
    alone = _oracle(tmp_path / "alone", epochs=40).evaluate([ARCH])[0]
    assert resumed["metrics"]["epochs_trained"] == 40 - done
    assert {k: resumed["metrics"][k] for k in FIT} == {k: alone.metrics[k] for k in FIT}


def test_an_unreadable_checkpoint_is_trained_over(tmp_path: Path) -> None:
    o = _oracle(tmp_path)
    Path(o.checkpoint_path(ARCH)).write_bytes(b"cut by a kill")
    ev = o.evaluate_epochs([ARCH], 2)[0]
    assert ev.ok and ev.metrics["epochs_trained"] == 2
    assert torch.load(o.checkpoint_path(ARCH), weights_only=True)["epoch"] == 2


def test_a_temporary_checkpoint_directory_goes_with_close() -> None:
    o = _oracle(None)
    o.evaluate_epochs([ARCH], 1)
    root = Path(o.checkpoint_path(ARCH)).parent
    assert root.is_dir()
    o.close()
    assert not root.exists()


# -- names and rungs ---------------------------------------------------------------------------
def test_rungs_and_names() -> None:
    assert rung_epochs(1, 27, 3) == [1, 3, 9, 27]
    assert rung_epochs(1, 10, 3) == [1, 3, 10]
    assert rung_epochs(2, 8, 2) == [2, 4, 8]
    assert rung_epochs(3, 9, 3) == [3, 9]
    assert epochs_fidelity(3, 9) == "epochs=3" and epochs_fidelity(9, 9) == DEFAULT_FIDELITY
    assert fidelity_epochs("epochs=12") == 12
    assert [fidelity_epochs(f) for f in ("default", "epochs=0", "epochs=x", "cheap")] == [None] * 4
    for bad, match in (((1, 9, 1), "eta"), ((4, 2, 2), "min_epochs"), ((0, 9, 3), "min_epochs")):
        with pytest.raises(ValueError, match=match):
            rung_epochs(*bad)


def test_an_epoch_view_needs_fewer_epochs_than_the_full_training() -> None:
    o = _oracle(None)
    with pytest.raises(ValueError, match="fewer than the oracle's full training of 6"):
        EpochView(o, 6)
    o.close()


# -- the epoch gap -------------------------------------------------------------------------------
def test_rung_gap_matches_scipy_on_hand_built_history() -> None:
    rng = np.random.default_rng(3)
    archs = [SPACE.sample(rng) for _ in range(12)]
    archs = list(dict.fromkeys(archs))
    full = rng.uniform(0.5, 0.9, len(archs))
    short = full + rng.normal(0, 0.08, len(archs))
    history = [Evaluation(a, "epochs=1", objective=float(s)) for a, s in zip(archs, short)]
    # only the first 8 reach the full training; a failure and a cached repeat are left out
    history += [Evaluation(a, DEFAULT_FIDELITY, objective=float(f)) for a, f in zip(archs[:8], full[:8])]
    history += [Evaluation.failure(archs[9], DEFAULT_FIDELITY, "diverged"),
                Evaluation(archs[10], DEFAULT_FIDELITY, objective=0.0, cached=True),
                Evaluation(archs[11], DEFAULT_FIDELITY, status=Status.SKIPPED)]
    g = rung_gap(history)["epochs=1"]
    x, y = short[:8], full[:8]
    assert g["architectures"] == 8 and g["epochs"] == 1
    assert g["kendall_tau"] == pytest.approx(stats.kendalltau(x, y).statistic)
    assert g["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    k = g["top_k"]
    assert k == 2
    assert g["top_k_overlap"] == len(set(np.argsort(-x)[:k]) & set(np.argsort(-y)[:k])) / k
    assert rung_gap(history[:3] + history[12:14])["epochs=1"]["kendall_tau"] is None  # 2 at both: too few


# -- through the runner ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hydra_ctx() -> Iterator[None]:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        yield


def _cfg(*overrides: str) -> DictConfig:
    return compose(config_name="config", overrides=["progress=none", *overrides])


def _epoch_table(tmp_path: Path, n: int = 80) -> tuple[Path, dict[str, tuple[float, float]]]:
    rng = np.random.default_rng(0)
    archs = sorted({SPACE.sample(rng).string for _ in range(3 * n)})[:n]
    rows = {}
    for a in archs:
        full = float(rng.uniform(60, 95))
        rows[a] = (full - 20 + float(rng.normal(0, 3)), full - 8 + float(rng.normal(0, 1.5)), full)
    path = tmp_path / "epochs.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "val_acc_1", "val_acc_3", "val_acc", "test_acc"])
        w.writerows([a, *v, v[2] - 0.5] for a, v in rows.items())
    return path, {a: (v[0], v[2]) for a, v in rows.items()}


@pytest.mark.parametrize("strategy", ["successive_halving", "hyperband", "asha"])
def test_rung_strategy_on_a_table_with_per_epoch_columns(hydra_ctx: None, tmp_path: Path, strategy: str) -> None:
    table, rows = _epoch_table(tmp_path)
    cfg = _cfg(f"strategy={strategy}", f"oracle.table={table}", "oracle.epochs=9",
               "oracle.epoch_columns={1: val_acc_1, 3: val_acc_3}", "oracle.metrics=[]", "oracle.cost_seconds=90",
               "budget.evaluations=40")
    summary = run_search(cfg, tmp_path / "run")
    with Journal(tmp_path / "run" / "journal.sqlite") as journal:
        seen = [e for _, e in journal.evaluations()]
    assert {e.fidelity for e in seen} == {"epochs=1", "epochs=3", DEFAULT_FIDELITY}
    for e in seen:
        assert e.objective == pytest.approx({"epochs=1": rows[e.arch.string][0],
                                             DEFAULT_FIDELITY: rows[e.arch.string][1]}.get(e.fidelity, e.objective))
        assert ("test_acc" in e.reported) == (e.fidelity == DEFAULT_FIDELITY)
    # Every promotion continues: a rung costs the epochs it adds (90 s for 9 epochs, 10 s per epoch).
    trained: dict[str, int] = {}
    for e in seen:
        epochs = fidelity_epochs(e.fidelity) or 9
        before = trained.get(e.arch.string, 0)
        assert e.cost == pytest.approx(10.0 * (epochs - (before if before <= epochs else 0)))
        trained[e.arch.string] = epochs
    assert any(e.cost == pytest.approx(60.0) for e in seen)  # promoted from 3 to 9 epochs
    finals = {e.arch.string for e in seen if e.fidelity == DEFAULT_FIDELITY}
    assert summary["best"]["arch"] in finals
    gap = summary["epoch_gap"]
    assert set(gap) == {"epochs=1", "epochs=3"}
    assert gap["epochs=1"]["architectures"] == len(finals & {e.arch.string for e in seen if e.fidelity == "epochs=1"})
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epoch_gap"] == gap


def test_rung_strategy_refusals(hydra_ctx: None, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot evaluate after fewer epochs"):
        run_search(_cfg("strategy=hyperband", "strategy.max_epochs=9", "budget.evaluations=5"), tmp_path / "a")
    with pytest.raises(ConfigError, match="no epochs to take it from"):
        run_search(_cfg("strategy=asha", "budget.evaluations=5"), tmp_path / "b")
    table, _ = _epoch_table(tmp_path)
    base = [f"oracle.table={table}", "oracle.epochs=9", "oracle.epoch_columns={1: val_acc_1, 3: val_acc_3}",
            "oracle.metrics=[]", "budget.evaluations=5"]
    with pytest.raises(ConfigError, match=r"differs from oracle\.epochs=9"):
        run_search(_cfg("strategy=asha", "strategy.max_epochs=27", *base), tmp_path / "c")
    with pytest.raises(ConfigError, match="no column for 2 epochs"):
        run_search(_cfg("strategy=asha", "strategy.eta=2", "strategy.min_epochs=2", *base), tmp_path / "d")
    for run in "abcd":
        assert not (tmp_path / run).exists()


def test_tabular_epoch_column_checks(tmp_path: Path) -> None:
    table, _ = _epoch_table(tmp_path)
    with pytest.raises(ValueError, match=r"needs oracle\.epochs"):
        TabularOracle(SPACE, table, epoch_columns={1: "val_acc_1"})
    with pytest.raises(ValueError, match=r"fewer epochs than oracle\.epochs=9"):
        TabularOracle(SPACE, table, epochs=9, epoch_columns={9: "val_acc_1"})
    own = TabularOracle(SPACE, table, epochs=9, epoch_columns={1: "val_acc_1", 3: "val_acc_3"})
    assert "val_acc_1" not in own.metrics and "val_acc_3" not in own.metrics  # a rung's result, not a free metric


def test_asynchronous_asha_through_the_runner(
    hydra_ctx: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table, _ = _epoch_table(tmp_path)
    base = ["strategy=asha", f"oracle.table={table}", "oracle.epochs=9", "oracle.metrics=[]",
            "oracle.epoch_columns={1: val_acc_1, 3: val_acc_3}", "budget.evaluations=30"]
    summary = run_search(_cfg(*base, "asynchronous=true", "batch_size=3"), tmp_path / "run")
    assert summary["evaluations"] == 30
    assert summary["workers"]["asynchronous"] is True and summary["workers"]["batch_size"] == 3
    assert 0 < summary["workers"]["busy"] <= 1.0
    assert set(summary["epoch_gap"]) == {"epochs=1", "epochs=3"}
    with caplog.at_level("WARNING"):
        run_search(_cfg(*base, "asynchronous=true"), tmp_path / "one")
    assert "asynchronous=true has no effect with batch_size=1" in caplog.text
    with pytest.raises(ConfigError, match="asynchronous must be true or false, got 'maybe'"):
        run_search(_cfg(*base, "asynchronous=maybe"), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
