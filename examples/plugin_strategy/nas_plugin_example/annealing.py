"""Simulated annealing over a nas-engine search space, as a third-party strategy."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.spaces import Architecture, SearchSpace
from engine.strategies import Strategy
from engine.types import Evaluation


class SimulatedAnnealing(Strategy):
    """Simulated annealing (Kirkpatrick, Gelatt & Vecchi, 1983) with mutation moves.

    Starts from the best of ``n_init`` random architectures, proposes mutations of
    the current architecture, and moves to a proposal that is better, or worse
    with probability ``exp(delta / T)``. ``T`` is measured in standard deviations
    of the objectives seen so far, so the same settings work for accuracies in
    percent and for losses near zero; it shrinks by ``cooling`` per evaluation,
    turning exploration into hill climbing as the budget is spent.

    No ``@register`` here: the engine registers the class under its entry-point
    name (``simulated_annealing``) when it loads plugins.

    Args:
        space: The search space.
        seed: Seed of the strategy's own generator (``self.rng``).
        n_init: Random architectures evaluated before annealing.
        temperature: Starting temperature, in standard deviations of the objective.
        cooling: Temperature multiplier per evaluation told, in (0, 1].
        mutations: Decisions changed by one move.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        n_init: int = 10,
        temperature: float = 0.3,
        cooling: float = 0.95,
        mutations: int = 1,
    ) -> None:
        super().__init__(space, seed)
        if isinstance(n_init, bool) or not isinstance(n_init, int) or n_init < 1:
            raise ValueError(f"strategy.n_init must be a positive integer, got {n_init!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"strategy.temperature must be a non-negative number, got {temperature!r}")
        if not (isinstance(cooling, (int, float)) and 0 < cooling <= 1):
            raise ValueError(f"strategy.cooling must be in (0, 1], got {cooling!r}")
        if isinstance(mutations, bool) or not isinstance(mutations, int) or mutations < 1:
            raise ValueError(f"strategy.mutations must be a positive integer, got {mutations!r}")
        self.n_init = n_init
        self.temperature = float(temperature)
        self.cooling = float(cooling)
        self.mutations = mutations
        self.current: Architecture | None = None
        self.current_score = -math.inf

    # -- ask/tell ------------------------------------------------------------------
    def _propose(self, taken: Sequence[Architecture]) -> Architecture:
        """A mutation of the current architecture not asked before (a random one if none is found)."""
        if self.current is not None:
            for _ in range(20):
                cand = self.space.mutate(self.current, self.rng, n=self.mutations)
                if not self.was_asked(cand) and cand not in taken:
                    return cand
        return self.sample_new()

    def _ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        for _ in range(n):
            warm_up = self.current is None or len(self.history) + len(self.pending) + len(out) < self.n_init
            arch = self.sample_new() if warm_up else self._propose(out)
            if self.was_asked(arch) or arch in out:
                break  # the space, or what sampling reaches of it, is exhausted
            out.append(arch)
        return out

    def _spread(self) -> float:
        values = [e.objective for e in self.history if e.ok and e.objective is not None]
        return float(np.std(values)) if len(values) > 1 else 1.0

    def _tell(self, evaluations: Sequence[Evaluation]) -> None:
        for ev in evaluations:
            if not ev.ok or ev.objective is None:
                continue
            if self.current is None:
                if len(self.history) >= self.n_init:
                    best = self.best()
                    if best is not None and best.objective is not None:
                        self.current, self.current_score = best.arch, best.objective
                continue
            delta = ev.objective - self.current_score
            t = self.temperature * self._spread()
            # One draw per evaluation, accepted or not, so the random stream does not depend on outcomes.
            u = self.rng.random()
            if delta >= 0 or (t > 0 and u < math.exp(delta / t)):
                self.current, self.current_score = ev.arch, ev.objective
            self.temperature *= self.cooling

    # -- state ---------------------------------------------------------------------
    def _state_dict(self) -> dict[str, Any]:
        return {"current": self.current, "score": self.current_score, "temperature": self.temperature}

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.current = state["current"]
        self.current_score = float(state["score"])
        self.temperature = float(state["temperature"])
