"""Oracle jobs as Ray tasks: a local Ray instance by default, or an existing cluster.

The same contract as :mod:`oracles.executors` (``map(fn, jobs)`` returns results in
job order, the exception in place of a failed job's result), so a stand-alone
oracle scales from one laptop core to a cluster with ``executor=ray`` and nothing
else changes. Ray retries a task whose worker process died (killed for memory,
a lost node) ``max_retries`` times; an exception raised by the job itself is a
result, not retried, because the same training would fail the same way.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from oracles.executors import JobError

__all__ = ["RayExecutor"]

_log = logging.getLogger(__name__)


def _run_job(fn: Callable[[Any], Any], job: Any, threads: int) -> Any:
    """The task body: bound torch's threads so that tasks sharing a node do not oversubscribe it."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return fn(job)


class RayExecutor:
    """Runs each job as a Ray task.

    Args:
        address: ``None`` starts (or joins an already started) Ray instance on this
            machine; ``"auto"`` or ``"ray://host:10001"`` joins an existing cluster.
        num_cpus_per_job: CPUs Ray reserves per job (how many jobs share a node).
        num_gpus_per_job: GPUs Ray reserves per job (fractions share a GPU).
        max_retries: Re-runs of a job whose worker died (not of a job that raised).
        threads_per_job: torch threads inside each job.
        num_cpus: CPUs of a local instance started here (``None``: all cores).
        runtime_env: Ray runtime environment for the tasks (e.g. ``{"working_dir": "."}``
            on a remote cluster).

    Raises:
        ValueError: for a bad option, naming the ``executor.*`` key.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus_per_job: float = 1,
        num_gpus_per_job: float = 0,
        max_retries: int = 3,
        threads_per_job: int = 1,
        num_cpus: int | None = None,
        runtime_env: Mapping[str, Any] | None = None,
    ) -> None:
        for key, value in (("num_cpus_per_job", num_cpus_per_job), ("num_gpus_per_job", num_gpus_per_job)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"executor.{key} must be a non-negative number, got {value!r}")
        if num_cpus_per_job == 0 and num_gpus_per_job == 0:
            raise ValueError("executor.num_cpus_per_job and num_gpus_per_job cannot both be 0")
        for key, value in (("max_retries", max_retries), ("threads_per_job", threads_per_job)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "max_retries" else 1):
                raise ValueError(f"executor.{key} must be a {'non-negative' if key == 'max_retries' else 'positive'}"
                                 f" integer, got {value!r}")
        if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1):
            raise ValueError(f"executor.num_cpus must be a positive integer or null, got {num_cpus!r}")
        if address is not None and not isinstance(address, str):
            raise ValueError(f"executor.address must be a string or null, got {address!r}")
        self.address = address or None
        self.num_cpus_per_job = num_cpus_per_job
        self.num_gpus_per_job = num_gpus_per_job
        self.max_retries = max_retries
        self.threads_per_job = threads_per_job
        self.num_cpus = num_cpus
        self.runtime_env = dict(runtime_env or {})
        self._started_here = False
        self._remote: Any = None
        self._lock = threading.Lock()  # map() may be called from several threads (the asynchronous loop)

    def _ensure_ray(self) -> Any:
        with self._lock:
            return self._connect()

    def _connect(self) -> Any:
        import ray

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if self.runtime_env:
                kwargs["runtime_env"] = self.runtime_env
            if self.address is None:
                kwargs["num_cpus"] = self.num_cpus
                _log.info("starting a local Ray instance (%s CPUs)", self.num_cpus or "all")
            else:
                kwargs["address"] = self.address
                _log.info("connecting to the Ray cluster at %s", self.address)
            ray.init(**kwargs)
            self._started_here = True
        if self._remote is None:
            self._remote = ray.remote(
                num_cpus=self.num_cpus_per_job, num_gpus=self.num_gpus_per_job, max_retries=self.max_retries,
                retry_exceptions=False,
            )(_run_job)
        return ray

    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
        """``[fn(job) for job in jobs]`` as Ray tasks, in job order; a failed job gives a :class:`JobError`."""
        if not jobs:
            return []
        ray = self._ensure_ray()
        from ray.exceptions import RayError, RayTaskError

        refs = [self._remote.remote(fn, job, self.threads_per_job) for job in jobs]
        out: list[Any] = []
        for ref in refs:
            try:
                out.append(ray.get(ref))
            except RayTaskError as exc:  # the job raised: its own exception, as the other executors give it
                cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
                text = "".join(traceback.format_exception_only(type(cause), cause)).strip() if cause else str(exc)
                err = JobError(text)
                err.__cause__ = cause if isinstance(cause, Exception) else None
                out.append(err)
            except RayError as exc:  # the worker died more often than max_retries allows, or the node was lost
                out.append(JobError(f"{type(exc).__name__}: Ray job failed after {self.max_retries} retries: {exc}"))
        return out

    def close(self) -> None:
        """Shut Ray down if this executor started it (a cluster or a user's instance stays up)."""
        if self._started_here:
            import ray

            ray.shutdown()
            self._started_here = False
        self._remote = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_remote"] = None
        state["_started_here"] = False
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
