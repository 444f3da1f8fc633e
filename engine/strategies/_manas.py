"""MANAS: one EXP3 bandit agent per decision, sampling architectures together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import percentileofscore

from engine.spaces import Architecture, SearchSpace
from engine.strategies._base import Strategy
from engine.strategies._registry import register
from engine.types import Evaluation, Status


@register("manas")
class MANAS(Strategy):
    """Multi-agent NAS (Carlucci, Esperança, Singh, Gabillon, Yang, Kaddour & Wang, 2019).

    Every decision of the space is an agent running EXP3 (Auer et al. 2002)
    over its options: it draws its option from ``(1 - gamma) * softmax(w) +
    gamma / K`` and, once the architecture the agents built together is
    evaluated, adds ``eta * r / p`` to the weight of the option it played,
    where ``p`` was that option's probability and ``r`` the shared reward. The
    agents never see each other; the only state is one weight per (decision,
    option), memory O(decisions x options), which is MANAS's point: it scales
    to large spaces where a joint controller would not.

    EXP3 needs rewards in [0, 1]; the objective is mapped there by its
    percentile among all successful evaluations so far (scipy's
    ``percentileofscore``), which needs no knowledge of the objective's scale.
    Agents of decisions that earlier decisions made irrelevant (layers beyond a
    stage's depth) play their forced option and are not updated. A built
    architecture that was already asked is re-drawn (``unique_tries``).

    Args:
        space: The search space.
        seed: Seed of the strategy's generator.
        eta: EXP3 learning rate (step on the log-weight per unit of importance-weighted
            reward); 0.1 and ``gamma`` 0.05 were the best of a small grid on NAS-Bench-201.
        gamma: Share of uniform exploration mixed into every agent's distribution.
        failure_reward: Reward in [0, 1] of a failed evaluation; ``None`` ignores failures.
        unique_tries: Draws to find an architecture not asked before, then a random new one.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        eta: float = 0.1,
        gamma: float = 0.05,
        failure_reward: float | None = 0.0,
        unique_tries: int = 100,
    ) -> None:
        super().__init__(space, seed)
        if not eta > 0:
            raise ValueError(f"strategy.eta must be positive, got {eta!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"strategy.gamma must be in [0, 1], got {gamma!r}")
        if failure_reward is not None and not 0.0 <= failure_reward <= 1.0:
            raise ValueError(f"strategy.failure_reward must be in [0, 1] or null, got {failure_reward!r}")
        if isinstance(unique_tries, bool) or not isinstance(unique_tries, int) or unique_tries < 1:
            raise ValueError(f"strategy.unique_tries must be a positive integer, got {unique_tries!r}")
        self.eta = float(eta)
        self.gamma = float(gamma)
        self.failure_reward = failure_reward
        self.unique_tries = unique_tries
        n_options = max(d.n for d in space.decisions)
        self.log_weights = np.zeros((len(space.decisions), n_options))

    def _probabilities(self, i: int, allowed: np.ndarray) -> np.ndarray:
        """Agent ``i``'s EXP3 distribution over its allowed options (zeros elsewhere)."""
        w = np.where(allowed, self.log_weights[i, : len(allowed)], -np.inf)
        soft = np.exp(w - w.max())
        soft /= soft.sum()
        return (1.0 - self.gamma) * soft + self.gamma * allowed / allowed.sum()

    def _walk(self, arch: Architecture | None = None) -> tuple[list[int], list[float], list[bool]]:
        """Let every agent play (or replay ``arch``): options, their probabilities, whether free to choose."""
        decisions: list[int] = []
        probs: list[float] = []
        free: list[bool] = []
        for i in range(len(self.space.decisions)):
            allowed = self.space.allowed(decisions)
            p = self._probabilities(i, allowed)
            a = int(self.rng.choice(len(p), p=p)) if arch is None else arch.decisions[i]
            decisions.append(a)
            probs.append(float(p[a]))
            free.append(int(allowed.sum()) > 1)
        return decisions, probs, free

    def _ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        for _ in range(n):
            out.append(self.draw_new(lambda: self.space.architecture(self._walk()[0]), self.unique_tries, out))
        return out

    def _reward(self, ev: Evaluation, upto: int) -> float | None:
        if ev.ok and ev.objective is not None:
            # Ranked among the evaluations told up to and including this one, so that a batch told at once
            # rewards what the same batch told in parts does (a budget extension tells a cut batch in two).
            seen = [e.objective for e in self.history[:upto] if e.ok and e.objective is not None]
            return float(percentileofscore(seen, ev.objective, kind="mean")) / 100.0
        if ev.status is Status.FAILED and self.failure_reward is not None:
            return float(self.failure_reward)
        return None

    def _tell(self, evaluations: Sequence[Evaluation]) -> None:
        start = len(self.history) - len(evaluations)  # the base class has appended them already
        for j, ev in enumerate(evaluations):
            r = self._reward(ev, start + j + 1)
            if r is None:
                continue
            decisions, probs, free = self._walk(ev.arch)
            for i, (a, p, f) in enumerate(zip(decisions, probs, free)):
                if f:
                    self.log_weights[i, a] += self.eta * r / p

    def _warm_start(self, evaluations: Sequence[Evaluation]) -> None:
        """EXP3's update with the earlier search's sampling frequencies in place of the policy's probabilities.

        ``r / p`` with this policy's ``p`` would weigh architectures it did not draw by how unlikely
        they are to it; dividing by how often the earlier search chose each option keeps the estimate
        of every option's mean reward, so ``n`` warm evaluations move the weights as ``n`` own ones would.
        """
        upto = len(self.history)
        rewarded = [(ev, r) for ev in evaluations if (r := self._reward(ev, upto)) is not None]
        counts = np.zeros_like(self.log_weights)
        sums = np.zeros_like(self.log_weights)
        for ev, r in rewarded:
            decisions, _, free = self._walk(ev.arch)
            for i, (a, f) in enumerate(zip(decisions, free)):
                if f:
                    counts[i, a] += 1
                    sums[i, a] += r
        n = counts.sum(axis=1, keepdims=True)
        self.log_weights += self.eta * np.divide(sums * n, counts, out=np.zeros_like(sums), where=counts > 0)

    def probabilities(self) -> np.ndarray:
        """Every agent's current distribution when all its options are allowed (rows padded with zeros)."""
        out = np.zeros_like(self.log_weights)
        for i, d in enumerate(self.space.decisions):
            out[i, : d.n] = self._probabilities(i, np.ones(d.n, dtype=bool))
        return out

    def _state_dict(self) -> dict[str, Any]:
        return {"log_weights": self.log_weights.copy()}

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.log_weights = np.array(state["log_weights"], dtype=float)
