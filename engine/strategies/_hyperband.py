"""Synchronous successive halving and Hyperband over training epochs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from engine.spaces import Architecture, SearchSpace
from engine.strategies._registry import register
from engine.strategies._rungs import RungStrategy, queries, rank_top, score
from engine.types import Evaluation, Query


@register("successive_halving")
class SuccessiveHalving(RungStrategy):
    """Train many configurations briefly, keep the best ``1/eta``, train those ``eta`` times longer, repeat.

    Synchronous successive halving (Jamieson & Talwalkar 2016; Li et al. 2018): a
    bracket starts ``n_initial`` configurations at the lowest rung; when every one of
    them has been measured, the best ``1/eta`` of them go on to the next rung, which
    continues their training rather than starting it over (the oracle keeps the
    checkpoints). The last rung is the full training, the ``default`` fidelity. Brackets
    repeat until the budget ends. A failed or skipped evaluation is never promoted.

    Args:
        space: The search space.
        seed: Seed of the strategy's generator.
        min_epochs: Epochs of the lowest rung.
        max_epochs: The full training (the oracle's ``epochs``; the runner fills it in).
        eta: Halving rate: a rung keeps the best ``1/eta`` and trains them ``eta`` times longer.
        n_initial: Configurations per bracket (``None``: ``eta`` to the number of rungs
            minus one, so that one configuration reaches the full training).
        sampler: ``random``, or a registered single-fidelity strategy that proposes new
            configurations (``smbo``: BOHB-style).
        sampler_options: Options of that strategy.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        min_epochs: int = 1,
        max_epochs: int = 9,
        eta: int = 3,
        n_initial: int | None = None,
        sampler: str = "random",
        sampler_options: Mapping[str, Any] | None = None,
    ) -> None:
        if n_initial is not None and (isinstance(n_initial, bool) or not isinstance(n_initial, int) or n_initial < 1):
            raise ValueError(f"strategy.n_initial must be a positive integer or null, got {n_initial!r}")
        self.n_initial = n_initial
        super().__init__(space, seed, min_epochs, max_epochs, eta, sampler, sampler_options)
        self._bracket = -1  # brackets started so far, minus one
        self._rung = 0  # index into self.rungs of the rung being measured
        self._configs: list[Architecture] = []  # this rung's configurations
        self._next = 0  # how many of them were asked
        self._scores: dict[Architecture, float] = {}  # this rung's results so far
        self._done = False

    # -- brackets ------------------------------------------------------------
    def bracket(self, index: int) -> tuple[int, int]:
        """``(configurations, first rung index)`` of bracket ``index``: one shape, repeated."""
        return (self.n_initial or self.eta ** (len(self.rungs) - 1)), 0

    def _start_bracket(self) -> None:
        self._bracket += 1
        n, first = self.bracket(self._bracket)
        self._rung = first
        self._configs = self.sampler.new(n, self.fidelities[first])
        self._next, self._scores = 0, {}
        if not self._configs:
            self._done = True  # every configuration was tried at this rung

    def _promote(self) -> None:
        keep = max(1, math.floor(len(self._configs) / self.eta))
        top = set(rank_top(self._scores, keep))
        self._rung += 1
        self._configs = [a for a in self._configs if a in top]
        self._next, self._scores = 0, {}

    # -- ask / tell ------------------------------------------------------------
    def _ask(self, n: int) -> Sequence[Query]:
        while not self._done:
            if self._bracket < 0 or not self._configs:
                self._start_bracket()
                continue
            if self._next < len(self._configs):
                batch = self._configs[self._next : self._next + n]
                self._next += len(batch)
                return queries(batch, self.fidelities[self._rung])
            if len(self._scores) < len(self._configs):
                return []  # cannot happen in the synchronous loop: everything asked was told
            if self._rung == len(self.rungs) - 1:
                self._configs = []
            else:
                self._promote()
        return []

    def _tell(self, evaluations: Sequence[Evaluation]) -> None:
        fid = self.fidelities[self._rung] if self._configs else None
        for ev in evaluations:
            if ev.fidelity == fid and ev.arch in self._configs:
                self._scores[ev.arch] = score(ev)
            self.sampler.finish(ev)

    def _state_dict(self) -> dict[str, Any]:
        return {
            "bracket": self._bracket,
            "rung": self._rung,
            "configs": list(self._configs),
            "next": self._next,
            "done": self._done,
            "sampler": self.sampler.state_dict(),
        }

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._bracket, self._rung = int(state["bracket"]), int(state["rung"])
        self._configs, self._next = list(state["configs"]), int(state["next"])
        self._done = bool(state["done"])
        self.sampler.load_state_dict(state["sampler"])
        # The scores of the rung in progress are in the history, which the journal restored.
        self._scores = {}
        self._tell(self.history)

    def report(self) -> dict[str, Any]:
        """The rungs and how many configurations each measured."""
        counts = {f: sum(1 for e in self.history if e.fidelity == f and e.ok) for f in self.fidelities}
        return {"rungs": {f: {"epochs": e, "measured": counts[f]} for f, e in zip(self.fidelities, self.rungs)}}


@register("hyperband")
class Hyperband(SuccessiveHalving):
    """Successive halving over brackets that trade many short trainings for few long ones (Li et al. 2018).

    Bracket ``s`` (from the most aggressive down to plain full training, then again)
    starts ``ceil((s_max + 1) / (s + 1)) * eta**s`` configurations at rung ``s_max - s``,
    so no single guess of how early a training can be judged decides the search.
    ``n_initial`` is not an option: the brackets fix it.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        min_epochs: int = 1,
        max_epochs: int = 9,
        eta: int = 3,
        sampler: str = "random",
        sampler_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(space, seed, min_epochs, max_epochs, eta, None, sampler, sampler_options)

    def bracket(self, index: int) -> tuple[int, int]:
        s_max = len(self.rungs) - 1
        s = s_max - index % (s_max + 1)
        return math.ceil((s_max + 1) / (s + 1)) * self.eta**s, s_max - s
