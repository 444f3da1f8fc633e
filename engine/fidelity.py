"""Training epochs as a fidelity: names, rungs, and the view that lets one oracle serve every rung.

A multi-fidelity strategy over training length (successive halving, Hyperband, ASHA) asks
the same architecture at a few epoch counts. Its fidelities are named ``epochs=<n>`` for
the shorter rungs and ``default`` for the full training, so the final rung is the very
fidelity a plain search of the same oracle measures: its results are comparable, share a
store and can warm-start one another.

Every rung is served by one oracle, the run's ``oracle``, that can train to a given number
of epochs (:class:`EpochOracle`), so that a promotion continues a training rather than
starting it over. :class:`EpochView` is what the search loop sees for a rung: an ordinary
oracle whose ``evaluate`` trains to that rung's epochs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from engine.spaces import Architecture
from engine.types import DEFAULT_FIDELITY, Evaluation

__all__ = ["EpochOracle", "EpochView", "epochs_fidelity", "fidelity_epochs", "rung_epochs"]

_NAME = re.compile(r"epochs=([1-9][0-9]*)")


def epochs_fidelity(epochs: int, max_epochs: int) -> str:
    """The fidelity name of training to ``epochs`` of ``max_epochs``: ``default`` for the full training."""
    return DEFAULT_FIDELITY if epochs == max_epochs else f"epochs={int(epochs)}"


def fidelity_epochs(fidelity: str) -> int | None:
    """The epoch count of an ``epochs=<n>`` fidelity, ``None`` for any other name."""
    m = _NAME.fullmatch(fidelity)
    return int(m.group(1)) if m else None


def rung_epochs(min_epochs: int, max_epochs: int, eta: int) -> list[int]:
    """The epochs of successive-halving rungs, from the full training down by factors of ``eta``.

    ``[1, 3, 9, 27]`` for ``(1, 27, 3)``; the lowest rung is at least ``min_epochs``, and
    rungs that rounding makes equal are merged, so ``(1, 10, 3)`` gives ``[1, 3, 10]``.

    Raises:
        ValueError: naming the option when the rungs are not defined.
    """
    for key, v in (("min_epochs", min_epochs), ("max_epochs", max_epochs), ("eta", eta)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"strategy.{key} must be a positive integer, got {v!r}")
    if eta < 2:
        raise ValueError(f"strategy.eta must be at least 2, got {eta}")
    if min_epochs > max_epochs:
        raise ValueError(f"strategy.min_epochs ({min_epochs}) is more than strategy.max_epochs ({max_epochs})")
    # a small tolerance keeps log(27)/log(3) = 3.0000000000000004 from losing a rung
    levels = math.floor(math.log(max_epochs / min_epochs) / math.log(eta) + 1e-9)
    return sorted({max(min_epochs, round(max_epochs / eta**k)) for k in range(levels + 1)})


@runtime_checkable
class EpochOracle(Protocol):
    """An oracle that can train an architecture to a given number of epochs.

    ``epochs`` is its full training length, the one ``evaluate`` trains to; the
    learning-rate schedule is defined for it, so a training stopped at fewer epochs
    and continued later ends exactly where one uninterrupted training would.
    """

    epochs: int

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """Evaluate after the full ``epochs``."""
        ...

    def evaluate_epochs(self, archs: Sequence[Architecture], epochs: int) -> list[Evaluation]:
        """Evaluate after ``epochs`` (continuing a training already started where there is one)."""
        ...


class EpochView:
    """The oracle of one rung: ``evaluate`` trains to ``epochs`` with the shared epoch oracle.

    Args:
        oracle: The oracle that serves every rung.
        epochs: This rung's epochs, fewer than ``oracle.epochs``.

    Raises:
        ValueError: if ``epochs`` is not below the oracle's full training, or the oracle's
            optional ``check_epochs(epochs)`` refuses it (a table without that column).
    """

    def __init__(self, oracle: EpochOracle, epochs: int) -> None:
        if not 1 <= epochs < oracle.epochs:
            raise ValueError(
                f"a rung of {epochs} epochs needs fewer than the oracle's full training of {oracle.epochs} epochs"
            )
        check = getattr(oracle, "check_epochs", None)
        if callable(check):
            check(epochs)
        self.oracle = oracle
        self.epochs = epochs

    @property
    def concurrent(self) -> bool:
        """Whether the shared oracle may be called from several threads at once."""
        return bool(getattr(self.oracle, "concurrent", False))

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """The shared oracle's evaluations after this rung's epochs."""
        return self.oracle.evaluate_epochs(archs, self.epochs)
