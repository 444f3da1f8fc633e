"""A Ray worker that dies mid-evaluation: a failed evaluation with its error text, retried by the search's policy.

The executor-level behaviour (Ray's own ``max_retries``) is tested in
tests/test_ray_executor.py; here the death reaches the search loop (Ray retries
exhausted) and the loop's retry policy takes over.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from engine.search import Budget, Search  # noqa: E402
from engine.spaces import Architecture, get_space  # noqa: E402
from engine.strategies import create_strategy  # noqa: E402
from engine.types import DEFAULT_FIDELITY, Evaluation, Status  # noqa: E402
from oracles.ray_executor import RayExecutor  # noqa: E402
from oracles.tabular import TabularOracle  # noqa: E402

pytestmark = pytest.mark.slow
SPACE = get_space("nb201")



def _dies(arch: str) -> bool:
    return hashlib.blake2b(arch.encode(), digest_size=1).digest()[0] % 2 == 0


def _job(job: dict[str, Any]) -> str:
    """Kills its own worker on the first attempt for half of the architectures (the OOM killer's way)."""
    marker = Path(job["marker"])
    with marker.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    if _dies(job["arch"]) and len(marker.read_text().split()) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return job["arch"]


class RayTabularOracle:
    """Looks architectures up in the table, but each look-up runs as a Ray task."""

    def __init__(self, markers: Path) -> None:
        self.markers = markers
        self.executor = RayExecutor(max_retries=0)
        self.table = TabularOracle(SPACE)

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        jobs = [{"marker": str(self.markers / hashlib.sha1(a.string.encode()).hexdigest()), "arch": a.string}
                for a in archs]
        out = []
        for arch, res in zip(archs, self.executor.map(_job, jobs)):
            if isinstance(res, Exception):
                out.append(Evaluation.failure(arch, DEFAULT_FIDELITY, str(res)))
            else:
                out.extend(self.table.evaluate([arch]))
        return out


def test_dead_ray_worker_is_a_failed_evaluation_the_policy_retries(local_ray: None, tmp_path: Path) -> None:
    """Without retries anywhere, each death is a failed evaluation whose text the default policy matches.

    (With ``retry.attempts=1`` the same search ends with no failure; that run costs minutes of
    Ray worker restarts on a busy machine, so the suite checks the policy's match instead.)
    """
    oracle = RayTabularOracle(tmp_path)
    result = Search(create_strategy("random", SPACE, seed=5), oracle, Budget(evaluations=2), batch_size=2).run()
    dying = [e for e in result.history if _dies(e.arch.string)]
    assert len(dying) == 1, "the seed must make one of the two workers die"
    assert result.evaluations == 2 and result.stop_reason == "evaluations"
    assert result.failures == len(dying)
    assert all(e.status is Status.FAILED and "WorkerCrashedError" in (e.error or "") for e in dying)
    assert all(e.ok for e in result.history if not _dies(e.arch.string))
    from hydra import compose, initialize_config_dir

    from engine.cli import config_dir
    from engine.runner import build_retry

    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        default_policy = build_retry(compose(config_name="config"))
    assert default_policy.attempts >= 1 and all(default_policy.matches(e) for e in dying)
