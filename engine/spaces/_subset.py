"""A space restricted to a given set of architectures: the cells a partial table holds.

A user's own table often measures a few hundred cells of a space with thousands; a
strategy that proposes the others only collects "not in table" failures. The runner
therefore hands strategies this view of the space instead: the same decisions, strings,
encodings and architecture objects (so oracles and journals see no difference), but
sampling, mutation, crossover, neighbours and the sequential builders' masks only
ever produce members of the set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from engine.spaces._base import Architecture, SearchSpace

_TRIES = 32  # operator retries in the base space before falling back to the nearest members


class SubsetSpace(SearchSpace):
    """The architectures ``members`` of ``base``, searched as a space of their own.

    Args:
        base: The full space; its name is kept, so architectures compare equal across the two.
        members: Canonical architectures of ``base`` (duplicates are dropped; order does not matter).

    Raises:
        ValueError: if ``members`` is empty or holds an architecture that is not in ``base``.
    """

    def __init__(self, base: SearchSpace, members: Iterable[Architecture]) -> None:
        self._base = base.root
        self.name = base.name
        self.decisions = base.decisions
        self.encodings = base.encodings
        unique: dict[tuple[int, ...], Architecture] = {}
        for arch in members:
            if not self._base.contains(arch):
                raise ValueError(f"{arch.string!r} is not a canonical architecture of space {base.name!r}")
            unique.setdefault(arch.decisions, arch)
        if not unique:
            raise ValueError(f"a restriction of space {base.name!r} needs at least one architecture")
        ordered = sorted(unique)
        self._members = [unique[d] for d in ordered]
        self._index = {d: i for i, d in enumerate(ordered)}
        self._matrix = np.asarray(ordered, dtype=np.int64)

    @property
    def root(self) -> SearchSpace:
        """The unrestricted space (strategies that compute space-specific features use it)."""
        return self._base

    # -- structure: the base space's, membership checked ---------------------
    def format(self, decisions: Sequence[int]) -> str:
        return self._base.format(decisions)

    def parse(self, string: str) -> Architecture:
        arch = self._base.parse(string)
        if arch.decisions not in self._index:
            raise ValueError(f"{string!r} is in space {self.name!r} but not among the {self.size} searched")
        return arch

    def active(self, decisions: Sequence[int]) -> list[bool]:
        return self._base.active(decisions)

    def canonical(self, decisions: Sequence[int]) -> tuple[int, ...]:
        return self._base.canonical(decisions)

    def architecture(self, decisions: Sequence[int]) -> Architecture:
        arch = self._base.architecture(decisions)
        if arch.decisions not in self._index:
            raise ValueError(f"{arch.string!r} is in space {self.name!r} but not among the {self.size} searched")
        return arch

    def closest(self, decisions: Sequence[int]) -> Architecture:
        """``decisions`` if they make a member, else the member at the smallest Hamming distance (first in order)."""
        canon = self._base.canonical(decisions)
        if canon in self._index:
            return self._members[self._index[canon]]
        dist = np.sum(self._matrix != np.asarray(canon, dtype=np.int64), axis=1)
        return self._members[int(np.argmin(dist))]

    def contains(self, arch: Architecture) -> bool:
        return arch.space == self.name and arch.decisions in self._index

    def allowed(self, prefix: Sequence[int]) -> np.ndarray:
        """Options that continue ``prefix`` towards at least one member (a builder never dead-ends)."""
        i = len(prefix)
        if i >= len(self.decisions):
            raise ValueError(f"prefix of length {i} is already complete for space {self.name!r}")
        rows = self._matrix[np.all(self._matrix[:, :i] == np.asarray(prefix, dtype=np.int64), axis=1)]
        mask = np.zeros(self.decisions[i].n, dtype=bool)
        mask[np.unique(rows[:, i])] = True
        return mask

    def encode(self, arch: Architecture, encoding: str = "onehot") -> np.ndarray:
        return self._base.encode(arch, encoding)

    # -- size and enumeration ----------------------------------------------
    @property
    def size(self) -> int:
        return len(self._members)

    def enumerate(self, limit: int = 10_000_000) -> Iterator[Architecture]:
        return iter(self._members)

    # -- random operators: the base space's, kept inside the set ----------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random member."""
        return self._members[int(rng.integers(len(self._members)))]

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """The base space's neighbours that are members, topped up with the nearest other members.

        A partial table rarely holds an architecture's direct neighbours; topping up to as many
        as the base space gives keeps local search and evolution moving through the whole set
        instead of shuttling between the few members that happen to be adjacent.
        """
        base = self._base.neighbours(arch)
        near = [nb for nb in base if nb.decisions in self._index]
        want = max(len(base), 1)
        if len(near) < want:
            taken = {nb.decisions for nb in near} | {arch.decisions}
            dist = np.sum(self._matrix != np.asarray(arch.decisions, dtype=np.int64), axis=1)
            for i in np.argsort(dist, kind="stable"):
                if len(near) >= want:
                    break
                if self._members[i].decisions not in taken:
                    near.append(self._members[i])
        return near

    def mutate(self, arch: Architecture, rng: np.random.Generator, n: int = 1) -> Architecture:
        """``n`` steps, each to a uniformly chosen neighbour; ``arch`` itself only if it is the only member."""
        for _ in range(n):
            options = self.neighbours(arch)
            if not options:
                return arch
            arch = options[int(rng.integers(len(options)))]
        return arch

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
        """A base-space crossover that lands on a member; else ``a`` or ``b`` with equal odds."""
        for _ in range(_TRIES):
            child = self._base.crossover(a, b, rng)
            if child.decisions in self._index:
                return child
        return a if rng.random() < 0.5 else b


def restrict(space: SearchSpace, members: Iterable[Architecture]) -> SearchSpace:
    """``space`` itself when ``members`` covers it, else a :class:`SubsetSpace` of them."""
    subset = SubsetSpace(space, members)
    return space if subset.size >= space.root.size else subset
