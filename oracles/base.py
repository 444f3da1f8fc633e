"""The oracle protocol and a base class that turns per-architecture errors into failed evaluations."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence

from engine.spaces import Architecture, SearchSpace
from engine.types import DEFAULT_FIDELITY, Evaluation, Oracle, Status

__all__ = ["BaseOracle", "Evaluation", "Oracle", "Status"]

_log = logging.getLogger(__name__)


class BaseOracle:
    """Convenience base: implement :meth:`_evaluate_one`, get batching and fault isolation.

    One architecture that raises becomes a failed evaluation carrying the error
    text; the rest of the batch is still evaluated. Oracles that gain from real
    batching (a supernet evaluating many sub-networks) override :meth:`evaluate`.

    Args:
        space: The space whose architectures this oracle accepts.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """Evaluate each architecture; errors become failed evaluations."""
        out = []
        for arch in archs:
            start = time.monotonic()
            try:
                if not self.space.contains(arch):
                    raise ValueError(f"{arch.string!r} is not an architecture of space {self.space.name!r}")
                out.append(self._evaluate_one(arch))
            except Exception as exc:
                text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                _log.warning("evaluation of %s failed: %s", arch.string, text)
                out.append(Evaluation.failure(arch, DEFAULT_FIDELITY, text, time.monotonic() - start))
        return out

    def _evaluate_one(self, arch: Architecture) -> Evaluation:
        raise NotImplementedError
