"""Local search with first improvement and random restarts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.spaces import Architecture, SearchSpace
from engine.strategies._base import Strategy
from engine.strategies._registry import register
from engine.types import Evaluation


@register("local_search")
class LocalSearch(Strategy):
    """Hill climbing over the space's neighbourhood (White, Nolen & Savani, UAI 2021).

    Starts from the best of ``n_init`` random architectures, evaluates the
    neighbours of the incumbent in random order and moves as soon as one is
    better (first improvement, which spends fewer queries than scanning the whole
    neighbourhood). At a local optimum it restarts from a fresh random
    architecture, so the budget is never wasted on a finished climb.

    Args:
        space: The search space.
        seed: Seed of the strategy's generator.
        n_init: Random architectures evaluated before climbing.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, n_init: int = 10) -> None:
        super().__init__(space, seed)
        if n_init < 1:
            raise ValueError(f"strategy.n_init must be >= 1, got {n_init}")
        self.n_init = n_init
        self.incumbent: Architecture | None = None
        self.incumbent_score = float("-inf")
        self.queue: list[Architecture] = []
        self.restart: Architecture | None = None

    def _climb_from(self, arch: Architecture, score: float) -> None:
        self.incumbent, self.incumbent_score = arch, score
        nbs = [nb for nb in self.space.neighbours(arch) if not self.was_asked(nb)]
        order = self.rng.permutation(len(nbs))
        self.queue = [nbs[int(i)] for i in order]

    def _ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            if len(self.history) + len(self.pending) + len(out) < self.n_init:
                out.append(self.sample_new())
            elif self.queue:
                arch = self.queue.pop()
                if not self.was_asked(arch) and arch not in out:
                    out.append(arch)
            else:
                # Local optimum (or still waiting for results): restart from a new point.
                arch = self.sample_new()
                out.append(arch)
                if self.incumbent is not None and self.restart is None:
                    self.restart = arch
        return out

    def _tell(self, evaluations: Sequence[Evaluation]) -> None:
        for ev in evaluations:
            if not ev.ok or ev.objective is None:
                continue
            if ev.arch == self.restart:
                self.restart = None
                self._climb_from(ev.arch, ev.objective)
            elif self.incumbent is None:
                if len(self.history) >= self.n_init:
                    best = self.best()
                    if best is not None and best.objective is not None:
                        self._climb_from(best.arch, best.objective)
            elif ev.objective > self.incumbent_score:
                self._climb_from(ev.arch, ev.objective)

    def _state_dict(self) -> dict[str, Any]:
        return {"incumbent": self.incumbent, "score": self.incumbent_score, "queue": list(self.queue),
                "restart": self.restart}

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.incumbent = state["incumbent"]
        self.incumbent_score = float(state["score"])
        self.queue = list(state["queue"])
        self.restart = state["restart"]
