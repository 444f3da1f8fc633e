"""Conformance suite for search strategies, shipped so plugin authors can run it too.

Every registered strategy is held to the same contract by ``tests/test_conformance.py``;
a plugin author checks a new strategy with one call::

    from engine.testing import check_strategy
    check_strategy(MyStrategy)                 # raises AssertionError naming what broke

or, for one pytest test per check and space::

    import pytest
    from engine.testing import CHECKS, SPACES

    @pytest.mark.parametrize("space", SPACES)
    @pytest.mark.parametrize("check", sorted(CHECKS))
    def test_my_strategy(check, space):
        CHECKS[check](MyStrategy, space=space)

The checks run on a toy problem (:class:`ToyOracle`) instead of a benchmark table
because a conformance suite has to work for *any* strategy on *any* space, in
seconds: the toy oracle is deterministic, costs microseconds, has structure a
strategy can exploit (additive per-decision utilities plus a few pairwise
interactions), reports ``params``, ``flops`` and ``latency_ms`` for
multi-objective and constrained strategies, and answers every fidelity a
strategy declares (its ``final_fidelity`` truthfully, the others with a noisy,
biased but rank-correlated estimate, like a weight-sharing supernet).

The one requirement on a strategy beyond the :class:`~engine.strategies.Strategy`
contract: it can be built as ``cls(space, seed=s)`` with defaults only.

The checks (keys of :data:`CHECKS`): ``contract`` (ask/tell arguments and results,
rejected calls change nothing), ``failures`` (failed evaluations and crashing
oracle batches are survived), ``budget`` (driven by :class:`~engine.search.Search`,
the budget is spent and never exceeded, no stall on repeats, no empty ask while budget
and space are left), ``budget_prefix``
(unless the strategy declares ``plans_with_budget``, a shorter budget asks a
prefix of a longer one's queries), ``determinism``
(same seed, same queries: in a fresh interpreter with another hash seed, and beside a
second instance with the global generators reseeded), ``state_roundtrip`` (``state_dict`` /
``load_state_dict`` mid-batch, in memory and through :mod:`engine.serialize`),
``resume`` (a search interrupted before or after a snapshot resumes from its
journal exactly), ``extend`` (unless ``plans_with_budget``, a finished search
resumed with a larger budget journals what one run with that budget does) and
``beats_random`` (mean best true objective over several seeds and toy problems
above random search's).

Budgets: a single-fidelity strategy gets ``budget`` evaluations. A multi-fidelity
one gets ``budget`` at its final fidelity and ``3 * budget`` at each other one
(``Budget.per_fidelity``); the search ends when all are spent, so such a strategy
should read ``self.budget_left`` and spend its cheap budget too.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import ttest_rel

from engine import serialize
from engine.fidelity import fidelity_epochs
from engine.journal import Journal
from engine.search import Budget, Search, SearchResult
from engine.spaces import Architecture, SearchSpace, get_space
from engine.spaces._conformance import SPACE_CHECKS, check_space
from engine.strategies import Strategy
from engine.types import DEFAULT_FIDELITY, Evaluation, Oracle, Query, Status

__all__ = [
    "CHECKS",
    "SPACES",
    "SPACE_CHECKS",
    "SPACE_PARAMS",
    "FlakyOracle",
    "ToyOracle",
    "check_beats_random",
    "check_budget",
    "check_contract",
    "check_determinism",
    "check_extend",
    "check_failures",
    "check_resume",
    "check_space",
    "check_state_roundtrip",
    "check_strategy",
    "make_strategy",
    "toy_oracles",
]

SPACES: tuple[str, ...] = ("nb201", "chain", "choices")
"""The spaces every strategy is checked on (built with :data:`SPACE_PARAMS`)."""

SPACE_PARAMS: dict[str, dict[str, Any]] = {
    # Ordinal ints and floats next to categorical strings, 4,320 architectures: large enough that
    # random search does not stumble on the optimum within a conformance budget.
    "choices": {
        "decisions": {
            "depth": [1, 2, 3, 4, 5, 6],
            "width": [8, 16, 32, 64, 128],
            "kernel": [3, 5, 7],
            "act": ["relu", "gelu", "silu", "tanh"],
            "dropout": [0.0, 0.1, 0.2, 0.3],
            "norm": ["batch", "layer", "none"],
        }
    },
}
"""Options for the spaces of :data:`SPACES` that cannot be built with defaults only."""

DEFAULT_SEEDS: tuple[int, ...] = (0, 1)
REPORTED_KEY = "true_objective"
"""Report-only metric of the toy oracle: a strategy must never see it."""

SpaceLike = SearchSpace | str | None


# -- the toy problem ---------------------------------------------------------------------------
class ToyOracle:
    """A deterministic, cheap oracle for any space, with exploitable structure.

    The objective is ``50 + 10 * z`` where ``z`` sums, over the *active* decisions
    of the architecture, a seeded utility per (decision, option), plus a few
    seeded pairwise interaction terms, normalised by the number of decisions.
    Utilities lean slightly towards larger options, so the synthetic costs below
    are in tension with the objective (what multi-objective and constrained
    strategies need).

    ``params`` (millions), ``flops`` (millions) and ``latency_ms`` grow
    monotonically with every decision's option index. A non-final fidelity
    (``noise > 0``) returns the objective minus a size-dependent bias plus seeded
    per-architecture noise: rank-correlated with the truth but not equal to it.
    The true objective is also reported as the report-only metric
    ``true_objective``, which the search loop must keep from the strategy.

    Args:
        space: The space of the architectures.
        seed: Seed of the problem (same seed, same landscape, for every fidelity).
        fidelity: The fidelity name stamped on evaluations.
        noise: Standard deviation of the per-architecture noise; 0 is the truth.
        bias: How much a non-final fidelity underrates large architectures.
        cost: Simulated seconds per evaluation.
        interactions: Number of pairwise interaction terms.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        fidelity: str = DEFAULT_FIDELITY,
        noise: float = 0.0,
        bias: float = 0.0,
        cost: float = 1.0,
        interactions: int = 4,
    ) -> None:
        self.space = space
        self.seed = int(seed)
        self.fidelity = fidelity
        self.noise = float(noise)
        self.bias = float(bias)
        self.cost = float(cost)
        rng = np.random.default_rng([self.seed, 20191])
        n = len(space.decisions)
        self._size = [np.sort(rng.uniform(0.1, 1.0, size=d.n)) * np.linspace(0.0, 1.0, d.n) for d in space.decisions]
        self._util = [
            rng.normal(size=d.n) + 0.4 * np.linspace(-1.0, 1.0, d.n) for d in space.decisions
        ]
        self._pairs: list[tuple[int, int, np.ndarray]] = []
        if n >= 2:
            for _ in range(interactions):
                i, j = (int(x) for x in rng.choice(n, size=2, replace=False))
                self._pairs.append((i, j, rng.normal(scale=1.5, size=(space.decisions[i].n, space.decisions[j].n))))
        self._scale = 1.0 / math.sqrt(max(1, n))
        self._max_size = float(sum(s.max() for s in self._size)) or 1.0
        self._salt = zlib.crc32(fidelity.encode("utf-8"))

    def true_objective(self, arch: Architecture) -> float:
        """The noiseless objective of ``arch`` (what the final fidelity returns)."""
        act = self.space.active(arch.decisions)
        z = sum(float(u[d]) for u, d, a in zip(self._util, arch.decisions, act) if a)
        for i, j, w in self._pairs:
            if act[i] and act[j]:
                z += float(w[arch.decisions[i], arch.decisions[j]])
        return 50.0 + 10.0 * z * self._scale

    def metrics(self, arch: Architecture) -> dict[str, float]:
        """Synthetic ``params`` and ``flops`` (millions) and ``latency_ms``, monotone in every decision."""
        act = self.space.active(arch.decisions)
        size = sum(float(s[d]) for s, d, a in zip(self._size, arch.decisions, act) if a)
        params = 0.2 + 5.0 * size / self._max_size
        flops = 30.0 + 600.0 * size / self._max_size
        latency = 1.0 + 0.02 * flops + 0.05 * sum(act)
        return {"params": params, "flops": flops, "latency_ms": latency}

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """Evaluate a batch (never fails; wrap in :class:`FlakyOracle` for failures)."""
        out = []
        for arch in archs:
            if not self.space.contains(arch):
                raise ValueError(f"{arch!r} is not an architecture of space {self.space.name!r}")
            truth = self.true_objective(arch)
            metrics = self.metrics(arch)
            objective = truth
            if self.noise > 0 or self.bias > 0:
                rng = np.random.default_rng([self.seed, self._salt, *arch.decisions])
                objective = truth - self.bias * (metrics["params"] - 2.7) + self.noise * float(rng.normal())
            out.append(
                Evaluation(
                    arch=arch,
                    fidelity=self.fidelity,
                    objective=objective,
                    metrics={"objective": objective, **metrics},
                    reported={REPORTED_KEY: truth},
                    cost=self.cost,
                )
            )
        return out


