"""Regularized (aging) evolution, Real et al. 2019, on DEAP's tools."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from deap import base, creator, tools

from engine.spaces import Architecture, SearchSpace
from engine.strategies._base import Strategy
from engine.strategies._registry import register
from engine.types import Evaluation

# DEAP's creator mutates a global namespace: create the classes once, at import.
if not hasattr(creator, "NasFitnessMax"):
    creator.create("NasFitnessMax", base.Fitness, weights=(1.0,))
if not hasattr(creator, "NasIndividual"):
    creator.create("NasIndividual", list, fitness=creator.NasFitnessMax, arch=None)


def _individual(arch: Architecture, objective: float) -> Any:
    ind = creator.NasIndividual(arch.decisions)
    ind.arch = arch
    ind.fitness.values = (objective,)
    return ind


@register("regularized_evolution")
class RegularizedEvolution(Strategy):
    """Aging evolution (Real, Aggarwal, Huang & Le, AAAI 2019).

    A population of the ``population`` most recent architectures; each child
    mutates the best of ``sample`` members drawn at random (DEAP's ``selBest``
    on a sample drawn with the strategy's own generator, since DEAP's own random
    operators use Python's global RNG) and replaces the oldest member.

    Args:
        space: The search space.
        seed: Seed of the strategy's generator.
        population: Population size (P).
        sample: Tournament sample size (S).
        mutation_tries: Re-draws to avoid a child that was already asked: a
            repeated child costs budget and teaches nothing.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        population: int = 10,
        sample: int = 5,
        mutation_tries: int = 10,
    ) -> None:
        super().__init__(space, seed)
        if population < 1:
            raise ValueError(f"strategy.population must be >= 1, got {population}")
        if not 1 <= sample <= population:
            raise ValueError(f"strategy.sample must be in [1, population={population}], got {sample}")
        if mutation_tries < 0:
            raise ValueError(f"strategy.mutation_tries must be >= 0, got {mutation_tries}")
        self.population_size = population
        self.sample_size = sample
        self.mutation_tries = mutation_tries
        self.population: deque[Any] = deque()
        self.toolbox = base.Toolbox()
        self.toolbox.register("select", tools.selBest, k=1)
        self.toolbox.register("mutate", self._mutate)

    def _mutate(self, parent: Architecture) -> Architecture:
        child = self.space.mutate(parent, self.rng)
        for _ in range(self.mutation_tries):
            if not self.was_asked(child):
                break
            child = self.space.mutate(parent, self.rng)
        return child

    def _ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        for _ in range(n):
            if len(self.history) + len(self.pending) + len(out) < self.population_size or not self.population:
                out.append(self.sample_new())
                continue
            k = min(self.sample_size, len(self.population))
            contenders = [self.population[int(i)] for i in self.rng.choice(len(self.population), k, replace=False)]
            parent = self.toolbox.select(contenders)[0]
            out.append(self.toolbox.mutate(parent.arch))
        return out

    def _tell(self, evaluations: Sequence[Evaluation]) -> None:
        for ev in evaluations:
            if not ev.ok or ev.objective is None:
                continue
            self.population.append(_individual(ev.arch, ev.objective))
            if len(self.population) > self.population_size:
                self.population.popleft()  # aging: the oldest dies, not the worst

    def _warm_start(self, evaluations: Sequence[Evaluation]) -> None:
        """Seed the population with the best ``population`` earlier results, the best youngest.

        Told in their own order, aging would keep only the last ones, however poor.
        """
        ranked = sorted((e for e in evaluations if e.ok and e.objective is not None), key=lambda e: e.objective or 0.0)
        self._tell(ranked[-self.population_size:])

    def _state_dict(self) -> dict[str, Any]:
        return {"population": [[ind.arch, ind.fitness.values[0]] for ind in self.population]}

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.population = deque(_individual(a, f) for a, f in state["population"])
