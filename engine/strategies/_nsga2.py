"""NSGA-II (Deb et al. 2002): multi-objective evolution on DEAP's non-dominated sorting."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from deap import base, creator, tools
from deap.benchmarks.tools import hypervolume as deap_hypervolume

from engine.spaces import Architecture, SearchSpace
from engine.strategies._base import Strategy
from engine.strategies._registry import register
from engine.types import Evaluation

_log = logging.getLogger(__name__)

DEFAULT_OBJECTIVES: tuple[dict[str, str], ...] = (
    {"metric": "objective", "direction": "max"},
    {"metric": "params", "direction": "min"},
)
"""Maximise the search objective, minimise the parameter count (what every oracle of this project reports)."""

_DIRECTIONS = {"max": 1.0, "min": -1.0}


def _classes(k: int) -> tuple[type, type]:
    """DEAP fitness and individual classes for ``k`` objectives, created once per ``k``.

    DEAP's creator mutates a global namespace, so the classes are created the first
    time a ``k`` is needed and reused afterwards. Values are stored already signed
    so that every objective is maximised (weights all 1.0); one class per ``k``
    then serves every configuration of directions.
    """
    fit, ind = f"NasFitnessMax{k}", f"NasMultiIndividual{k}"
    if not hasattr(creator, fit):
        creator.create(fit, base.Fitness, weights=(1.0,) * k)
    if not hasattr(creator, ind):
        creator.create(ind, list, fitness=getattr(creator, fit), arch=None, values=None)
    return getattr(creator, fit), getattr(creator, ind)


def parse_objectives(objectives: Sequence[Mapping[str, Any]]) -> tuple[tuple[tuple[str, ...], float], ...]:
    """Validate ``[{metric, direction}, ...]`` into ``((names, sign), ...)``, sign +1 for max.

    ``metric`` is a name or a list of names, the first one an evaluation reports
    being used, so one config serves a table (``latency_ms_raspi4``) and a
    measuring oracle (``latency_ms``).

    Raises:
        ValueError: naming ``strategy.objectives`` and the bad entry.
    """
    if isinstance(objectives, (str, bytes)) or not isinstance(objectives, Sequence) or len(objectives) < 1:
        raise ValueError(f"strategy.objectives must be a non-empty list of {{metric, direction}}, got {objectives!r}")
    out = []
    for i, obj in enumerate(objectives):
        if not isinstance(obj, Mapping) or set(obj) != {"metric", "direction"}:
            raise ValueError(f"strategy.objectives[{i}] must have exactly the keys metric and direction, got {obj!r}")
        names = (obj["metric"],) if isinstance(obj["metric"], str) else tuple(obj["metric"])
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(
                f"strategy.objectives[{i}].metric must be a metric name or a list of them, got {obj['metric']!r}"
            )
        if obj["direction"] not in _DIRECTIONS:
            raise ValueError(f"strategy.objectives[{i}].direction must be 'max' or 'min', got {obj['direction']!r}")
        out.append((names, _DIRECTIONS[obj["direction"]]))
    firsts = [names[0] for names, _ in out]
    if len(set(firsts)) != len(firsts):
        raise ValueError(f"strategy.objectives names a metric twice: {firsts}")
    return tuple(out)


def metric_names(ev: Evaluation, objectives: Sequence[tuple[tuple[str, ...], float]]) -> list[str]:
    """The metric each objective reads from ``ev``: its first name that ``ev`` reports (or ``objective``).

    Raises:
        ValueError: if ``ev`` reports none of an objective's names, naming them and what is there.
    """
    out = []
    for names, _ in objectives:
        found = next((n for n in names if n in ev.metrics), "objective" if "objective" in names else None)
        if found is None:
            raise ValueError(
                f"strategy.objectives names metric {' or '.join(map(repr, names))}, but the oracle reports only"
                f" {sorted(ev.metrics)} (and 'objective'); choose objectives the oracle measures"
            )
        out.append(found)
    return out


def objective_values(
    ev: Evaluation, objectives: Sequence[tuple[tuple[str, ...], float]]
) -> tuple[float, ...] | None:
    """The configured objectives of a successful evaluation (``objective`` names ``ev.objective``).

    Returns ``None`` for a failed evaluation.

    Raises:
        ValueError: if a successful evaluation lacks a configured metric, naming it and what is there.
    """
    if not ev.ok or ev.objective is None:
        return None
    return tuple(
        float(ev.metrics[m]) if m in ev.metrics else float(ev.objective) for m in metric_names(ev, objectives)
    )


def pareto_front(
    points: Sequence[tuple[float, ...]], signs: Sequence[float]
) -> list[int]:
    """Indices of the non-dominated points (DEAP's non-dominated sorting), in input order."""
    _, ind_cls = _classes(len(signs))
    inds = []
    for i, p in enumerate(points):
        ind = ind_cls([i])
        ind.fitness.values = tuple(s * v for s, v in zip(signs, p))
        inds.append(ind)
    if not inds:
        return []
    first = tools.sortNondominated(inds, len(inds), first_front_only=True)[0]
    return sorted(ind[0] for ind in first)


def hypervolume(
    points: Sequence[tuple[float, ...]], signs: Sequence[float], reference: Sequence[float]
) -> float:
    """Hypervolume dominated by ``points`` and bounded by ``reference``, in the metrics' own units.

    Computed by DEAP (``deap.benchmarks.tools.hypervolume``). Points that do not
    strictly improve on the reference in every objective add nothing and are dropped.
    """
    if len(reference) != len(signs):
        raise ValueError(f"the reference point has {len(reference)} values for {len(signs)} objectives")
    _, ind_cls = _classes(len(signs))
    inds = []
    for p in points:
        if all(s * v > s * r for s, v, r in zip(signs, p, reference)):
            ind = ind_cls(list(p))
            ind.fitness.values = tuple(s * v for s, v in zip(signs, p))
            inds.append(ind)
    if not inds:
        return 0.0
    ref = np.array([-s * r for s, r in zip(signs, reference)], dtype=float)  # DEAP minimises -wvalues
    return float(deap_hypervolume(inds, ref=ref))


REFERENCE_MARGIN = 0.1
"""How far a derived reference point lies beyond the worst value seen, as a fraction of the observed range."""


def default_reference(
    points: Sequence[tuple[float, ...]], signs: Sequence[float], margin: float = REFERENCE_MARGIN
) -> tuple[float, ...] | None:
    """A hypervolume reference point from the data: per objective, the worst value seen pushed out by ``margin``.

    The nadir of the observed points, shifted by ``margin`` times each objective's
    observed range (the usual choice, e.g. Ishibuchi et al., "How to specify a
    reference point in hypervolume calculation", GECCO 2018), so the reference is
    on the scale of the data whatever its units (a latency table of 1-11 ms or
    one of 10-200 ms) and the extreme points of the front still add volume (a
    reference at the worst value itself would give them none). An objective
    whose values are all equal is pushed out by ``margin`` of its magnitude (1
    when it is 0). Non-finite values are ignored. The result depends on what
    the run saw, so hypervolumes of runs with derived references are not
    comparable: pass an explicit reference for that.

    Returns:
        One value per objective in the metrics' units, or ``None`` when no point
        has a finite value for every objective.
    """
    finite = [p for p in points if len(p) == len(signs) and all(np.isfinite(p))]
    if not finite:
        return None
    arr = np.asarray(finite, dtype=float)
    out = []
    for i, s in enumerate(signs):
        lo, hi = float(arr[:, i].min()), float(arr[:, i].max())
        worst = lo if s > 0 else hi
        span = hi - lo if hi > lo else (abs(worst) or 1.0)
        out.append(worst - s * margin * span)
    return tuple(out)


@register("nsga2")
class NSGA2(Strategy):
    """NSGA-II (Deb, Pratap, Agarwal & Meyarivan, IEEE TEC 2002), as in multi-objective NAS.

    ``population`` random architectures first; then each child is a
    crowded-comparison tournament winner (front rank, then crowding distance),
    crossed over (probability ``crossover_prob``) with a second winner and
    mutated in one decision. Once ``offspring`` children are told, parents and
    children are merged and DEAP's ``selNSGA2`` keeps ``population`` of them.
    ``offspring = population`` is the original generational scheme; the
    default ``offspring = 1`` is the steady-state variant (Durillo et al.
    2009), which on a budget of 100 evaluations gives ten times more
    selection steps: on NAS-Bench-201 (val_acc vs Raspberry Pi 4 latency) it
    reached a higher hypervolume than the generational scheme (see
    ``bench/multiobjective.py``). Non-dominated sorting, crowding distance and
    the selection are DEAP's; every random draw uses the strategy's own
    generator (DEAP's random operators use Python's global RNG, which would
    break seeding). Batches of any size work: children told beyond
    ``offspring`` simply join the next merge.

    :meth:`report` gives the Pareto front of everything evaluated and its
    hypervolume, which the runner writes into ``summary.json``.

    Args:
        space: The search space.
        seed: Seed of the strategy's generator.
        objectives: ``[{metric, direction}, ...]``, direction ``max`` or ``min``;
            the metric ``objective`` is the evaluation's objective; a list of
            names means the first one the oracle reports.
        reference: Hypervolume reference point, one value per objective in the
            metrics' units (a worst acceptable value each); ``None`` derives it
            from the evaluations seen (:func:`default_reference`: the worst value
            of each objective pushed out by 10% of its observed range), which
            suits any scale but is not comparable across runs. :meth:`report`
            says which reference was used and where it came from.
        population: Population size kept by the environmental selection.
        offspring: Children told between two selections.
        tournament: Parents drawn per crowded-comparison tournament.
        crossover_prob: Probability that a child is a crossover of two parents
            before its mutation.
        tries: Re-draws to avoid a child that was already asked.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        objectives: Sequence[Mapping[str, Any]] = DEFAULT_OBJECTIVES,
        reference: Sequence[float] | None = None,
        population: int = 10,
        offspring: int = 1,
        tournament: int = 4,
        crossover_prob: float = 0.5,
        tries: int = 20,
    ) -> None:
        super().__init__(space, seed)
        self.objectives = parse_objectives(objectives)
        self.signs = tuple(s for _, s in self.objectives)
        if reference is not None:
            reference = [float(r) for r in reference]
            if len(reference) != len(self.objectives):
                raise ValueError(
                    f"strategy.reference has {len(reference)} values for {len(self.objectives)} objectives"
                )
        self.reference = None if reference is None else tuple(reference)
        if isinstance(population, bool) or not isinstance(population, int) or population < 2:
            raise ValueError(f"strategy.population must be an integer >= 2, got {population!r}")
        if not 0.0 <= crossover_prob <= 1.0:
            raise ValueError(f"strategy.crossover_prob must be in [0, 1], got {crossover_prob!r}")
        if isinstance(offspring, bool) or not isinstance(offspring, int) or offspring < 1:
            raise ValueError(f"strategy.offspring must be a positive integer, got {offspring!r}")
        if isinstance(tournament, bool) or not isinstance(tournament, int) or tournament < 1:
            raise ValueError(f"strategy.tournament must be a positive integer, got {tournament!r}")
        self.population_size = population
        self.offspring = offspring
        self.tournament = tournament
        self.crossover_prob = float(crossover_prob)
        self.tries = int(tries)
        self._ind_cls = _classes(len(self.objectives))[1]
        self.toolbox = base.Toolbox()
        self.toolbox.register("select", tools.selNSGA2)
        self.parents: list[Any] = []
        self.children: list[Any] = []
        self.n_children_told = 0

    # -- DEAP individuals -----------------------------------------------------
    def _individual(self, arch: Architecture, values: Sequence[float]) -> Any:
        ind = self._ind_cls(arch.decisions)
        ind.arch = arch
        ind.values = tuple(float(v) for v in values)
        ind.fitness.values = tuple(s * v for s, v in zip(self.signs, ind.values))
        return ind

    def _rank(self, population: list[Any]) -> None:
        """Front rank and crowding distance of each parent, for the tournaments."""
        for rank, front in enumerate(tools.sortNondominated(population, len(population))):
            tools.emo.assignCrowdingDist(front)
            for ind in front:
                ind.rank = rank

    def _tournament(self) -> Any:
        """Crowded-comparison tournament: lowest front rank, then largest crowding distance."""
        k = min(self.tournament, len(self.parents))
        picks = [self.parents[int(i)] for i in self.rng.choice(len(self.parents), size=k, replace=False)]
        return min(picks, key=lambda ind: (ind.rank, -ind.fitness.crowding_dist))

    def _child(self) -> Architecture:
        for _ in range(self.tries + 1):
            child = self._tournament().arch
            if self.rng.random() < self.crossover_prob:
                child = self.space.crossover(child, self._tournament().arch, self.rng)
            child = self.space.mutate(child, self.rng)
            if not self.was_asked(child):
                break
        return child

    # -- ask / tell -----------------------------------------------------------
    def _ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        for _ in range(n):
            arch = self._child() if self.parents else self.sample_new()
            if arch in out:
                arch = self.sample_new()
            out.append(arch)
        return out

    def _tell(self, evaluations: Sequence[Evaluation]) -> None:
        for ev in evaluations:
            values = objective_values(ev, self.objectives)
            if values is not None:
                self.children.append(self._individual(ev.arch, values))
            self.n_children_told += 1
            needed = self.offspring if self.parents else self.population_size
            if self.n_children_told >= needed and self.children:
                self._next_generation()

    def _next_generation(self) -> None:
        merged = self.parents + self.children
        self.parents = self.toolbox.select(merged, min(self.population_size, len(merged)))
        self._rank(self.parents)
        self.children = []
        self.n_children_told = 0

    # -- results --------------------------------------------------------------
    def front(self) -> list[Evaluation]:
        """The successful evaluations on the Pareto front of everything told so far."""
        seen: dict[Architecture, tuple[Evaluation, tuple[float, ...]]] = {}
        for ev in self.history:
            values = objective_values(ev, self.objectives)
            if values is not None:
                seen.setdefault(ev.arch, (ev, values))
        evs = list(seen.values())
        return [evs[i][0] for i in pareto_front([v for _, v in evs], self.signs)]

    def report(self) -> dict[str, Any]:
        """The Pareto front (architectures and objective values), its hypervolume and the reference point used.

        ``reference_source`` is ``"strategy.reference"`` for a reference the user
        gave, and starts with ``"derived"`` (followed by the rule) for one from
        the data (:func:`default_reference`), so ``summary.json`` says whether its
        hypervolume can be compared with another run's.
        """
        front = self.front()
        points = [objective_values(ev, self.objectives) or () for ev in front]
        reference = self.reference
        source = "strategy.reference"
        if reference is None:
            all_points = [v for ev in self.history if (v := objective_values(ev, self.objectives)) is not None]
            reference = default_reference(all_points, self.signs)
            source = (
                f"derived: worst value seen per objective, pushed out by {REFERENCE_MARGIN:.0%} of its observed range"
            )
        # The metric each objective resolved to (the first listed name the oracle reports).
        names = metric_names(front[0], self.objectives) if front else [n[0] for n, _ in self.objectives]
        return {
            "objectives": [{"metric": m, "direction": "max" if s > 0 else "min"} for m, s in zip(names, self.signs)],
            "reference": list(reference) if reference is not None else None,
            "reference_source": source if reference is not None else None,
            "hypervolume": hypervolume(points, self.signs, reference) if reference is not None else None,
            "pareto_front": [
                {"arch": ev.arch.string, **dict(zip(names, p))}
                for ev, p in sorted(zip(front, points), key=lambda t: t[1])
            ],
        }

    # -- state ----------------------------------------------------------------
    def _state_dict(self) -> dict[str, Any]:
        return {
            "parents": [[ind.arch, ind.values] for ind in self.parents],
            "children": [[ind.arch, ind.values] for ind in self.children],
            "n_children_told": self.n_children_told,
        }

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.parents = [self._individual(a, v) for a, v in state["parents"]]
        self.children = [self._individual(a, v) for a, v in state["children"]]
        self.n_children_told = int(state["n_children_told"])
        if self.parents:
            self._rank(self.parents)
