"""Gap metrics against scipy on known inputs and on the shipped NAS-Bench-201 table."""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from engine import gap

TABLE = Path(__file__).resolve().parent.parent / "oracles" / "data" / "nb201_cifar10.csv.gz"


def test_correlations_match_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = x + rng.normal(scale=0.7, size=40)
    assert gap.kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
    assert gap.spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert gap.kendall_tau(x, x) == pytest.approx(1.0)
    assert gap.kendall_tau(x, -x) == pytest.approx(-1.0)
    assert math.isnan(gap.kendall_tau([1, 1, 1], [1, 2, 3]))


def test_top_k_pick_and_top_tau_on_known_input() -> None:
    y = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], dtype=float)
    x = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], dtype=float)  # reversed ranking
    assert gap.top_k_overlap(x, y, 3) == 0.0
    assert gap.top_k_overlap(y, y, 3) == 1.0
    assert gap.pick_rank(x, y) == (10, 9.0)
    assert gap.pick_rank(y, y) == (1, 0.0)
    # the top 20% by y are indices 0 and 1; x orders them the other way
    assert gap.tau_within_top(x, y, 0.2) == pytest.approx(-1.0)
    x2 = x.copy()
    x2[:3] = [30, 20, 10]  # the cheap score now agrees on the top three
    assert gap.tau_within_top(x2, y, 0.3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k"):
        gap.top_k_overlap(x, y, 0)
    with pytest.raises(ValueError, match="length"):
        gap.kendall_tau([1, 2], [1, 2, 3])


def test_measure_gap_aligns_keys_and_uses_seeds() -> None:
    rng = np.random.default_rng(1)
    keys = [f"a{i}" for i in range(30)]
    truth = rng.normal(size=30)
    s1 = truth + rng.normal(scale=0.3, size=30)
    s2 = truth + rng.normal(scale=0.3, size=30)
    cheap = {k: float(t + rng.normal(scale=0.5)) for k, t in zip(keys, truth)}
    cheap["only_cheap"] = 1.0
    cheap["failed"] = float("nan")
    expensive = {k: [float(a), float(b)] for k, a, b in zip(keys, s1, s2)}
    expensive["failed"] = [0.1, 0.2]
    other_seed = {k: v + 0.01 * i for i, (k, v) in enumerate(cheap.items())}
    rep = gap.measure_gap(cheap, expensive, cheap_seeds=[other_seed], cheap_epochs=[cheap, other_seed])
    assert rep.n == 30
    x = np.array([cheap[k] for k in keys])
    y = (s1 + s2) / 2
    assert rep.kendall_tau == pytest.approx(stats.kendalltau(x, y).statistic)
    assert rep.noise_ceiling == pytest.approx(stats.kendalltau(s1, s2).statistic)
    assert rep.tau_per_seed == pytest.approx([stats.kendalltau(x, s1).statistic, stats.kendalltau(x, s2).statistic])
    assert rep.stability_seeds == pytest.approx(
        stats.kendalltau(x, np.array([other_seed[k] for k in keys])).statistic
    )
    assert rep.top_k == 6
    d = rep.to_dict()
    assert d["n"] == 30 and d["expensive_spread"][0] == pytest.approx(y.min())
    single = gap.measure_gap(cheap, {k: float(v) for k, v in zip(keys, s1)})
    assert single.noise_ceiling != single.noise_ceiling  # nan with one seed
    assert single.to_dict()["noise_ceiling"] is None
    assert rep.noise_ceiling_split != rep.noise_ceiling_split  # nan below 4 seeds
    s3, s4 = (truth + rng.normal(scale=0.3, size=30) for _ in range(2))
    four = gap.measure_gap(cheap, {k: [float(v) for v in vs] for k, *vs in zip(keys, s1, s2, s3, s4)})
    assert four.noise_ceiling_split == pytest.approx(stats.kendalltau(s1 + s2, s3 + s4).statistic)
    assert four.noise_ceiling_split > four.noise_ceiling  # a mean of two seeds is the steadier truth
    with pytest.raises(ValueError, match="at least 3"):
        gap.measure_gap({"a": 1.0}, {"a": 1.0})
    with pytest.raises(ValueError, match="seeds"):
        gap.measure_gap({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": [1.0], "b": [1.0, 2.0], "c": [3.0]})


def test_nb201_oneshot_supernet_gap_matches_readme() -> None:
    with gzip.open(TABLE, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cheap = {r["arch"]: float(r["oneshot_supernet_acc"]) for r in rows}
    expensive = {r["arch"]: float(r["test_acc"]) for r in rows}
    rep = gap.measure_gap(cheap, expensive)
    assert rep.n == 15625
    assert rep.kendall_tau == pytest.approx(0.48, abs=0.015)
    # "worse than useless among its own top picks": tiny or negative within the top 20%
    assert rep.tau_top < 0.2
    assert rep.pick_rank > 1
