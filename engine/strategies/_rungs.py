"""What successive halving, Hyperband and ASHA share: epoch rungs and the sampler of new configurations.

Not a strategy itself. The rungs are training lengths (:func:`engine.fidelity.rung_epochs`);
the last is the ``default`` fidelity, the oracle's full training, so the result of a rung
search is measured exactly like the result of a plain search with the same oracle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.fidelity import epochs_fidelity, rung_epochs
from engine.spaces import Architecture, SearchSpace
from engine.strategies._base import Strategy
from engine.types import DEFAULT_FIDELITY, Evaluation, Query


def setup_rungs(min_epochs: int, max_epochs: int, eta: int) -> tuple[list[int], tuple[str, ...]]:
    """The rung epochs and their fidelities, lowest rung first and ``default`` last.

    Raises:
        ValueError: naming the options when they give fewer than two rungs.
    """
    rungs = rung_epochs(min_epochs, max_epochs, eta)
    if len(rungs) < 2:
        raise ValueError(
            f"strategy.min_epochs={min_epochs}, max_epochs={max_epochs} and eta={eta} give a single rung: lower"
            " min_epochs or eta so that some trainings can be stopped early"
        )
    return rungs, tuple(epochs_fidelity(e, max_epochs) for e in rungs)


def score(ev: Evaluation) -> float:
    """What a rung ranks by: the objective, or minus infinity for a failed or skipped evaluation."""
    return float(ev.objective) if ev.ok and ev.objective is not None else float("-inf")


class RungSampler:
    """Where new configurations come from: uniform sampling, or a registered single-fidelity strategy.

    With a strategy (``smbo`` makes it BOHB-style, Falkner et al. 2018), each configuration
    it proposed is told back with its first measurement, at the rung it started on: the
    one rung that every configuration of a bracket reaches, so the model compares like
    with like and learns as soon as a result arrives, which ASHA needs (a configuration's
    fate there is never final). BOHB proper refits on the highest rung with enough results.

    Args:
        owner: The rung strategy (its space, seed and generator).
        name: ``random`` or a registered strategy name.
        options: Options of that strategy.
    """

    def __init__(self, owner: Strategy, name: str, options: Mapping[str, Any] | None = None) -> None:
        from engine.strategies._registry import create_strategy, get_strategy

        self.owner = owner
        self.name = name
        self.inner: Strategy | None = None
        if name == "random":
            if options:
                raise ValueError(f"strategy.sampler_options {dict(options)} have no effect with sampler=random")
            return
        cls = get_strategy(name)
        if tuple(cls.fidelities) != (DEFAULT_FIDELITY,):
            raise ValueError(f"strategy.sampler={name!r} is multi-fidelity; the sampler must be a single-fidelity one")
        self.inner = create_strategy(name, owner.space, seed=owner.seed, **dict(options or {}))
        self.told: list[dict[str, Any]] = []  # what was told to the inner strategy, in order (for its resume)

    def new(self, n: int, fidelity: str, taken: Sequence[Architecture] = ()) -> list[Architecture]:
        """Up to ``n`` configurations not yet asked at ``fidelity`` (fewer once the space is exhausted)."""
        out: list[Architecture] = []
        if self.inner is not None:
            for q in self.inner.ask(n):
                if not self.owner.was_asked(q.arch, fidelity) and q.arch not in taken and q.arch not in out:
                    out.append(q.arch)
                else:  # the inner strategy repeated itself: it learns that the repeat is worth nothing new
                    self.finish(Evaluation.failure(q.arch, DEFAULT_FIDELITY, "already searched"))
            return out
        for _ in range(n):
            arch = self.owner.sample_new(fidelity)
            if self.owner.was_asked(arch, fidelity) or arch in taken or arch in out:
                break
            out.append(arch)
        return out

    def finish(self, ev: Evaluation) -> None:
        """Tell the inner strategy the first result of a configuration it proposed (no-op otherwise)."""
        if self.inner is None or not any(q.arch == ev.arch for q in self.inner.pending):
            return
        self.inner.tell([self._keep(ev)])

    def warm_start(self, evaluations: Sequence[Evaluation]) -> None:
        """Hand an earlier search's full-training results to the inner strategy (no-op for random)."""
        if self.inner is not None:
            self.inner.warm_start([self._keep(e) for e in evaluations if e.fidelity == DEFAULT_FIDELITY])

    def _keep(self, ev: Evaluation) -> Evaluation:
        """``ev`` at the inner strategy's fidelity, remembered for its resume."""
        self.told.append({"arch": ev.arch, "objective": ev.objective, "metrics": dict(ev.metrics),
                          "status": ev.status.value, "error": ev.error})
        return Evaluation(arch=ev.arch, objective=ev.objective, metrics=dict(ev.metrics), status=ev.status,
                          error=ev.error)

    def state_dict(self) -> dict[str, Any]:
        if self.inner is None:
            return {}
        return {"inner": self.inner.state_dict(), "told": list(self.told)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.inner is None:
            return
        from engine.types import Status

        self.told = list(state["told"])
        history = [
            Evaluation(arch=t["arch"], objective=t["objective"], metrics=t["metrics"], status=Status(t["status"]),
                       error=t["error"])
            for t in self.told
        ]
        self.inner.load_state_dict(state["inner"], history=history)


def rank_top(scores: Mapping[Architecture, float], k: int) -> list[Architecture]:
    """The ``k`` best configurations with a finite score, best first (ties: first reached)."""
    finite = [(a, s) for a, s in scores.items() if np.isfinite(s)]
    order = sorted(range(len(finite)), key=lambda i: -finite[i][1])
    return [finite[i][0] for i in order[:k]]


def queries(archs: Sequence[Architecture], fidelity: str) -> list[Query]:
    """``archs`` as queries at ``fidelity``."""
    return [Query(a, fidelity) for a in archs]


class RungStrategy(Strategy):
    """What every rung strategy is built from: its rungs, fidelities, halving rate and sampler.

    Args:
        space: The search space.
        seed: Seed of the strategy's generator.
        min_epochs: Epochs of the lowest rung.
        max_epochs: The full training (the oracle's ``epochs``; the runner fills it in).
        eta: Halving rate: the best ``1/eta`` of a rung go on, trained ``eta`` times longer.
        sampler: ``random``, or a registered single-fidelity strategy that proposes new
            configurations (``smbo``: BOHB-style).
        sampler_options: Options of that strategy.
    """

    fidelities: tuple[str, ...] = ("epochs=1", "epochs=3", DEFAULT_FIDELITY)  # of the defaults; set per instance

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        min_epochs: int = 1,
        max_epochs: int = 9,
        eta: int = 3,
        sampler: str = "random",
        sampler_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(space, seed)
        self.rungs, self.fidelities = setup_rungs(min_epochs, max_epochs, eta)
        self.eta = eta
        self.sampler = RungSampler(self, sampler, sampler_options)
        self._start()

    def _start(self) -> None:
        """Set up the subclass's own bookkeeping (once the rungs are known)."""

    def _warm_start(self, evaluations: Sequence[Evaluation]) -> None:
        self._tell(evaluations)
        self.sampler.warm_start(evaluations)
