"""smbo (BANANAS-style): the numpy MLP ensemble, the acquisition, and search on the NAS-Bench-201 table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from engine.cli import config_dir
from engine.runner import run_search
from engine.search import Budget, Search
from engine.spaces import get_space
from engine.strategies import create_strategy
from engine.strategies._surrogate import MLPEnsemble, acquisition, transform_targets
from engine.types import DEFAULT_FIDELITY, Evaluation


def test_ensemble_learns_a_nonlinear_function_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = np.sin(x[:, 0]) + x[:, 1] ** 2
    xt = rng.normal(size=(200, 8))
    yt = np.sin(xt[:, 0]) + xt[:, 1] ** 2
    a = MLPEnsemble(steps=150).fit(x, y, np.random.default_rng(1)).predict(xt)
    b = MLPEnsemble(steps=150).fit(x, y, np.random.default_rng(1)).predict(xt)
    assert a.shape == (5, 200)
    np.testing.assert_array_equal(a, b)
    assert np.corrcoef(a.mean(0), yt)[0, 1] > 0.85
    assert a.std(0).mean() > 0  # members disagree: there is an uncertainty to sample from


def test_acquisitions_and_targets() -> None:
    preds = np.array([[1.0, 5.0, 0.0], [1.0, 5.0, 10.0]])
    rng = np.random.default_rng(0)
    assert np.argmax(acquisition(preds, "mean", rng)) == 1
    assert np.argmax(acquisition(preds, "ucb", rng, beta=2.0)) == 2  # the uncertain one
    with pytest.raises(ValueError, match="unknown acquisition 'ei'"):
        acquisition(preds, "ei", rng)
    ranks = transform_targets(np.array([10.0, 90.0, 91.0, 91.5]), "rank")
    assert np.all(np.diff(ranks) > 0) and abs(ranks.mean()) < 1e-9  # order kept, outlier tamed


@pytest.mark.parametrize(("space", "encoding"), [("nb201", "path"), ("chain", "onehot")])
def test_encoding_auto_is_path_for_cells(space: str, encoding: str) -> None:
    assert create_strategy("smbo", get_space(space)).encoding == encoding


def test_bad_options_are_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="encoding 'path' is not provided by space 'chain'"):
        create_strategy("smbo", get_space("chain"), encoding="path")
    with pytest.raises(ValueError, match="acquisition"):
        create_strategy("smbo", get_space("nb201"), acquisition="greedy")


def test_smbo_beats_random_on_the_table() -> None:
    """After its random initial design, smbo's picks are far better than random cells."""
    from oracles.tabular import TabularOracle

    space = get_space("nb201")
    oracle = TabularOracle(space)
    smbo_tail, random_tail = [], []
    for seed in range(2):
        for name, tail in (("smbo", smbo_tail), ("random", random_tail)):
            strategy = create_strategy(name, space, seed=seed, **({"steps": 100} if name == "smbo" else {}))
            result = Search(strategy, oracle, Budget(evaluations=40)).run()
            tail.extend(e.objective for e in result.history[20:] if e.ok)
    assert np.mean(smbo_tail) > np.mean(random_tail) + 3.0


def test_config_runs_from_hydra(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="config", overrides=["strategy=smbo", "budget.evaluations=14", "seed=1",
                                                       "tracker=none", "strategy.steps=20"])
    summary = run_search(cfg, tmp_path)
    assert summary["evaluations"] == 14
    assert json.loads((tmp_path / "summary.json").read_text())["best"]["objective"] > 80


def _hamming(a, b) -> int:  # type: ignore[no-untyped-def]
    return sum(x != y for x, y in zip(a.decisions, b.decisions))


@pytest.mark.parametrize("widen_after", [None, 5])
def test_a_stalled_search_looks_beyond_the_mutations_of_its_best(widen_after: int | None) -> None:
    """Candidates are the best cell's one-edge neighbours only (top_k=1, no two-step or random ones):
    without widening every ask stays next to the best; once ``widen_after`` evaluations bring no new
    best, the whole space is the candidate set and the asks leave that neighbourhood."""
    space = get_space("nb201")
    strategy = create_strategy("smbo", space, seed=0, n_init=3, top_k=1, n_mutations=0, n_random=0, steps=50,
                               widen_after=widen_after)
    first = strategy.ask(1)[0].arch
    strategy.tell([Evaluation(first, DEFAULT_FIDELITY, objective=10.0)])  # the best, never beaten
    far = []
    for _ in range(20):
        (query,) = strategy.ask(1)
        far.append(_hamming(query.arch, first) > 1)
        strategy.tell([Evaluation(query.arch, DEFAULT_FIDELITY, objective=-float(_hamming(query.arch, first)))])
    if widen_after is None:
        assert not any(far[2:])  # after the two other random initial cells: neighbours only
    else:
        # ask k follows k + 1 results, the last k of them no better than the first
        assert not any(far[2:widen_after]) and sum(far[widen_after:]) >= 5
    with pytest.raises(ValueError, match="widen_after must be >= 1 or None, got 0"):
        create_strategy("smbo", space, widen_after=0)
