"""FLASH: a few-sample accuracy predictor on topology features, optimised with SHGO under a cost constraint."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.features import topology_features
from engine.spaces import Architecture, ChainSpace, SearchSpace
from engine.strategies._base import Strategy
from engine.strategies._registry import register
from engine.types import Evaluation

# Cost metrics looked for, in order, when ``cost_metric`` is ``auto``.
COST_METRICS = ("latency_ms", "latency_ms_raspi4", "latency_ms_pixel3", "params", "flops")


def chain_features(space: ChainSpace, arch: Architecture) -> dict[str, float]:
    """Topology features of a chain: per stage depth, mean kernel and expansion, plus an NN-Degree.

    The chain's NN-Degree follows FLASH's definition for a stack of residual
    blocks: the average degree of the layer graph counting each layer's
    convolution edge and the residual skip every layer after a stage's first has.
    """
    feats: dict[str, float] = {}
    edges = skips = 0
    for s, layers in enumerate(space.stage_layers(arch.decisions)):
        feats[f"s{s}.depth"] = float(len(layers))
        feats[f"s{s}.kernel"] = float(np.mean([k for k, _ in layers]))
        feats[f"s{s}.expand"] = float(np.mean([e for _, e in layers]))
        edges += len(layers)
        skips += len(layers) - 1
    feats["nn_degree"] = 2.0 * (edges + skips) / (edges + 1) + skips
    return feats


@register("flash")
class Flash(Strategy):
    """FLASH (Li, Mandal, Ogras & Marculescu, "FLASH: Fast neural architecture search with hardware
    optimization", ACM TECS 2021).

    FLASH replaces most training by an analytical accuracy predictor: it
    evaluates at most ``n_samples`` (25 in the paper) architectures, fits a
    predictor of the objective on training-free features (the NN-Degree
    topology score and the counts behind it, plus the one-hot encoding) and a
    second predictor of a hardware cost read from the same evaluations
    (latency or parameters), then maximises predicted accuracy subject to
    ``predicted cost <= max_cost`` with ``scipy.optimize.shgo`` over a
    continuous relaxation of the space: one variable per decision, or per
    group of decisions sharing a stage and a role where there are more than
    ``max_dims`` decisions (shgo's simplicial complex grows as 2**dims),
    rounded to the nearest option. Between integer points the predictors are
    interpolated coordinate by coordinate, so shgo's local minimiser sees slopes
    instead of plateaus. Rounded minimisers are polished by greedy one-decision
    moves under the predictors and the ``n_confirm`` best are confirmed by the
    oracle. Later rounds refit both predictors on the ``n_samples`` best
    evaluations so far (never more samples, as the paper insists) and repeat
    around them, until the budget ends.

    Both predictors are ridge regressions with the penalty chosen by
    leave-one-out (scikit-learn's ``RidgeCV``): with 25 samples and a few dozen
    features anything richer overfits.

    Args:
        space: The search space.
        seed: Seed of the strategy's generator.
        n_samples: Random samples of the first round, and the most samples any predictor is fitted on.
        n_confirm: Candidates confirmed by the oracle per round.
        cost_metric: Metric of the evaluations that is the hardware cost; ``auto`` takes the first of
            ``latency_ms``, ``latency_ms_raspi4``, ``latency_ms_pixel3``, ``params``, ``flops`` present.
        max_cost: Constraint on the predicted cost; ``None`` uses ``cost_quantile``.
        cost_quantile: Constraint as a quantile of the sampled costs (e.g. 0.5: at most the median);
            ``None`` with ``max_cost`` ``None`` means unconstrained (the cost is still modelled and reported).
        max_dims: Most variables of the relaxation handed to shgo.
        shgo_n: Sampling points of shgo's first iteration.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        n_samples: int = 25,
        n_confirm: int = 5,
        cost_metric: str = "auto",
        max_cost: float | None = None,
        cost_quantile: float | None = None,
        max_dims: int = 12,
        shgo_n: int = 64,
    ) -> None:
        super().__init__(space, seed)
        if n_samples < 3 or n_confirm < 1 or max_dims < 1 or shgo_n < 1:
            raise ValueError(
                f"need n_samples >= 3, n_confirm >= 1, max_dims >= 1, shgo_n >= 1; got {n_samples}, {n_confirm},"
                f" {max_dims}, {shgo_n}"
            )
        if cost_quantile is not None and not 0 < cost_quantile <= 1:
            raise ValueError(f"cost_quantile must be in (0, 1] or null, got {cost_quantile!r}")
        if max_cost is not None and not math.isfinite(max_cost):
            raise ValueError(f"max_cost must be a finite number or null, got {max_cost!r}")
        self.n_samples = n_samples
        self.n_confirm = n_confirm
        self.cost_metric = cost_metric
        self.max_cost = max_cost
        self.cost_quantile = cost_quantile
        self.shgo_n = shgo_n
        self.groups = self._groups(max_dims)
        self.queue: list[Architecture] = []
        self.rounds = 0
        self._feat_cache: dict[tuple[int, ...], np.ndarray] = {}
        self._round_cache: dict[tuple[int, ...], Architecture] = {}
        self._pred_cache: dict[tuple[int, tuple[int, ...]], float] = {}
        self._acc_model: tuple[np.ndarray, float] | None = None
        self._cost_model: tuple[np.ndarray, float] | None = None
        self._limit = math.inf

    # -- relaxation ------------------------------------------------------------
    def _groups(self, max_dims: int) -> list[list[int]]:
        """Decisions tied to one relaxation variable: each alone, else by stage and role (``s0.*.kernel``)."""
        names = [d.name for d in self.space.decisions]
        for key in (lambda n: n, lambda n: (n.split(".")[0], n.split(".")[-1]), lambda n: n.split(".")[-1]):
            groups: dict[Any, list[int]] = {}
            for i, n in enumerate(names):
                groups.setdefault(key(n), []).append(i)
            if len(groups) <= max_dims:
                return list(groups.values())
        raise ValueError(
            f"space {self.space.name!r} needs more than max_dims={max_dims} relaxation variables; raise max_dims"
        )

    def _size(self, g: int) -> int:
        return max(self.space.decisions[i].n for i in self.groups[g])

    def _round(self, x: np.ndarray) -> Architecture:
        key = tuple(round(float(v)) for v in x)
        arch = self._round_cache.get(key)
        if arch is None:
            decisions = [0] * len(self.space.decisions)
            for g, members in enumerate(self.groups):
                top = self._size(g) - 1
                for i in members:
                    n = self.space.decisions[i].n
                    decisions[i] = min(n - 1, round(key[g] * (n - 1) / top)) if top else 0
            arch = self._round_cache[key] = self.space.closest(decisions)
        return arch

    # -- features and predictors ------------------------------------------------
    def features(self, arch: Architecture) -> np.ndarray:
        """Training-free features: topology (NN-Degree and its counts) and the one-hot encoding."""
        cached = self._feat_cache.get(arch.decisions)
        if cached is not None:
            return cached
        if arch.space == "nb201":
            topo = list(topology_features(arch).values())
        elif isinstance(self.space.root, ChainSpace):  # root: a space restricted to a table's cells
            topo = list(chain_features(self.space.root, arch).values())
        else:
            topo = []
        out = np.concatenate([np.asarray(topo, dtype=np.float64), self.space.encode(arch)])
        self._feat_cache[arch.decisions] = out
        return out

    def _fit(self, evals: Sequence[Evaluation], values: Sequence[float]) -> tuple[np.ndarray, float]:
        from sklearn.linear_model import RidgeCV

        x = np.stack([self.features(e.arch) for e in evals])
        model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x, np.asarray(values, dtype=np.float64))
        return np.asarray(model.coef_, dtype=np.float64), float(model.intercept_)

    def _predict(self, model: tuple[np.ndarray, float], arch: Architecture) -> float:
        key = (id(model), arch.decisions)
        value = self._pred_cache.get(key)
        if value is None:
            value = self._pred_cache[key] = float(self.features(arch) @ model[0] + model[1])
        return value

    def _relaxed(self, model: tuple[np.ndarray, float], x: np.ndarray) -> float:
        """A predictor interpolated linearly, coordinate by coordinate, between rounded points."""
        base_x = np.clip(np.round(x), 0, [self._size(g) - 1 for g in range(len(self.groups))])
        base = self._predict(model, self._round(base_x))
        value = base
        for g in range(len(self.groups)):
            frac = float(x[g] - base_x[g])
            if abs(frac) < 1e-12:
                continue
            step = base_x.copy()
            step[g] += 1.0 if frac > 0 else -1.0
            if not 0 <= step[g] <= self._size(g) - 1:
                continue
            value += abs(frac) * (self._predict(model, self._round(step)) - base)
        return value

    def _cost_of(self, ev: Evaluation) -> float | None:
        if self.cost_metric == "auto":
            names = [m for m in COST_METRICS if m in ev.metrics]
            name = names[0] if names else None
        else:
            name = self.cost_metric if self.cost_metric in ev.metrics else None
        if name is None:
            return None
        value = float(ev.metrics[name])
        return value if math.isfinite(value) else None

    # -- one round ------------------------------------------------------------------
    def _plan(self) -> None:
        """Fit both predictors on at most ``n_samples`` evaluations and queue the best feasible candidates."""
        from scipy.optimize import shgo

        ok = sorted((e for e in self.history if e.ok), key=lambda e: -(e.objective or 0.0))[: self.n_samples]
        if len(ok) < 3:
            return
        self.rounds += 1
        self._pred_cache.clear()
        self._acc_model = self._fit(ok, [float(e.objective or 0.0) for e in ok])
        costed = [(e, c) for e in ok if (c := self._cost_of(e)) is not None]
        self._cost_model, self._limit = None, math.inf
        if len(costed) >= 3:
            self._cost_model = self._fit([e for e, _ in costed], [c for _, c in costed])
            if self.max_cost is not None:
                self._limit = float(self.max_cost)
            elif self.cost_quantile is not None:
                sampled = [c for e in self.history if e.ok and (c := self._cost_of(e)) is not None]
                self._limit = float(np.quantile(sampled, self.cost_quantile))
        acc, cost = self._acc_model, self._cost_model
        bounds = [(0.0, float(self._size(g) - 1)) for g in range(len(self.groups))]
        constraints = []
        if cost is not None and math.isfinite(self._limit):
            constraints.append({"type": "ineq", "fun": lambda x: self._limit - self._relaxed(cost, x)})
        # scipy's shgo logs every local minimiser's bounds at INFO on the root logger, whatever
        # its disp option says: silence the root logger for the call (restored afterwards).
        root_level = logging.root.level
        logging.root.setLevel(max(root_level, logging.WARNING))
        try:
            res = shgo(lambda x: -self._relaxed(acc, x), bounds, constraints=constraints or None, n=self.shgo_n,
                       iters=1, sampling_method="simplicial",
                       minimizer_kwargs={"method": "SLSQP", "options": {"maxiter": 25}},
                       options={"local_iter": self.n_confirm})
        finally:
            logging.root.setLevel(root_level)
        starts = [np.atleast_1d(x) for x in (res.xl if getattr(res, "xl", None) is not None else [])]
        if not starts and res.x is not None:
            starts = [np.atleast_1d(res.x)]
        # Also start from the best evaluated architectures: later rounds refine around them.
        found: dict[Architecture, float] = {}
        for arch in [self._round(x) for x in starts] + [e.arch for e in ok[: self.n_confirm]]:
            found.update(self._polish(arch))
        ranked = sorted(found, key=lambda a: -found[a])
        self.queue.extend(ranked[: self.n_confirm])

    def _feasible(self, arch: Architecture) -> bool:
        if self._cost_model is None or not math.isfinite(self._limit):
            return True
        return self._predict(self._cost_model, arch) <= self._limit

    def _polish(self, arch: Architecture, max_moves: int = 20) -> dict[Architecture, float]:
        """Greedy one-decision moves that raise predicted accuracy and keep predicted cost feasible.

        Returns every feasible, not yet asked architecture met on the way with its
        predicted accuracy, so a round can confirm several distinct candidates even
        when every start climbs to the same optimum of the predictor.
        """
        assert self._acc_model is not None
        acc = self._acc_model
        current, score = arch, self._predict(acc, arch)
        met: dict[Architecture, float] = {}
        if not self.was_asked(arch) and arch not in self.queue and self._feasible(arch):
            met[arch] = score
        for _ in range(max_moves):
            moves = [(self._predict(acc, nb), nb) for nb in self.space.neighbours(current) if self._feasible(nb)]
            for s, nb in moves:
                if not self.was_asked(nb) and nb not in self.queue:
                    met[nb] = s
            up = [m for m in moves if m[0] > score]
            if not up:
                break
            score, current = max(up, key=lambda m: m[0])
        return met

    def _ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            if len(self.history) + len(self.pending) + len(out) < self.n_samples:
                out.append(self.sample_new())
                continue
            self.queue = [a for a in self.queue if not self.was_asked(a) and a not in out]
            if not self.queue:
                self._plan()
                self.queue = [a for a in self.queue if not self.was_asked(a) and a not in out]
            if not self.queue:
                if len(self._asked) + len(out) >= self.space.size:
                    break
                out.append(self.sample_new())  # the predictors have nothing new to offer: explore
                continue
            out.append(self.queue.pop(0))
        return out

    # -- state and report ------------------------------------------------------------
    def _state_dict(self) -> dict[str, Any]:
        return {"queue": list(self.queue), "rounds": self.rounds}

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.queue = list(state["queue"])
        self.rounds = int(state["rounds"])

    def report(self) -> dict[str, Any]:
        """The cost constraint used, the rounds run and how the confirmed picks fared."""
        return {
            "rounds": self.rounds,
            "cost_limit": None if not math.isfinite(self._limit) else round(self._limit, 4),
            "max_samples_per_fit": self.n_samples,
        }
