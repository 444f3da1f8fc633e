"""The search loop: ask, evaluate (journal first), tell, snapshot; resumable.

The loop is the only place where strategies and oracles meet. It owns budgets,
the evaluation cache, failure handling and the journal, so that neither a
strategy nor an oracle needs to know about any of them.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
import traceback
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from engine.journal import Journal
from engine.spaces import Architecture
from engine.strategies import Strategy
from engine.types import DEFAULT_FIDELITY, Evaluation, Oracle, Query, Status

_log = logging.getLogger(__name__)


@dataclass
class Budget:
    """When a search stops; ``None`` means no limit on that axis.

    Attributes:
        evaluations: Oracle evaluations over all fidelities (cache hits are free).
        per_fidelity: Oracle evaluations allowed per fidelity name.
        oracle_seconds: Total cost reported by oracles (simulated for tables).
        wall_seconds: Wall-clock seconds of this search, summed across resumes.
        max_stall: Consecutive batches that bring no new evaluation before the
            search gives up (a strategy that only re-asks cached architectures).
    """

    evaluations: int | None = 100
    per_fidelity: dict[str, int] = field(default_factory=dict)
    oracle_seconds: float | None = None
    wall_seconds: float | None = None
    max_stall: int = 1000

    def __post_init__(self) -> None:
        v = self.evaluations
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ValueError(f"budget.evaluations must be a non-negative integer or null, got {v!r}")
        for key in ("oracle_seconds", "wall_seconds"):
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0):
                raise ValueError(f"budget.{key} must be a non-negative number or null, got {v!r}")
        if not isinstance(self.per_fidelity, Mapping):
            raise ValueError(f"budget.per_fidelity must map fidelity names to counts, got {self.per_fidelity!r}")
        for k, v in self.per_fidelity.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"budget.per_fidelity.{k} must be a non-negative integer, got {v!r}")
        v = self.max_stall
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"budget.max_stall must be an integer >= 1, got {v!r}")
        limits = (self.evaluations, self.per_fidelity or None, self.oracle_seconds, self.wall_seconds)
        if all(v is None for v in limits):
            raise ValueError(
                "the budget has no limit: set budget.evaluations, per_fidelity, oracle_seconds or wall_seconds"
            )


@dataclass
class RetryPolicy:
    """Which failed evaluations the loop tries again, and how often.

    A transient fault (CUDA out of memory beside another job, a Ray worker that
    died) should not cost an architecture its place in the search, while a
    deterministic one (a bug, a diverging training) would only fail again; the
    policy names the transient ones by a piece of their error text.

    Attributes:
        attempts: Extra attempts after a matching failure (0: never retry).
        errors: Substrings of the error text (e.g. the exception name
            ``"OutOfMemoryError"``) that make a failure worth retrying.
    """

    attempts: int = 0
    errors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 0:
            raise ValueError(f"retry.attempts must be a non-negative integer, got {self.attempts!r}")
        if isinstance(self.errors, str):
            raise ValueError(f"retry.errors must be a list of error substrings, got the string {self.errors!r}")
        self.errors = tuple(str(x) for x in self.errors)
        if any(not x for x in self.errors):
            raise ValueError("retry.errors must not contain an empty string (it would match every error)")

    def matches(self, ev: Evaluation) -> bool:
        """True when ``ev`` failed with an error this policy retries."""
        return ev.status is Status.FAILED and bool(ev.error) and any(s in (ev.error or "") for s in self.errors)


@dataclass
class SearchResult:
    """What a finished search returns.

    Attributes:
        best: The best successful evaluation at the strategy's final fidelity.
        evaluations: Oracle evaluations made (cache hits excluded), all fidelities.
        per_fidelity: Oracle evaluations per fidelity.
        failures: Failed evaluations.
        oracle_seconds: Total oracle cost.
        wall_seconds: Wall-clock time, summed over resumes.
        history: Every evaluation in journal order, report-only metrics included.
        stop_reason: Why the loop ended.
        retries: Oracle calls repeated under the retry policy (this process only).
        warm_started: Evaluations of earlier searches at the start of ``history``
            (a warm start); ``best`` may be one of them.
        busy_seconds: Seconds that oracle calls ran (this process only). Asynchronous:
            summed over the workers, so divided by ``batch_size`` times the wall time it
            says how busy they were. In rounds a round counts once, however many of its
            evaluations ran side by side.
    """

    best: Evaluation | None
    evaluations: int
    per_fidelity: dict[str, int]
    failures: int
    oracle_seconds: float
    wall_seconds: float
    history: list[Evaluation]
    stop_reason: str
    retries: int = 0
    warm_started: int = 0
    busy_seconds: float = 0.0


class Callback(Protocol):
    """Hooks for trackers, progress bars and reports; each is optional."""

    def on_start(self, search: Search) -> None: ...

    def on_evaluations(self, search: Search, evaluations: Sequence[Evaluation]) -> None: ...

    def on_end(self, search: Search, result: SearchResult) -> None: ...


def _call(callbacks: Sequence[Any], hook: str, *args: Any) -> None:
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)


class Search:
    """Run a strategy against oracles under a budget, journaling everything.

    Args:
        strategy: The ask/tell strategy.
        oracles: One oracle (the ``"default"`` fidelity) or a mapping from
            fidelity name to oracle.
        budget: When to stop.
        journal: Where evaluations and snapshots go; an existing journal with a
            snapshot is resumed. ``None`` keeps everything in memory only.
        batch_size: Queries asked at once, so oracles can evaluate in parallel (with
            ``asynchronous``: evaluations kept running at once).
        callbacks: Objects with optional ``on_start``, ``on_evaluations``, ``on_end``.
        retry: Which failed evaluations are evaluated again before being journaled.
        warm_start: Evaluations of earlier searches told to the strategy before it
            asks (:meth:`Strategy.warm_start`). They are journaled first, marked
            cached, so they count against no budget and are never evaluated again;
            a resumed search finds them in its journal and ignores this argument.
        warm_origin: Where the warm-start evaluations came from, stored in the
            journal's ``warm_start`` meta value with their count.
        asynchronous: Keep ``batch_size`` single evaluations running at once in worker
            threads and tell each result as it arrives, instead of rounds that wait for
            their slowest member. Results then arrive in the order the oracles finish, so
            with more than one worker the search depends on timing and is not reproducible
            evaluation for evaluation. An oracle runs calls concurrently only if its
            ``concurrent`` attribute is true (it is thread-safe and has workers of its own,
            e.g. stand-alone training on ``executor=process`` or ``ray``); other oracles
            are called one at a time.
    """

    def __init__(
        self,
        strategy: Strategy,
        oracles: Oracle | Mapping[str, Oracle],
        budget: Budget,
        journal: Journal | None = None,
        batch_size: int = 1,
        callbacks: Sequence[Any] = (),
        retry: RetryPolicy | None = None,
        warm_start: Sequence[Evaluation] = (),
        warm_origin: Any = None,
        asynchronous: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(asynchronous, bool):
            raise ValueError(f"asynchronous must be true or false, got {asynchronous!r}")
        self.oracles: dict[str, Oracle] = (
            dict(oracles) if isinstance(oracles, Mapping) else {DEFAULT_FIDELITY: oracles}
        )
        missing = [f for f in strategy.fidelities if f not in self.oracles]
        if missing:
            raise ValueError(
                f"strategy {strategy.name!r} asks fidelities {missing} but oracles are given for {sorted(self.oracles)}"
            )
        for fid, oracle in self.oracles.items():
            if not callable(getattr(oracle, "evaluate", None)):
                raise TypeError(f"oracle for fidelity {fid!r} has no evaluate() method")
        self.strategy = strategy
        self.budget = budget
        self.journal = journal
        self.batch_size = batch_size
        self.callbacks = list(callbacks)
        self.retry = retry or RetryPolicy()
        self._retries = 0
        self.history: list[Evaluation] = []
        self._cache: dict[Query, Evaluation] = {}
        self._measured: set[Query] = set()  # final-fidelity queries answered, to stop once the space is exhausted
        self._space_size = strategy.space.size
        self._counts: Counter[str] = Counter()
        self._failures = 0
        self._oracle_seconds = 0.0
        self._wall_before = 0.0
        self._started = 0.0
        self._last_id = 0
        self._replay: dict[Query, list[Evaluation]] = {}
        self.asynchronous = asynchronous
        self._serial = threading.Lock()  # held around calls to oracles that are not thread-safe
        self._busy = 0.0  # seconds oracle calls ran (summed over workers), this process
        self._stall = 0
        self._warm_given = list(warm_start)
        self._warm_origin = warm_origin
        self.n_warm = 0  # evaluations of earlier searches at the start of the history

    # -- bookkeeping --------------------------------------------------------
    def _account(self, ev: Evaluation) -> None:
        self.history.append(ev)
        if ev.status is not Status.SKIPPED:
            self._cache.setdefault(ev.query, ev)
            if ev.fidelity == self.strategy.final_fidelity:
                self._measured.add(ev.query)
        if not ev.cached and ev.status is not Status.SKIPPED:
            self._counts[ev.fidelity] += 1
            self._oracle_seconds += ev.cost
            self._failures += not ev.ok

    @property
    def n_evaluations(self) -> int:
        """Oracle evaluations so far (all fidelities, cache hits excluded)."""
        return sum(self._counts.values())

    @property
    def wall_seconds(self) -> float:
        """Wall-clock seconds so far, summed over resumes."""
        return self._wall_before + (time.monotonic() - self._started if self._started else 0.0)

    def budget_left(self) -> dict[str, int | None]:
        """Remaining oracle evaluations per fidelity (``None``: unlimited)."""
        total = None if self.budget.evaluations is None else self.budget.evaluations - self.n_evaluations
        out: dict[str, int | None] = {}
        for fid in self.oracles:
            cap = self.budget.per_fidelity.get(fid)
            left = None if cap is None else cap - self._counts[fid]
            if total is not None:
                left = total if left is None else min(left, total)
            out[fid] = None if left is None else max(0, left)
        return out

    def _stop_reason(self) -> str | None:
        b = self.budget
        if b.evaluations is not None and self.n_evaluations >= b.evaluations:
            return "evaluations"
        if len(self._measured) >= self._space_size:
            return "space exhausted"  # every architecture measured: asking more could only repeat
        capped = set(b.per_fidelity)
        if (
            capped
            and all(self._counts[f] >= c for f, c in b.per_fidelity.items())
            and (b.evaluations is None or capped >= set(self.strategy.fidelities))
        ):
            return "per_fidelity"
        if b.oracle_seconds is not None and self._oracle_seconds >= b.oracle_seconds:
            return "oracle_seconds"
        if b.wall_seconds is not None and self.wall_seconds >= b.wall_seconds:
            return "wall_seconds"
        return None

    # -- resume ---------------------------------------------------------------
    def _warm(self, evaluations: Sequence[Evaluation]) -> None:
        for ev in evaluations:
            self._account(ev)
        self.strategy.warm_start(evaluations)
        self.n_warm = len(evaluations)

    def _start_warm(self) -> None:
        """Journal the warm-start evaluations with their origin, tell them, and snapshot."""
        warm = [replace(e, cached=True) for e in self._warm_given]
        if self.journal is not None:
            if len(self.journal):
                raise ValueError(f"a warm start can only begin a new search; {self.journal.path} has evaluations")
            meta = {"warm_start": {"evaluations": len(warm), "sources": self._warm_origin}}
            self._last_id = self.journal.append(warm, meta=meta)
        self._warm(warm)
        if self.journal is not None:
            self.journal.save_state({"strategy": self.strategy.state_dict(), "wall_seconds": 0.0}, self._last_id)
        _log.info("warm start: %d evaluations of earlier searches told to %s", len(warm), self.strategy.name)

    def _restore(self) -> bool:
        """Load the journal's history into the loop and the strategy; whether it had anything."""
        assert self.journal is not None
        snap = self.journal.load_state()
        told_upto = 0
        warm_meta = self.journal.get_meta("warm_start")
        if snap is not None:
            state, told_upto = snap
            told = [ev for _, ev in self.journal.evaluations(upto=told_upto)]
            for ev in told:
                self._account(ev)
            self.strategy.load_state_dict(state["strategy"], history=told)
            self._wall_before = float(state.get("wall_seconds", 0.0))
            self.n_warm = int(warm_meta["evaluations"]) if warm_meta else 0
        elif warm_meta:
            # Killed between journaling the warm start and the first snapshot: tell it again from the journal.
            told_upto = int(warm_meta["evaluations"])
            self._warm([ev for _, ev in self.journal.evaluations(upto=told_upto)])
        # Evaluations committed after the last snapshot answer pending queries:
        # they are told from the journal, never evaluated again.
        for rid, ev in self.journal.evaluations(after=told_upto):
            self._replay.setdefault(ev.query, []).append(ev)
            self._last_id = rid
        self._last_id = max(self._last_id, told_upto)
        # Killed before the first snapshot: the strategy starts fresh and, seeded,
        # re-asks the same first batch, which is then answered from the journal.
        resumed = snap is not None or bool(warm_meta) or bool(self._replay)
        if resumed:
            _log.info(
                "resuming from %s: %d evaluations told, %d to replay",
                self.journal.path,
                len(self.history),
                sum(map(len, self._replay.values())),
            )
        return resumed

    # -- the loop -----------------------------------------------------------
    @staticmethod
    def _copy_of(ev: Evaluation) -> Evaluation:
        """``ev`` repeated at no cost (a cache hit or a twin inside a batch)."""
        return Evaluation(
            arch=ev.arch, fidelity=ev.fidelity, objective=ev.objective, metrics=ev.metrics,
            reported=ev.reported, cost=0.0, status=ev.status, error=ev.error, cached=True,
        )

    def _known(self, q: Query) -> tuple[Evaluation, bool] | None:
        """An answer to ``q`` that needs no oracle: replayed from the journal (``True``) or a cache hit."""
        replayed = self._replay.get(q)
        if replayed:
            ev = replayed.pop(0)
            if not replayed:
                del self._replay[q]
            return ev, True
        if q in self._cache:
            return self._copy_of(self._cache[q]), False
        return None

    @staticmethod
    def _skipped(q: Query) -> Evaluation:
        return Evaluation(arch=q.arch, fidelity=q.fidelity, status=Status.SKIPPED,
                          error=f"budget of fidelity {q.fidelity!r} is spent")

    @staticmethod
    def _at(q: Query, ev: Evaluation) -> Evaluation:
        """The oracle's answer ``ev`` filed under the query it answers."""
        return Evaluation(
            arch=q.arch, fidelity=q.fidelity, objective=ev.objective, metrics=dict(ev.metrics),
            reported=dict(ev.reported), cost=ev.cost, status=ev.status, error=ev.error,
        )

    def _evaluate(self, queries: Sequence[Query]) -> tuple[list[Evaluation], set[int]]:
        """Evaluations answering ``queries`` in order, and the indices replayed from the journal."""
        results: dict[int, Evaluation] = {}
        replayed_idx: set[int] = set()
        todo: dict[str, list[int]] = {}
        left = self.budget_left()
        planned: Counter[str] = Counter()
        first_of: dict[Query, int] = {}
        for i, q in enumerate(queries):
            known = self._known(q)
            if known is not None:
                results[i] = known[0]
                if known[1]:
                    replayed_idx.add(i)
            elif q in first_of:
                continue  # duplicate inside the batch: filled in from its twin below
            elif left[q.fidelity] is not None and planned[q.fidelity] >= left[q.fidelity]:  # type: ignore[operator]
                results[i] = self._skipped(q)
            else:
                first_of[q] = i
                planned[q.fidelity] += 1
                todo.setdefault(q.fidelity, []).append(i)
        for fid, idx in todo.items():
            evals, retried = self._measure(fid, [queries[i].arch for i in idx])
            self._retries += retried
            for i, ev in zip(idx, evals):
                results[i] = self._at(queries[i], ev)
        for i, q in enumerate(queries):
            if i not in results:
                results[i] = self._copy_of(results[first_of[q]])
        return [results[i] for i in range(len(queries))], replayed_idx

    def _measure(self, fid: str, archs: list[Architecture]) -> tuple[list[Evaluation], int]:
        """The oracle's evaluations of ``archs`` after the retry policy, and the calls it repeated.

        Touches no state of the loop, so the asynchronous loop runs it in its worker threads.
        """
        evals = self._call_oracle(fid, archs)
        retried = 0
        for _ in range(self.retry.attempts):
            again = [j for j, ev in enumerate(evals) if self.retry.matches(ev)]
            if not again:
                break
            retried += len(again)
            _log.info("retrying %d evaluation(s) at fidelity %r under the retry policy", len(again), fid)
            redo = self._call_oracle(fid, [archs[j] for j in again])
            for j, ev in zip(again, redo):
                spent = evals[j].cost
                evals[j] = Evaluation(
                    arch=ev.arch, fidelity=ev.fidelity, objective=ev.objective, metrics=ev.metrics,
                    reported=ev.reported, cost=spent + ev.cost, status=ev.status, error=ev.error,
                )
        return evals, retried

    def _call_oracle(self, fid: str, archs: list[Architecture]) -> list[Evaluation]:
        """One oracle call; a raising or miscounting oracle gives failed evaluations, never a crash."""
        start = time.monotonic()
        try:
            evals = list(self.oracles[fid].evaluate(archs))
            if len(evals) != len(archs):
                raise RuntimeError(f"oracle returned {len(evals)} evaluations for {len(archs)} architectures")
        except Exception as exc:
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            _log.warning("oracle %r failed on a batch of %d: %s", fid, len(archs), text)
            cost = (time.monotonic() - start) / len(archs)
            evals = [Evaluation.failure(a, fid, text, cost) for a in archs]
        return evals

    def run(self) -> SearchResult:
        """Run until the budget is spent or the strategy has nothing left to ask."""
        resumed = self._restore() if self.journal is not None else False
        if self._warm_given and not resumed:
            self._start_warm()
        self._started = time.monotonic()
        _call(self.callbacks, "on_start", self)
        reason = self._run_async() if self.asynchronous else self._run_batches()
        result = self.result(reason)
        _call(self.callbacks, "on_end", self, result)
        return result

    def _commit(self, evals: list[Evaluation], replayed: set[int]) -> bool:
        """Journal, count and tell ``evals``, then snapshot; whether any of them was newly measured."""
        if self.journal is not None:
            # Committed before the strategy is told; replayed rows are already there.
            new = [e for i, e in enumerate(evals) if i not in replayed]
            if new:
                self._last_id = self.journal.append(new)
        for ev in evals:
            self._account(ev)
        self.strategy.tell(evals)
        if self.journal is not None:
            self.journal.save_state(
                {"strategy": self.strategy.state_dict(), "wall_seconds": self.wall_seconds}, self._last_id
            )
        _call(self.callbacks, "on_evaluations", self, evals)
        return any(not e.cached and e.status is not Status.SKIPPED for e in evals)

    def _next_reason(self, measured: bool) -> str | None:
        self._stall = 0 if measured else self._stall + 1
        return self._stop_reason() or ("stalled" if self._stall >= self.budget.max_stall else None)

    def _run_batches(self) -> str:
        """Synchronous rounds: ask ``batch_size``, evaluate them all, tell them all."""
        reason = self._stop_reason()
        while reason is None:
            self.strategy.budget_left = self.budget_left()
            queries = self.strategy.pending
            if not queries:
                queries = self.strategy.ask(self.batch_size)
                if not queries:
                    return "strategy finished"
            if self.budget.evaluations is not None:
                # A batch is always asked whole and only what the budget allows is evaluated: the rest stays
                # pending in the strategy's snapshot, so a search resumed with a larger budget evaluates it
                # next and asks exactly what one run with that budget would have (a cut ask would not).
                queries = queries[: max(1, self.budget.evaluations - self.n_evaluations)]
            busy = time.monotonic()
            evals, replayed = self._evaluate(queries)
            self._busy += time.monotonic() - busy
            reason = self._next_reason(self._commit(evals, replayed))
        return reason

    def _left_after(self, running: Mapping[Any, Query]) -> dict[str, int | None]:
        """:meth:`budget_left` once the evaluations now running are counted."""
        out = self.budget_left()
        for q in running.values():
            left = out[q.fidelity]
            if left is not None:
                out[q.fidelity] = max(0, left - 1)
        if self.budget.evaluations is not None:  # the total cap applies to every fidelity at once
            room = max(0, self.budget.evaluations - self.n_evaluations - len(running))
            out = {f: room if v is None else min(v, room) for f, v in out.items()}
        return out

    def _measure_one(self, q: Query) -> tuple[Evaluation, int, float, float]:
        """One query measured in a worker thread: its evaluation, calls repeated, seconds spent, end time."""
        start = time.monotonic()
        if getattr(self.oracles[q.fidelity], "concurrent", False):
            evals, retried = self._measure(q.fidelity, [q.arch])
        else:
            with self._serial:  # an oracle that is not thread-safe runs one call at a time
                evals, retried = self._measure(q.fidelity, [q.arch])
        end = time.monotonic()
        return self._at(q, evals[0]), retried, end - start, end

    def _run_async(self) -> str:
        """Keep ``batch_size`` evaluations running; tell each result as it arrives and ask for the free slot.

        Queries asked before a kill and never told (the strategy's ``pending``) are measured first.
        A strategy that has nothing to ask while others run (a synchronous rung that waits to fill)
        is asked again after the next result; it is finished when it asks nothing and nothing runs.
        """
        backlog: list[Query] = list(self.strategy.pending)
        running: dict[cf.Future[tuple[Evaluation, int, float, float]], Query] = {}
        twins: Counter[Query] = Counter()
        reason = self._stop_reason()
        pool = cf.ThreadPoolExecutor(self.batch_size, thread_name_prefix="nas-search")
        try:
            while True:
                ready: list[Evaluation] = []
                replayed: set[int] = set()
                while reason is None and len(running) < self.batch_size:
                    left = self._left_after(running)
                    if not backlog:
                        if ready or all(v == 0 for v in left.values()):
                            break  # tell what is known before asking again; or wait for a slot in the budget
                        self.strategy.budget_left = left
                        backlog = self.strategy.ask(self.batch_size - len(running))
                        if not backlog:
                            break
                    q = backlog.pop(0)
                    known = self._known(q)
                    if known is not None:
                        if known[1]:
                            replayed.add(len(ready))
                        ready.append(known[0])
                    elif q in running.values():
                        twins[q] += 1  # the same query twice: answered by the running one
                    elif left[q.fidelity] == 0:
                        ready.append(self._skipped(q))
                    else:
                        running[pool.submit(self._measure_one, q)] = q
                if not ready:
                    if not running:
                        return reason or "strategy finished"
                    done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                    for fut in sorted(done, key=lambda f: f.result()[3]):  # told in the order they finished
                        q = running.pop(fut)
                        ev, retried, seconds, _ = fut.result()
                        self._retries += retried
                        self._busy += seconds
                        ready.append(ev)
                        ready.extend(self._copy_of(ev) for _ in range(twins.pop(q, 0)))
                measured = self._commit(ready, replayed)
                reason = reason or self._next_reason(measured)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def result(self, stop_reason: str = "") -> SearchResult:
        """The result so far."""
        final = self.strategy.final_fidelity
        # Cache hits repeat a value already in the history; warm-start rows are results of earlier searches.
        ok = [e for i, e in enumerate(self.history)
              if e.ok and e.fidelity == final and (i < self.n_warm or not e.cached)]
        best = max(ok, key=lambda e: e.objective or 0.0) if ok else None
        return SearchResult(
            best=best,
            evaluations=self.n_evaluations,
            per_fidelity=dict(self._counts),
            failures=self._failures,
            oracle_seconds=self._oracle_seconds,
            wall_seconds=self.wall_seconds,
            history=list(self.history),
            stop_reason=stop_reason,
            retries=self._retries,
            warm_started=self.n_warm,
            busy_seconds=self._busy,
        )
