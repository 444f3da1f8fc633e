"""executor=ray on a real local Ray instance: job order, errors, a worker killed mid-job, stand-alone training."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from oracles.executors import JobError, make_executor  # noqa: E402
from oracles.ray_executor import RayExecutor  # noqa: E402

pytestmark = pytest.mark.slow



def _boom(job: int) -> int:
    if job == 1:
        raise RuntimeError("job one broke")
    return job * 10


def _die_once(job: dict[str, Any]) -> int:
    """Kills its own worker process on the first attempt, as the OOM killer would."""
    marker = Path(job["marker"])
    with marker.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    if len(marker.read_text().split()) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return job["value"] * 2


def test_results_in_job_order_and_errors_in_place(local_ray: None) -> None:
    ex = make_executor({"name": "ray", "max_retries": 1})
    assert isinstance(ex, RayExecutor)
    out = ex.map(_boom, [0, 1, 2, 3])
    assert out[0] == 0 and out[2] == 20 and out[3] == 30
    assert isinstance(out[1], JobError) and "RuntimeError: job one broke" in str(out[1])
    assert isinstance(out[1].__cause__, RuntimeError)
    assert ex.map(_boom, []) == []
    ex.close()
    assert ray.is_initialized()  # an instance this executor did not start stays up


def test_a_worker_killed_mid_job_is_retried(local_ray: None, tmp_path: Path) -> None:
    ex = RayExecutor(max_retries=2)
    marker = tmp_path / "attempts"
    out = ex.map(_die_once, [{"marker": str(marker), "value": 21}])
    assert out == [42]
    pids = marker.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1]  # the second attempt ran in a fresh worker

    # Without retries the death is a failed job whose text the search's retry policy recognises.
    marker2 = tmp_path / "attempts2"
    (lost,) = RayExecutor(max_retries=0).map(_die_once, [{"marker": str(marker2), "value": 1}])
    assert isinstance(lost, JobError) and "WorkerCrashedError" in str(lost)


def test_standalone_training_on_ray_matches_local(local_ray: None) -> None:
    import torch

    from engine.spaces import NB201Space
    from oracles.standalone import StandaloneOracle

    torch.set_num_threads(1)
    space = NB201Space()
    archs = [
        space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
        space.parse("|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"),
    ]
    opts: dict[str, Any] = {
        "dataset": {"name": "synthetic", "num_samples": 120, "num_classes": 4, "shape": [1, 6, 6], "noise": 1.0},
        "epochs": 1, "batch_size": 16, "model": {"channels": 4, "cells": 1}, "hardware": {"latency": False},
        "seed": 1,
    }
    local = StandaloneOracle(space, **opts, executor="local").evaluate(archs)
    remote = StandaloneOracle(space, **opts, executor={"name": "ray", "threads_per_job": 1}).evaluate(archs)
    for a, b in zip(local, remote):
        assert a.ok and b.ok, (a.error, b.error)
        assert a.objective == b.objective
        assert a.metrics["train_loss"] == b.metrics["train_loss"]


def test_bad_options_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"executor\.num_cpus_per_job"):
        make_executor({"name": "ray", "num_cpus_per_job": -1})
    with pytest.raises(ValueError, match=r"executor\.max_retries"):
        make_executor({"name": "ray", "max_retries": "3"})
    with pytest.raises(ValueError, match="executor 'ray'"):
        make_executor({"name": "ray", "workers": 2})
