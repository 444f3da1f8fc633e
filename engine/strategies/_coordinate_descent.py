"""Multi-layer coordinate descent under a resource constraint, after NetAdaptV2."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.spaces import Architecture, SearchSpace
from engine.strategies._base import Strategy
from engine.strategies._registry import register
from engine.types import Evaluation

DEFAULT_CONSTRAINT: dict[str, Any] = {"metric": "latency_ms", "max": 20.0}
"""Latency of at most 20 ms, in the metric every torch oracle of this project reports."""

_EPS = 1e-12


def _parse_constraint(constraint: Mapping[str, Any] | None) -> tuple[tuple[str, ...], float] | None:
    if constraint is None:
        return None
    if not isinstance(constraint, Mapping) or set(constraint) != {"metric", "max"}:
        raise ValueError(
            "strategy.constraint must be null or {metric: <name or list of names>, max: <number>},"
            f" got {constraint!r}"
        )
    names = constraint["metric"]
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"strategy.constraint.metric must be a metric name or a list of them, got {names!r}")
    bound = constraint["max"]
    if isinstance(bound, bool) or not isinstance(bound, (int, float)):
        raise ValueError(f"strategy.constraint.max must be a number, got {bound!r}")
    return names, float(bound)


@register("coordinate_descent")
class CoordinateDescent(Strategy):
    """Multi-layer coordinate descent (NetAdaptV2, Yang, Howard, Chen et al., ICCV 2021).

    From a starting architecture, each round proposes ``samples`` architectures
    that change ``changes`` decisions of the incumbent at once (NetAdaptV2's
    multi-layer moves, which see interactions single-coordinate steps miss),
    evaluates them all, and takes one step:

    * while the incumbent violates the constraint (``metric <= max``, any
      non-differentiable metric such as measured latency), NetAdaptV2's own
      criterion: the cheaper proposal with the best ratio of accuracy change
      to cost saved (the least accuracy lost per millisecond);
    * once feasible, the feasible proposal with the best accuracy gain per
      cost: a gain that also saves cost comes first, then the largest ratio
      of accuracy gained to cost added (costs relative to the incumbent's).

    Without a constraint the step is simply the largest accuracy gain. A
    round with no acceptable step counts towards ``patience``; then the
    search restarts from a random architecture, so the budget is never spent
    on a finished descent. Accuracy is the evaluation's objective, cost the
    constraint metric from ``Evaluation.metrics``.

    Args:
        space: The search space.
        seed: Seed of the strategy's generator.
        start: ``"random"``, ``"largest"`` (the last option of every decision:
            the biggest network of a chain space, NetAdaptV2's starting point),
            or an architecture string of the space.
        constraint: ``{metric, max}`` or ``None``. ``metric`` may be a list of
            names: the first one an evaluation reports is used, so one config
            serves a table (``latency_ms_raspi4``) and a measuring oracle
            (``latency_ms``).
        samples: Proposals per round.
        changes: Decisions changed per proposal.
        patience: Rounds without a step before a random restart.
        tries: Re-draws to avoid a proposal that was already asked.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        start: str = "random",
        constraint: Mapping[str, Any] | None = DEFAULT_CONSTRAINT,
        samples: int = 4,
        changes: int = 3,
        patience: int = 2,
        tries: int = 20,
    ) -> None:
        super().__init__(space, seed)
        if start not in ("random", "largest"):
            try:
                space.parse(start)
            except ValueError as exc:
                raise ValueError(f"strategy.start must be 'random', 'largest' or an architecture: {exc}") from None
        for key, value in (("samples", samples), ("changes", changes), ("patience", patience), ("tries", tries)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"strategy.{key} must be a positive integer, got {value!r}")
        self.start = start
        self.constraint = _parse_constraint(constraint)
        self.samples = samples
        self.changes = changes
        self.patience = patience
        self.tries = tries
        # incumbent: (arch, accuracy, cost); a round proposes from it (from nothing: a (re)start).
        self.incumbent: tuple[Architecture, float, float | None] | None = None
        self.round_asked: list[Architecture] = []
        self.round_told: list[tuple[Architecture, float, float | None]] = []
        self.n_round_told = 0
        self.stale = 0
        self.started = False

    # -- measurements ---------------------------------------------------------
    def _cost(self, ev: Evaluation) -> float | None:
        if self.constraint is None:
            return None
        for name in self.constraint[0]:
            if name in ev.metrics:
                return float(ev.metrics[name])
        raise ValueError(
            f"strategy.constraint.metric {list(self.constraint[0])} is not among the metrics the oracle"
            f" reports: {sorted(ev.metrics)}"
        )

    def _feasible(self, cost: float | None) -> bool:
        return self.constraint is None or (cost is not None and cost <= self.constraint[1])

    # -- proposals ------------------------------------------------------------
    def _start_arch(self) -> Architecture:
        if not self.started:
            self.started = True
            if self.start == "largest":
                return self.space.closest([d.n - 1 for d in self.space.decisions])
            if self.start != "random":
                return self.space.parse(self.start)
        return self.sample_new()

    def _propose(self, exclude: list[Architecture]) -> Architecture:
        if self.incumbent is None:
            arch = self._start_arch()
            return arch if arch not in exclude else self.sample_new()
        base = self.incumbent[0]
        arch = base
        for _ in range(self.tries):
            arch = self.space.mutate(base, self.rng, n=self.changes)
            if arch != base and not self.was_asked(arch) and arch not in exclude:
                return arch
        return self.sample_new()

    def _round_size(self) -> int:
        return 1 if self.incumbent is None else self.samples

    def _ask(self, n: int) -> list[Architecture]:
        k = max(1, min(n, self._round_size() - len(self.round_asked)))  # a round waiting for results grows by one
        out: list[Architecture] = []
        for _ in range(k):
            out.append(self._propose(self.round_asked + out))
        self.round_asked.extend(out)
        return out

    # -- steps ----------------------------------------------------------------
    def _tell(self, evaluations: Sequence[Evaluation]) -> None:
        for ev in evaluations:
            self.n_round_told += 1
            if ev.ok and ev.objective is not None:
                self.round_told.append((ev.arch, float(ev.objective), self._cost(ev)))
            if self.n_round_told >= len(self.round_asked) >= self._round_size():
                self._close_round()

    def _warm_start(self, evaluations: Sequence[Evaluation]) -> None:
        """Start from the best feasible earlier evaluation (else the cheapest) instead of ``start``."""
        told = [(ev.arch, float(ev.objective), self._cost(ev)) for ev in evaluations
                if ev.ok and ev.objective is not None]
        if told:
            self.started = True
            self.round_asked, self.round_told, self.n_round_told = [], told, len(told)
            self._close_round()

    def _step_key(self, cand: tuple[Architecture, float, float | None]) -> tuple[float, ...] | None:
        """Sort key of an acceptable step from the incumbent (larger is better), ``None`` if not acceptable."""
        assert self.incumbent is not None
        _, acc0, cost0 = self.incumbent
        _, acc, cost = cand
        d_acc = acc - acc0
        if cost is None or cost0 is None:  # unconstrained: accuracy only
            return (d_acc,) if d_acc > 0 else None
        d_cost = cost - cost0
        if not self._feasible(cost0):  # shrinking, NetAdaptV2's criterion
            return (d_acc / -d_cost,) if d_cost < 0 else None
        if not self._feasible(cost) or d_acc <= 0:
            return None
        if d_cost <= 0:
            return (1.0, d_acc)
        return (0.0, d_acc / (d_cost / max(abs(cost0), _EPS)))

    def _close_round(self) -> None:
        told, self.round_told, self.round_asked, self.n_round_told = self.round_told, [], [], 0
        if self.incumbent is None:
            if told:  # the (re)start: the best feasible, else the cheapest
                feasible = [c for c in told if self._feasible(c[2])]
                self.incumbent = (
                    max(feasible, key=lambda c: c[1]) if feasible
                    else min(told, key=lambda c: (c[2] if c[2] is not None else 0.0, -c[1]))
                )
                self.stale = 0
            return
        keyed = [(k, c) for c in told if (k := self._step_key(c)) is not None]
        if keyed:
            self.incumbent = max(keyed, key=lambda kc: kc[0])[1]
            self.stale = 0
            return
        self.stale += 1
        if self.stale >= self.patience:
            self.incumbent = None  # restart from a random architecture
            self.stale = 0

    # -- results --------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The best architecture that meets the constraint (what a constrained search delivers)."""
        best: tuple[Evaluation, float | None] | None = None
        for ev in self.history:
            if ev.ok and ev.objective is not None:
                cost = self._cost(ev)
                if self._feasible(cost) and (best is None or ev.objective > (best[0].objective or 0.0)):
                    best = (ev, cost)
        out: dict[str, Any] = {
            "constraint": None if self.constraint is None
            else {"metric": list(self.constraint[0]), "max": self.constraint[1]},
            "best_feasible": None,
        }
        if best is not None:
            out["best_feasible"] = {"arch": best[0].arch.string, "objective": best[0].objective, "cost": best[1]}
        return out

    # -- state ----------------------------------------------------------------
    def _state_dict(self) -> dict[str, Any]:
        return {
            "incumbent": None if self.incumbent is None else list(self.incumbent),
            "round_asked": list(self.round_asked),
            "round_told": [list(c) for c in self.round_told],
            "n_round_told": self.n_round_told,
            "stale": self.stale,
            "started": self.started,
        }

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        inc = state["incumbent"]
        self.incumbent = None if inc is None else (inc[0], float(inc[1]), None if inc[2] is None else float(inc[2]))
        self.round_asked = list(state["round_asked"])
        self.round_told = [(a, float(acc), None if c is None else float(c)) for a, acc, c in state["round_told"]]
        self.n_round_told = int(state["n_round_told"])
        self.stale = int(state["stale"])
        self.started = bool(state["started"])
