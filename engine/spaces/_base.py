"""Search spaces as data: a list of categorical decisions and a canonical string.

A space owns everything that depends on its structure (formatting, parsing,
which decisions are active, encodings); strategies only use this API, which is
why the same strategy runs on a cell space and a chain space unchanged.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Decision:
    """One categorical choice of a space.

    Attributes:
        name: Human-readable name, e.g. ``"edge(2<-1)"`` or ``"s0.l1.kernel"``.
        options: The values it can take (numbers or strings); architectures store the option index.
    """

    name: str
    options: tuple[str | int | float, ...]

    @property
    def n(self) -> int:
        """Number of options."""
        return len(self.options)


@dataclass(frozen=True)
class Architecture:
    """An immutable, hashable point of a search space.

    Build it through :meth:`SearchSpace.architecture` or :meth:`SearchSpace.parse`
    so that ``decisions`` is canonical and ``string`` matches it. Equality and the
    hash use the space name and the decisions only.

    Attributes:
        space: Name of the space it belongs to.
        decisions: One option index per decision of the space.
        string: The canonical string (e.g. a NAS-Bench-201 cell string).
    """

    space: str
    decisions: tuple[int, ...]
    string: str = field(compare=False)

    def __str__(self) -> str:
        return self.string


class SearchSpace(ABC):
    """A finite space of architectures described by categorical decisions.

    Subclasses give the decisions, the canonical string format and, where some
    decisions can be irrelevant (layers beyond a stage's depth), the rule that
    makes such architectures canonical. Everything else (sampling, mutation,
    crossover, neighbours, one-hot encoding, enumeration) is generic.
    """

    name: str = ""
    decisions: tuple[Decision, ...] = ()
    encodings: tuple[str, ...] = ("onehot",)

    # -- structure ---------------------------------------------------------
    @abstractmethod
    def format(self, decisions: Sequence[int]) -> str:
        """The canonical string of canonical ``decisions``."""

    @abstractmethod
    def parse(self, string: str) -> Architecture:
        """Parse a canonical string.

        Raises:
            ValueError: naming the bad token and its position.
        """

    def active(self, decisions: Sequence[int]) -> list[bool]:
        """Which decisions matter for ``decisions`` (all, unless overridden)."""
        return [True] * len(self.decisions)

    def allowed(self, prefix: Sequence[int]) -> np.ndarray:
        """Boolean mask of the options allowed for the next decision after ``prefix``.

        Used by sequential builders (the RL environment, PNAS): an inactive
        decision only allows option 0, so each architecture has one build path.
        """
        i = len(prefix)
        if i >= len(self.decisions):
            raise ValueError(f"prefix of length {i} is already complete for space {self.name!r}")
        mask = np.ones(self.decisions[i].n, dtype=bool)
        padded = list(prefix) + [0] * (len(self.decisions) - i)
        if not self.active(padded)[i]:
            mask[1:] = False
        return mask

    def canonical(self, decisions: Sequence[int]) -> tuple[int, ...]:
        """Set inactive decisions to option 0 so equal networks compare equal."""
        return tuple(d if a else 0 for d, a in zip(decisions, self.active(decisions)))

    def architecture(self, decisions: Sequence[int]) -> Architecture:
        """Validate ``decisions`` and build the canonical architecture.

        Raises:
            ValueError: if the length is wrong or an index is out of range.
        """
        decisions = tuple(int(d) for d in decisions)
        if len(decisions) != len(self.decisions):
            raise ValueError(
                f"space {self.name!r} has {len(self.decisions)} decisions, got {len(decisions)}"
            )
        for d, dec in zip(decisions, self.decisions):
            if not 0 <= d < dec.n:
                raise ValueError(f"decision {dec.name!r} has {dec.n} options, got index {d}")
        decisions = self.canonical(decisions)
        return Architecture(self.name, decisions, self.format(decisions))

    def closest(self, decisions: Sequence[int]) -> Architecture:
        """The member nearest to ``decisions``: the canonical architecture itself here.

        Strategies that build decisions outside the space's operators (rounding a continuous
        relaxation, "the largest network") use this, so that a space restricted to a table's
        cells can answer with its nearest cell instead of refusing.
        """
        return self.architecture(decisions)

    def contains(self, arch: Architecture) -> bool:
        """True when ``arch`` is a canonical architecture of this space."""
        return (
            arch.space == self.name
            and len(arch.decisions) == len(self.decisions)
            and all(0 <= d < dec.n for d, dec in zip(arch.decisions, self.decisions))
            and self.canonical(arch.decisions) == arch.decisions
        )

    @property
    def root(self) -> SearchSpace:
        """The unrestricted space this one is a view of (itself, unless restricted to a table's cells)."""
        return self

    def values(self, arch: Architecture) -> dict[str, str | int | float]:
        """Decision name -> chosen option value."""
        return {dec.name: dec.options[d] for dec, d in zip(self.decisions, arch.decisions)}

    # -- size and enumeration ---------------------------------------------
    @property
    def size(self) -> int:
        """Number of distinct (canonical) architectures (spaces with inactive decisions override)."""
        return math.prod(d.n for d in self.decisions)

    def enumerate(self, limit: int = 10_000_000) -> Iterator[Architecture]:
        """Every architecture once, in a fixed order.

        Raises:
            ValueError: if the raw product of options exceeds ``limit``.
        """
        raw = math.prod(d.n for d in self.decisions)
        if raw > limit:
            raise ValueError(f"space {self.name!r} has {raw} raw combinations, above limit {limit}")
        seen: set[tuple[int, ...]] = set()
        for combo in itertools.product(*(range(d.n) for d in self.decisions)):
            canon = self.canonical(combo)
            if canon in seen:
                continue
            seen.add(canon)
            yield Architecture(self.name, canon, self.format(canon))

    # -- random operators ---------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random architecture (uniform over decisions, then canonical)."""
        return self.architecture([int(rng.integers(d.n)) for d in self.decisions])

    def mutate(self, arch: Architecture, rng: np.random.Generator, n: int = 1) -> Architecture:
        """Change ``n`` active decisions to a different option each.

        The result always differs from ``arch`` (one-edge mutation for cells).
        """
        decisions = list(arch.decisions)
        for _ in range(n):
            act = [i for i, a in enumerate(self.active(decisions)) if a and self.decisions[i].n > 1]
            i = int(act[rng.integers(len(act))])
            choice = int(rng.integers(self.decisions[i].n - 1))
            decisions[i] = choice if choice < decisions[i] else choice + 1
        return self.architecture(decisions)

    def crossover(
        self, a: Architecture, b: Architecture, rng: np.random.Generator
    ) -> Architecture:
        """Uniform crossover: each decision from ``a`` or ``b`` with equal odds."""
        pick = rng.random(len(self.decisions)) < 0.5
        return self.architecture([x if p else y for x, y, p in zip(a.decisions, b.decisions, pick)])

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every architecture one active decision away, in a fixed order."""
        out: dict[tuple[int, ...], Architecture] = {}
        for i, a in enumerate(self.active(arch.decisions)):
            if not a:
                continue
            for o in range(self.decisions[i].n):
                if o == arch.decisions[i]:
                    continue
                d = list(arch.decisions)
                d[i] = o
                nb = self.architecture(d)
                if nb != arch:
                    out.setdefault(nb.decisions, nb)
        return list(out.values())

    # -- encodings ----------------------------------------------------------
    def encode(self, arch: Architecture, encoding: str = "onehot") -> np.ndarray:
        """A numeric vector for surrogates.

        Args:
            arch: The architecture.
            encoding: One of :attr:`encodings`; ``"onehot"`` is one block per
                active decision (inactive decisions encode as zeros).

        Raises:
            ValueError: for an encoding the space does not provide.
        """
        if encoding != "onehot":
            raise ValueError(
                f"space {self.name!r} has no encoding {encoding!r}; available: {list(self.encodings)}"
            )
        out = np.zeros(sum(d.n for d in self.decisions), dtype=np.float32)
        pos = 0
        for d, dec, a in zip(arch.decisions, self.decisions, self.active(arch.decisions)):
            if a:
                out[pos + d] = 1.0
            pos += dec.n
        return out
