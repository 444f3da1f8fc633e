"""The fault x oracle matrix: each fault injected into each real oracle (tabular, supernet, stand-alone).

:class:`oracles.testing.FaultyOracle` wraps a real oracle; the search loop must
turn every fault into failed evaluations carrying the fault's error text, keep
going to the end of its budget and count the failures. Real divergence (a
learning rate that blows the training up) is tested without injection.
docs/reliability.md reports this matrix.
"""

from __future__ import annotations

import pytest
import torch

from engine.search import Budget, RetryPolicy, Search
from engine.spaces import get_space
from engine.strategies import create_strategy
from engine.types import Status
from oracles.data import load_dataset
from oracles.tabular import TabularOracle
from oracles.testing import FAULT_ERRORS as EXPECTED_ERROR
from oracles.testing import FAULT_KINDS, FaultyOracle

torch.set_num_threads(1)
SPACE = get_space("nb201")
TINY_SUPERNET = {
    "epochs": 1, "batch_size": 32, "measure_latency": False, "model": {"channels": 4, "cells": 1},
    "recalibration_batches": 1, "keep_last_epochs": 1,
}


def _data():
    return load_dataset("synthetic", num_samples=96, num_classes=3, shape=[1, 6, 6], seed=0)


@pytest.fixture(scope="module")
def oracles() -> dict[str, object]:
    from oracles.standalone import StandaloneOracle
    from oracles.supernet import SupernetOracle

    supernet = SupernetOracle(SPACE, _data(), TINY_SUPERNET, seed=0)
    supernet.prepare()
    standalone = StandaloneOracle(
        SPACE, _data(), epochs=1, batch_size=32, model={"nb201": {"channels": 4, "cells": 1}}, hardware=None
    )
    return {"tabular": TabularOracle(SPACE), "supernet": supernet, "standalone": standalone}


def _search(inner: object, kind: str, seed: int) -> tuple[object, FaultyOracle]:
    faulty = FaultyOracle(SPACE, inner, rate=0.5, kinds=[kind], seed=seed)
    search = Search(
        create_strategy("random", SPACE, seed=seed), faulty, Budget(evaluations=4), batch_size=2,
        retry=RetryPolicy(attempts=1, errors=("OutOfMemoryError",)),
    )
    return search.run(), faulty


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("oracle", ["tabular", "supernet", "standalone"])
def test_fault_in_oracle(oracle: str, kind: str, oracles: dict[str, object]) -> None:
    result, faulty = _search(oracles[oracle], kind, seed=4)
    faulty_archs = [e for e in result.history if faulty.fault_of(e.arch) is not None]
    assert faulty_archs, "the seed must inject at least one fault"
    failed = [e for e in result.history if e.status is Status.FAILED]
    assert result.evaluations == 4 and result.stop_reason == "evaluations"
    assert all(e.status is Status.FAILED for e in faulty_archs)
    assert all(EXPECTED_ERROR[kind] in (e.error or "") for e in failed)
    assert result.failures == len(failed)
    if kind not in ("batch", "short"):
        assert any(e.ok for e in result.history), "healthy architectures of the batch still succeed"
    if kind == "oom":
        assert result.retries == len(faulty_archs)


def test_real_divergence_of_standalone_training_is_a_failed_evaluation() -> None:
    from oracles.standalone import StandaloneOracle

    oracle = StandaloneOracle(
        SPACE, _data(), epochs=1, batch_size=32, lr=1e12, momentum=0.0, weight_decay=0.0,
        model={"nb201": {"channels": 4, "cells": 1}}, hardware=None,
    )
    result = Search(create_strategy("random", SPACE, seed=0), oracle, Budget(evaluations=3)).run()
    assert result.evaluations == 3 and result.stop_reason == "evaluations"
    assert result.failures >= 1, [(e.status, e.objective) for e in result.history]
    assert all(e.error for e in result.history if not e.ok)
