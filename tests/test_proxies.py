"""Zero-cost proxies and the NN-Degree topology score: deterministic per seed, different across architectures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.features import live_edges, nn_degree, topology_features
from engine.spaces import ChainSpace, NB201Space
from oracles.models import build_model
from oracles.proxies import NETWORK_PROXIES, ProxyOracle, compute_proxies

torch.set_num_threads(1)

DIGITS = {"name": "digits"}
TINY = {"channels": 4, "cells": 1}
NO_LATENCY = {"latency": False}
CONV = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
POOL = "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
DEAD = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_nn_degree_counts_live_conv_and_skip_edges() -> None:
    space = NB201Space()
    assert nn_degree(space.parse(DEAD)) == 0.0
    # One skip 0->3: average degree 2 * 1 / 4 nodes, plus one skip.
    assert nn_degree(space.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")) == 1.5
    # A conv into node 1 that leads nowhere is not on an input-output path.
    dangling = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert live_edges(dangling) == [False, False, False, True, False, False]
    assert nn_degree(dangling) == 1.5
    full = topology_features(space.parse(CONV))
    assert full == {"live_edges": 6.0, "conv_edges": 5.0, "skip_edges": 1.0, "pool_edges": 0.0,
                    "connected": 1.0, "nn_degree": 4.0}
    with pytest.raises(ValueError, match="defined for nb201 cells"):
        nn_degree(ChainSpace().sample(np.random.default_rng(0)))


def test_proxies_are_deterministic_per_seed_and_differ_between_architectures() -> None:
    space = NB201Space()
    archs = [space.parse(CONV), space.parse(POOL)]
    names = ["naswot", "jacob_cov", "snip", "grad_norm", "nn_degree"]
    make = lambda seed: ProxyOracle(  # noqa: E731
        space, DIGITS, proxy="synflow", metrics=names, seed=seed, model=TINY, hardware=NO_LATENCY, batch_size=16
    )
    a, b, c = make(0).evaluate(archs), make(0).evaluate(archs), make(1).evaluate(archs)
    for x, y in zip(a, b):
        assert x.ok and x.metrics == y.metrics
    assert a[0].objective != a[1].objective
    for k in ("synflow", "naswot", "snip", "grad_norm", "params", "flops"):
        assert a[0].metrics[k] != a[1].metrics[k], k
    assert a[0].metrics["naswot"] != c[0].metrics["naswot"]  # another seed: other weights and batch
    assert a[0].objective == a[0].metrics["synflow"] and a[0].metrics["nn_degree"] == 4.0


def test_compute_proxies_does_not_touch_the_model() -> None:
    space = NB201Space()
    model = build_model(space, space.parse(CONV), (1, 8, 8), 10, **TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = (torch.randn(8, 1, 8, 8), torch.arange(8) % 10)
    scores = compute_proxies(model, batch, NETWORK_PROXIES)
    assert set(scores) == set(NETWORK_PROXIES) and all(np.isfinite(v) for v in scores.values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_disconnected_cell_scores_lowest_instead_of_failing() -> None:
    space = NB201Space()
    oracle = ProxyOracle(space, DIGITS, proxy="naswot", metrics=[], model=TINY, hardware=NO_LATENCY, batch_size=16)
    dead, live = oracle.evaluate([space.parse(DEAD), space.parse(CONV)])
    assert dead.ok and live.ok and dead.objective < live.objective


def test_chain_space_and_bad_settings() -> None:
    chain = ChainSpace(stages=2, depths=(1, 2))
    oracle = ProxyOracle(chain, {"name": "mnist1d", "num_samples": 200}, proxy="grad_norm",
                         metrics=["nn_degree", "snip"], hardware={"latency_batch_size": 2, "min_run_time": 0.01},
                         model={"head_channels": 16})
    [ev] = oracle.evaluate([chain.sample(np.random.default_rng(0))])
    assert ev.ok and "nn_degree" not in ev.metrics and ev.metrics["latency_ms"] > 0
    with pytest.raises(ValueError, match="nb201 space only"):
        ProxyOracle(chain, DIGITS, proxy="nn_degree")
    with pytest.raises(ValueError, match=r"oracle\.proxy must be one of"):
        ProxyOracle(NB201Space(), DIGITS, proxy="zen")


def test_rank_ensemble_is_the_sum_of_log_ranks_over_the_shared_architectures() -> None:
    from scipy.stats import rankdata

    from oracles.proxies import rank_ensemble

    a = {"x": 3.0, "y": 1.0, "z": 2.0, "w": 5.0}
    b = {"x": 0.1, "y": 0.3, "z": 0.3, "only_b": 9.0}  # a tie, and one architecture only b scored
    got = rank_ensemble({"a": a, "b": b})
    common = ["x", "y", "z"]
    ra, rb = rankdata([a[k] for k in common]), rankdata([b[k] for k in common])
    expected = {k: math.log(ra[i] / 3) + math.log(rb[i] / 3) for i, k in enumerate(common)}
    assert got == pytest.approx(expected)
    # Best on one proxy and worst on the other loses to good on both: the log punishes the bad rank.
    c = {"p": 10.0, "q": 1.0, "r": 9.0}
    d = {"p": 1.0, "q": 10.0, "r": 9.0}
    ens = rank_ensemble({"c": c, "d": d})
    assert max(ens, key=ens.__getitem__) == "r"
    with pytest.raises(ValueError, match="at least two proxies"):
        rank_ensemble({"a": a})


def test_nas_gap_reports_the_ensemble_beside_the_single_proxies() -> None:
    from engine.gap import kendall_tau
    from oracles.gap_cli import build_report
    from oracles.proxies import rank_ensemble

    archs = [f"a{i}" for i in range(8)]
    standalone = {a: [{"ok": True, "val_acc": 0.1 * i}, {"ok": True, "val_acc": 0.1 * i}] for i, a in enumerate(archs)}
    noisy = {"p1": {a: float((i * 3) % 8) for i, a in enumerate(archs)},
             "p2": {a: float(i) for i, a in enumerate(archs)}}
    truth, rows = build_report(standalone, [], noisy, 0.25)
    names = [r["name"] for r in rows]
    assert names == ["proxy:p1", "proxy:p2", "proxy:ensemble"] and rows[2]["members"] == ["p1", "p2"]
    ens = rank_ensemble(noisy)
    assert rows[2]["kendall_tau"] == pytest.approx(kendall_tau([ens[a] for a in archs],
                                                               [float(np.mean(truth[a])) for a in archs]))
