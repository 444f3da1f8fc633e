"""Progressive Neural Architecture Search: grow architectures decision by decision with a beam."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.spaces import Architecture, SearchSpace
from engine.strategies._base import Strategy
from engine.strategies._registry import register
from engine.strategies._surrogate import MLPEnsemble, acquisition, check_options, transform_targets


@register("pnas")
class PNAS(Strategy):
    """Progressive NAS (Liu, Zoph, Neumann, Shlens, Hua, Li, Fei-Fei, Yuille, Huang & Murphy, ECCV 2018).

    PNAS searches from simple to complex: it keeps a beam of the ``beam`` most
    promising partial architectures, expands every member by one more decision
    (the options come from ``space.allowed(prefix)``, so inactive decisions have
    one option), scores all expansions with a surrogate trained on everything
    evaluated so far, keeps the best ``beam`` and evaluates them, then refits the
    surrogate before the next expansion. Here a partial architecture is evaluated
    through a completion: the best of ``n_completions`` random completions of the
    prefix under the same surrogate. The surrogate is an MLP ensemble (the paper
    uses an ensemble too) on prefix features: one one-hot block per decision, all
    zero for decisions not yet taken, plus the prefix length; every evaluated
    architecture teaches it all of its prefixes. When the beam is complete the
    search starts a new round from the empty prefix with the better surrogate.

    Args:
        space: The search space.
        seed: Seed of the strategy's generator.
        n_init: Random architectures evaluated before the first expansion.
        beam: Beam width K.
        n_completions: Random completions scored per beam member.
        acquisition: ``ucb``, ``its`` or ``mean`` (how prefixes and completions are ranked).
        beta: Exploration weight of ``ucb``.
        members: Ensemble size.
        hidden: Hidden layer widths.
        steps: Adam steps per refit.
        batch_size: Minibatch size of the refit.
        target: ``rank`` (normal scores of the objectives' ranks) or ``raw`` regression targets.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        n_init: int = 10,
        beam: int = 5,
        n_completions: int = 50,
        acquisition: str = "ucb",
        beta: float = 0.5,
        members: int = 5,
        hidden: Sequence[int] = (32, 32),
        steps: int = 150,
        batch_size: int = 128,
        target: str = "rank",
    ) -> None:
        super().__init__(space, seed)
        check_options(acquisition, target)
        self.target = target
        for key, value in (("n_init", n_init), ("beam", beam), ("n_completions", n_completions)):
            if value < 1:
                raise ValueError(f"strategy.{key} must be >= 1, got {value}")
        self.n_init = n_init
        self.beam_width = beam
        self.n_completions = n_completions
        self.acquisition = acquisition
        self.beta = beta
        self.model = MLPEnsemble(members=members, hidden=hidden, steps=steps, batch_size=batch_size)
        self._offsets = np.cumsum([0] + [d.n for d in space.decisions])
        self.beam: list[tuple[int, ...]] = [()]
        self.queue: list[Architecture] = []
        self.rounds = 0

    # -- features ---------------------------------------------------------
    def _features(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        n_dec = len(self.space.decisions)
        out = np.zeros((len(prefixes), int(self._offsets[-1]) + 1))
        for r, prefix in enumerate(prefixes):
            for i, d in enumerate(prefix):
                out[r, self._offsets[i] + d] = 1.0
            out[r, -1] = len(prefix) / n_dec
        return out

    def _fit(self) -> bool:
        ok = [e for e in self.history if e.ok]
        if len(ok) < 2:
            return False
        n_dec = len(self.space.decisions)
        prefixes = [e.arch.decisions[:length] for e in ok for length in range(1, n_dec + 1)]
        y = np.repeat(transform_targets(np.array([float(e.objective or 0.0) for e in ok]), self.target), n_dec)
        self.model.fit(self._features(prefixes), y, self.rng)
        return True

    def _score(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        return acquisition(self.model.predict(self._features(prefixes)), self.acquisition, self.rng, self.beta)

    # -- growing ----------------------------------------------------------
    def _complete(self, prefix: Sequence[int]) -> list[int]:
        decisions = list(prefix)
        while len(decisions) < len(self.space.decisions):
            options = np.flatnonzero(self.space.allowed(decisions))
            decisions.append(int(options[self.rng.integers(len(options))]))
        return decisions

    def _expand(self) -> None:
        """Grow the beam by one decision and queue the completions of its best members."""
        n_dec = len(self.space.decisions)
        if not self.beam or len(self.beam[0]) >= n_dec:
            self.beam = [()]
            self.rounds += 1
        children = [
            (*prefix, int(o)) for prefix in self.beam for o in np.flatnonzero(self.space.allowed(prefix))
        ]
        order = np.argsort(-self._score(children), kind="stable")
        self.beam = [children[int(i)] for i in order[: self.beam_width]]
        queued = set(self.queue)
        for prefix in self.beam:
            completions: dict[Architecture, None] = {}  # an insertion-ordered set
            for _ in range(self.n_completions):
                arch = self.space.architecture(self._complete(prefix))
                if not self.was_asked(arch) and arch not in queued:
                    completions.setdefault(arch)
            if not completions:
                continue
            archs = list(completions)
            best = archs[int(np.argmax(self._score([a.decisions for a in archs])))]
            self.queue.append(best)
            queued.add(best)

    def _ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        stuck = 0
        while len(out) < n:
            if len(self.history) + len(self.pending) + len(out) < self.n_init:
                out.append(self.sample_new())
                continue
            while self.queue and (self.was_asked(self.queue[0]) or self.queue[0] in out):
                self.queue.pop(0)
            if self.queue:
                out.append(self.queue.pop(0))
                continue
            if len(self._asked) + len(out) >= self.space.size:
                break
            if stuck > 2 * len(self.space.decisions) or not self._fit():
                out.append(self.sample_new())  # nothing to learn from yet, or the beam is exhausted
                stuck = 0
                continue
            self._expand()
            stuck += not self.queue
        return out

    # -- state ------------------------------------------------------------
    def _state_dict(self) -> dict[str, Any]:
        return {"beam": [tuple(p) for p in self.beam], "queue": list(self.queue), "rounds": self.rounds}

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.beam = [tuple(int(d) for d in p) for p in state["beam"]]
        self.queue = list(state["queue"])
        self.rounds = int(state["rounds"])