class FlakyOracle:
    """Wraps an oracle so that a deterministic share of architectures fails.

    Args:
        inner: The oracle to wrap.
        every: About one architecture in ``every`` fails (chosen by a hash of its string).
        raise_batch: Raise instead of returning failed evaluations when a batch
            contains a failing architecture (the search loop must survive both).
    """

    def __init__(self, inner: Oracle, every: int = 3, raise_batch: bool = False) -> None:
        self.inner = inner
        self.every = every
        self.raise_batch = raise_batch

    def fails(self, arch: Architecture) -> bool:
        """True when ``arch`` is one of the failing architectures."""
        return zlib.crc32(arch.string.encode("utf-8")) % self.every == 0

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """Evaluations of the inner oracle, some replaced by failures."""
        if self.raise_batch and any(self.fails(a) for a in archs):
            raise RuntimeError("toy oracle: simulated crash of a batch")
        evals = self.inner.evaluate(archs)
        return [
            Evaluation.failure(e.arch, e.fidelity, "toy oracle: simulated divergence", e.cost)
            if self.fails(e.arch)
            else e
            for e in evals
        ]


class _CountingOracle:
    """Counts the architectures an oracle was really asked to evaluate."""

    def __init__(self, inner: Oracle) -> None:
        self.inner = inner
        self.calls: list[Architecture] = []

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        self.calls.extend(archs)
        return self.inner.evaluate(archs)


def toy_oracles(
    strategy: Strategy | type[Strategy], space: SearchSpace, seed: int = 0, noise: float = 4.0
) -> dict[str, ToyOracle]:
    """One toy oracle per fidelity the strategy declares.

    The ``final_fidelity`` gets the true objective at cost 1; every other
    fidelity a noisy, size-biased estimate at cost 0.1.
    """
    out = {}
    for fid in strategy.fidelities:
        if fid == strategy.final_fidelity:
            out[fid] = ToyOracle(space, seed=seed, fidelity=fid)
        else:
            out[fid] = ToyOracle(space, seed=seed, fidelity=fid, noise=noise, bias=1.5, cost=0.1)
    return out


# -- helpers ---------------------------------------------------------------------------------
def _space(space: SpaceLike) -> SearchSpace:
    if space is None:
        return get_space("nb201")
    if isinstance(space, str):
        return get_space(space, **SPACE_PARAMS.get(space, {}))
    return space


def _label(cls: type[Strategy], space: SearchSpace, seed: int | None = None) -> str:
    name = getattr(cls, "name", "") or cls.__name__
    return f"strategy {name!r} on space {space.name!r}" + ("" if seed is None else f" (seed {seed})")


