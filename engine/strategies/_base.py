"""The strategy contract: ask/tell with validation and state handled by the base class.

Subclasses implement :meth:`Strategy._ask` and, when they learn, :meth:`Strategy._tell`;
the base class validates arguments, tracks pending queries, keeps the told
history (restored from the journal on resume, never re-implemented per
strategy) and owns the random generator, so that ``state_dict`` always captures
the RNG state and a seed fully determines the sequence of queries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from engine.spaces import Architecture, SearchSpace
from engine.types import DEFAULT_FIDELITY, Evaluation, Query


class Strategy(ABC):
    """Base class of every search strategy.

    Args:
        space: The search space to propose architectures from.
        seed: Seed of the strategy's own random generator (``self.rng``); no
            strategy may use a global random state.

    Attributes:
        name: Registry name, set by :func:`engine.strategies.register`.
        fidelities: Fidelities this strategy asks for; single-fidelity strategies
            use ``("default",)``.
        final_fidelity: The fidelity whose best evaluation is the search result.
        history: Every evaluation told so far, in order, without report-only metrics.
        budget_left: Remaining evaluations per fidelity (``None``: unlimited), kept
            up to date by the search loop; strategies may read it to plan.
        plans_with_budget: Whether the strategy reads ``budget_left``. ``False``
            promises that the first ``n`` queries of a long search are those of a
            search with budget ``n`` (the conformance check ``budget_prefix``
            holds strategies to it), so a benchmark may read one long run at
            every smaller budget.
    """

    name: ClassVar[str] = ""
    # Class attributes that an instance may override when its options decide them (epoch rungs).
    fidelities: tuple[str, ...] = (DEFAULT_FIDELITY,)
    final_fidelity: str = DEFAULT_FIDELITY
    plans_with_budget: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.history: list[Evaluation] = []
        self.budget_left: dict[str, int | None] = {}
        self._pending: Counter[Query] = Counter()
        self._pending_order: list[Query] = []
        self._asked: set[Query] = set()
        self._has_asked = False  # warm_start() is only allowed before the first ask

    # -- the contract ------------------------------------------------------
    def ask(self, n: int = 1) -> list[Query]:
        """Propose up to ``n`` queries.

        Returns:
            Between 1 and ``n`` queries; an empty list means the strategy has
            nothing more to propose (e.g. it has exhausted the space).

        Raises:
            ValueError: if ``n`` is not a positive integer.
            RuntimeError: if the subclass breaks the contract.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"ask(n) needs a positive integer n, got {n!r}")
        raw = list(self._ask(int(n)))
        if len(raw) > n:
            raise RuntimeError(f"{type(self).__name__}._ask({n}) returned {len(raw)} queries")
        queries = [q if isinstance(q, Query) else Query(q) for q in raw]
        for q in queries:
            if not isinstance(q.arch, Architecture) or not self.space.contains(q.arch):
                raise RuntimeError(
                    f"{type(self).__name__} proposed {q.arch!r}, which is not in space {self.space.name!r}"
                )
            if q.fidelity not in self.fidelities:
                raise RuntimeError(
                    f"{type(self).__name__} asked fidelity {q.fidelity!r}; it declares {self.fidelities}"
                )
        self._has_asked = True
        for q in queries:
            self._pending[q] += 1
            self._pending_order.append(q)
            self._asked.add(q)
        return queries

    def tell(self, evaluations: Sequence[Evaluation]) -> None:
        """Report evaluations of pending queries.

        Report-only metrics are dropped before the strategy sees them.

        Raises:
            ValueError: if an evaluation answers no pending query; nothing is told then.
        """
        evaluations = list(evaluations)
        need = Counter(e.query for e in evaluations)
        for q, c in need.items():
            if self._pending[q] < c:
                raise ValueError(
                    f"tell() got an evaluation of {q.arch.string!r} at fidelity {q.fidelity!r}"
                    " that was not asked (or was already told)"
                )
        for q, c in need.items():
            self._pending[q] -= c
            if self._pending[q] == 0:
                del self._pending[q]
            for _ in range(c):
                self._pending_order.remove(q)
        visible = [e.visible() for e in evaluations]
        self.history.extend(visible)
        self._tell(visible)

    def warm_start(self, evaluations: Sequence[Evaluation]) -> None:
        """Tell evaluations made elsewhere (an earlier search) before the first ask.

        They join :attr:`history` as if this strategy had asked them, so
        everything that learns from the history (surrogates, populations,
        policies) learns from them, and :meth:`was_asked` is true for them so
        that they are not proposed again. Subclasses whose own bookkeeping
        expects to have asked what they are told override :meth:`_warm_start`.

        Raises:
            ValueError: if an evaluation is of another space or fidelity, or the
                strategy has already asked; nothing is told then.
        """
        evaluations = list(evaluations)
        if self._has_asked:
            raise ValueError("warm_start() must come before the first ask")
        for ev in evaluations:
            if not self.space.contains(ev.arch):
                raise ValueError(f"warm_start() got {ev.arch.string!r}, which is not in space {self.space.name!r}")
            if ev.fidelity not in self.fidelities:
                raise ValueError(
                    f"warm_start() got an evaluation at fidelity {ev.fidelity!r}; {self.name or type(self).__name__}"
                    f" asks {self.fidelities}"
                )
        visible = [e.visible() for e in evaluations]
        self.history.extend(visible)
        self._asked.update(e.query for e in visible)
        self._warm_start(visible)

    @property
    def pending(self) -> list[Query]:
        """Queries asked but not yet told, in the order they were asked."""
        return list(self._pending_order)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the strategy stands.

        The told history is not included: it lives in the journal and is passed
        back to :meth:`load_state_dict`.
        """
        return {
            "strategy": self.name or type(self).__name__,
            "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "pending": [[q.arch, q.fidelity] for q in self._pending_order],
            "n_told": len(self.history),
            "own": self._state_dict(),
        }

    def load_state_dict(
        self, state: Mapping[str, Any], history: Sequence[Evaluation] = ()
    ) -> None:
        """Restore a state from :meth:`state_dict` together with the told history.

        Raises:
            ValueError: if the state belongs to another strategy or the history
                does not match it.
        """
        expected = self.name or type(self).__name__
        if state.get("strategy") != expected:
            raise ValueError(f"state is for strategy {state.get('strategy')!r}, not {expected!r}")
        if len(history) != state["n_told"]:
            raise ValueError(
                f"state was saved after {state['n_told']} told evaluations, got a history of {len(history)}"
            )
        self.rng.bit_generator.state = state["rng"]
        self.seed = int(state["seed"])
        self._pending_order = [Query(a, f) for a, f in state["pending"]]
        self._pending = Counter(self._pending_order)
        self.history = [e.visible() for e in history]
        # Every asked query is either told or pending, so the set is derived, not stored.
        self._asked = {e.query for e in self.history} | set(self._pending_order)
        self._has_asked = True  # a restored strategy continues; a warm start is already in its history
        self._load_state_dict(state["own"])

    # -- helpers for subclasses --------------------------------------------
    def was_asked(self, arch: Architecture, fidelity: str = DEFAULT_FIDELITY) -> bool:
        """True when ``arch`` was already asked at ``fidelity``."""
        return Query(arch, fidelity) in self._asked

    def sample_new(self, fidelity: str = DEFAULT_FIDELITY, tries: int = 100) -> Architecture:
        """A random architecture not asked before (falls back to any after ``tries``)."""
        arch = self.space.sample(self.rng)
        for _ in range(tries):
            if not self.was_asked(arch, fidelity):
                break
            arch = self.space.sample(self.rng)
        return arch

    def draw_new(
        self, draw: Callable[[], Architecture], tries: int, taken: Collection[Architecture] = ()
    ) -> Architecture:
        """``draw()`` until it gives an architecture neither asked before nor in ``taken``.

        For strategies that sample from a learned distribution (a policy, bandits):
        once it has collapsed onto architectures already evaluated, redrawing is
        futile, so after ``tries`` draws a random new architecture is taken instead.
        """
        for _ in range(tries):
            arch = draw()
            if not self.was_asked(arch) and arch not in taken:
                return arch
        return self.sample_new()

    def best(self, fidelity: str | None = None) -> Evaluation | None:
        """The told evaluation with the highest objective (at ``fidelity`` if given)."""
        ok = [e for e in self.history if e.ok and (fidelity is None or e.fidelity == fidelity)]
        return max(ok, key=lambda e: e.objective or 0.0) if ok else None

    def report(self) -> dict[str, Any]:
        """Strategy-specific results for ``summary.json`` (e.g. a Pareto front).

        The runner merges a non-empty report into the summary under the
        strategy's name, so a strategy whose result is more than one best
        architecture can say so without the runner knowing about it. Computed
        from :attr:`history`, so it is the same after a resume.
        """
        return {}

    # -- what subclasses implement -----------------------------------------
    @abstractmethod
    def _ask(self, n: int) -> Sequence[Query | Architecture]:
        """Propose up to ``n`` queries (architectures mean the default fidelity)."""

    def _tell(self, evaluations: Sequence[Evaluation]) -> None:  # noqa: B027 - optional hook
        """Learn from evaluations (already appended to ``self.history``)."""

    def _warm_start(self, evaluations: Sequence[Evaluation]) -> None:
        """Learn from evaluations this strategy did not ask (already in ``self.history``).

        By default they are told like answers to its own asks.
        """
        self._tell(evaluations)

    def _state_dict(self) -> dict[str, Any]:
        """The subclass's own state: plain values, numpy arrays, architectures."""
        return {}

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`_state_dict` returned."""
