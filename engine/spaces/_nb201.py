"""The NAS-Bench-201 cell space (Dong & Yang, 2020): 4 nodes, 6 edges, 5 operations."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from engine.spaces._base import Architecture, Decision, SearchSpace

NB201_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
# Edges in the order of the canonical string: node 1 <- 0; node 2 <- 0, 1; node 3 <- 0, 1, 2.
NB201_EDGES: tuple[tuple[int, int], ...] = tuple(
    (src, dst) for dst in range(1, 4) for src in range(dst)
)
# The four input-to-output paths of the cell DAG, as edge indices.
_PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
_PATH_OPS = tuple(op for op in range(len(NB201_OPS)) if NB201_OPS[op] != "none")


class NB201Space(SearchSpace):
    """The NAS-Bench-201 topology space: 5**6 = 15,625 cells.

    Canonical strings are byte-identical to NAS-Bench-201's, e.g.
    ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``.
    Encodings: ``onehot`` and ``path`` (BANANAS, White et al. 2021: one feature per
    sequence of operations along an input-output path, ``none`` breaking a path).
    """

    name = "nb201"
    decisions = tuple(Decision(f"edge({d}<-{s})", NB201_OPS) for s, d in NB201_EDGES)
    encodings = ("onehot", "path")

    def __init__(self) -> None:
        features: list[tuple[int, ...]] = []
        for length in (1, 2, 3):
            features.extend(itertools.product(_PATH_OPS, repeat=length))
        self._path_index = {f: i for i, f in enumerate(features)}

    def format(self, decisions: Sequence[int]) -> str:
        parts = []
        k = 0
        for dst in range(1, 4):
            parts.append("|" + "|".join(f"{NB201_OPS[decisions[k + s]]}~{s}" for s in range(dst)) + "|")
            k += dst
        return "+".join(parts)

    def parse(self, string: str) -> Architecture:
        if not isinstance(string, str):
            raise ValueError(f"NAS-Bench-201 string must be a str, got {type(string).__name__}")
        nodes = string.split("+")
        if len(nodes) != 3:
            raise ValueError(
                f"invalid NAS-Bench-201 string {string!r}: expected 3 node groups separated by '+',"
                f" found {len(nodes)}"
            )
        decisions: list[int] = []
        offset = 0
        for dst, group in enumerate(nodes, start=1):
            if not (group.startswith("|") and group.endswith("|") and len(group) >= 2):
                raise ValueError(
                    f"invalid NAS-Bench-201 string {string!r}: node {dst} group {group!r} at"
                    f" character {offset} must start and end with '|'"
                )
            tokens = group[1:-1].split("|")
            if len(tokens) != dst:
                raise ValueError(
                    f"invalid NAS-Bench-201 string {string!r}: node {dst} needs {dst} edge(s),"
                    f" group {group!r} at character {offset} has {len(tokens)}"
                )
            pos = offset + 1
            for src, token in enumerate(tokens):
                op, sep, idx = token.partition("~")
                if not sep or op not in NB201_OPS or idx != str(src):
                    what = (
                        f"unknown operation {op!r}" if sep and op not in NB201_OPS
                        else f"expected 'op~{src}'"
                    )
                    raise ValueError(
                        f"invalid NAS-Bench-201 string {string!r}: bad token {token!r} at character"
                        f" {pos} (edge {dst}<-{src}): {what}; operations are {list(NB201_OPS)}"
                    )
                decisions.append(NB201_OPS.index(op))
                pos += len(token) + 1
            offset += len(group) + 1
        return self.architecture(decisions)

    def ops(self, arch: Architecture) -> list[str]:
        """The operation name of each edge, in :data:`NB201_EDGES` order."""
        return [NB201_OPS[d] for d in arch.decisions]

    def encode(self, arch: Architecture, encoding: str = "onehot") -> np.ndarray:
        if encoding != "path":
            return super().encode(arch, encoding)
        out = np.zeros(len(self._path_index), dtype=np.float32)
        for path in _PATHS:
            ops = tuple(arch.decisions[e] for e in path)
            if all(NB201_OPS[o] != "none" for o in ops):
                out[self._path_index[ops]] += 1.0
        return out
