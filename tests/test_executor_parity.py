"""Executors agree bit for bit: the same trainings through local, process and ray give identical results.

CPU kernels split their reductions by torch's intra-op thread count, so a training's floats
depend on it. Every executor runs each job with ``executor.threads`` (1 by default) whatever
the calling process uses; this module runs its local trainings while the parent has 2 threads
(what torch picks by itself on a 2-core machine), the case where ``executor=local`` used to
disagree with ``process`` and ``ray``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from engine.spaces import NB201Space
from engine.types import Evaluation
from oracles.executors import DEFAULT_THREADS, LocalExecutor, ProcessExecutor, make_executor
from oracles.standalone import StandaloneOracle

# The first four architectures a seed-0 search draws; with the parent's threads, two of them used to
# get other objectives under executor=local than under process (oracle.epochs=2, the default model).
ARCHS = [
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|",
    "|none~0|+|none~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|",
]
# Small enough to train four networks in about 3 s, large enough that the thread count changes the floats.
OPTS: dict[str, Any] = {
    "dataset": {"name": "digits"}, "epochs": 1, "batch_size": 16, "model": {"channels": 4, "cells": 1},
    "hardware": {"latency": False}, "seed": 0,
}
PARENT_THREADS = 2
# Everything a training computes; timings and latency vary from run to run.
KEYS = ("val_acc", "val_loss", "train_loss", "train_acc", "params", "flops")


def _results(evs: list[Evaluation]) -> list[tuple[Any, ...]]:
    for ev in evs:
        assert ev.ok, ev.error
    return [(ev.objective, *(ev.metrics[k] for k in KEYS), ev.reported["test_acc"]) for ev in evs]


def _evaluate(executor: Any) -> list[tuple[Any, ...]]:
    space = NB201Space()
    oracle = StandaloneOracle(space, **OPTS, executor=executor)
    try:
        oracle.prepare()
        return _results(oracle.evaluate([space.parse(a) for a in ARCHS]))
    finally:
        oracle.close()


@pytest.fixture(scope="module")
def parent_threads() -> Iterator[int]:
    """This process at 2 torch threads for the module (other test modules set 1 at import)."""
    before = torch.get_num_threads()
    torch.set_num_threads(PARENT_THREADS)
    yield PARENT_THREADS
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def local(parent_threads: int) -> list[tuple[Any, ...]]:
    out = _evaluate("local")
    assert torch.get_num_threads() == parent_threads  # the jobs ran with 1 thread and gave the caller its 2 back
    return out


def test_local_run_leaves_the_parent_thread_count(local: list[tuple[Any, ...]], parent_threads: int) -> None:
    assert torch.get_num_threads() == parent_threads
    seen: list[int] = []
    assert LocalExecutor(threads=3).map(lambda _: seen.append(torch.get_num_threads()), [0]) == [None]
    assert seen == [3] and torch.get_num_threads() == parent_threads
    # A job that raises restores the count too.
    (err,) = LocalExecutor().map(lambda _: 1 / 0, [0])
    assert isinstance(err, Exception) and torch.get_num_threads() == parent_threads


def test_process_pool_gives_the_local_results(local: list[tuple[Any, ...]]) -> None:
    assert _evaluate({"name": "process", "workers": 2, "threads": DEFAULT_THREADS}) == local


# Not marked slow: about 15 s with Ray's start-up (7 s) on 2 cores.
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the ray extra is not installed")
def test_ray_gives_the_local_results(local: list[tuple[Any, ...]], local_ray: None) -> None:
    assert _evaluate({"name": "ray", "threads": DEFAULT_THREADS}) == local


def test_one_threads_key_and_default_for_every_executor() -> None:
    assert make_executor("local").threads == DEFAULT_THREADS == 1
    assert make_executor("process").threads == DEFAULT_THREADS
    assert make_executor("ray").threads_per_job == DEFAULT_THREADS  # type: ignore[attr-defined]
    assert make_executor({"name": "ray", "threads": 2}).threads_per_job == 2  # type: ignore[attr-defined]
    assert make_executor({"name": "local", "threads": 2}).threads == 2  # type: ignore[attr-defined]
    # The former name of the process pool's key still works.
    legacy = make_executor({"name": "process", "threads_per_worker": 3})
    assert isinstance(legacy, ProcessExecutor) and legacy.threads == legacy.threads_per_worker == 3
    with pytest.raises(ValueError, match=r"executor\.threads must be a positive integer"):
        make_executor({"name": "local", "threads": 0})
    with pytest.raises(ValueError, match="disagree"):
        make_executor({"name": "ray", "threads": 2, "threads_per_job": 4})
    with pytest.raises(ValueError, match="disagree"):
        make_executor({"name": "process", "threads": 2, "threads_per_worker": 4})
