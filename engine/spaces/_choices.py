"""A declarative space: named decisions from config, no class to write.

``space=choices space.params.decisions={depth: [2, 3, 4], act: [relu, gelu]}``.
Numeric decisions are *ordinal*: their values are sorted, a mutation steps to a
neighbouring value and the ``ordinal`` encoding keeps their order, because for a
width or a depth the next value is a smaller change than the farthest one. Other
values are categorical. The canonical string is ``label=value`` pairs in the
declared order, e.g. ``depth=3,act=gelu``; it is also what choice-module networks
(:mod:`oracles.choices`) are searched by.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import numpy as np

from engine.spaces._base import Architecture, Decision, SearchSpace
from engine.spaces._registry import register_space

_FORBIDDEN = ",= \t\n"


def _text(value: str | int | float) -> str:
    """How a value is written in architecture strings (``repr`` keeps floats exact)."""
    return repr(value) if isinstance(value, float) else str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _options(space: str, label: object, values: object) -> tuple[str, tuple[str | int | float, ...], bool]:
    """Validate one decision: ``(label, options, ordinal)``, numbers sorted ascending."""
    if not isinstance(label, str) or not label or any(c in label for c in _FORBIDDEN):
        raise ValueError(
            f"{space} space: decision name {label!r} must be a non-empty string without ',', '=' or spaces"
        )
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{space} space: decision {label!r} needs a non-empty list of values, got {values!r}")
    values = list(values)
    if all(_is_number(v) for v in values):
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ValueError(f"{space} space: decision {label!r} has a non-finite value in {values!r}")
        opts = tuple(int(v) if isinstance(v, Integral) else float(v) for v in values)
        if len(set(opts)) != len(opts):
            raise ValueError(f"{space} space: decision {label!r} repeats a value in {values!r}")
        return label, tuple(sorted(opts)), True
    if not all(isinstance(v, str) for v in values):
        kinds = sorted({type(v).__name__ for v in values})
        raise ValueError(
            f"{space} space: decision {label!r} mixes value types {kinds} in {values!r}; use all numbers or all strings"
        )
    for v in values:
        if not v or any(c in v for c in _FORBIDDEN):
            raise ValueError(f"{space} space: decision {label!r} has value {v!r}; values need no ',', '=' or spaces")
    if len(set(values)) != len(values):
        raise ValueError(f"{space} space: decision {label!r} repeats a value in {values!r}")
    return label, tuple(values), False


@register_space("choices")
class ChoicesSpace(SearchSpace):
    """Named decisions, each a list of values; numeric ones ordinal, the others categorical.

    Args:
        decisions: Decision name -> its values, in the order the string writes them.
        name: The space's name in architectures and journals.

    Raises:
        ValueError: for a malformed decision, naming it.
    """

    encodings = ("ordinal", "onehot")

    def __init__(self, decisions: Mapping[str, Sequence[str | int | float]], name: str = "choices") -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"choices space: name must be a non-empty string, got {name!r}")
        if not isinstance(decisions, Mapping) or not decisions:
            raise ValueError(
                f"{name} space: decisions must be a non-empty mapping name -> list of values,"
                f" e.g. {{depth: [2, 3], act: [relu, gelu]}}; got {decisions!r}"
            )
        checked = [_options(name, k, v) for k, v in decisions.items()]
        self.name = name
        self.decisions = tuple(Decision(label, opts) for label, opts, _ in checked)
        self.ordinal: tuple[bool, ...] = tuple(o for _, _, o in checked)
        self._index = {d.name: i for i, d in enumerate(self.decisions)}
        self._lookup = [{_text(v): k for k, v in enumerate(d.options)} for d in self.decisions]

    def format(self, decisions: Sequence[int]) -> str:
        return ",".join(f"{d.name}={_text(d.options[i])}" for d, i in zip(self.decisions, decisions))

    def parse(self, string: str) -> Architecture:
        """Parse ``label=value,...``; every decision once, in any order (the result is canonical).

        Raises:
            ValueError: naming the bad pair, an unknown or missing decision, or a value not offered.
        """
        if not isinstance(string, str):
            raise ValueError(f"{self.name} string must be a str, got {type(string).__name__}")
        found: dict[int, int] = {}
        for pos, pair in enumerate(string.split(",")):
            label, eq, text = pair.strip().partition("=")
            if not eq:
                raise ValueError(f"invalid {self.name} string {string!r}: pair {pos} {pair!r} is not 'name=value'")
            i = self._index.get(label)
            if i is None:
                raise ValueError(
                    f"invalid {self.name} string {string!r}: unknown decision {label!r};"
                    f" known: {', '.join(self._index)}"
                )
            if i in found:
                raise ValueError(f"invalid {self.name} string {string!r}: decision {label!r} given twice")
            option = self._lookup[i].get(text)
            if option is None and self.ordinal[i]:
                option = self._numeric(i, text)
            if option is None:
                raise ValueError(
                    f"invalid {self.name} string {string!r}: {label}={text} is not one of"
                    f" {[_text(v) for v in self.decisions[i].options]}"
                )
            found[i] = option
        missing = [d.name for i, d in enumerate(self.decisions) if i not in found]
        if missing:
            raise ValueError(f"invalid {self.name} string {string!r}: missing decision(s) {', '.join(missing)}")
        return self.architecture([found[i] for i in range(len(self.decisions))])

    def _numeric(self, i: int, text: str) -> int | None:
        """The option equal to ``text`` read as a number (``32.0`` for ``32``), or None."""
        try:
            value = float(text)
        except ValueError:
            return None
        for k, v in enumerate(self.decisions[i].options):
            if float(v) == value:
                return k
        return None

    # -- operators that respect order ---------------------------------------------------------
    def _steps(self, i: int, current: int) -> list[int]:
        """The options one move away: the adjacent values (ordinal) or every other value."""
        if self.ordinal[i]:
            return [o for o in (current - 1, current + 1) if 0 <= o < self.decisions[i].n]
        return [o for o in range(self.decisions[i].n) if o != current]

    def mutate(self, arch: Architecture, rng: np.random.Generator, n: int = 1) -> Architecture:
        """Change ``n`` decisions by one move each: a neighbouring value when ordinal, any other when not."""
        decisions = list(arch.decisions)
        for _ in range(n):
            movable = [i for i, d in enumerate(self.decisions) if d.n > 1]
            if not movable:
                break
            i = int(movable[rng.integers(len(movable))])
            steps = self._steps(i, decisions[i])
            decisions[i] = int(steps[rng.integers(len(steps))])
        return self.architecture(decisions)

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every architecture one move away (see :meth:`mutate`), in a fixed order."""
        out = []
        for i in range(len(self.decisions)):
            for o in self._steps(i, arch.decisions[i]):
                d = list(arch.decisions)
                d[i] = o
                out.append(self.architecture(d))
        return out

    def encode(self, arch: Architecture, encoding: str = "onehot") -> np.ndarray:
        """``ordinal``: ordinal decisions as thermometer codes (order and distance kept), the others one-hot;
        ``onehot``: one block per decision.

        Raises:
            ValueError: for another encoding.
        """
        if encoding not in self.encodings:
            raise ValueError(
                f"space {self.name!r} has no encoding {encoding!r}; available: {list(self.encodings)}"
            )
        parts = []
        for d, dec, ordinal in zip(arch.decisions, self.decisions, self.ordinal):
            if encoding == "ordinal" and ordinal:
                parts.append(np.arange(1, dec.n) <= d)
            else:
                parts.append(np.arange(dec.n) == d)
        return np.concatenate(parts).astype(np.float32)
