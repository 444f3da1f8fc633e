"""MANAS: independent EXP3 agents per decision, learning from one shared reward."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from engine.spaces import Architecture, get_space
from engine.strategies import create_strategy
from engine.types import Evaluation


class PerDecisionOracle:
    """Objective = how many decisions take their own preferred option (one per decision)."""

    def __init__(self, preferred: Sequence[int], fail_option: int | None = None) -> None:
        self.preferred = list(preferred)
        self.fail_option = fail_option

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        out = []
        for a in archs:
            if self.fail_option is not None and a.decisions[0] == self.fail_option:
                out.append(Evaluation.failure(a, "default", "diverged"))
            else:
                hits = sum(d == p for d, p in zip(a.decisions, self.preferred))
                out.append(Evaluation(arch=a, objective=float(hits)))
        return out


def _drive(strategy: object, oracle: PerDecisionOracle, n: int) -> None:
    while len(strategy.history) < n:  # type: ignore[attr-defined]
        qs = strategy.ask(1)  # type: ignore[attr-defined]
        strategy.tell(oracle.evaluate([q.arch for q in qs]))  # type: ignore[attr-defined]


def test_every_agent_learns_its_own_option_from_the_shared_reward() -> None:
    space = get_space("nb201")
    preferred = [0, 1, 2, 3, 4, 2]
    hits, p_pref = [], []
    for seed in range(3):
        s = create_strategy("manas", space, seed=seed)
        _drive(s, PerDecisionOracle(preferred), 150)
        probs = s.probabilities()  # type: ignore[attr-defined]
        assert np.allclose(probs.sum(axis=1), 1.0)
        hits.append(int((probs.argmax(axis=1) == preferred).sum()))
        p_pref.append(float(probs[np.arange(6), preferred].mean()))
    # Uniform agents would pick 1.2 of 6 preferred options, each with probability 0.2.
    assert np.mean(hits) >= 3.5 and np.mean(p_pref) > 0.35


def test_memory_is_decisions_times_options() -> None:
    space = get_space("chain")
    s = create_strategy("manas", space, seed=0)
    own = s.state_dict()["own"]
    assert own["log_weights"].shape == (len(space.decisions), max(d.n for d in space.decisions))


def test_failures_make_the_failing_option_unlikely() -> None:
    space = get_space("nb201")
    s = create_strategy("manas", space, seed=3)
    _drive(s, PerDecisionOracle([1] * 6, fail_option=4), 120)
    probs = s.probabilities()  # type: ignore[attr-defined]
    assert probs[0, 4] < 0.1


def test_irrelevant_decisions_are_not_updated() -> None:
    from engine.spaces import ChainSpace

    space = ChainSpace(stages=1, depths=(1,), kernels=(3, 5), expands=(3, 6))
    s = create_strategy("manas", space, seed=0)
    _drive(s, PerDecisionOracle([0, 1, 1]), 4)
    weights = s.state_dict()["own"]["log_weights"]
    assert np.all(weights[0] == 0.0)  # the depth has one option: that agent never chooses
    assert np.any(weights[1:] != 0.0)


@pytest.mark.parametrize(
    ("options", "match"),
    [({"eta": 0.0}, "strategy.eta"), ({"gamma": 1.5}, "strategy.gamma"),
     ({"failure_reward": 2.0}, "strategy.failure_reward"), ({"unique_tries": 0}, "strategy.unique_tries")],
)
def test_bad_options_are_named(options: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        create_strategy("manas", get_space("nb201"), **options)
