"""Where oracle jobs run: in-process, in a local process pool, or as Ray tasks (:mod:`oracles.ray_executor`).

API (the one contract an executor fulfils):

- ``executor.map(fn, jobs) -> list``: run ``fn(job)`` for every job and return the results
  **in the order of** ``jobs``. ``fn`` is a picklable top-level function and each job a
  plain, picklable value (dicts of str/int/float/list), so any backend can ship them. A job
  that raises yields the exception object in its slot instead of a result; one bad job
  never loses the others.
- ``executor.close()``: release workers (also called at interpreter exit for pools).
- :func:`make_executor` ``(config) -> Executor`` from ``"local"``, ``"process"``, ``"ray"`` or a mapping
  ``{name: process, workers: 2, threads_per_worker: 1}`` (what ``conf/executor/*.yaml`` holds).

Why a pool of processes rather than threads: training holds the GIL in Python code and
torch's intra-op threads compete for the same cores; one single-threaded process per core
gives near-linear speed-up on small CPU models.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import multiprocessing as mp
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["EXECUTORS", "Executor", "JobError", "LocalExecutor", "ProcessExecutor", "make_executor"]


class JobError(RuntimeError):
    """A job that raised (or whose worker died); carries the error text."""


@runtime_checkable
class Executor(Protocol):
    """Runs jobs and returns their results in order (exceptions in place of failed results)."""

    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
        """``[fn(job) for job in jobs]``, possibly in parallel; a raising job gives its exception."""
        ...

    def close(self) -> None:
        """Release any workers."""
        ...


def _error(exc: BaseException) -> JobError:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    err = JobError(text)
    err.__cause__ = exc if isinstance(exc, Exception) else None
    return err


class LocalExecutor:
    """Runs jobs one after the other in this process (the default; no start-up cost)."""

    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for job in jobs:
            try:
                out.append(fn(job))
            except Exception as exc:
                out.append(_error(exc))
        return out

    def close(self) -> None:
        pass


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


class ProcessExecutor:
    """A pool of ``workers`` local processes, each limited to ``threads_per_worker`` torch threads.

    The pool starts on first use and is kept for later batches (workers cache their
    datasets), so only the first batch pays the start-up. Processes are started with
    ``spawn`` so no parent thread state (torch's thread pools) is inherited.

    Args:
        workers: Number of processes; ``null``/``None`` is the number of CPU cores.
        threads_per_worker: torch threads in each worker.
        start_method: ``spawn`` (default, safe with torch), ``forkserver`` or ``fork``.
    """

    def __init__(self, workers: int | None = 2, threads_per_worker: int = 1, start_method: str = "spawn") -> None:
        workers = workers if workers is not None else (os.cpu_count() or 1)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"executor.workers must be a positive integer, got {workers!r}")
        if isinstance(threads_per_worker, bool) or not isinstance(threads_per_worker, int) or threads_per_worker < 1:
            raise ValueError(f"executor.threads_per_worker must be a positive integer, got {threads_per_worker!r}")
        if start_method not in mp.get_all_start_methods():
            raise ValueError(
                f"executor.start_method {start_method!r} is not available; choose from {mp.get_all_start_methods()}"
            )
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.start_method = start_method
        self._pool: cf.ProcessPoolExecutor | None = None

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context(self.start_method),
                initializer=_init_worker,
                initargs=(self.threads_per_worker,),
            )
            atexit.register(self.close)
        return self._pool

    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
        if not jobs:
            return []
        pool = self._get_pool()
        futures = [pool.submit(fn, job) for job in jobs]
        out: list[Any] = []
        broken = False
        for fut in futures:
            try:
                out.append(fut.result())
            except cf.process.BrokenProcessPool as exc:
                broken = True
                out.append(JobError(f"worker process died: {exc}"))
            except Exception as exc:
                out.append(_error(exc))
        if broken:  # a dead worker (e.g. killed for memory) poisons the pool: start a fresh one next time
            self.close()
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None
        return state


def _ray_executor(**options: Any) -> Executor:
    """``executor=ray``: imported on use, since Ray is an optional extra and slow to import."""
    from oracles.ray_executor import RayExecutor

    return RayExecutor(**options)


EXECUTORS: dict[str, Callable[..., Executor]] = {
    "local": LocalExecutor, "process": ProcessExecutor, "ray": _ray_executor,
}


def make_executor(config: Executor | Mapping[str, Any] | str | None = "local") -> Executor:
    """An executor from a name, a config mapping ``{name: ..., **options}`` or an executor.

    Raises:
        ValueError: for an unknown name or option (the message names it and the choices).
    """
    if config is None:
        return LocalExecutor()
    if isinstance(config, (LocalExecutor, ProcessExecutor)) or (
        not isinstance(config, (str, Mapping)) and isinstance(config, Executor)
    ):
        return config
    options: dict[str, Any] = {"name": config} if isinstance(config, str) else dict(config)
    name = options.pop("name", None)
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r} (executor.name); available: {sorted(EXECUTORS)}")
    try:
        return EXECUTORS[name](**options)
    except TypeError as exc:
        raise ValueError(f"executor {name!r}: {exc}") from None