def make_strategy(cls: type[Strategy], space: SpaceLike = None, seed: int = 0) -> Strategy:
    """Build ``cls(space, seed=seed)`` with defaults only, as the contract requires."""
    sp = _space(space)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise AssertionError(f"{cls!r} is not a subclass of engine.strategies.Strategy")
    try:
        strategy = cls(sp, seed=seed)
    except Exception as exc:
        raise AssertionError(
            f"{_label(cls, sp)}: cls(space, seed={seed}) must work with defaults only, but raised {exc!r}"
        ) from exc
    if strategy.final_fidelity not in strategy.fidelities:
        raise AssertionError(
            f"{_label(cls, sp)}: final_fidelity {strategy.final_fidelity!r} is not among fidelities"
            f" {strategy.fidelities}"
        )
    return strategy


def _fingerprint(strategy: Strategy) -> tuple[str, int, list[Query]]:
    """Everything observable about a strategy's state, for 'nothing changed' checks."""
    try:
        text = serialize.dumps(strategy.state_dict())
    except TypeError as exc:
        raise AssertionError(
            f"{type(strategy).__name__}.state_dict() holds a value engine.serialize cannot store: {exc}"
        ) from exc
    return text, len(strategy.history), strategy.pending


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence the expected warnings of a logger (failed evaluations in a failure check)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _multi(strategy: Strategy | type[Strategy]) -> bool:
    return tuple(strategy.fidelities) != (strategy.final_fidelity,)


def _budget(strategy: Strategy | type[Strategy], n: int, max_stall: int = 25) -> Budget:
    """``n`` evaluations; multi-fidelity strategies get ``n`` at the final fidelity and 3n at each other.

    A strategy over epoch rungs (successive halving, Hyperband, ASHA) decides itself how its
    evaluations divide among the rungs, so it gets the same total as one budget instead.
    """
    if not _multi(strategy):
        return Budget(evaluations=n, max_stall=max_stall)
    others = [f for f in strategy.fidelities if f != strategy.final_fidelity]
    if all(fidelity_epochs(f) is not None for f in others):
        return Budget(evaluations=n * (1 + 3 * len(others)), max_stall=max_stall)
    per = {f: (n if f == strategy.final_fidelity else 3 * n) for f in strategy.fidelities}
    return Budget(evaluations=None, per_fidelity=per, max_stall=max_stall)


def _search(
    strategy: Strategy,
    space: SearchSpace,
    n: int,
    *,
    problem: int = 0,
    batch_size: int = 1,
    oracles: Mapping[str, Oracle] | None = None,
    journal: Journal | None = None,
    callbacks: Sequence[Any] = (),
) -> SearchResult:
    if oracles is None:
        oracles = toy_oracles(strategy, space, seed=problem)
    search = Search(strategy, dict(oracles), _budget(strategy, n), journal=journal, batch_size=batch_size,
                    callbacks=callbacks)
    return search.run()


def _queries(history: Iterable[Evaluation]) -> list[tuple[str, str]]:
    return [(e.arch.string, e.fidelity) for e in history]


