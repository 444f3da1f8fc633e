"""flash: few-sample predictors on NN-Degree features, SHGO over a relaxation, a cost constraint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from engine.cli import config_dir
from engine.runner import run_search
from engine.search import Budget, Search
from engine.spaces import get_space
from engine.strategies import create_strategy
from engine.strategies._flash import chain_features


def test_relaxation_variables_per_space() -> None:
    nb = create_strategy("flash", get_space("nb201"))
    assert nb.groups == [[i] for i in range(6)]  # one variable per edge
    chain = create_strategy("flash", get_space("chain"))
    assert len(chain.groups) == 12  # per stage: depth, kernel, expand
    assert sorted(i for g in chain.groups for i in g) == list(range(len(get_space("chain").decisions)))
    x = np.array([2.0, 0.4, 1.6] * 4)
    arch = chain._round(x)
    assert arch.string == "|".join(["k3e6-k3e6-k3e6-k3e6"] * 4)


def test_chain_nn_degree_grows_with_depth() -> None:
    space = get_space("chain")
    shallow = space.parse("|".join(["k3e3-k3e3"] * 4))
    deep = space.parse("|".join(["k3e3-k3e3-k3e3-k3e3"] * 4))
    assert chain_features(space, deep)["nn_degree"] > chain_features(space, shallow)["nn_degree"]


def _run(strategy, n: int):  # type: ignore[no-untyped-def]
    from oracles.tabular import TabularOracle

    oracle = TabularOracle(strategy.space, metrics=["latency_ms_raspi4"])
    return Search(strategy, oracle, Budget(evaluations=n)).run()


def test_predictors_use_at_most_25_samples_and_keep_the_cost_constraint() -> None:
    strategy = create_strategy("flash", get_space("nb201"), seed=0, cost_quantile=0.5)
    sizes: list[int] = []
    fit = strategy._fit

    def counting_fit(evals, values):  # type: ignore[no-untyped-def]
        sizes.append(len(evals))
        return fit(evals, values)

    strategy._fit = counting_fit  # type: ignore[method-assign]
    result = _run(strategy, 50)
    assert sizes and max(sizes) <= 25
    limit = strategy.report()["cost_limit"]
    assert limit is not None and strategy.report()["rounds"] >= 3
    confirmed = [e.metrics["latency_ms_raspi4"] for e in result.history[25:]]
    # The cost predictor is a regression, so allow a margin; random cells exceed the median half the time.
    assert np.mean(np.array(confirmed) <= 1.15 * limit) >= 0.7
    sampled = [e.objective for e in result.history[:25]]
    assert max(e.objective for e in result.history[25:]) > np.median(sampled)


def test_unconstrained_flash_finds_good_cells() -> None:
    result = _run(create_strategy("flash", get_space("nb201"), seed=1), 40)
    assert result.best is not None and result.best.objective > 90.5  # top 2% of val_acc


def test_config_runs_from_hydra(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="config", overrides=["strategy=flash", "budget.evaluations=30", "tracker=none",
                                                       "strategy.cost_quantile=0.75"])
    summary = run_search(cfg, tmp_path)
    assert summary["evaluations"] == 30
    assert summary["flash"]["cost_limit"] is not None
