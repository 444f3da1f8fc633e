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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

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
    """Blocks ``index`` of ``x`` (``-1`` gives a block of zeros), as a tensor of ``len(index)`` blocks."""
    if list(index) == list(range(blocks)):
        return x
    view, restore = as_blocks(x, blocks)
    if min(index) < 0:
        view = torch.cat([view, view.new_zeros((1, *view.shape[1:]))])
        index = [i if i >= 0 else blocks for i in index]
    return restore(view.index_select(0, torch.tensor(list(index), device=x.device)))


def concat(parts: Sequence[tuple[torch.Tensor, int]]) -> torch.Tensor:
    """Concatenate tensors of row blocks, keeping a channels-last layout."""
    if len(parts) == 1:
        return parts[0][0]
    views = [as_blocks(t, b) for t, b in parts]
    return views[0][1](torch.cat([v for v, _ in views]))


Where = dict[int, "tuple[int, int] | None"]
Parts = list[tuple[torch.Tensor, int]]


def split_apply_parts(
    x: torch.Tensor,
    groups: Groups,
    choice: Mapping[int, int],
    ctx: BNContext,
    run: Callable[[int, torch.Tensor], torch.Tensor],
    zero: int | None = None,
) -> tuple[Parts, list[tuple[int, ...]], Where]:
    """Apply ``run(option, rows)`` once per distinct (block, option) pair.

    Args:
        x: ``len(groups)`` row blocks.
        groups: Architectures of each block.
        choice: Architecture -> option.
        ctx: The BN context; set to the architectures of each block ``run`` sees.
        run: Computes an option on a tensor of blocks.
        zero: An option that contributes zeros (not computed).

    Returns:
        ``(parts, part_groups, where)``: one ``(tensor, blocks)`` per computed
        option, the architectures of each of their blocks (in order), and
        architecture -> ``(part, block)`` (``None`` for ``zero``).
    """
    by_option: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
    for i, archs in enumerate(groups):
        split: dict[int, list[int]] = {}
        for a in archs:
            split.setdefault(choice[a], []).append(a)
        for option, picked in split.items():
            by_option.setdefault(option, []).append((i, tuple(picked)))
    parts: Parts = []
    part_groups: list[tuple[int, ...]] = []
    where: Where = {}
    for option, items in by_option.items():
        if option == zero:
            for _, members in items:
                for a in members:
                    where[a] = None
            continue
        rows = take(x, len(groups), [i for i, _ in items])
        with ctx.select([members for _, members in items]):
            out = run(option, rows)
        for b, (_, members) in enumerate(items):
            for a in members:
                where[a] = (len(parts), b)
            part_groups.append(members)
        parts.append((out, len(items)))
    return parts, part_groups, where


def split_apply(
    x: torch.Tensor,
    groups: Groups,
    choice: Mapping[int, int],
    ctx: BNContext,
    run: Callable[[int, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, Groups]:
    """:func:`split_apply_parts` for a layer every architecture goes through: one tensor of blocks."""
    parts, part_groups, _ = split_apply_parts(x, groups, choice, ctx, run)
    return concat(parts), tuple(part_groups)


def merge_sum(
    contributions: Sequence[tuple[Parts, Where]], archs: Sequence[int], like: torch.Tensor, like_blocks: int
) -> tuple[torch.Tensor, Groups]:
    """Per architecture, the sum of its blocks of several summands; architectures with equal sums share a block.

    Args:
        contributions: ``(parts, where)`` per summand, as :func:`split_apply_parts` returns.
        archs: All architectures.
        like: A tensor of ``like_blocks`` blocks with the output's per-block shape (for all-zero sums).
        like_blocks: Its number of blocks.
    """
    combos: dict[tuple[Any, ...], list[int]] = {}
    for a in archs:
        combos.setdefault(tuple(w[a] for _, w in contributions), []).append(a)
    keys = list(combos)
    groups = tuple(tuple(combos[k]) for k in keys)
    template = next((p[0] for parts, _ in contributions for p in parts), like)
    t_blocks = next((p[1] for parts, _ in contributions for p in parts), like_blocks)
    t_view, restore = as_blocks(template, t_blocks)
    total = t_view.new_empty((len(keys), *t_view.shape[1:]))
    written = [False] * len(keys)
    for e, (parts, _) in enumerate(contributions):
        for p, (t, blocks) in enumerate(parts):
            pairs = [(j, k[e][1]) for j, k in enumerate(keys) if k[e] is not None and k[e][0] == p]
            if not pairs:
                continue
            view, _ = as_blocks(t, blocks)
            for first in (True, False):  # a block's first summand is copied, later ones added
                sel = [(j, b) for j, b in pairs if written[j] != first]
                if not sel:
                    continue
                src_idx = [b for _, b in sel]
                src = view if src_idx == list(range(blocks)) else view.index_select(0, torch.tensor(src_idx))
                dst = torch.tensor([j for j, _ in sel])
                if first:
                    total.index_copy_(0, dst, src)
                else:
                    total.index_add_(0, dst, src)
            for j, _ in pairs:
                written[j] = True
    empty = [j for j, w in enumerate(written) if not w]
    if empty:  # architectures whose every summand is zero
        total.index_fill_(0, torch.tensor(empty), 0.0)
    return restore(total), groups


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
    "Groups", "as_blocks", "concat", "initial_groups", "merge_sum", "split_apply", "split_apply_parts", "take",
    "to_archs",
]


