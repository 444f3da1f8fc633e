"""pnas: a beam grown one decision at a time, scored by a surrogate on prefixes."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from engine.cli import config_dir
from engine.runner import run_search
from engine.spaces import get_space
from engine.strategies import create_strategy
from engine.testing import ToyOracle


def _drive(strategy, oracle, n: int) -> list:  # type: ignore[no-untyped-def]
    beams = []
    for _ in range(n):
        qs = strategy.ask(1)
        strategy.tell(oracle.evaluate([q.arch for q in qs]))
        beams.append([tuple(p) for p in getattr(strategy, "beam", [])])
    return beams


def test_beam_grows_one_decision_per_step_and_completions_extend_it() -> None:
    space = get_space("nb201")
    strategy = create_strategy("pnas", space, seed=0, steps=30, beam=3)
    beams = _drive(strategy, ToyOracle(space), 40)
    lengths = [len(b[0]) for b in beams if b and b[0]]
    assert lengths, "the beam never grew"
    # Each change of the beam adds exactly one decision, or a new round starts at length 1.
    for a, b in itertools.pairwise(lengths):
        assert b == a or b == a + 1 or (a == len(space.decisions) and b == 1)
    assert max(lengths) == len(space.decisions)
    assert all(len(b) <= 3 for b in beams)
    # Every architecture evaluated after the warm-up completes a prefix the beam held.
    prefixes = {p for b in beams for p in b}
    for ev in strategy.history[10:]:
        assert any(ev.arch.decisions[: len(p)] == p for p in prefixes)


def test_prefix_features_mark_the_length_and_leave_the_rest_empty() -> None:
    space = get_space("chain")
    strategy = create_strategy("pnas", space)
    feats = strategy._features([(), (1,), (1, 2, 0)])
    assert feats[0].sum() == 0
    assert feats[1, -1] == 1 / len(space.decisions) and feats[1, :-1].sum() == 1
    assert feats[2, :-1].sum() == 3


def test_pnas_beats_random_on_a_toy_problem() -> None:
    space = get_space("chain")
    oracle = ToyOracle(space, seed=3)
    means = {}
    for name in ("pnas", "random"):
        strategy = create_strategy(name, space, seed=0, **({"steps": 40} if name == "pnas" else {}))
        _drive(strategy, oracle, 60)
        means[name] = np.mean([e.objective for e in strategy.history[30:]])
    assert means["pnas"] > means["random"] + 1.0


def test_config_runs_from_hydra(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="config", overrides=["strategy=pnas", "budget.evaluations=16", "tracker=none",
                                                       "strategy.steps=20"])
    assert run_search(cfg, tmp_path)["evaluations"] == 16
