"""executor=ray: job order, errors, a worker killed mid-job (on a real local Ray instance), and a refusal at start.

Stand-alone training on Ray against the other executors: tests/test_executor_parity.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from oracles.executors import JobError, make_executor, start_executor  # noqa: E402
from oracles.ray_executor import RayExecutor  # noqa: E402


# First in the module: they need no Ray running, and local_ray keeps one up until the module ends.
def _no_ray_running() -> None:
    """Skip when a Ray instance runs on this machine: ``address=auto`` would find and join it."""
    from ray._private.services import find_gcs_addresses

    if ray.is_initialized() or find_gcs_addresses():
        pytest.skip("a Ray instance is running on this machine")


def test_no_cluster_at_the_address_is_a_valueerror_at_once() -> None:
    _no_ray_running()
    ex = make_executor({"name": "ray", "address": "auto"})
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"executor=ray: cannot connect to a Ray cluster at 'auto'") as info:
        start_executor(ex)
    assert time.perf_counter() - t0 < 5  # about 10 ms: Ray finds no instance without waiting for one
    assert "\n" not in str(info.value) and "ray start --head" in str(info.value)
    assert not ray.is_initialized()


def test_nas_search_without_a_cluster_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    _no_ray_running()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "oracle=standalone", "executor=ray", "executor.address=auto",
         "budget.evaluations=2", "hydra.run.dir=run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "oracle: executor=ray: cannot connect to a Ray cluster at 'auto'" in errors[0]
    assert not (tmp_path / "run").exists()


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


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_bad_options_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"executor\.num_cpus_per_job"):
        make_executor({"name": "ray", "num_cpus_per_job": -1})
    with pytest.raises(ValueError, match=r"executor\.max_retries"):
        make_executor({"name": "ray", "max_retries": "3"})
    with pytest.raises(ValueError, match="executor 'ray'"):
        make_executor({"name": "ray", "workers": 2})

