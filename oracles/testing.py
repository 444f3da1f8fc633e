"""Fault injection: an oracle wrapper that fails, diverges, runs out of memory or goes slow on purpose.

A search that runs for days meets every one of these faults sooner or later; this
wrapper makes them happen on demand, reproducibly, so the engine's promises (a
fault is a failed evaluation with its error text, the search goes on, a killed
search resumes without losing or repeating an evaluation) can be tested on any
real oracle. Which architecture gets which fault is a pure function of the seed
and the architecture string, never of a random stream: a resumed search injects
exactly the faults of an uninterrupted one.

Select it from a config with a ``_partial_`` inner oracle, e.g.::

    _target_: oracles.testing.FaultyOracle
    oracle: {_target_: oracles.tabular.TabularOracle, _partial_: true}
    rate: 0.1
    kinds: [raise, nan_loss, oom]
    delay_seconds: 0.05
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

from engine.spaces import Architecture, SearchSpace
from engine.types import Evaluation, Oracle
from oracles.base import BaseOracle

FAULT_KINDS: tuple[str, ...] = ("raise", "nan_loss", "inf_loss", "oom", "memory", "batch", "short")
"""What :class:`FaultyOracle` can inject.

- ``raise``: the evaluation raises ``RuntimeError`` (a bug or a broken file).
- ``nan_loss`` / ``inf_loss``: the training diverges: objective and loss are NaN / infinite.
- ``oom``: ``torch.OutOfMemoryError`` (CUDA out of memory); ``memory``: ``MemoryError``.
- ``batch``: ``evaluate()`` itself raises for the whole batch (an oracle without per-architecture isolation).
- ``short``: ``evaluate()`` returns one evaluation too few for the batch (a broken oracle).
"""

FAULT_ERRORS: dict[str, str] = {
    "raise": "InjectedFault: injected fault on |",
    "nan_loss": "objective is not finite: nan",
    "inf_loss": "objective is not finite: inf",
    "oom": "OutOfMemoryError: CUDA out of memory (injected)",
    "memory": "MemoryError: injected out of memory",
    "batch": "InjectedFault: injected batch fault",
    "short": "oracle returned 1 evaluations for 2 architectures",
}
"""Fault kind -> a piece of the error text each failed evaluation carries (the search loop's
text for batch-level faults), so tests and users can recognise an injected fault."""


class InjectedFault(RuntimeError):
    """The error raised for the ``raise`` and ``batch`` fault kinds."""


def _unit(seed: int, salt: str, text: str) -> float:
    """A uniform number in [0, 1) fixed by ``seed``, ``salt`` and ``text``."""
    digest = hashlib.blake2b(f"{seed}:{salt}:{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _out_of_memory(message: str) -> BaseException:
    try:
        import torch

        return torch.OutOfMemoryError(message)
    except (ImportError, AttributeError):  # torch is a dependency; keep the wrapper usable without it
        return MemoryError(message)


class FaultyOracle(BaseOracle):
    """Wrap an oracle and inject faults into chosen architectures.

    Args:
        space: The search space (passed by the runner).
        oracle: The real oracle, or a callable building it from ``space=`` (what
            Hydra gives for an inner config with ``_partial_: true``).
        rate: Fraction of architectures that get a fault, chosen by hashing the
            seed and the architecture string.
        kinds: Fault kinds drawn (by the same hash) for those architectures; see
            :data:`FAULT_KINDS`.
        faults: Architecture string -> fault kind, on top of ``rate``.
        transient: Number of attempts of a faulty architecture that fail before
            it succeeds (0: it always fails). Models an OOM that a retry fixes.
        delay_seconds: Real seconds slept per architecture, so a search is slow
            enough to be killed half-way. The reported cost stays the inner
            oracle's, so journals of slow and fast runs are identical.
        trace: File that gets one line ``<pid>\\t<architecture>`` per call of the
            inner oracle, written before the call: the kill/resume harness counts
            repeated evaluations with it.
        seed: Seed of the fault choice; ``None`` means 0.
    """

    def __init__(
        self,
        space: SearchSpace,
        oracle: Oracle | Callable[..., Oracle],
        rate: float = 0.0,
        kinds: Sequence[str] = ("raise",),
        faults: Mapping[str, str] | None = None,
        transient: int = 0,
        delay_seconds: float = 0.0,
        trace: str | os.PathLike[str] | None = None,
        seed: int | None = 0,
    ) -> None:
        super().__init__(space)
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"oracle.rate must be in [0, 1], got {rate!r}")
        kinds = tuple(kinds)
        faults = dict(faults or {})
        bad = sorted({*kinds, *faults.values()} - set(FAULT_KINDS))
        if bad:
            raise ValueError(f"oracle.kinds: unknown fault kind(s) {bad}; known: {list(FAULT_KINDS)}")
        if rate > 0 and not kinds:
            raise ValueError("oracle.kinds is empty but oracle.rate > 0")
        if isinstance(transient, bool) or int(transient) < 0:
            raise ValueError(f"oracle.transient must be a non-negative integer, got {transient!r}")
        if not math.isfinite(delay_seconds) or delay_seconds < 0:
            raise ValueError(f"oracle.delay_seconds must be a non-negative number, got {delay_seconds!r}")
        if callable(getattr(oracle, "evaluate", None)):
            self.inner = cast(Oracle, oracle)
        else:
            self.inner = cast(Callable[..., Oracle], oracle)(space=space)
        self.rate = float(rate)
        self.kinds = kinds
        self.faults = faults
        self.transient = int(transient)
        self.delay_seconds = float(delay_seconds)
        self.trace = Path(trace) if trace is not None else None
        self.seed = 0 if seed is None else int(seed)
        self.attempts: Counter[str] = Counter()
        """Calls per architecture string in this process (faulty ones included)."""

    def prepare(self) -> None:
        """Prepare the wrapped oracle (train or load a supernet) if it has such a step."""
        prepare = getattr(self.inner, "prepare", None)
        if callable(prepare):
            prepare()

    def fault_of(self, arch: Architecture) -> str | None:
        """The fault kind injected into ``arch``, or ``None``."""
        if arch.string in self.faults:
            return self.faults[arch.string]
        if self.rate > 0 and _unit(self.seed, "rate", arch.string) < self.rate:
            return self.kinds[int(_unit(self.seed, "kind", arch.string) * len(self.kinds))]
        return None

    def _active_fault(self, arch: Architecture) -> str | None:
        kind = self.fault_of(arch)
        if kind is not None and self.transient and self.attempts[arch.string] > self.transient:
            return None  # a transient fault: this attempt succeeds
        return kind

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """Evaluate ``archs``, injecting the configured faults."""
        archs = list(archs)
        for a in archs:
            self.attempts[a.string] += 1
        kinds = [self._active_fault(a) for a in archs]
        if "batch" in kinds:
            raise InjectedFault(f"injected batch fault on {archs[kinds.index('batch')].string}")
        out = super().evaluate(archs)
        if "short" in kinds:
            return out[:-1]
        return out

    def _evaluate_one(self, arch: Architecture) -> Evaluation:
        if self.trace is not None:
            with open(self.trace, "a", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()}\t{arch.string}\n")
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        kind = self._active_fault(arch)
        if kind == "raise":
            raise InjectedFault(f"injected fault on {arch.string}")
        if kind == "oom":
            raise _out_of_memory(f"CUDA out of memory (injected) on {arch.string}")
        if kind == "memory":
            raise MemoryError(f"injected out of memory on {arch.string}")
        ev = self.inner.evaluate([arch])[0]
        if kind in ("nan_loss", "inf_loss"):
            bad = math.nan if kind == "nan_loss" else math.inf
            return Evaluation(
                arch=arch, objective=bad, metrics={**dict(ev.metrics), "loss": bad}, cost=ev.cost,
            )
        return ev
