"""Stand-alone oracle: learns real (small) data, fails cleanly on divergence, same result in any executor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from engine.cli import config_dir
from engine.runner import run_search
from engine.spaces import ChainSpace, NB201Space
from engine.types import Status
from oracles.executors import LocalExecutor, ProcessExecutor, make_executor
from oracles.standalone import StandaloneOracle, job_seed

torch.set_num_threads(1)

SYNTH = {"name": "synthetic", "num_samples": 240, "num_classes": 4, "shape": [1, 6, 6], "noise": 1.0}
TINY = {"channels": 4, "cells": 1}
FAST = {"epochs": 4, "batch_size": 16, "lr": 0.05, "model": TINY, "hardware": {"latency": False}}
CONV = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
POOL = "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"


def test_training_beats_chance_and_keeps_test_accuracy_report_only() -> None:
    space = NB201Space()
    oracle = StandaloneOracle(space, dataset=SYNTH, **FAST, seed=0)
    [ev] = oracle.evaluate([space.parse(CONV)])
    assert ev.ok, ev.error
    assert ev.objective == ev.metrics["val_acc"] > 0.6  # chance is 0.25
    assert {"val_loss", "train_loss", "train_acc", "params", "flops"} <= set(ev.metrics)
    assert "test_acc" in ev.reported and "test_acc" not in ev.metrics
    assert ev.visible().reported == {}
    assert ev.cost > 0


def test_same_seed_same_result_other_seed_other_result() -> None:
    space = NB201Space()
    arch = space.parse(CONV)
    a = StandaloneOracle(space, dataset=SYNTH, **{**FAST, "epochs": 1}, seed=3).evaluate([arch])[0]
    b = StandaloneOracle(space, dataset=SYNTH, **{**FAST, "epochs": 1}, seed=3).evaluate([arch])[0]
    c = StandaloneOracle(space, dataset=SYNTH, **{**FAST, "epochs": 1}, seed=4).evaluate([arch])[0]
    assert a.metrics["train_loss"] == b.metrics["train_loss"]
    assert a.metrics["train_loss"] != c.metrics["train_loss"]
    assert job_seed(3, CONV) != job_seed(3, POOL)


def test_divergence_is_a_failed_evaluation_not_a_crash() -> None:
    space = NB201Space()
    oracle = StandaloneOracle(space, dataset=SYNTH, **{**FAST, "lr": 1e6}, weight_decay=0.0, momentum=0.0)
    evs = oracle.evaluate([space.parse(CONV), space.parse(POOL)])
    assert evs[0].status is Status.FAILED and "diverged" in (evs[0].error or "")
    assert evs[0].objective is None
    assert len(evs) == 2


def test_foreign_architecture_fails_alone() -> None:
    space = NB201Space()
    chain = ChainSpace()
    oracle = StandaloneOracle(space, dataset=SYNTH, **{**FAST, "epochs": 1})
    evs = oracle.evaluate([chain.sample(np.random.default_rng(0)), space.parse(POOL)])
    assert evs[0].status is Status.FAILED and "not an architecture of space 'nb201'" in (evs[0].error or "")
    assert evs[1].ok


def test_process_pool_gives_the_local_result() -> None:
    space = NB201Space()
    archs = [space.parse(CONV), space.parse(POOL)]
    opts = {**FAST, "epochs": 1}
    local = StandaloneOracle(space, dataset=SYNTH, **opts, seed=1, executor="local").evaluate(archs)
    oracle = StandaloneOracle(
        space, dataset=SYNTH, **opts, seed=1, executor={"name": "process", "workers": 2, "start_method": "fork"}
    )
    try:
        pooled = oracle.evaluate(archs)
    finally:
        oracle.close()
    for a, b in zip(local, pooled):
        assert a.ok and b.ok
        assert a.objective == b.objective
        assert a.metrics["train_loss"] == b.metrics["train_loss"]


def _boom(job: int) -> int:
    if job == 1:
        raise RuntimeError("job one broke")
    return job * 10


def test_executors_keep_order_and_isolate_errors() -> None:
    out = LocalExecutor().map(_boom, [0, 1, 2])
    assert out[0] == 0 and out[2] == 20 and "job one broke" in str(out[1])
    assert isinstance(make_executor({"name": "process", "workers": 1}), ProcessExecutor)
    with pytest.raises(ValueError, match="unknown executor 'dask'"):
        make_executor("dask")
    with pytest.raises(ValueError, match=r"executor\.workers must be a positive integer"):
        make_executor({"name": "process", "workers": 0})


def test_bad_recipe_and_data_fail_at_construction() -> None:
    space = NB201Space()
    with pytest.raises(ValueError, match=r"oracle\.epochs must be a positive integer"):
        StandaloneOracle(space, dataset=SYNTH, epochs=0)
    with pytest.raises(ValueError, match=r"oracle\.optimizer must be one of"):
        StandaloneOracle(space, dataset=SYNTH, optimizer="lbfgs")
    with pytest.raises(ValueError, match="unknown nb201 model option"):
        StandaloneOracle(space, dataset=SYNTH, model={"depth": 3})
    with pytest.raises(ValueError, match="file not found"):
        StandaloneOracle(space, dataset={"name": "npz", "path": "/nonexistent/data.npz"})


@pytest.mark.parametrize("oracle,space", [("standalone", "nb201"), ("proxy", "nb201"), ("proxy", "chain")])
def test_nas_search_end_to_end_with_torch_oracles(tmp_path: Path, oracle: str, space: str) -> None:
    overrides = [
        f"oracle={oracle}",
        f"space={space}",
        "dataset=digits",
        "budget.evaluations=2",
        "oracle.model.nb201.channels=4",
        "oracle.model.chain.head_channels=16",
        "oracle.hardware.latency_batch_size=2",
    ]
    if oracle == "standalone":
        overrides.append("oracle.epochs=1")
    if space == "chain":
        overrides += ["space.params.stages=2", "space.params.depths=[1,2]"]
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose("config", overrides=overrides)
    summary = run_search(cfg, tmp_path)
    assert summary["evaluations"] == 2 and summary["failures"] == 0
    best = json.loads((tmp_path / "summary.json").read_text())["best"]
    assert {"params", "flops", "latency_ms"} <= set(best["metrics"])
    if oracle == "standalone":
        assert 0.1 < best["metrics"]["val_acc"] <= 1.0 and "test_acc" in best["metrics"]
