"""The values that cross the seam between strategies, the search loop and oracles.

Strategies produce :class:`Query` objects and receive :class:`Evaluation` objects;
oracles turn architectures into evaluations. Nothing here knows how an evaluation
is computed, which is what lets a strategy and an oracle be swapped independently.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from engine.spaces import Architecture

DEFAULT_FIDELITY = "default"


class Status(str, enum.Enum):
    """Outcome of one evaluation."""

    OK = "ok"
    FAILED = "failed"
    """The oracle raised, the training diverged or the result was not finite."""
    SKIPPED = "skipped"
    """Not evaluated because the budget of its fidelity was spent; costs nothing."""


@dataclass(frozen=True)
class Query:
    """A request from a strategy: evaluate ``arch`` at ``fidelity``.

    Attributes:
        arch: The architecture to evaluate.
        fidelity: Name of the oracle to use (``"default"`` unless the strategy is
            multi-fidelity, e.g. ``"cheap"`` / ``"expensive"``).
    """

    arch: Architecture
    fidelity: str = DEFAULT_FIDELITY


@dataclass(frozen=True)
class Evaluation:
    """The result of evaluating one architecture at one fidelity.

    Attributes:
        arch: The evaluated architecture.
        fidelity: The fidelity (oracle name) it was evaluated at.
        objective: The scalar a strategy maximises (``None`` unless ``status`` is OK).
        metrics: Everything else a strategy may look at (params, FLOPs, latency...).
        reported: Metrics kept for the report only (e.g. ``test_acc``). The search
            loop strips them before a strategy is told, so no strategy can select on them.
        cost: Seconds the oracle spent (simulated for tabular oracles).
        status: OK, FAILED or SKIPPED.
        error: The error text of a failed evaluation.
        cached: True when the result was taken from the journal instead of the oracle.
    """

    arch: Architecture
    fidelity: str = DEFAULT_FIDELITY
    objective: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    reported: Mapping[str, float] = field(default_factory=dict)
    cost: float = 0.0
    status: Status = Status.OK
    error: str | None = None
    cached: bool = False

    def __post_init__(self) -> None:
        if self.status is Status.OK and (self.objective is None or not math.isfinite(self.objective)):
            object.__setattr__(self, "status", Status.FAILED)
            object.__setattr__(self, "error", self.error or f"objective is not finite: {self.objective!r}")
            object.__setattr__(self, "objective", None)

    @property
    def ok(self) -> bool:
        """True when the evaluation succeeded and carries a finite objective."""
        return self.status is Status.OK

    @property
    def query(self) -> Query:
        """The query this evaluation answers."""
        return Query(self.arch, self.fidelity)

    def visible(self) -> Evaluation:
        """This evaluation without its report-only metrics: what a strategy may see."""
        return replace(self, reported={}) if self.reported else self

    @classmethod
    def failure(cls, arch: Architecture, fidelity: str, error: str, cost: float = 0.0) -> Evaluation:
        """A failed evaluation carrying ``error``."""
        return cls(arch=arch, fidelity=fidelity, status=Status.FAILED, error=error, cost=cost)


@runtime_checkable
class Oracle(Protocol):
    """Anything that measures architectures.

    Implementations live in the ``oracles`` package (or in a user's code); the
    engine only relies on this method. An oracle should return one evaluation per
    architecture, in order; it may raise, in which case the search loop records a
    failed evaluation for each architecture of the batch.

    An oracle that can only measure some architectures of its space (a table that
    holds part of it) may also define ``covers() -> list[Architecture]``; the runner
    then lets strategies search only those. One that may be called from several
    threads at once (thread-safe, with workers of its own) sets ``concurrent = True``;
    the asynchronous search loop calls any other oracle one call at a time.
    """

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """Evaluate a batch of architectures."""
        ...
