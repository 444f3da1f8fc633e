"""Training-free topology features of NAS-Bench-201 cells (pure Python, no torch).

Kept in ``engine`` so strategies (FLASH, gap-aware ranking) can score an architecture from
its string alone, without an oracle; ``oracles.proxies`` reports the same numbers as metrics.

- :func:`live_edges`: which edges carry signal from the cell input to its output (an edge
  whose source is unreachable from the input, or whose target cannot reach the output
  through non-``none`` edges, changes nothing and is dropped).
- :func:`nn_degree`: an NN-Degree-style score (FLASH, Li et al. 2021): the average degree
  of the live cell graph counting convolution and skip edges, plus the number of live skip
  connections. FLASH found that denser, skip-rich cells train better; the score is cheap
  enough to rank the whole space.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.spaces import NB201_EDGES, NB201_OPS, Architecture

__all__ = ["live_edges", "nn_degree", "topology_features"]

_CONV = frozenset({"nor_conv_1x1", "nor_conv_3x3"})
_NODES = 4


def _ops(cell: Architecture | Sequence[str]) -> list[str]:
    if isinstance(cell, Architecture):
        if cell.space != "nb201":
            raise ValueError(f"topology features are defined for nb201 cells, got an architecture of {cell.space!r}")
        return [NB201_OPS[d] for d in cell.decisions]
    ops = list(cell)
    if len(ops) != len(NB201_EDGES) or any(op not in NB201_OPS for op in ops):
        raise ValueError(f"expected {len(NB201_EDGES)} operations from {list(NB201_OPS)}, got {ops}")
    return ops


def live_edges(cell: Architecture | Sequence[str]) -> list[bool]:
    """For each edge (in :data:`engine.spaces.NB201_EDGES` order): is it on an input-to-output path?"""
    ops = _ops(cell)
    present = [op != "none" for op in ops]
    reach = {0}
    for (src, dst), p in zip(NB201_EDGES, present):  # edges are ordered by target node
        if p and src in reach:
            reach.add(dst)
    coreach = {_NODES - 1}
    for (src, dst), p in reversed(list(zip(NB201_EDGES, present))):
        if p and dst in coreach:
            coreach.add(src)
    return [p and s in reach and d in coreach for (s, d), p in zip(NB201_EDGES, present)]


def topology_features(cell: Architecture | Sequence[str]) -> dict[str, float]:
    """Counts of the live cell graph: ``live_edges``, ``conv_edges``, ``skip_edges``,
    ``pool_edges``, ``connected`` (1 when any path joins input and output), ``nn_degree``."""
    ops = _ops(cell)
    live = live_edges(ops)
    conv = sum(1 for op, a in zip(ops, live) if a and op in _CONV)
    skip = sum(1 for op, a in zip(ops, live) if a and op == "skip_connect")
    pool = sum(1 for op, a in zip(ops, live) if a and op == "avg_pool_3x3")
    return {
        "live_edges": float(sum(live)),
        "conv_edges": float(conv),
        "skip_edges": float(skip),
        "pool_edges": float(pool),
        "connected": float(any(live)),
        "nn_degree": 2.0 * (conv + skip) / _NODES + skip,
    }


def nn_degree(cell: Architecture | Sequence[str]) -> float:
    """NN-Degree-style score of a cell: average degree of its live conv/skip graph plus its live skips.

    ``2 * (conv + skip edges) / 4 nodes + skip edges``, over edges on an input-output path
    only; 0 for a disconnected cell. Higher is better (more trainable, more capacity).
    """
    return topology_features(cell)["nn_degree"]
