"""Sequential model-based optimisation with a neural ensemble: BANANAS."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.spaces import Architecture, SearchSpace
from engine.strategies._base import Strategy
from engine.strategies._registry import register
from engine.strategies._surrogate import Encoder, MLPEnsemble, acquisition, check_options, transform_targets
from engine.types import Evaluation


def pick_encoding(space: SearchSpace, encoding: str) -> str:
    """``auto`` means the path encoding where the space has one (cells), else the ordinal one, else one-hot.

    Raises:
        ValueError: for an encoding the space does not provide.
    """
    if encoding == "auto":
        return next((e for e in ("path", "ordinal") if e in space.encodings), "onehot")
    if encoding not in space.encodings:
        raise ValueError(f"encoding {encoding!r} is not provided by space {space.name!r}: use one of"
                         f" {['auto', *space.encodings]}")
    return encoding


@register("smbo")
class SMBO(Strategy):
    """BANANAS-style Bayesian optimisation (White, Neiswanger & Savani, AAAI 2021).

    After ``n_init`` random architectures, every ask refits an ensemble of small
    MLPs on the encodings of all successful evaluations (path encoding for cells,
    the paper's key ingredient), generates candidates by mutating the ``top_k``
    best architectures so far (their whole one-step neighbourhood plus
    ``n_mutations`` two-step mutations each) and ``n_random`` random ones, and
    asks the candidates with the best acquisition: independent Thompson sampling
    (``its``, the paper's choice) or ``ucb``. Mutations keep a search near its best
    architectures, so one that settles in a good basin can stay there; after
    ``widen_after`` evaluations without a new best, every architecture not asked
    yet becomes a candidate (where the space has at most ``widen_limit``), which
    lets the surrogate point anywhere. The ensemble is refit from scratch
    with a fixed number of minibatch steps, so the cost of an ask does not grow
    with the history, and nothing but the RNG needs saving to resume.

    Args:
        space: The search space.
        seed: Seed of the strategy's generator.
        n_init: Random architectures evaluated before the surrogate is used.
        encoding: ``auto`` (path encoding where available), or a name from ``space.encodings``.
        acquisition: ``its``, ``ucb`` or ``mean``.
        beta: Exploration weight of ``ucb``.
        members: Ensemble size.
        hidden: Hidden layer widths of each MLP.
        steps: Adam steps per refit.
        batch_size: Minibatch size of the refit.
        top_k: Best architectures whose mutations become candidates.
        n_mutations: Two-step mutations drawn per top architecture.
        n_random: Random candidates per ask (global exploration).
        target: ``raw`` objectives or their normal ``rank`` scores as regression targets.
        widen_after: Successful evaluations without a new best after which the whole space
            is the candidate set (``None``: never).
        widen_limit: Largest space that is ever scored whole.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        n_init: int = 10,
        encoding: str = "auto",
        acquisition: str = "its",
        beta: float = 1.0,
        members: int = 5,
        hidden: Sequence[int] = (32, 32),
        steps: int = 400,
        batch_size: int = 128,
        top_k: int = 10,
        n_mutations: int = 10,
        n_random: int = 50,
        target: str = "rank",
        widen_after: int | None = 20,
        widen_limit: int = 50_000,
    ) -> None:
        super().__init__(space, seed)
        check_options(acquisition, target)
        if n_init < 1 or top_k < 1 or n_mutations < 0 or n_random < 0:
            raise ValueError(
                f"need n_init >= 1, top_k >= 1, n_mutations >= 0, n_random >= 0; got {n_init}, {top_k},"
                f" {n_mutations}, {n_random}"
            )
        self.target = target
        self.encoding = pick_encoding(space, encoding)
        self.n_init = n_init
        self.acquisition = acquisition
        self.beta = beta
        self.model = MLPEnsemble(members=members, hidden=hidden, steps=steps, batch_size=batch_size)
        self.top_k = top_k
        self.n_mutations = n_mutations
        self.n_random = n_random
        if widen_after is not None and widen_after < 1:
            raise ValueError(f"widen_after must be >= 1 or None, got {widen_after}")
        self.widen_after = widen_after
        self.widen_limit = widen_limit
        self._encode = Encoder(space, self.encoding)
        self._whole: tuple[list[Architecture], dict[Architecture, int], np.ndarray] | None = None

    def _candidates(self, ranked: Sequence[Architecture], exclude: set[Architecture]) -> list[Architecture]:
        cands: dict[Architecture, None] = {}
        for parent in ranked[: self.top_k]:
            for nb in self.space.neighbours(parent):
                cands.setdefault(nb)
            for _ in range(self.n_mutations):
                cands.setdefault(self.space.mutate(parent, self.rng, n=2))
        for _ in range(self.n_random):
            cands.setdefault(self.space.sample(self.rng))
        return [a for a in cands if a not in exclude and not self.was_asked(a)]

    def _stalled(self, ok: Sequence[Evaluation]) -> bool:
        """Whether the last ``widen_after`` successful evaluations brought no new best."""
        if self.widen_after is None or self.space.size > self.widen_limit or len(ok) <= self.widen_after:
            return False
        best = max(range(len(ok)), key=lambda i: (ok[i].objective or 0.0, -i))
        return len(ok) - 1 - best >= self.widen_after

    def _whole_space(self, exclude: set[Architecture]) -> tuple[list[Architecture], np.ndarray]:
        """Every architecture neither asked nor pending, with its encoding (the space encoded once)."""
        if self._whole is None:
            archs = list(self.space.enumerate())
            # straight into one matrix, not through the per-architecture cache (which would hold it twice)
            codes = np.stack([self.space.encode(a, self.encoding) for a in archs])
            self._whole = archs, {a: i for i, a in enumerate(archs)}, codes
        archs, index, codes = self._whole
        free = np.ones(len(archs), dtype=bool)
        for q in self._asked:
            if q.arch in index:
                free[index[q.arch]] = False
        for a in exclude:
            free[index[a]] = False
        idx = np.flatnonzero(free)
        return [archs[int(i)] for i in idx], codes[idx]

    def _ask(self, n: int) -> list[Architecture]:
        ok = [e for e in self.history if e.ok]
        if len(self.history) + len(self.pending) < self.n_init or len(ok) < 2:
            out: list[Architecture] = []
            while len(out) < n:
                arch = self.sample_new()
                if arch in out and len(out) + len(self.history) < self.space.size:
                    continue
                out.append(arch)
            return out
        if self._stalled(ok):
            cands, codes = self._whole_space(set(self.pending_archs))
        else:
            ranked = [e.arch for e in sorted(ok, key=lambda e: -(e.objective or 0.0))]
            cands = self._candidates(ranked, set(self.pending_archs))
            codes = self._encode(cands) if cands else np.zeros((0, 0))
        if not cands:
            if len(self._asked) >= self.space.size:
                return []
            return [self.sample_new()]
        x = self._encode([e.arch for e in ok])
        y = transform_targets(np.array([e.objective for e in ok], dtype=np.float64), self.target)
        self.model.fit(x, y, self.rng)
        score = acquisition(self.model.predict(codes), self.acquisition, self.rng, self.beta)
        order = np.argsort(-score, kind="stable")[:n]
        return [cands[int(i)] for i in order]

    @property
    def pending_archs(self) -> list[Architecture]:
        """Architectures asked and not told yet."""
        return [q.arch for q in self.pending]
