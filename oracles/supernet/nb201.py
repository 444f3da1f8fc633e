"""The NAS-Bench-201 supernet: every edge of every cell holds all five operations.

Built from the same skeleton and operations as the stand-alone network
(:mod:`oracles.models`), so a sub-network's weights map one-to-one onto the
stand-alone network of its architecture (:meth:`NB201Supernet.extract`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from engine.spaces import NB201_EDGES, NB201_OPS, Architecture, NB201Space
from oracles import models
from oracles.supernet.bn import BNContext, GroupBN

Path = tuple[int, ...]


def _groups(paths: Sequence[Path], decision: int) -> dict[int, list[int]]:
    """Option -> positions of the paths that chose it."""
    out: dict[int, list[int]] = {}
    for i, p in enumerate(paths):
        out.setdefault(p[decision], []).append(i)
    return out


def apply_grouped(
    x: torch.Tensor, paths: Sequence[Path], decision: int, ctx: BNContext, run: Any
) -> torch.Tensor | None:
    """Run ``run(option, rows)`` on the row blocks of the paths that chose each option; stitch the results.

    ``x`` holds ``len(paths)`` equal row blocks, one per path. ``run`` returns a
    tensor for the rows of that option's paths, or ``None`` for an option that
    contributes zeros. Returns ``None`` when every option contributed zeros.
    """
    groups = _groups(paths, decision)
    a = len(paths)
    if len(groups) == 1:
        (option, _), = groups.items()
        return run(option, x)
    blocks, restore = _as_blocks(x, a)
    parts = []
    for option, pos in groups.items():
        idx = torch.tensor(pos, device=x.device)
        with ctx.select([ctx.groups[i] for i in pos]):
            y = run(option, restore(blocks.index_select(0, idx)))
        if y is not None:
            parts.append((idx, y))
    if not parts:
        return None
    covered = sum(len(idx) for idx, _ in parts)
    first, out_restore = _as_blocks(parts[0][1], len(parts[0][0]))
    make = first.new_empty if covered == a else first.new_zeros  # rows of zero-contributing options stay 0
    out = make((a, *first.shape[1:]))
    for idx, y in parts:
        out.index_copy_(0, idx, _as_blocks(y, len(idx))[0])
    return out_restore(out)


def _as_blocks(x: torch.Tensor, a: int) -> tuple[torch.Tensor, Any]:
    """``x`` as ``a`` row blocks in its storage order (no copy), and the inverse for any block count.

    Channels-last 4-D tensors are viewed as ``(a, n, H, W, C)`` so that selecting
    blocks keeps the channels-last layout (fast convolutions and pooling on CPU).
    """
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        nhwc = x.permute(0, 2, 3, 1)
        blocks = nhwc.reshape(a, x.shape[0] // a, *nhwc.shape[1:])

        def restore_cl(b: torch.Tensor) -> torch.Tensor:
            return b.reshape(-1, *b.shape[2:]).permute(0, 3, 1, 2)

        return blocks, restore_cl
    blocks = x.reshape(a, x.shape[0] // a, *x.shape[1:])

    def restore(b: torch.Tensor) -> torch.Tensor:
        return b.reshape(-1, *b.shape[2:])

    return blocks, restore


class MixedCell(nn.Module):
    """A cell whose edge ``e`` holds the five operations as ``edges[e][op]``.

    ``forward(x, paths=..., offset=0)``: ``paths`` are the architectures' decision
    tuples (one per row block of ``x``); decision ``offset + e`` picks edge ``e``'s operation.
    """

    def __init__(self, channels: int, dim: int, ctx: BNContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.edges = nn.ModuleList(
            nn.ModuleList(models.make_op(op, channels, channels, 1, dim) for op in NB201_OPS) for _ in NB201_EDGES
        )
        self._zero = NB201_OPS.index("none")

    def forward(self, x: torch.Tensor, paths: Sequence[Path] = ((),), **_: Any) -> torch.Tensor:
        if x.dim() == 4 and self.ctx.mode != "plain":  # batched evaluation: channels-last is faster on CPU
            x = x.contiguous(memory_format=torch.channels_last)
        nodes = [x]
        k = 0
        for dst in range(1, 4):
            total: torch.Tensor | None = None
            for src in range(dst):
                edge = self.edges[k + src]

                def run(op: int, rows: torch.Tensor, edge: nn.ModuleList = edge) -> torch.Tensor | None:
                    return None if op == self._zero else edge[op](rows)

                y = apply_grouped(nodes[src], paths, k + src, self.ctx, run)
                if y is not None:
                    total = y if total is None else total + y
            nodes.append(total if total is not None else torch.zeros_like(x))
            k += dst
        return nodes[-1]


class NB201Supernet(nn.Module):
    """Weight-sharing supernet of the NAS-Bench-201 space (one :class:`MixedCell` per cell position).

    Args:
        space: The NB201 space.
        input_shape: ``(C, H, W)`` or ``(C, L)``.
        num_classes: Classifier outputs.
        **model_options: ``channels`` (C, default 16) and ``cells`` (per stage, default 1),
            as for the stand-alone network.

    ``forward(x, paths)``: ``x`` holds one row block per path (``len(paths)`` blocks of
    equal size); every cell uses the same decisions (NAS-Bench-201 shares one cell).
    """

    ordered = False

    def __init__(self, space: NB201Space, input_shape: Sequence[int], num_classes: int, **model_options: Any) -> None:
        super().__init__()
        options = dict(model_options)
        self.channels = int(options.pop("channels", 16))
        self.cells = int(options.pop("cells", 1))
        if options:
            raise ValueError(f"unknown nb201 model option(s) {sorted(options)}; options are ['cells', 'channels']")
        self.space = space
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        dim = len(self.input_shape) - 1
        self.ctx = BNContext()
        ctx = self.ctx
        self.net = models.NB201Network(
            lambda c, _s, _i: MixedCell(c, dim, ctx), self.channels, self.cells, self.input_shape[0], num_classes, dim
        )
        GroupBN.convert(self.net, ctx)

    @property
    def model_options(self) -> dict[str, Any]:
        """Options that build the matching stand-alone network."""
        return {"channels": self.channels, "cells": self.cells}

    def forward(self, x: torch.Tensor, paths: Sequence[Path]) -> torch.Tensor:
        with self.ctx.select(range(len(paths))):
            return self.net(x, paths=list(paths))

    def extract(self, arch: Architecture) -> nn.Module:
        """The stand-alone network of ``arch`` carrying this supernet's weights (a copy)."""
        model = models.build_model(self.space, arch, self.input_shape, self.num_classes, **self.model_options)
        own = self.net.state_dict()
        state = {}
        for key in model.state_dict():
            parts = key.split(".")
            if len(parts) > 4 and parts[0] == "layers" and parts[2] == "edges":
                edge = int(parts[3])
                src = ".".join([*parts[:4], str(arch.decisions[edge]), *parts[4:]])
            else:
                src = key
            state[key] = own[src].detach().clone()
        model.load_state_dict(state)
        return model
