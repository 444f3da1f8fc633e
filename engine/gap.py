"""The optimization gap between two fidelities, measured on the architectures evaluated at both.

A weight-sharing supernet is useful to a search only if it *ranks* architectures
the way stand-alone training does, above all among the good ones the search
ends up choosing between. These functions turn two score tables (a cheap one,
e.g. inherited supernet accuracy, and an expensive one, e.g. stand-alone
accuracy, possibly with several seeds) into rank-agreement numbers, and put
them next to the noise ceiling (how well two stand-alone seeds agree with each
other): a gap smaller than the noise between seeds cannot be measured.

Pure numpy/scipy on purpose: the engine decides and measures nothing itself.
:func:`rung_gap` reads a search history, the epoch gap of successive halving and its kin.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
from scipy import stats

from engine.fidelity import fidelity_epochs
from engine.types import DEFAULT_FIDELITY, Evaluation

__all__ = [
    "GapReport",
    "kendall_tau",
    "measure_gap",
    "pairwise_tau",
    "pick_rank",
    "rung_gap",
    "spearman_rho",
    "tau_within_top",
    "top_k_overlap",
]


def _vectors(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=float).ravel()
    b = np.asarray(y, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"score vectors differ in length: {a.size} vs {b.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("score vectors must be finite (drop failed evaluations first)")
    return a, b


def _nan_if_degenerate(value: float) -> float:
    return float(value) if value is not None and math.isfinite(value) else float("nan")


def kendall_tau(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b between two score vectors (``nan`` below 2 points or for a constant vector).

    Tau-b rather than tau-a because accuracies on small validation sets tie often.
    """
    a, b = _vectors(x, y)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return _nan_if_degenerate(stats.kendalltau(a, b).statistic)


