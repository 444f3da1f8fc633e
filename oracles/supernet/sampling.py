"""Sampling rules: which sub-networks of the supernet one training step updates.

The rule decides how evenly the shared weights are trained, which is one of the
main causes of the optimization gap:

- ``uniform`` (single-path one-shot, SPOS; Guo et al., 2020): one path per step,
  each decision drawn uniformly.
- ``fair`` (FairNAS strict fairness; Chu et al., 2021): ``m`` paths per step such
  that every option of every decision appears equally often (exactly once when all
  decisions have ``m`` options); the gradients of the ``m`` paths are accumulated
  before one update, so no option is favoured by the order of updates.
- ``sandwich`` (BigNAS / Once-for-All / NetAdaptV2): the largest and the smallest
  sub-network plus ``num_random`` random ones per step; only for spaces whose
  options are ordered by size (``chain``).

A sampler draws from its own numpy generator and saves its state, so a resumed
training sees exactly the paths it would have seen without the interruption.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

SAMPLING_RULES = ("uniform", "fair", "sandwich")

Path = tuple[int, ...]


class Sampler:
    """Draws the paths (decision tuples) of one training step.

    Args:
        allowed: Per decision, the option indices that may be drawn (a few-shot
            sub-supernet restricts the decisions it was split on).
        seed: Seed of the sampler's own generator.
    """

    rule = ""

    def __init__(self, allowed: Sequence[Sequence[int]], seed: int) -> None:
        if not allowed or any(len(a) == 0 for a in allowed):
            raise ValueError("every decision needs at least one allowed option")
        self.allowed = [tuple(int(o) for o in a) for a in allowed]
        self.rng = np.random.default_rng(seed)

    def step(self) -> list[Path]:
        """The paths of one training step."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The generator state (plain Python types: loadable with ``weights_only=True``)."""
        return {"rule": self.rule, "bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Raises:
            ValueError: if the state belongs to another rule.
        """
        if state.get("rule") != self.rule:
            raise ValueError(f"sampler state is for rule {state.get('rule')!r}, not {self.rule!r}")
        self.rng.bit_generator.state = state["bit_generator"]


class UniformSampler(Sampler):
    """One uniformly drawn path per step (SPOS)."""

    rule = "uniform"

    def step(self) -> list[Path]:
        return [tuple(a[int(self.rng.integers(len(a)))] for a in self.allowed)]


class FairSampler(Sampler):
    """``m`` paths per step in which every allowed option of every decision appears equally often.

    ``m`` is the least common multiple of the numbers of allowed options (5 for
    NAS-Bench-201, 3 for the default chain space), so with equal counts every
    option is trained exactly once per step, as in FairNAS. Each decision's
    column is an independent random permutation of its options (repeated
    ``m / n`` times), which is FairNAS's construction.
    """

    rule = "fair"

    def __init__(self, allowed: Sequence[Sequence[int]], seed: int) -> None:
        super().__init__(allowed, seed)
        self.m = math.lcm(*(len(a) for a in self.allowed))
        if self.m > 64:
            raise ValueError(
                f"fair sampling needs {self.m} paths per step (lcm of the option counts); use uniform sampling"
            )

    def step(self) -> list[Path]:
        columns = []
        for a in self.allowed:
            col = np.tile(np.asarray(a), self.m // len(a))
            columns.append(col[self.rng.permutation(self.m)])
        return [tuple(int(c[j]) for c in columns) for j in range(self.m)]


class SandwichSampler(Sampler):
    """Largest, smallest and ``num_random`` random paths per step (the sandwich rule).

    "Largest" takes the last allowed option of every decision and "smallest" the
    first, which is right for spaces whose options are sorted by size (the chain
    space sorts depths, kernels and expansions ascending).
    """

    rule = "sandwich"

    def __init__(self, allowed: Sequence[Sequence[int]], seed: int, num_random: int = 2) -> None:
        super().__init__(allowed, seed)
        if num_random < 0:
            raise ValueError(f"supernet.sandwich_random must be >= 0, got {num_random}")
        self.num_random = int(num_random)

    def step(self) -> list[Path]:
        largest = tuple(max(a) for a in self.allowed)
        smallest = tuple(min(a) for a in self.allowed)
        rand = [tuple(a[int(self.rng.integers(len(a)))] for a in self.allowed) for _ in range(self.num_random)]
        return [largest, smallest, *rand]


def make_sampler(
    rule: str, allowed: Sequence[Sequence[int]], seed: int, ordered: bool, num_random: int = 2
) -> Sampler:
    """The sampler for ``rule`` (``supernet.sampling``).

    Args:
        rule: ``uniform``, ``fair`` or ``sandwich``.
        allowed: Per decision, the option indices that may be drawn.
        seed: Seed of the sampler's generator.
        ordered: Whether the space's options are ordered by size (sandwich needs it).
        num_random: Random paths per sandwich step.

    Raises:
        ValueError: naming ``supernet.sampling`` for an unknown rule or sandwich on an unordered space.
    """
    if rule == "uniform":
        return UniformSampler(allowed, seed)
    if rule == "fair":
        return FairSampler(allowed, seed)
    if rule == "sandwich":
        if not ordered:
            raise ValueError(
                "supernet.sampling=sandwich needs a space whose options are ordered by size (chain);"
                " use uniform or fair for this space"
            )
        return SandwichSampler(allowed, seed, num_random)
    raise ValueError(f"supernet.sampling must be one of {list(SAMPLING_RULES)}, got {rule!r}")
