"""Where oracle jobs run: in-process, in a local process pool, or as Ray tasks (:mod:`oracles.ray_executor`).

API (the one contract an executor fulfils):

- ``executor.map(fn, jobs) -> list``: run ``fn(job)`` for every job and return the results
  **in the order of** ``jobs``. ``fn`` is a picklable top-level function and each job a
  plain, picklable value (dicts of str/int/float/list), so any backend can ship them. A job
  that raises yields the exception object in its slot instead of a result; one bad job
  never loses the others.
- ``executor.close()``: release workers (also called at interpreter exit for pools).
- ``executor.start()`` (optional): start workers or connect now; :func:`start_executor` calls it
  (and connects a Ray executor) so that an executor that cannot start refuses the run up front.
- ``executor.threads``: the torch intra-op thread count every job runs with, the same default
  (:data:`DEFAULT_THREADS`, 1) for every executor. CPU kernels split their reductions by thread
  count, so a float result depends on it: equal ``threads`` is what makes a training's result
  bit-identical in this process, a worker process or a Ray task. :func:`torch_threads` applies it
  and restores the caller's count afterwards.
- :func:`make_executor` ``(config) -> Executor`` from ``"local"``, ``"process"``, ``"ray"`` or a mapping
  ``{name: process, workers: 2, threads: 1}`` (what ``conf/executor/*.yaml`` holds).

Why a pool of processes rather than threads: training holds the GIL in Python code and
torch's intra-op threads compete for the same cores; one single-threaded process per core
gives near-linear speed-up on small CPU models.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_THREADS", "EXECUTORS", "Executor", "JobError", "LocalExecutor", "ProcessExecutor", "executor_threads",
    "make_executor", "start_executor", "torch_threads",
]

# One default for every executor: a result must not depend on where its job ran (see the module docstring).
DEFAULT_THREADS = 1


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


def _check_threads(value: Any, key: str = "executor.threads") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer, got {value!r}")
    return value


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads and give the caller its own count back.

    Restoring matters for the in-process executor: a job must not leave the search process
    (or a test, or a notebook) with another thread count than it had.
    """
    import torch  # here, not at the top: this module is imported by code that never trains

    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def executor_threads(executor: Any) -> int:
    """The torch threads ``executor`` runs each job with (:data:`DEFAULT_THREADS` for one that does not say)."""
    threads = getattr(executor, "threads", None)
    if threads is None:
        threads = getattr(executor, "threads_per_job", None)  # RayExecutor's name for it
    return int(threads) if threads is not None else DEFAULT_THREADS


def _error(exc: BaseException) -> JobError:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    err = JobError(text)
    err.__cause__ = exc if isinstance(exc, Exception) else None
    return err


class LocalExecutor:
    """Runs jobs one after the other in this process (the default; no start-up cost).

    Args:
        threads: torch intra-op threads during the jobs (this process's own count is restored
            after each :meth:`map`), so that a job gives what it gives in a worker process.
    """

    def __init__(self, threads: int = DEFAULT_THREADS) -> None:
        self.threads = _check_threads(threads)

    def start(self) -> None:
        """Nothing to start: jobs run in this process."""

    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        with torch_threads(self.threads):
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
    """A pool of ``workers`` local processes, each limited to ``threads`` torch threads.

    The pool starts on first use and is kept for later batches (workers cache their
    datasets), so only the first batch pays the start-up. Processes are started with
    ``spawn`` so no parent thread state (torch's thread pools) is inherited.

    Args:
        workers: Number of processes; ``null``/``None`` is the number of CPU cores.
        threads: torch threads in each worker (the same default as every executor's).
        start_method: ``spawn`` (default, safe with torch), ``forkserver`` or ``fork``.
        threads_per_worker: The former name of ``threads``, still accepted.
    """

    def __init__(
        self,
        workers: int | None = 2,
        threads: int = DEFAULT_THREADS,
        start_method: str = "spawn",
        threads_per_worker: int | None = None,
    ) -> None:
        workers = workers if workers is not None else (os.cpu_count() or 1)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"executor.workers must be a positive integer, got {workers!r}")
        threads = _check_threads(threads)
        if threads_per_worker is not None:
            threads_per_worker = _check_threads(threads_per_worker, "executor.threads_per_worker")
            if threads not in (DEFAULT_THREADS, threads_per_worker):
                raise ValueError(f"executor.threads={threads} and executor.threads_per_worker={threads_per_worker}"
                                 " disagree (threads_per_worker is its former name: give one)")
            threads = threads_per_worker
        if start_method not in mp.get_all_start_methods():
            raise ValueError(
                f"executor.start_method {start_method!r} is not available; choose from {mp.get_all_start_methods()}"
            )
        self.workers = workers
        self.threads = threads
        self.start_method = start_method
        self._pool: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # map() may be called from several threads (the asynchronous loop)

    @property
    def threads_per_worker(self) -> int:
        """The former name of :attr:`threads`."""
        return self.threads

    def start(self) -> None:
        """Create the pool now (its processes start with the first jobs)."""
        self._get_pool()

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        with self._lock:
            return self._make_pool()

    def _make_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context(self.start_method),
                initializer=_init_worker,
                initargs=(self.threads,),
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
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _ray_executor(threads: int | None = None, **options: Any) -> Executor:
    """``executor=ray``: imported on use, since Ray is an optional extra and slow to import.

    ``threads`` (the key every executor takes) is RayExecutor's ``threads_per_job``.
    """
    from oracles.ray_executor import RayExecutor

    if threads is not None:
        threads = _check_threads(threads)
        per_job = options.get("threads_per_job")
        if per_job is not None and per_job != threads:
            raise ValueError(f"executor.threads={threads} and executor.threads_per_job={per_job!r} disagree"
                             " (they are one setting: give one)")
        options["threads_per_job"] = threads
    return RayExecutor(**options)


def _start_ray(executor: Any) -> None:
    """Connect a RayExecutor now (it would otherwise connect in its first ``map``), as a one-line ValueError."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ValueError("executor=ray needs Ray, an optional extra: pip install 'nas-engine[ray]'") from None
    address = executor.address
    try:
        executor._ensure_ray()  # RayExecutor's own connect-or-start, so map() finds Ray ready
    except Exception as exc:  # ConnectionError, TimeoutError, RuntimeError...: any of them means no Ray to run on
        reason = " ".join(str(exc).split()).split(". ")[0] or type(exc).__name__
        if address is None:
            raise ValueError(f"executor=ray: cannot start a local Ray instance ({reason})") from None
        raise ValueError(
            f"executor=ray: cannot connect to a Ray cluster at {address!r} ({reason}); start one with"
            " `ray start --head`, or leave executor.address=null for a local one"
        ) from None


def start_executor(executor: Executor) -> None:
    """Start ``executor`` now: connect to Ray, create a pool.

    Why: an oracle's ``prepare()`` calls this, so an executor that cannot start refuses
    the run before anything is evaluated, instead of turning every evaluation into a
    failure that the journal keeps (and a resume does not retry).

    Raises:
        ValueError: one line naming the executor and what to do.
    """
    from oracles.ray_executor import RayExecutor  # does not import ray itself

    if isinstance(executor, RayExecutor):
        _start_ray(executor)
        return
    start = getattr(executor, "start", None)
    if callable(start):
        start()


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
