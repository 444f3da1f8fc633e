"""Supernet training under torchrun: 2 CPU processes (gloo) agree with one process; rank 0 writes the outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.gap import kendall_tau
from engine.spaces import NB201Space
from oracles.supernet.oracle import SupernetOracle

pytestmark = pytest.mark.slow

SUPERNET = {"epochs": 2, "model": {"channels": 4, "cells": 1}, "measure_latency": False, "keep_last_epochs": 1}
OVERRIDES = ["space=nb201", "dataset=digits", "seed=0", "supernet.epochs=2", "supernet.model={channels:4,cells:1}",
             "supernet.measure_latency=false", "supernet.keep_last_epochs=1"]


def test_two_process_training_agrees_with_one_process(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true",
           "WANDB_DATA_DIR": str(tmp_path / "wandb-data"), "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
           "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config")}
    env.pop("WANDB_MODE", None)
    env.pop("WANDB_SERVICE", None)  # set by an in-process wandb.init of another test: a child must start its own
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "oracles.supernet.ddp", "--output-dir", str(out), *OVERRIDES, "tracker=wandb"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # One output directory, written by rank 0: one checkpoint, one summary, one W&B run.
    result = json.loads((out / "supernet_train.json").read_text())
    assert result["world_size"] == 2 and len(result["history"]) == 2
    assert sorted(p.name for p in out.glob("*.pt")) == ["supernet.pt"]
    (run_dir,) = sorted((out / "wandb").glob("offline-run-*"))
    records = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
                             capture_output=True, text=True, check=True, timeout=120, env=env).stdout
    recs = [json.loads(line) for line in records.splitlines() if line.startswith("{")]
    (run,) = [r["run"] for r in recs if r["type"] == "run"]
    assert run["job_type"] == "supernet_train"
    assert [r["exit"].get("exit_code", 0) for r in recs if r["type"] == "exit"] == [0]

    # The same supernet trained by one ordinary process (no torchrun, the trainer of oracle=supernet).
    space = NB201Space()
    single = SupernetOracle(space, "digits", SUPERNET, seed=0, checkpoint=tmp_path / "single.pt")
    single.prepare()
    for one, two in zip(single.history, result["history"]):
        assert abs(one["loss"] - two["loss"]) < 0.05, (one, two)

    # Both checkpoints load into oracle=supernet and rank architectures alike.
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(12)]
    a1 = np.array([r["val_acc"] for r in single.score(archs)])
    loaded = SupernetOracle(space, "digits", SUPERNET, seed=0, checkpoint=out / "supernet.pt")
    a2 = np.array([r["val_acc"] for r in loaded.score(archs)])
    # Tolerance: each rank normalises half the batch with its own BatchNorm statistics while training.
    assert np.abs(a1 - a2).mean() < 0.1, (a1, a2)
    assert kendall_tau(a1, a2) > 0.4, (a1, a2)