def _first_difference(a: Sequence[Any], b: Sequence[Any]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"first difference at query {i}: {x!r} vs {y!r}"
    return f"lengths differ: {len(a)} vs {len(b)}"


class _Driver:
    """Drives a strategy by hand, the way the search loop does, without a cache.

    The toy oracle is deterministic, so re-evaluating a repeated query gives the
    same result; this keeps round-trip checks independent of the search loop.
    """

    def __init__(self, strategy: Strategy, oracles: Mapping[str, Oracle], total: int) -> None:
        self.strategy = strategy
        self.oracles = oracles
        self.total = total
        self.used: dict[str, int] = {}
        self.log: list[tuple[str, str]] = []

    def _left(self) -> dict[str, int | None]:
        return {f: max(0, self.total - self.used.get(f, 0)) for f in self.strategy.fidelities}

    def ask(self, n: int) -> list[Query]:
        self.strategy.budget_left = self._left()
        qs = self.strategy.ask(n)
        self.log.extend((q.arch.string, q.fidelity) for q in qs)
        return qs

    def evaluate(self, queries: Sequence[Query]) -> list[Evaluation]:
        out = []
        for q in queries:
            ev = self.oracles[q.fidelity].evaluate([q.arch])[0]
            out.append(ev)
            self.used[q.fidelity] = self.used.get(q.fidelity, 0) + 1
        return out

    def step(self, batch: int) -> bool:
        qs = self.ask(batch)
        if not qs:
            return False
        self.strategy.tell(self.evaluate(qs))
        return True

    def run(self, batch: int) -> None:
        """Ask and tell until the final fidelity has used ``total`` evaluations."""
        final = self.strategy.final_fidelity
        for _ in range(20 * self.total):
            if self.used.get(final, 0) >= self.total or not self.step(batch):
                return


# -- the checks ------------------------------------------------------------------------------
def check_contract(cls: type[Strategy], *, space: SpaceLike = None, seeds: Sequence[int] = DEFAULT_SEEDS) -> None:
    """The ask/tell contract.

    ``ask(n)`` returns at most ``n`` queries, each a :class:`Query` of an
    architecture of the space at a declared fidelity; ``ask(0)`` and ``ask(-1)``
    raise ``ValueError``; telling an evaluation that was not asked (or telling
    one twice) raises ``ValueError`` and changes nothing; ``state_dict()`` can be
    stored by :mod:`engine.serialize`; report-only metrics never reach
    ``history``.
    """
    sp = _space(space)
    for seed in seeds:
        label = _label(cls, sp, seed)
        strategy = make_strategy(cls, sp, seed)
        oracles = toy_oracles(strategy, sp, seed=seed)
        for bad in (0, -1):
            before = _fingerprint(strategy)
            try:
                strategy.ask(bad)
            except ValueError:
                pass
            else:
                raise AssertionError(f"{label}: ask({bad}) must raise ValueError")
            if _fingerprint(strategy) != before:
                raise AssertionError(f"{label}: a rejected ask({bad}) changed the strategy's state")
        driver = _Driver(strategy, oracles, total=10_000)
        told: list[Evaluation] = []
        for n in (1, 3, 1, 4, 2):
            try:
                qs = driver.ask(n)
            except (RuntimeError, ValueError) as exc:
                raise AssertionError(f"{label}: ask({n}) broke the contract: {exc}") from exc
            if not isinstance(qs, list):
                raise AssertionError(f"{label}: ask({n}) returned {type(qs).__name__}, expected a list")
            if len(qs) > n:
                raise AssertionError(f"{label}: ask({n}) returned {len(qs)} queries")
            for q in qs:
                if not isinstance(q, Query):
                    raise AssertionError(f"{label}: ask() returned {q!r}, not a Query")
                if not sp.contains(q.arch):
                    raise AssertionError(f"{label}: ask() proposed {q.arch!r}, which is not in space {sp.name!r}")
                if q.fidelity not in strategy.fidelities:
                    raise AssertionError(
                        f"{label}: ask() used fidelity {q.fidelity!r}, not one of {strategy.fidelities}"
                    )
            if not qs:
                break
            evals = driver.evaluate(qs)
            # The un-asked evaluation: an architecture not pending at that fidelity.
            pending = set(strategy.pending)
            stranger = next(
                (a for a in (sp.sample(np.random.default_rng([seed, k])) for k in range(100))
                 if Query(a, strategy.final_fidelity) not in pending),
                None,
            )
            if stranger is not None:
                for bad_batch in ([oracles[strategy.final_fidelity].evaluate([stranger])[0]],
                                  [evals[0], oracles[strategy.final_fidelity].evaluate([stranger])[0]]):
                    before = _fingerprint(strategy)
                    try:
                        strategy.tell(bad_batch)
                    except ValueError:
                        pass
                    else:
                        raise AssertionError(
                            f"{label}: tell() of an evaluation that was not asked must raise ValueError"
                        )
                    if _fingerprint(strategy) != before:
                        raise AssertionError(f"{label}: a rejected tell() changed the strategy's state")
            strategy.tell(evals)
            told.extend(evals)
            before = _fingerprint(strategy)
            try:
                strategy.tell(evals[:1])
            except ValueError:
                pass
            else:
                raise AssertionError(f"{label}: telling the same evaluation twice must raise ValueError")
            if _fingerprint(strategy) != before:
                raise AssertionError(f"{label}: a rejected repeated tell() changed the strategy's state")
        if len(strategy.history) != len(told):
            raise AssertionError(f"{label}: history has {len(strategy.history)} evaluations, {len(told)} were told")
        leaked = [e for e in strategy.history if e.reported]
        if leaked:
            raise AssertionError(f"{label}: report-only metrics reached the strategy: {dict(leaked[0].reported)}")


def check_failures(
    cls: type[Strategy], *, space: SpaceLike = None, seeds: Sequence[int] = DEFAULT_SEEDS, budget: int = 30
) -> None:
    """Failed evaluations are tolerated.

    The strategy is driven by the search loop against an oracle where about one
    architecture in three fails, then against one that raises for whole
    batches, then told a batch where everything failed; it must keep going and
    never crash.
    """
    sp = _space(space)
    for seed in seeds:
        label = _label(cls, sp, seed)
        for raise_batch, batch, every in ((False, 1, 3), (True, 3, 5)):
            strategy = make_strategy(cls, sp, seed)
            flaky = {f: FlakyOracle(o, every=every, raise_batch=raise_batch)
                     for f, o in toy_oracles(strategy, sp, seed=seed).items()}
            try:
                with _quiet("engine.search"):
                    result = _search(strategy, sp, budget, batch_size=batch, oracles=flaky)
            except Exception as exc:
                kind = "crashing batches" if raise_batch else "failed evaluations"
                raise AssertionError(f"{label}: the search crashed on an oracle with {kind}: {exc!r}") from exc
            # About one in three fails: 20 evaluations without a failure would mean the check tested nothing.
            if not raise_batch and result.failures == 0 and result.evaluations >= 20:
                raise AssertionError(f"{label}: expected some failed evaluations in this check, saw none")
        strategy = make_strategy(cls, sp, seed)
        for _ in range(3):
            qs = strategy.ask(4)
            if not qs:
                break
            try:
                strategy.tell([Evaluation.failure(q.arch, q.fidelity, "diverged") for q in qs])
            except Exception as exc:
                raise AssertionError(f"{label}: tell() of failed evaluations raised {exc!r}") from exc


def check_budget(
    cls: type[Strategy], *, space: SpaceLike = None, seeds: Sequence[int] = DEFAULT_SEEDS, budget: int = 30
) -> None:
    """Driven by :class:`engine.search.Search`, the strategy spends exactly its budget.

    The oracles must see at most ``budget`` architectures per fidelity budget,
    never the same one twice at one fidelity (the loop's cache), and the search
    must end on its budget or because the strategy finished, not by stalling on
    re-asked architectures. "Finished" (an empty ask) is accepted only once the final
    fidelity's budget is spent or every architecture was asked there: a strategy that
    quits with budget and space left would end a user's search early without a reason.
    """
    sp = _space(space)
    for seed in seeds:
        for batch in (1, 4):
            label = _label(cls, sp, seed) + f", batch {batch}"
            strategy = make_strategy(cls, sp, seed)
            counting = {f: _CountingOracle(o) for f, o in toy_oracles(strategy, sp, seed=seed).items()}
            b = _budget(strategy, budget)
            search = Search(strategy, dict(counting), b, batch_size=batch)
            result = search.run()
            final = strategy.final_fidelity
            left = search.budget_left().get(final)
            asked = {e.arch for e in result.history if e.fidelity == final}
            if result.stop_reason == "strategy finished" and (left is None or left > 0) and len(asked) < sp.size:
                raise AssertionError(
                    f"{label}: the strategy stopped asking (an empty ask) with {left} evaluations at {final!r}"
                    f" left and {sp.size - len(asked)} architectures never asked there; an empty ask means"
                    " nothing is left to propose, so a search must not end on it early"
                )
            if result.stop_reason == "stalled":
                raise AssertionError(
                    f"{label}: the search stalled: the strategy re-asked only already evaluated architectures"
                    f" for {b.max_stall} batches in a row"
                )
            for fid, oracle in counting.items():
                cap = b.per_fidelity.get(fid, b.evaluations)
                if cap is not None and len(oracle.calls) > cap:
                    raise AssertionError(
                        f"{label}: fidelity {fid!r} was evaluated {len(oracle.calls)} times, budget {cap}"
                    )
                if len(set(oracle.calls)) != len(oracle.calls):
                    raise AssertionError(f"{label}: an architecture was evaluated twice at fidelity {fid!r}")
            if b.evaluations is not None and result.evaluations > b.evaluations:
                raise AssertionError(f"{label}: {result.evaluations} evaluations for a budget of {b.evaluations}")
            if result.stop_reason not in ("evaluations", "per_fidelity", "strategy finished"):
                raise AssertionError(f"{label}: unexpected stop reason {result.stop_reason!r}")
            if result.best is None:
                raise AssertionError(f"{label}: no successful evaluation at the final fidelity")


def check_budget_prefix(
    cls: type[Strategy], *, space: SpaceLike = None, seeds: Sequence[int] = DEFAULT_SEEDS, budget: int = 30
) -> None:
    """A strategy that does not plan with its budget asks the same first queries under any budget.

    Skipped for strategies declaring ``plans_with_budget = True``. Otherwise the
    queries of a search with budget ``budget // 2`` must be the first queries of
    one with ``budget``: that is what lets a benchmark read one long run at
    every smaller budget instead of rerunning it.
    """
    if cls.plans_with_budget:
        return
    sp = _space(space)
    short = budget // 2
    for seed in seeds:
        histories = [_search(make_strategy(cls, sp, seed), sp, n).history for n in (short, budget)]
        # A multi-fidelity search may spend one fidelity's budget before the other's: from the
        # first query skipped for that reason the two searches legitimately tell different things.
        skipped = [i for i, e in enumerate(histories[0]) if e.status is Status.SKIPPED]
        runs = [_queries(histories[0][: skipped[0] if skipped else None]), _queries(histories[1])]
        if runs[0] != runs[1][: len(runs[0])]:
            raise AssertionError(
                f"{_label(cls, sp, seed)}: a search with budget {short} asked differently from the first"
                f" {short} queries of one with budget {budget}; {_first_difference(runs[0], runs[1])}."
                " Declare plans_with_budget = True if the strategy reads budget_left."
            )


def _search_queries(cls: type[Strategy], space: SpaceLike, seed: int, budget: int) -> list[tuple[str, str]]:
    """The queries one search of ``cls`` journals (batches of 3); run in a fresh process by determinism."""
    sp = _space(space)
    return _queries(_search(make_strategy(cls, sp, seed), sp, budget, batch_size=3).history)


_CHILD_HASH_SEED = "20240"
_child: Any = None


def _in_child(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a long-lived spawned interpreter with its own string-hash seed.

    One child serves every call of a session, so the cost of starting Python and importing
    the engine is paid once. It differs from this process in what a strategy must not depend
    on: the hash seed (set iteration order of strings and architectures), numpy's and
    Python's global generators, and the order modules were imported in.
    """
    global _child
    if _child is None:
        import atexit
        import multiprocessing
        import os

        saved = os.environ.get("PYTHONHASHSEED")
        os.environ["PYTHONHASHSEED"] = "20241" if saved == _CHILD_HASH_SEED else _CHILD_HASH_SEED
        try:
            _child = multiprocessing.get_context("spawn").Pool(1)
        finally:
            if saved is None:
                del os.environ["PYTHONHASHSEED"]
            else:
                os.environ["PYTHONHASHSEED"] = saved
        atexit.register(_child.terminate)
    return _child.apply(fn, args)


def _importable(cls: type) -> bool:
    import importlib

    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return False
    try:
        obj: Any = importlib.import_module(cls.__module__)
        for part in cls.__qualname__.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return False
    return obj is cls


def check_determinism(
    cls: type[Strategy], *, space: SpaceLike = None, seeds: Sequence[int] = DEFAULT_SEEDS, budget: int = 30
) -> None:
    """The same seed gives the same queries in another process and beside another instance.

    Three runs per seed must ask the same sequence: a search in this process; the same
    search in a fresh interpreter with another string-hash seed and other global random
    states (what a resumed or distributed search relies on; a strategy that iterates a set
    of architectures fails here); and an instance driven in step with one of another seed,
    with numpy's and Python's global generators reseeded before every ask (a strategy that
    seeds or reads a global generator, or keeps state on its class, fails here).

    A class that a fresh interpreter cannot import by name (defined in ``__main__`` or in a
    function) is checked in this process only, with a warning.
    """
    import random

    sp = _space(space)
    cross = _importable(cls)
    if not cross:
        logging.getLogger(__name__).warning(
            "%s cannot be imported by name in another process (%s.%s): determinism is checked in this"
            " process only", cls.__name__, cls.__module__, cls.__qualname__,
        )
    for seed in seeds:
        label = _label(cls, sp, seed)
        here = _search_queries(cls, sp, seed, budget)
        if cross:
            there = _in_child(_search_queries, cls, space if isinstance(space, str) or space is None else sp,
                              seed, budget)
            if here != there:
                raise AssertionError(
                    f"{label}: the same seed asked different queries in another process;"
                    f" {_first_difference(here, there)}. Iterate sets in a sorted order and use self.rng,"
                    " never a global random state."
                )
        drivers = []
        for s in (seed, seed + 1):
            strategy = make_strategy(cls, sp, s)
            drivers.append(_Driver(strategy, toy_oracles(strategy, sp, seed=s), total=budget))
        saved = np.random.get_state(), random.getstate()  # the caller's global generators are left as found
        try:
            for k in range(20 * budget):
                np.random.seed(k)
                random.seed(k)
                if not any([d.used.get(d.strategy.final_fidelity, 0) < budget and d.step(3) for d in drivers]):
                    break
        finally:
            np.random.set_state(saved[0])
            random.setstate(saved[1])
        alone = make_strategy(cls, sp, seed)
        solo = _Driver(alone, toy_oracles(alone, sp, seed=seed), total=budget)
        solo.run(3)
        if drivers[0].log != solo.log:
            raise AssertionError(
                f"{label}: two instances run side by side asked differently from one run alone;"
                f" {_first_difference(drivers[0].log, solo.log)}. Use self.rng, never a global random state,"
                " and keep no state on the class."
            )


def check_state_roundtrip(
    cls: type[Strategy], *, space: SpaceLike = None, seeds: Sequence[int] = DEFAULT_SEEDS, budget: int = 30
) -> None:
    """``state_dict()`` / ``load_state_dict(state, history=...)`` continue the identical sequence.

    A reference instance runs ``budget`` evaluations. A second one stops half-way
    with queries still pending (asked in a batch, partly told), its state is
    taken and restored into a fresh instance built with another seed, twice:
    once from the in-memory dictionary (which the original then keeps
    mutating, catching states that alias live objects) and once through
    :func:`engine.serialize.dumps` / ``loads``, as the journal stores it. Both
    restored instances must accept the pending evaluations and then ask exactly
    what the reference asked.
    """
    sp = _space(space)
    for seed in seeds:
        label = _label(cls, sp, seed)
        ref = make_strategy(cls, sp, seed)
        oracles = toy_oracles(ref, sp, seed=seed)
        half = max(1, budget // 2)

        def prefix(
            strategy: Strategy, oracles: Mapping[str, Oracle] = oracles, half: int = half
        ) -> tuple[_Driver, list[Evaluation]]:
            d = _Driver(strategy, oracles, total=budget)
            for _ in range(half // 2):
                d.step(2)
            qs = d.ask(3)
            evals = d.evaluate(qs)
            strategy.tell(evals[:1])
            return d, evals[1:]

        ref_driver, ref_rest = prefix(ref)
        ref.tell(ref_rest)
        ref_driver.run(2)
        expected = ref_driver.log

        for how in ("in-memory", "serialize"):
            src = make_strategy(cls, sp, seed)
            src_driver, rest = prefix(src)
            state = src.state_dict()
            if how == "serialize":
                state = serialize.loads(serialize.dumps(state))
            history = list(src.history)
            src.tell(rest)  # the original moves on; a restored copy must not move with it
            for _ in range(3):
                src_driver.step(2)
            dst = make_strategy(cls, sp, seed + 1000)
            try:
                dst.load_state_dict(state, history=history)
            except Exception as exc:
                raise AssertionError(f"{label}: load_state_dict ({how}) raised {exc!r}") from exc
            if [(q.arch.string, q.fidelity) for q in dst.pending] != [(e.arch.string, e.fidelity) for e in rest]:
                raise AssertionError(f"{label}: pending queries were not restored ({how})")
            try:
                dst.tell(rest)
            except ValueError as exc:
                raise AssertionError(
                    f"{label}: the restored strategy ({how}) refused its pending evaluations: {exc}"
                ) from exc
            d = _Driver(dst, oracles, total=budget)
            d.used = _used_at_snapshot(history, rest)
            d.log = expected[: len(history) + len(rest)]
            d.run(2)
            if d.log != expected:
                raise AssertionError(
                    f"{label}: after a state_dict round trip ({how}) the strategy asked a different sequence;"
                    f" {_first_difference(d.log, expected)}"
                )


def _used_at_snapshot(history: Sequence[Evaluation], rest: Sequence[Evaluation]) -> dict[str, int]:
    used: dict[str, int] = {}
    for e in [*history, *rest]:
        used[e.fidelity] = used.get(e.fidelity, 0) + 1
    return used


class _Interrupt(Exception):
    """Raised by a callback to simulate a search killed after a snapshot."""


class _StopAfter:
    def __init__(self, n: int) -> None:
        self.n = n

    def on_evaluations(self, search: Search, evaluations: Sequence[Evaluation]) -> None:
        if len(search.history) >= self.n:
            raise _Interrupt


class _JournalKilledBeforeSnapshot(Journal):
    """A journal whose process 'dies' after the n-th append, before the strategy snapshot."""

    kill_after = 0

    def append(self, evaluations: Iterable[Evaluation], meta: Mapping[str, Any] | None = None) -> int:
        rid = super().append(evaluations, meta)
        if rid >= self.kill_after:
            raise _Interrupt
        return rid


def check_resume(
    cls: type[Strategy], *, space: SpaceLike = None, seeds: Sequence[int] = DEFAULT_SEEDS, budget: int = 30
) -> None:
    """A search interrupted and resumed from its journal ends as an uninterrupted one.

    Two interruptions: right after a strategy snapshot, and after evaluations
    were journaled but before the snapshot (the strategy must re-ask the same
    queries, which are answered from the journal). No architecture may reach
    the oracle twice and the journal must equal the uninterrupted run's.
    """
    sp = _space(space)
    for seed in seeds:
        label = _label(cls, sp, seed)
        ref = make_strategy(cls, sp, seed)
        with tempfile.TemporaryDirectory() as tmp:
            with Journal(Path(tmp) / "ref.sqlite") as journal:
                expected = _queries(_search(ref, sp, budget, problem=seed, batch_size=2, journal=journal).history)
            for how in ("after snapshot", "before snapshot"):
                path = Path(tmp) / f"{how.replace(' ', '_')}.sqlite"
                counting = {f: _CountingOracle(o) for f, o in toy_oracles(ref, sp, seed=seed).items()}
                stop = max(2, len(expected) // 2)
                first = make_strategy(cls, sp, seed)
                if how == "after snapshot":
                    journal = Journal(path)
                    cbs: list[Any] = [_StopAfter(stop)]
                else:
                    journal = _JournalKilledBeforeSnapshot(path)
                    journal.kill_after = stop
                    cbs = []
                try:
                    _search(first, sp, budget, batch_size=2, oracles=counting, journal=journal, callbacks=cbs)
                except _Interrupt:
                    pass
                finally:
                    journal.close()
                second = make_strategy(cls, sp, seed)
                with Journal(path) as journal:
                    try:
                        _search(second, sp, budget, batch_size=2, oracles=counting, journal=journal)
                    except Exception as exc:
                        raise AssertionError(f"{label}: resuming ({how}) raised {exc!r}") from exc
                    got = _queries(e for _, e in journal.evaluations())
                if got != expected:
                    raise AssertionError(
                        f"{label}: a search resumed ({how}) journaled a different sequence than an uninterrupted"
                        f" one; {_first_difference(got, expected)}"
                    )
                for fid, oracle in counting.items():
                    if len(set(oracle.calls)) != len(oracle.calls):
                        raise AssertionError(f"{label}: resuming ({how}) evaluated an architecture twice at {fid!r}")


def check_beats_random(
    cls: type[Strategy],
    *,
    space: SpaceLike = None,
    seeds: Sequence[int] = tuple(range(8)),
    budget: int = 60,
    margin: float = 0.0,
) -> None:
    """Mean over ``seeds`` of the best true objective found within ``budget`` beats random search.

    Each seed is also a different toy problem. Multi-fidelity strategies get
    ``budget`` evaluations at their final fidelity plus ``3 * budget`` at each
    other fidelity; random search gets ``budget`` evaluations of the truth.

    Args:
        margin: How much the strategy's mean must exceed random's (objective units;
            the toy objective's spread across the space is about 10).
    """
    from engine.strategies._random import RandomSearch

    sp = _space(space)
    scores: dict[str, list[float]] = {"strategy": [], "random": []}
    for seed in seeds:
        for key, c in (("strategy", cls), ("random", RandomSearch)):
            strategy = make_strategy(c, sp, seed)
            result = _search(strategy, sp, budget, problem=seed)
            scores[key].append(_best_truth(result.history, sp, seed, strategy.final_fidelity))
    mine, rand = float(np.mean(scores["strategy"])), float(np.mean(scores["random"]))
    if not mine > rand + margin:
        raise AssertionError(
            f"{_label(cls, sp)}: mean best objective {mine:.3f} over {len(seeds)} seeds does not beat random"
            f" search's {rand:.3f} (+{margin}) at {budget} evaluations"
        )


def check_extend(
    cls: type[Strategy], *, space: SpaceLike = None, seeds: Sequence[int] = DEFAULT_SEEDS, budget: int = 30
) -> None:
    """A finished search resumed with a larger budget ends as one run with that budget from the start.

    That is what ``nas-search ... resume=true budget.evaluations=<more>`` promises: the
    journal of the extended run must equal the uninterrupted one's row for row, and no
    architecture reaches the oracle twice. Skipped for strategies that declare
    ``plans_with_budget`` (their plan depends on the budget, so the runs differ by design).
    """
    if cls.plans_with_budget:
        return
    sp = _space(space)
    batch = 2
    first = budget // 2 | 1  # odd: the first search's last batch is cut by its budget, its rest left pending
    for seed in seeds:
        label = _label(cls, sp, seed)
        with tempfile.TemporaryDirectory() as tmp:
            with Journal(Path(tmp) / "ref.sqlite") as journal:
                _search(make_strategy(cls, sp, seed), sp, budget, problem=seed, batch_size=batch, journal=journal)
                expected = _queries(e for _, e in journal.evaluations())
            counting = {f: _CountingOracle(o) for f, o in toy_oracles(cls, sp, seed=seed).items()}
            path = Path(tmp) / "extended.sqlite"
            for n in (first, budget):  # the first search finishes at ``first``; the second continues it
                with Journal(path) as journal:
                    try:
                        _search(make_strategy(cls, sp, seed), sp, n, batch_size=batch, oracles=counting,
                                journal=journal)
                    except Exception as exc:
                        raise AssertionError(f"{label}: extending a finished search from {first} to {budget}"
                                             f" evaluations raised {exc!r}") from exc
            with Journal(path) as journal:
                got = _queries(e for _, e in journal.evaluations())
        if got != expected:
            raise AssertionError(
                f"{label}: a search of {first} evaluations resumed with a budget of {budget} journaled a different"
                f" sequence than one run of {budget}; {_first_difference(got, expected)}."
                " Declare plans_with_budget = True if the strategy reads budget_left."
            )
        for fid, oracle in counting.items():
            if len(set(oracle.calls)) != len(oracle.calls):
                raise AssertionError(f"{label}: extending the budget evaluated an architecture twice at {fid!r}")


WARM_START_ALPHA = 0.05
"""A warm-started search is ``worse`` when a one-sided paired t-test says so at this level."""


def _warm_evaluations(cls: type[Strategy], sp: SearchSpace, seed: int, n: int) -> list[Evaluation]:
    """``n`` random final-fidelity evaluations of toy problem ``seed``: an earlier search's results."""
    rng = np.random.default_rng(10_000 + seed)
    oracle = toy_oracles(cls, sp, seed=seed)[cls.final_fidelity]
    return oracle.evaluate(list({sp.sample(rng): None for _ in range(n)}))


def _best_truth(history: Iterable[Evaluation], sp: SearchSpace, seed: int, fidelity: str) -> float:
    truth = ToyOracle(sp, seed=seed)
    return max((truth.true_objective(e.arch) for e in history if e.ok and e.fidelity == fidelity),
               default=float("-inf"))


def check_warm_start(
    cls: type[Strategy],
    *,
    space: SpaceLike = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    budget: int = 30,
    compare_seeds: Sequence[int] = tuple(range(8)),
    compare_budget: int = 16,
) -> None:
    """A search warm-started with earlier evaluations uses them and never pays for them again.

    For each of ``seeds`` a search is warm-started with ``budget`` random final-fidelity
    evaluations of its toy problem (what ``nas-search warm_start=RUN_DIR`` hands over):
    none of them may reach the oracle again or count against the budget, they must
    open the history, and the search killed part-way must resume to the same journal.
    Then, over ``compare_seeds`` (paired: one toy problem per seed, batches of 4), the
    warm-started search must not end worse (the best true objective it knows) than a
    cold one with the same ``compare_budget``: a one-sided paired t-test that it is
    worse must not reject at :data:`WARM_START_ALPHA`. The toy problem's seed-to-seed
    spread is large, so this catches a warm start that harms the search, not one that
    is merely ignored; ``bench/warm_start.py`` measures how much each strategy gains.
    """
    sp = _space(space)
    final = cls.final_fidelity
    for seed in seeds:
        label = _label(cls, sp, seed)
        warm = _warm_evaluations(cls, sp, seed, budget)
        warm_queries = {e.query for e in warm}
        with tempfile.TemporaryDirectory() as tmp:
            runs: dict[str, list[tuple[str, str]]] = {}
            for how in ("uninterrupted", "killed"):
                counting = {f: _CountingOracle(o) for f, o in toy_oracles(cls, sp, seed=seed).items()}
                path = Path(tmp) / f"{how}.sqlite"
                stops = [_StopAfter(len(warm) + max(1, budget // 3))] if how == "killed" else []
                for stop in [*stops, None]:
                    search = Search(make_strategy(cls, sp, seed), counting, _budget(cls, budget), journal=Journal(path),
                                    batch_size=2, callbacks=[stop] if stop else [], warm_start=warm,
                                    warm_origin=["check_warm_start"])
                    try:
                        result = search.run()
                    except _Interrupt:
                        continue
                    except Exception as exc:
                        raise AssertionError(f"{label}: a warm-started search ({how}) raised {exc!r}") from exc
                    finally:
                        assert search.journal is not None
                        search.journal.close()
                with Journal(path) as journal:
                    runs[how] = _queries(e for _, e in journal.evaluations())
                again = [a for f, o in counting.items() for a in o.calls if Query(a, f) in warm_queries]
                if again:
                    raise AssertionError(f"{label}: a warm-started search ({how}) evaluated {len(again)} of the"
                                         f" warm-start architectures again, e.g. {again[0].string!r}")
            if runs["killed"] != runs["uninterrupted"]:
                raise AssertionError(f"{label}: a warm-started search killed and resumed journaled a different"
                                     f" sequence; {_first_difference(runs['killed'], runs['uninterrupted'])}")
        if result.warm_started != len(warm) or result.history[: len(warm)] != [replace(e, cached=True) for e in warm]:
            raise AssertionError(f"{label}: the warm-start evaluations are not the first {len(warm)} of the history")
        b = _budget(cls, budget)
        spent, cap, where = (
            (result.per_fidelity.get(final, 0), b.per_fidelity[final], f"at {final!r}") if b.per_fidelity
            else (result.evaluations, b.evaluations, "in all")
        )
        if cap is not None and spent > cap:
            raise AssertionError(f"{label}: {spent} evaluations {where} for a budget of {cap}: the warm"
                                 " start was counted against it")
    cold_best: list[float] = []
    warm_best: list[float] = []
    for seed in compare_seeds:
        for given, scores in (((), cold_best), (_warm_evaluations(cls, sp, seed, compare_budget), warm_best)):
            strategy = make_strategy(cls, sp, seed)
            found = Search(strategy, toy_oracles(cls, sp, seed=seed), _budget(cls, compare_budget), batch_size=4,
                           warm_start=given).run()
            scores.append(_best_truth(found.history, sp, seed, final))
    diff = np.asarray(warm_best) - np.asarray(cold_best)
    if len(diff) < 2 or not np.any(diff):
        return
    # Identical differences have no spread: the test is undefined, their sign decides.
    p = (float(diff[0] >= 0) if np.ptp(diff) == 0
         else float(ttest_rel(warm_best, cold_best, alternative="less").pvalue))
    if p < WARM_START_ALPHA:
        raise AssertionError(
            f"{_label(cls, sp)}: warm-started with {compare_budget} evaluations, it ends worse than a cold start"
            f" with the same budget: mean best true objective {np.mean(warm_best):.3f} vs {np.mean(cold_best):.3f}"
            f" over {len(compare_seeds)} seeds (paired t-test, one-sided p = {p:.3g} < {WARM_START_ALPHA})"
        )


CHECKS: dict[str, Callable[..., None]] = {
    "contract": check_contract,
    "failures": check_failures,
    "budget": check_budget,
    "budget_prefix": check_budget_prefix,
    "determinism": check_determinism,
    "state_roundtrip": check_state_roundtrip,
    "resume": check_resume,
    "extend": check_extend,
    "warm_start": check_warm_start,
    "beats_random": check_beats_random,
}
"""Every check by name; each takes ``(cls, *, space=..., seeds=..., ...)`` and raises AssertionError."""


def check_strategy(
    cls: type[Strategy],
    *,
    space: SpaceLike | Sequence[SpaceLike] = SPACES,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    budget: int = 30,
    beat_random_budget: int = 60,
    beat_random_seeds: Sequence[int] = tuple(range(8)),
    skip: Iterable[str] = (),
) -> None:
    """Run every conformance check on ``cls``.

    Args:
        cls: The strategy class; it must be constructible as ``cls(space, seed=s)``.
        space: A space (name or instance) or a sequence of them.
        seeds: Strategy seeds of the contract, budget, determinism and state checks.
        budget: Evaluations per search in those checks.
        beat_random_budget: Evaluations per search in the comparison with random search.
        beat_random_seeds: Seeds (and toy problems) averaged in that comparison.
        skip: Names of checks (keys of :data:`CHECKS`) to leave out.

    Raises:
        AssertionError: naming the strategy, space, seed and what broke.
    """
    spaces = [space] if space is None or isinstance(space, (str, SearchSpace)) else list(space)
    skip = set(skip)
    unknown = skip - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; available: {sorted(CHECKS)}")
    for sp in spaces:
        for name, fn in CHECKS.items():
            if name in skip:
                continue
            if name == "beats_random":
                fn(cls, space=sp, seeds=beat_random_seeds, budget=beat_random_budget)
            elif name == "contract":
                fn(cls, space=sp, seeds=seeds)
            else:
                fn(cls, space=sp, seeds=seeds, budget=budget)