def spearman_rho(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation (``nan`` below 2 points or for a constant vector)."""
    a, b = _vectors(x, y)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return _nan_if_degenerate(stats.spearmanr(a, b).statistic)


def _top_indices(v: np.ndarray, k: int) -> np.ndarray:
    # Stable order on ties: the earlier architecture wins, so results are reproducible.
    return np.argsort(-v, kind="stable")[:k]


def top_k_overlap(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, k: int) -> float:
    """Fraction of the top-``k`` by ``y`` that is also in the top-``k`` by ``x``.

    Raises:
        ValueError: if ``k`` is not in ``1..len(x)``.
    """
    a, b = _vectors(x, y)
    if not 1 <= k <= a.size:
        raise ValueError(f"top-k overlap needs 1 <= k <= {a.size}, got k={k}")
    return len(set(_top_indices(a, k).tolist()) & set(_top_indices(b, k).tolist())) / k


def tau_within_top(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, fraction: float = 0.2
) -> float:
    """Kendall tau of ``x`` vs ``y`` restricted to the top ``fraction`` of architectures by ``y``.

    This is the number a search cares about: among architectures that are
    actually good, does the cheap oracle still order them correctly?

    Raises:
        ValueError: if ``fraction`` is not in (0, 1].
    """
    a, b = _vectors(x, y)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    k = max(2, math.ceil(fraction * a.size))
    idx = _top_indices(b, min(k, a.size))
    return kendall_tau(a[idx], b[idx])


def pick_rank(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[int, float]:
    """Where the cheap oracle's pick lands by the expensive one.

    Returns:
        ``(rank, regret)``: the 1-based rank by ``y`` of the architecture with the
        best ``x`` (1 = the truly best), and ``max(y)`` minus its ``y``.
    """
    a, b = _vectors(x, y)
    if a.size == 0:
        raise ValueError("pick_rank needs at least one architecture")
    pick = int(_top_indices(a, 1)[0])
    rank = 1 + int(np.sum(b > b[pick]))
    return rank, float(b.max() - b[pick])


def pairwise_tau(vectors: Sequence[Sequence[float] | np.ndarray]) -> float:
    """Mean Kendall tau over all pairs of score vectors (seeds, epochs); ``nan`` below two vectors.

    Used for the noise ceiling (stand-alone seed vs seed) and for rank stability
    (supernet seed vs seed, or epoch vs epoch).
    """
    taus = [kendall_tau(u, v) for u, v in itertools.combinations(list(vectors), 2)]
    taus = [t for t in taus if math.isfinite(t)]
    return float(np.mean(taus)) if taus else float("nan")


@dataclass
class GapReport:
    """Rank agreement between a cheap and an expensive fidelity.

    Attributes:
        n: Architectures evaluated at both fidelities (the ones compared).
        kendall_tau: Tau of cheap vs expensive (expensive = mean over its seeds).
        spearman_rho: Spearman's rho of the same.
        top_k: ``k`` used for :attr:`top_k_overlap`.
        top_k_overlap: Share of the expensive top-k that the cheap top-k finds.
        top_fraction: Fraction used for :attr:`tau_top`.
        tau_top: Tau within the expensive top ``top_fraction``.
        pick_rank: Expensive rank (1 = best) of the cheap oracle's best architecture.
        pick_regret: Expensive score of the true best minus that of the cheap pick.
        noise_ceiling: Mean tau between expensive seeds (``nan`` with one seed).
        noise_ceiling_top: The same within the expensive top fraction.
        noise_ceiling_split: Tau between the means of the first and the second half of the
            expensive seeds (``nan`` below 4 seeds): the ceiling for a ground truth that is
            itself a mean over seeds, which one seed against another understates.
        tau_per_seed: Tau of cheap vs each expensive seed separately.
        stability_seeds: Mean tau between cheap-oracle seeds (``nan`` without them).
        stability_epochs: Mean tau between the cheap oracle's last epochs (``nan`` without them).
        expensive_spread: (min, max) of the expensive score: does the task separate architectures at all?
    """

    n: int
    kendall_tau: float
    spearman_rho: float
    top_k: int
    top_k_overlap: float
    top_fraction: float
    tau_top: float
    pick_rank: int
    pick_regret: float
    noise_ceiling: float = float("nan")
    noise_ceiling_top: float = float("nan")
    noise_ceiling_split: float = float("nan")
    tau_per_seed: list[float] = field(default_factory=list)
    stability_seeds: float = float("nan")
    stability_epochs: float = float("nan")
    expensive_spread: tuple[float, float] = (float("nan"), float("nan"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (``nan`` becomes ``None``)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, (list, tuple)):
                return [clean(u) for u in v]
            return v

        return {k: clean(v) for k, v in asdict(self).items()}


def _aligned(
    cheap: Mapping[str, float], expensive: Mapping[str, Sequence[float] | float]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    keys = [k for k in cheap if k in expensive and _finite(cheap[k])]
    rows = []
    kept = []
    width = None
    for k in keys:
        v = expensive[k]
        # np.isscalar (not isinstance) so NumPy scalars count as one seed; it does not narrow, hence the casts.
        seeds = [float(cast(float, v))] if np.isscalar(v) else [float(s) for s in cast("Sequence[float]", v)]
        if not seeds or not all(math.isfinite(s) for s in seeds):
            continue
        if width is None:
            width = len(seeds)
        elif len(seeds) != width:
            raise ValueError(f"architecture {k!r} has {len(seeds)} expensive seeds, others have {width}")
        rows.append(seeds)
        kept.append(k)
    cheap_v = np.array([float(cheap[k]) for k in kept], dtype=float)
    exp_m = np.array(rows, dtype=float).reshape(len(kept), width or 0)
    return kept, cheap_v, exp_m


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def measure_gap(
    cheap: Mapping[str, float],
    expensive: Mapping[str, Sequence[float] | float],
    *,
    cheap_seeds: Sequence[Mapping[str, float]] = (),
    cheap_epochs: Sequence[Mapping[str, float]] = (),
    top_fraction: float = 0.2,
    top_k: int | None = None,
) -> GapReport:
    """Compare a cheap fidelity with an expensive one on the architectures they share.

    Args:
        cheap: Architecture key (canonical string) -> cheap score, e.g. inherited accuracy.
        expensive: Key -> expensive score, or a sequence of scores (one per seed);
            seeds are averaged for the correlations and compared to each other for
            the noise ceiling. Keys missing from either side, or with a non-finite
            score (a failed evaluation), are left out.
        cheap_seeds: Scores of further cheap-oracle seeds (e.g. supernets trained
            with other seeds), for rank stability across seeds; ``cheap`` itself is
            included as the first.
        cheap_epochs: Scores from the cheap oracle's last epochs, for rank stability over training.
        top_fraction: Fraction of the best (by expensive score) used for the top tau.
        top_k: ``k`` for the top-k overlap; default: the same top fraction (at least 1).

    Raises:
        ValueError: if fewer than 3 architectures are shared, or seeds are ragged.
    """
    keys, x, ys = _aligned(cheap, expensive)
    if len(keys) < 3:
        raise ValueError(f"need at least 3 architectures evaluated at both fidelities, got {len(keys)}")
    y = ys.mean(axis=1)
    k = top_k if top_k is not None else max(1, math.ceil(top_fraction * len(keys)))
    k = min(max(1, k), len(keys))
    rank, regret = pick_rank(x, y)
    seeds = [ys[:, j] for j in range(ys.shape[1])]
    noise = pairwise_tau(seeds) if len(seeds) >= 2 else float("nan")
    noise_top = float("nan")
    if len(seeds) >= 2:
        kk = max(2, math.ceil(top_fraction * len(keys)))
        idx = _top_indices(y, min(kk, len(keys)))
        noise_top = pairwise_tau([s[idx] for s in seeds])

    def stability(extra: Sequence[Mapping[str, float]], include_self: bool) -> float:
        if not extra:
            return float("nan")
        tables = ([cheap] if include_self else []) + list(extra)
        common = [kk for kk in keys if all(kk in t and _finite(t[kk]) for t in tables)]
        if len(common) < 3:
            return float("nan")
        return pairwise_tau([np.array([float(t[kk]) for kk in common]) for t in tables])

    return GapReport(
        n=len(keys),
        kendall_tau=kendall_tau(x, y),
        spearman_rho=spearman_rho(x, y),
        top_k=k,
        top_k_overlap=top_k_overlap(x, y, k),
        top_fraction=top_fraction,
        tau_top=tau_within_top(x, y, top_fraction),
        pick_rank=rank,
        pick_regret=regret,
        noise_ceiling=noise,
        noise_ceiling_top=noise_top,
        noise_ceiling_split=(kendall_tau(ys[:, : ys.shape[1] // 2].mean(1), ys[:, ys.shape[1] // 2 :].mean(1))
                             if ys.shape[1] >= 4 else float("nan")),
        tau_per_seed=[kendall_tau(x, s) for s in seeds] if len(seeds) > 1 else [],
        stability_seeds=stability(cheap_seeds, include_self=True),
        stability_epochs=stability(cheap_epochs, include_self=False),
        expensive_spread=(float(y.min()), float(y.max())),
    )


def rung_gap(evaluations: Iterable[Evaluation], top_fraction: float = 0.2) -> dict[str, dict[str, Any]]:
    """For every epoch rung, its rank agreement with the full training, on the architectures measured at both.

    The epoch gap: how well a short training ranks what the full one ranks, which is
    what successive halving, Hyperband and ASHA bet on when they stop a training early.
    Repeated results of one architecture at one fidelity (several seeds) are averaged.

    Args:
        evaluations: A search's history (failed, skipped and cached rows are left out).
        top_fraction: The top-k overlap uses ``k = ceil(top_fraction * n)`` (at least 1).

    Returns:
        ``{rung fidelity: {"epochs", "architectures", "kendall_tau", "spearman", "top_k",
        "top_k_overlap"}}`` for every ``epochs=<n>`` fidelity in the history, lowest first;
        a figure that needs more architectures (3 for the correlations) is ``None``.
    """
    scores: dict[str, dict[str, list[float]]] = {}
    for ev in evaluations:
        if ev.ok and not ev.cached and ev.objective is not None:
            scores.setdefault(ev.fidelity, {}).setdefault(ev.arch.string, []).append(float(ev.objective))
    final = {a: float(np.mean(v)) for a, v in scores.get(DEFAULT_FIDELITY, {}).items()}
    rungs = sorted((e, f) for f in scores if (e := fidelity_epochs(f)) is not None)
    out: dict[str, dict[str, Any]] = {}
    for epochs, fid in rungs:
        both = [a for a in scores[fid] if a in final]
        x = np.array([np.mean(scores[fid][a]) for a in both])
        y = np.array([final[a] for a in both])
        k = max(1, math.ceil(top_fraction * len(both))) if both else None

        def known(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        out[fid] = {
            "epochs": epochs,
            "architectures": len(both),
            "kendall_tau": known(kendall_tau(x, y)) if len(both) >= 3 else None,
            "spearman": known(spearman_rho(x, y)) if len(both) >= 3 else None,
            "top_k": k,
            "top_k_overlap": top_k_overlap(x, y, k) if k else None,
        }
    return out
