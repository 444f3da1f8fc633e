"""Evaluating many sub-networks in one forward pass, computing shared work once.

A batched forward carries a tensor of *row blocks* (``n`` rows each, one example
set) and, for every block, the architectures whose activations it holds. All
architectures start in one block (they see the same input), so the stem runs
once. At every decision, each block is split by the option its architectures
chose; each (block, option) pair is computed once, and architectures that made
the same choices so far keep sharing rows. Early layers (the stem, the first
cell's edges from its input) are therefore computed once per distinct prefix,
not once per architecture. :class:`~oracles.supernet.bn.GroupBN` keeps
BatchNorm statistics per block (and so per architecture).

A layer that every architecture goes through with one of several options
(the chain space's blocks) uses :func:`split_apply`. A NAS-Bench-201 cell, a DAG
of edges, works inside on one tensor per block instead (:func:`split_blocks`,
:func:`join_blocks`), which saves gathering and scattering blocks at every edge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from oracles.supernet.bn import BNContext

Groups = tuple[tuple[int, ...], ...]


def as_blocks(x: torch.Tensor, blocks: int) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """``x`` viewed as ``blocks`` row blocks in its storage order (no copy), and the inverse view.

    Channels-last 4-D tensors are viewed as ``(blocks, n, H, W, C)`` so that
    selecting blocks keeps the channels-last layout (fast convolutions and pooling on CPU).
    """
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        nhwc = x.permute(0, 2, 3, 1)
        view = nhwc.reshape(blocks, x.shape[0] // blocks, *nhwc.shape[1:])

        def restore_cl(b: torch.Tensor) -> torch.Tensor:
            return b.reshape(-1, *b.shape[2:]).permute(0, 3, 1, 2)

        return view, restore_cl
    view = x.reshape(blocks, x.shape[0] // blocks, *x.shape[1:])

    def restore(b: torch.Tensor) -> torch.Tensor:
        return b.reshape(-1, *b.shape[2:])

    return view, restore


def take(x: torch.Tensor, blocks: int, index: Sequence[int]) -> torch.Tensor:
    """Blocks ``index`` of ``x``, as a tensor of ``len(index)`` blocks."""
    if list(index) == list(range(blocks)):
        return x
    view, restore = as_blocks(x, blocks)
    return restore(view.index_select(0, torch.tensor(list(index), device=x.device)))


def concat(parts: Sequence[tuple[torch.Tensor, int]]) -> torch.Tensor:
    """Concatenate tensors of row blocks, keeping a channels-last layout."""
    if len(parts) == 1:
        return parts[0][0]
    views = [as_blocks(t, b) for t, b in parts]
    return views[0][1](torch.cat([v for v, _ in views]))


def split_blocks(x: torch.Tensor, blocks: int) -> list[torch.Tensor]:
    """``x``'s row blocks as separate tensors, views of its storage (no copy, layout kept)."""
    view, restore = as_blocks(x, blocks)
    return [restore(view[i : i + 1]) for i in range(blocks)]


def join_blocks(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Row blocks concatenated into one tensor, keeping a channels-last layout (inverse of :func:`split_blocks`)."""
    return concat([(t, 1) for t in parts])


def split_apply(
    x: torch.Tensor,
    groups: Groups,
    choice: Mapping[int, int],
    ctx: BNContext,
    run: Callable[[int, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, Groups]:
    """Apply ``run(option, rows)`` once per distinct (block, option) pair, for a layer every architecture goes through.

    Args:
        x: ``len(groups)`` row blocks.
        groups: Architectures of each block.
        choice: Architecture -> option.
        ctx: The BN context; set to the architectures of each block ``run`` sees.
        run: Computes an option on a tensor of blocks.

    Returns:
        The outputs as one tensor of blocks, and the architectures of each block.
    """
    by_option: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
    for i, archs in enumerate(groups):
        split: dict[int, list[int]] = {}
        for a in archs:
            split.setdefault(choice[a], []).append(a)
        for option, picked in split.items():
            by_option.setdefault(option, []).append((i, tuple(picked)))
    parts: list[tuple[torch.Tensor, int]] = []
    part_groups: list[tuple[int, ...]] = []
    for option, items in by_option.items():
        rows = take(x, len(groups), [i for i, _ in items])
        with ctx.select([members for _, members in items]):
            parts.append((run(option, rows), len(items)))
        part_groups.extend(members for _, members in items)
    return concat(parts), tuple(part_groups)


def to_archs(out: torch.Tensor, groups: Groups, count: int) -> torch.Tensor:
    """Rows of ``len(groups)`` blocks reordered to one block per architecture ``0 .. count-1``."""
    if len(groups) == count and all(g == (i,) for i, g in enumerate(groups)):
        return out
    block_of = {a: i for i, g in enumerate(groups) for a in g}
    return take(out, len(groups), [block_of[a] for a in range(count)])


def initial_groups(count: int, shared: bool) -> Groups:
    """One block shared by all architectures (same input), or one block each."""
    return (tuple(range(count)),) if shared else tuple((a,) for a in range(count))


def single(groups: Groups) -> bool:
    """True for the ordinary one-architecture forward (training)."""
    return len(groups) == 1 and len(groups[0]) == 1


__all__ = [
    "Groups", "as_blocks", "concat", "initial_groups", "join_blocks", "split_apply", "split_blocks", "take", "to_archs",
]


