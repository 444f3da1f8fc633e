"""Asynchronous successive halving (ASHA): promotions decided as results arrive."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from engine.spaces import Architecture
from engine.strategies._registry import register
from engine.strategies._rungs import RungStrategy, queries, rank_top, score
from engine.types import Evaluation, Query


@register("asha")
class ASHA(RungStrategy):
    """Successive halving without waiting for a rung to fill (Li et al., MLSys 2020).

    Every ask first looks for a promotion, from the highest rung down: a configuration
    that is among the best ``1/eta`` of everything measured so far at its rung and has
    not gone on yet is trained ``eta`` times longer (continuing its training). Only
    when none qualifies is a new configuration started at the lowest rung. Nothing
    ever waits for the stragglers of a rung, so a batch of ``n`` queries is always
    ``n`` queries and a worker is never idle; the price is that a few early
    configurations are promoted on less evidence than synchronous halving has. A
    failed or skipped evaluation is never promoted. The search runs until its budget ends.

    Options: those of :class:`~engine.strategies._rungs.RungStrategy`.
    """

    def _start(self) -> None:
        self._scores: list[dict[Architecture, float]] = [{} for _ in self.rungs]  # per rung, measured
        self._promoted: list[set[Architecture]] = [set() for _ in self.rungs]  # per rung, sent on

    def _promotion(self, taken: Sequence[Architecture]) -> Query | None:
        """The next promotion, from the highest rung that has one, or ``None``."""
        for k in range(len(self.rungs) - 2, -1, -1):
            done = self._scores[k]
            for arch in rank_top(done, math.floor(len(done) / self.eta)):
                if arch not in self._promoted[k] and arch not in taken:
                    return Query(arch, self.fidelities[k + 1])
        return None

    def _ask(self, n: int) -> Sequence[Query]:
        out: list[Query] = []
        while len(out) < n:
            q = self._promotion([x.arch for x in out])
            if q is not None:
                self._promoted[self.fidelities.index(q.fidelity) - 1].add(q.arch)
                out.append(q)
                continue
            fresh = self.sampler.new(n - len(out), self.fidelities[0], [x.arch for x in out])
            if not fresh:
                break
            out.extend(queries(fresh, self.fidelities[0]))
        return out

    def _tell(self, evaluations: Sequence[Evaluation]) -> None:
        for ev in evaluations:
            if ev.fidelity in self.fidelities:
                self._scores[self.fidelities.index(ev.fidelity)][ev.arch] = score(ev)
            self.sampler.finish(ev)

    def _state_dict(self) -> dict[str, Any]:
        return {"promoted": [sorted(p, key=lambda a: a.string) for p in self._promoted],
                "sampler": self.sampler.state_dict()}

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._promoted = [set(p) for p in state["promoted"]]
        self.sampler.load_state_dict(state["sampler"])
        self._scores = [{} for _ in self.rungs]
        for ev in self.history:  # the rung results are the history the journal restored
            if ev.fidelity in self.fidelities:
                self._scores[self.fidelities.index(ev.fidelity)][ev.arch] = score(ev)

    def report(self) -> dict[str, Any]:
        """The rungs and how many configurations each measured."""
        return {"rungs": {f: {"epochs": e, "measured": sum(1 for s in self._scores[k].values() if math.isfinite(s))}
                          for k, (f, e) in enumerate(zip(self.fidelities, self.rungs))}}
