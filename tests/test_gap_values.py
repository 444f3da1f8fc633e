"""Gap metrics checked value by value against numbers computed independently (scipy, by hand).

Written to kill the mutants of engine/gap.py that tests/test_gap.py lets live
(bench/mutation.py, bench/results/mutation.md): each case is built so that the
definition and its near misses (top by the cheap score instead of the expensive
one, a bound off by one, a seed left out) give different numbers.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from engine import gap

TABLE = Path(__file__).resolve().parent.parent / "oracles" / "data" / "nb201_cifar10.csv.gz"


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.kendalltau(x, y).statistic)


def _top_by(v: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest of ``v``, earlier first on ties (written out, not gap._top_indices)."""
    return np.array(sorted(range(len(v)), key=lambda i: (-v[i], i))[:k])


# Cheap and expensive scores of 20 architectures whose rankings differ most among the good ones:
# the expensive top 4 (indices 0..3) are ordered backwards by the cheap score, while the cheap
# score's own top 4 (indices 16..19, mediocre by the expensive score) it orders correctly.
Y = np.array([20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1], dtype=float)
X = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 40, 39, 38, 37], dtype=float)


def test_rank_correlations_equal_scipy_and_are_nan_exactly_when_degenerate() -> None:
    x = np.array([3.0, 1.0, 2.0, 2.0, 5.0, 4.0])  # ties: tau-b, not tau-a
    y = np.array([1.0, 2.0, 2.0, 3.0, 6.0, 5.0])
    assert gap.kendall_tau(x, y) == pytest.approx(_tau(x, y))
    assert gap.spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert gap.kendall_tau(x, y) != pytest.approx(gap.kendall_tau(y[::-1], x))
    # two points are enough, one is not; a constant vector on either side has no ranking
    for f in (gap.kendall_tau, gap.spearman_rho):
        assert f([1.0, 2.0], [3.0, 4.0]) == pytest.approx(1.0)
        assert f([1.0, 2.0], [4.0, 3.0]) == pytest.approx(-1.0)
        assert math.isnan(f([1.0], [2.0]))
        assert math.isnan(f([], []))
        assert math.isnan(f([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
        assert math.isnan(f([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
        with pytest.raises(ValueError, match="finite"):
            f([1.0, float("nan"), 3.0], [1.0, 2.0, 3.0])
        with pytest.raises(ValueError, match="finite"):
            f([1.0, 2.0, 3.0], [1.0, float("inf"), 3.0])
        with pytest.raises(ValueError, match="length"):
            f([1.0, 2.0, 3.0], [1.0, 2.0])


def test_degenerate_input_gives_nan_without_scipy_warnings() -> None:
    """A constant vector is answered before scipy is asked (spearmanr would warn ConstantInputWarning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (gap.kendall_tau, gap.spearman_rho):
            assert math.isnan(f([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0]))
            assert math.isnan(f([1.0, 2.0, 3.0, 4.0], [7.0, 7.0, 7.0, 7.0]))
            assert math.isnan(f([3.0], [1.0]))


def test_top_k_overlap_by_hand() -> None:
    x = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    y = np.array([5.0, 3.0, 4.0, 1.0, 2.0])
    # top 2 by y: {0, 2}; by x: {0, 1}
    assert gap.top_k_overlap(x, y, 2) == pytest.approx(0.5)
    assert gap.top_k_overlap(x, y, 1) == pytest.approx(1.0)
    assert gap.top_k_overlap(x, y, 4) == pytest.approx(3 / 4)  # by y {0, 2, 1, 4}; by x {0, 1, 2, 3}
    assert gap.top_k_overlap(x, y, 5) == pytest.approx(1.0)  # k = n is allowed
    assert gap.top_k_overlap(-x, y, 2) == pytest.approx(0.0)
    for bad in (0, 6, -1):
        with pytest.raises(ValueError, match="1 <= k"):
            gap.top_k_overlap(x, y, bad)


def test_tau_within_top_ranks_the_expensive_top_not_the_cheap_one() -> None:
    """The gap among the good cells: the top fraction is chosen by the expensive score."""
    k = math.ceil(0.2 * len(Y))
    by_expensive, by_cheap = _top_by(Y, k), _top_by(X, k)
    expected = _tau(X[by_expensive], Y[by_expensive])
    assert expected == pytest.approx(-1.0)
    assert _tau(X[by_cheap], Y[by_cheap]) == pytest.approx(1.0)  # the wrong definition would say "perfect"
    assert gap.tau_within_top(X, Y, 0.2) == pytest.approx(expected)
    assert gap.tau_within_top(X, Y) == pytest.approx(expected)  # 0.2 is the default
    # a larger fraction: the top 10 by Y, X still reversed on them
    idx = _top_by(Y, 10)
    assert gap.tau_within_top(X, Y, 0.5) == pytest.approx(_tau(X[idx], Y[idx]))
    # the whole population at fraction 1
    assert gap.tau_within_top(X, Y, 1.0) == pytest.approx(_tau(X, Y))


def test_tau_within_top_keeps_at_least_two_architectures() -> None:
    y = np.array([10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    x = np.array([2.0, 3.0, 1.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    # ceil(0.05 * 10) = 1 is raised to 2: indices 0, 1, which x orders backwards
    assert gap.tau_within_top(x, y, 0.05) == pytest.approx(-1.0)
    # three would give the tau of (2, 3, 1) vs (10, 9, 8): 1/3, not -1
    assert _tau(x[:3], y[:3]) == pytest.approx(1 / 3)
    assert gap.tau_within_top(x, y, 0.3) == pytest.approx(1 / 3)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.01, 1.5, 2.0])
def test_tau_within_top_refuses_fractions_outside_0_1(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        gap.tau_within_top(X, Y, fraction)


def test_pick_rank_counts_only_strictly_better_architectures() -> None:
    y = np.array([3.0, 5.0, 5.0, 1.0])
    x = np.array([0.0, 1.0, 9.0, 2.0])  # picks index 2, tied for best by y
    assert gap.pick_rank(x, y) == (1, 0.0)
    x2 = np.array([0.0, 1.0, 2.0, 9.0])  # picks index 3, the worst
    assert gap.pick_rank(x2, y) == (4, 4.0)
    x3 = np.array([9.0, 1.0, 2.0, 3.0])  # picks index 0: two are better
    assert gap.pick_rank(x3, y) == (3, 2.0)
    # the earlier architecture wins a tie of the cheap score
    assert gap.pick_rank([7.0, 7.0, 1.0], [1.0, 2.0, 3.0]) == (3, 2.0)
    assert gap.pick_rank([1.0], [2.0]) == (1, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        gap.pick_rank([], [])


def test_pairwise_tau_is_the_mean_over_pairs_of_the_finite_taus() -> None:
    u = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    v = np.array([2.0, 1.0, 3.0, 5.0, 4.0])
    w = np.array([5.0, 3.0, 4.0, 1.0, 2.0])
    expected = np.mean([_tau(u, v), _tau(u, w), _tau(v, w)])
    assert gap.pairwise_tau([u, v, w]) == pytest.approx(expected)
    assert gap.pairwise_tau([u, v]) == pytest.approx(_tau(u, v))
    flat = np.ones(5)  # a constant vector has no tau with anything: its pairs are left out
    assert gap.pairwise_tau([u, flat, v]) == pytest.approx(_tau(u, v))
    assert math.isnan(gap.pairwise_tau([u]))
    assert math.isnan(gap.pairwise_tau([]))
    assert math.isnan(gap.pairwise_tau([u, flat]))


def _seeded(n: int, n_seeds: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = [f"c{i}" for i in range(n)]
    truth = np.linspace(0.0, 1.0, n)
    seeds = truth[:, None] + rng.normal(scale=0.25, size=(n, n_seeds))
    cheap = truth + rng.normal(scale=0.4, size=n)
    return keys, cheap, seeds


def test_noise_ceiling_top_is_the_seed_agreement_within_the_expensive_top() -> None:
    keys, cheap, seeds = _seeded(40, 3, seed=3)
    rep = gap.measure_gap(dict(zip(keys, cheap)), {k: list(s) for k, s in zip(keys, seeds)}, top_fraction=0.25)
    mean = seeds.mean(axis=1)
    idx = _top_by(mean, 10)
    expected = np.mean([_tau(seeds[idx, i], seeds[idx, j]) for i, j in itertools.combinations(range(3), 2)])
    assert rep.noise_ceiling_top == pytest.approx(expected)
    # the near misses give other numbers on this data: all cells, or the top by the cheap score
    assert not math.isclose(rep.noise_ceiling_top, rep.noise_ceiling, abs_tol=1e-3)
    wrong = _top_by(cheap, 10)
    assert not math.isclose(
        expected, np.mean([_tau(seeds[wrong, i], seeds[wrong, j]) for i, j in [(0, 1), (0, 2), (1, 2)]]), abs_tol=1e-3
    )
    assert rep.noise_ceiling == pytest.approx(
        np.mean([_tau(seeds[:, i], seeds[:, j]) for i, j in itertools.combinations(range(3), 2)])
    )
    assert rep.tau_per_seed == pytest.approx([_tau(cheap, seeds[:, j]) for j in range(3)])


def test_noise_ceiling_top_keeps_at_least_two_and_needs_two_seeds() -> None:
    y1 = np.array([10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    y2 = np.array([9.0, 10.0, 7.5, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])  # swaps the top two only
    keys = [f"c{i}" for i in range(10)]
    cheap = dict(zip(keys, np.arange(10.0)))
    rep = gap.measure_gap(cheap, {k: [a, b] for k, a, b in zip(keys, y1, y2)}, top_fraction=0.1)
    # ceil(0.1 * 10) = 1 is raised to 2: the top two by the mean, which the seeds order oppositely
    assert rep.noise_ceiling_top == pytest.approx(-1.0)
    assert _tau(y1[:3], y2[:3]) == pytest.approx(1 / 3)  # three would give 1/3
    single = gap.measure_gap(cheap, {k: float(a) for k, a in zip(keys, y1)})
    assert math.isnan(single.noise_ceiling_top) and math.isnan(single.noise_ceiling)
    assert single.tau_per_seed == []


def test_stability_epochs_compares_the_epochs_with_each_other_only() -> None:
    keys = [f"c{i}" for i in range(6)]
    cheap = dict(zip(keys, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    expensive = dict(zip(keys, [1.0, 3.0, 2.0, 4.0, 6.0, 5.0]))
    e1 = dict(zip(keys, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]))
    e2 = dict(zip(keys, [5.0, 6.0, 4.0, 3.0, 1.0, 2.0]))
    v1, v2, vc = (np.array([t[k] for k in keys]) for t in (e1, e2, cheap))
    rep = gap.measure_gap(cheap, expensive, cheap_epochs=[e1, e2], cheap_seeds=[e1, e2])
    assert rep.stability_epochs == pytest.approx(_tau(v1, v2))
    # seeds include the cheap table itself as the first: the mean over the three pairs
    assert rep.stability_seeds == pytest.approx(np.mean([_tau(vc, v1), _tau(vc, v2), _tau(v1, v2)]))
    assert not math.isclose(rep.stability_seeds, rep.stability_epochs, abs_tol=1e-3)
    assert math.isnan(gap.measure_gap(cheap, expensive).stability_epochs)
    assert math.isnan(gap.measure_gap(cheap, expensive, cheap_epochs=[e1]).stability_epochs)


def test_stability_uses_the_architectures_every_table_scores() -> None:
    keys = [f"c{i}" for i in range(6)]
    cheap = dict(zip(keys, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    expensive = dict(zip(keys, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    e1 = {"c0": 1.0, "c1": 3.0, "c2": 2.0, "c3": 4.0, "c4": 9.0, "c5": float("nan")}  # c5 failed
    e2 = {"c0": 1.0, "c1": 2.0, "c2": 3.0, "c3": 5.0, "c4": 4.0, "c5": 6.0, "other": 7.0}
    e3 = {"c0": 2.0, "c1": 1.0, "c2": 3.0, "c3": 4.0, "c4": 5.0}  # c5 missing
    common = ["c0", "c1", "c2", "c3", "c4"]
    v1, v2, v3 = (np.array([t[k] for k in common]) for t in (e1, e2, e3))
    three_tables = gap.measure_gap(cheap, expensive, cheap_epochs=[e1, e2, e3]).stability_epochs
    assert three_tables == pytest.approx(np.mean([_tau(v1, v2), _tau(v1, v3), _tau(v2, v3)]))
    expected = _tau(np.array([e1[k] for k in common]), np.array([e2[k] for k in common]))
    assert gap.measure_gap(cheap, expensive, cheap_epochs=[e1, e2]).stability_epochs == pytest.approx(expected)
    # exactly three in common is enough, two is not
    three = {"c0": 1.0, "c1": 3.0, "c2": 2.0}
    three_b = {"c0": 1.0, "c1": 2.0, "c2": 3.0, "c3": 0.0}
    assert gap.measure_gap(cheap, expensive, cheap_epochs=[three, three_b]).stability_epochs == pytest.approx(
        _tau(np.array([1.0, 3.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    )
    two = {"c0": 1.0, "c1": 3.0}
    assert math.isnan(gap.measure_gap(cheap, expensive, cheap_epochs=[two, three_b]).stability_epochs)


def test_noise_ceiling_split_halves_the_seeds_in_order() -> None:
    keys, cheap, seeds = _seeded(30, 5, seed=5)
    cheap_d = dict(zip(keys, cheap))
    rep = gap.measure_gap(cheap_d, {k: list(s) for k, s in zip(keys, seeds)})
    # five seeds: the first two against the last three
    assert rep.noise_ceiling_split == pytest.approx(_tau(seeds[:, :2].mean(1), seeds[:, 2:].mean(1)))
    assert not math.isclose(rep.noise_ceiling_split, _tau(seeds[:, :3].mean(1), seeds[:, 3:].mean(1)), abs_tol=1e-3)
    four = gap.measure_gap(cheap_d, {k: list(s[:4]) for k, s in zip(keys, seeds)})
    assert four.noise_ceiling_split == pytest.approx(_tau(seeds[:, :2].mean(1), seeds[:, 2:4].mean(1)))
    three = gap.measure_gap(cheap_d, {k: list(s[:3]) for k, s in zip(keys, seeds)})
    assert math.isnan(three.noise_ceiling_split)
    assert math.isfinite(three.noise_ceiling)


def test_measure_gap_fields_by_hand_on_a_small_case() -> None:
    keys = ["a", "b", "c", "d", "e"]
    cheap = {"a": 5.0, "b": 1.0, "c": 4.0, "d": 3.0, "e": 2.0}
    expensive = {"a": [1.0, 3.0], "b": [9.0, 7.0], "c": [6.0, 6.0], "d": [4.0, 2.0], "e": [5.0, 5.0]}
    rep = gap.measure_gap(cheap, expensive)
    x = np.array([cheap[k] for k in keys])
    y = np.array([np.mean(expensive[k]) for k in keys])  # 2, 8, 6, 3, 5
    assert rep.n == 5
    assert rep.kendall_tau == pytest.approx(_tau(x, y))
    assert rep.spearman_rho == pytest.approx(stats.spearmanr(x, y).statistic)
    assert rep.top_k == 1  # ceil(0.2 * 5)
    assert rep.top_k_overlap == 0.0  # the cheap best (a) is not the expensive best (b)
    assert rep.tau_top == pytest.approx(_tau(x[[1, 2]], y[[1, 2]]))  # at least two: b and c
    assert (rep.pick_rank, rep.pick_regret) == (5, pytest.approx(6.0))  # a is the worst by the mean
    assert rep.expensive_spread == (pytest.approx(2.0), pytest.approx(8.0))
    assert rep.top_fraction == 0.2
    d = rep.to_dict()
    assert d["expensive_spread"] == [pytest.approx(2.0), pytest.approx(8.0)]
    assert d["noise_ceiling_split"] is None and d["stability_seeds"] is None
    assert d["tau_per_seed"] == [pytest.approx(_tau(x, [1.0, 9.0, 6.0, 4.0, 5.0])),
                                 pytest.approx(_tau(x, [3.0, 7.0, 6.0, 2.0, 5.0]))]
    assert d["kendall_tau"] == pytest.approx(rep.kendall_tau) and d["n"] == 5


def test_top_k_default_and_clamping() -> None:
    keys = [f"c{i}" for i in range(4)]
    cheap = dict(zip(keys, [4.0, 3.0, 2.0, 1.0]))
    expensive = dict(zip(keys, [3.0, 4.0, 1.0, 2.0]))
    assert gap.measure_gap(cheap, expensive, top_fraction=0.1).top_k == 1  # ceil(0.4)
    assert gap.measure_gap(cheap, expensive, top_fraction=0.6).top_k == 3  # ceil(2.4)
    assert gap.measure_gap(cheap, expensive, top_k=2).top_k == 2
    assert gap.measure_gap(cheap, expensive, top_k=2).top_k_overlap == pytest.approx(1.0)
    assert gap.measure_gap(cheap, expensive, top_k=1).top_k == 1
    assert gap.measure_gap(cheap, expensive, top_k=1).top_k_overlap == pytest.approx(0.0)
    assert gap.measure_gap(cheap, expensive, top_k=0).top_k == 1
    assert gap.measure_gap(cheap, expensive, top_k=99).top_k == 4
    assert gap.measure_gap(cheap, expensive, top_k=99).top_k_overlap == pytest.approx(1.0)


def test_measure_gap_alignment_drops_what_cannot_be_compared() -> None:
    cheap = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "bad": None, "word": "x", "inf": float("inf"), "alone": 9.0}
    expensive = {
        "a": [1.0, 2.0], "b": [2.0, 1.0], "c": [3.0, 4.0], "d": [4.0, 5.0],
        "bad": [1.0, 1.0], "word": [1.0, 1.0], "inf": [1.0, 1.0],
        "empty": [], "nan_seed": [1.0, float("nan")],
    }
    cheap |= {"empty": 5.0, "nan_seed": 6.0}
    rep = gap.measure_gap(cheap, expensive)  # type: ignore[arg-type]
    assert rep.n == 4
    assert rep.kendall_tau == pytest.approx(_tau(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 1.5, 3.5, 4.5])))
    # an empty seed list is dropped even where the others are ragged-free
    assert gap.measure_gap({"a": 1.0, "b": 2.0, "c": 3.0, "e": 4.0},
                           {"a": [1.0], "b": [3.0], "c": [2.0], "e": []}).n == 3
    # numpy scalars are one seed each
    scalars = gap.measure_gap({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": np.float64(1.0), "b": np.float32(3.0), "c": 2})
    assert scalars.n == 3 and scalars.kendall_tau == pytest.approx(1 / 3)
    # exactly three shared is enough; two or none is refused as such
    assert gap.measure_gap({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 2.0, "c": 3.0}).n == 3
    with pytest.raises(ValueError, match=r"at least 3 .* got 2"):
        gap.measure_gap({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 2.0})
    with pytest.raises(ValueError, match=r"at least 3 .* got 0"):
        gap.measure_gap({"a": 1.0}, {"b": [1.0, 2.0]})
    with pytest.raises(ValueError, match="seeds"):
        gap.measure_gap({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": [1.0, 2.0], "b": [1.0, 2.0], "c": [3.0]})


def test_to_dict_turns_every_nan_into_none_and_keeps_the_rest() -> None:
    rep = gap.GapReport(
        n=3, kendall_tau=float("nan"), spearman_rho=0.5, top_k=1, top_k_overlap=1.0, top_fraction=0.2,
        tau_top=float("inf"), pick_rank=1, pick_regret=0.0, tau_per_seed=[0.25, float("nan")],
        expensive_spread=(1.0, float("nan")),
    )
    d = rep.to_dict()
    assert d["kendall_tau"] is None and d["tau_top"] is None and d["spearman_rho"] == 0.5
    assert d["tau_per_seed"] == [0.25, None] and d["expensive_spread"] == [1.0, None]
    assert d["n"] == 3 and d["pick_rank"] == 1 and d["pick_regret"] == 0.0 and d["top_fraction"] == 0.2
    assert d["noise_ceiling"] is None and d["stability_epochs"] is None


def test_shipped_table_headline_top_tau_is_among_the_stand_alone_top() -> None:
    """The README's "worse than useless among its own top picks" number, and what the wrong top would say."""
    with gzip.open(TABLE, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    x = np.array([float(r["oneshot_supernet_acc"]) for r in rows])
    y = np.array([float(r["test_acc"]) for r in rows])
    assert gap.tau_within_top(x, y, 0.2) == pytest.approx(-0.1954, abs=5e-4)
    k = math.ceil(0.2 * len(x))
    by_cheap = np.argsort(-x, kind="stable")[:k]
    assert _tau(x[by_cheap], y[by_cheap]) == pytest.approx(0.0936, abs=5e-4)  # the top by the supernet instead
