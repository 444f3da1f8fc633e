"""The NAS-Bench-201 supernet: every edge of every cell holds all five operations.

Built from the same skeleton and operations as the stand-alone network
(:mod:`oracles.models`), so a sub-network's weights map one-to-one onto the
stand-alone network of its architecture (:meth:`NB201Supernet.extract`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from engine.spaces import NB201_EDGES, NB201_OPS, Architecture, NB201Space
from oracles import models
from oracles.supernet import blocks
from oracles.supernet.bn import BNContext, GroupBN

Path = tuple[int, ...]


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

    def forward(self, x: torch.Tensor, paths: Sequence[Path] = ((),), **_: Any) -> torch.Tensor:
        ctx = self.ctx
        groups = ctx.groups or ((0,),)
        if blocks.single(groups) and len(paths) == 1:
            return self._forward_one(x, paths[0])
        return self._forward_batched(x, paths, groups)

    def _forward_batched(self, x: torch.Tensor, paths: Sequence[Path], groups: blocks.Groups) -> torch.Tensor:
        """Several architectures, ``x`` holding one row block per entry of ``groups``.

        Inside the cell every block is its own tensor (a view of ``x``, then op
        outputs and sums), so nothing is gathered or scattered between edges: an
        operation runs once per distinct (input tensor, operation) pair, a node
        that one edge feeds is that edge's output itself, and the ReLU in front of
        both convolutions is computed once per input tensor. Only the cell's output
        blocks are copied, into one tensor for the layers after the cell. Separate
        block-sized tensors also suit the CPU allocator: it reuses them, where
        tensors of many blocks would be fresh page-faulted memory each time.
        """
        ctx = self.ctx
        if x.dim() == 4:  # batched evaluation: channels-last is faster on CPU
            x = x.contiguous(memory_format=torch.channels_last)
        archs = [a for g in groups for a in g]
        live = {a: _useful_edges(paths[a]) for a in archs}
        views = blocks.split_blocks(x, len(groups))
        nodes: list[dict[int, torch.Tensor]] = [{a: views[i] for i, g in enumerate(groups) for a in g}]
        relu: dict[int, torch.Tensor] = {}  # id of an input tensor (alive in ``nodes``) -> its ReLU
        zeros: torch.Tensor | None = None
        k = 0
        for dst in range(1, 4):
            summands: dict[int, list[torch.Tensor]] = {a: [] for a in archs}
            for src in range(dst):
                edge = self._edge(k + src)
                jobs: dict[tuple[int, int], tuple[torch.Tensor, list[int]]] = {}
                for a in archs:
                    if live[a][k + src]:
                        t = nodes[src][a]
                        jobs.setdefault((id(t), paths[a][k + src]), (t, []))[1].append(a)
                for (tid, op), (t, members) in jobs.items():
                    module = edge[op]
                    with ctx.select([members]):
                        if isinstance(module, models.ReLUConvBN):
                            if tid not in relu:
                                relu[tid] = torch.relu(t)
                            y = module[2](module[1](relu[tid]))
                        elif isinstance(module, models.AvgPool3x3):
                            y = module.forward_depthwise(t)
                        else:
                            y = module(t)
                    for a in members:
                        summands[a].append(y)
            sums: dict[tuple[int, ...], torch.Tensor] = {}
            node: dict[int, torch.Tensor] = {}
            for a in archs:
                ys = summands[a]
                key = tuple(id(y) for y in ys)
                if key not in sums:
                    if not ys:  # no live edge into this node: zeros (the ops after it still run, as alone)
                        zeros = torch.zeros_like(views[0]) if zeros is None else zeros
                        sums[key] = zeros
                    elif len(ys) == 1:
                        sums[key] = ys[0]
                    else:
                        total = ys[0] + ys[1]
                        for y in ys[2:]:
                            total.add_(y)
                        sums[key] = total
                node[a] = sums[key]
            nodes.append(node)
            k += dst
        outputs: dict[int, tuple[torch.Tensor, list[int]]] = {}
        for a in archs:
            outputs.setdefault(id(nodes[-1][a]), (nodes[-1][a], []))[1].append(a)
        ctx.groups = tuple(tuple(m) for _, m in outputs.values())  # the next layers see the cell output's blocks
        return blocks.join_blocks([t for t, _ in outputs.values()])

    def _edge(self, e: int) -> nn.ModuleList:
        """Edge ``e``'s operations (typed: indexing ``self.edges`` gives a plain ``nn.Module``)."""
        return cast(nn.ModuleList, self.edges[e])

    def _forward_one(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        """One architecture (training): plain module calls, no bookkeeping."""
        useful = _useful_edges(path)
        nodes = [x]
        k = 0
        for dst in range(1, 4):
            total: torch.Tensor | None = None
            for src in range(dst):
                if useful[k + src]:
                    y = self._edge(k + src)[path[k + src]](nodes[src])
                    total = y if total is None else total + y
            nodes.append(total if total is not None else torch.zeros_like(x))
            k += dst
        return nodes[-1]


def _useful_edges(path: Path) -> list[bool]:
    """Which edges can change the cell output: not ``none`` and leading to a node that reaches the output.

    Skipping the others changes nothing (their outputs are never used), and saves
    their convolutions; the stand-alone network computes them for nothing.
    """
    zero = NB201_OPS.index("none")
    on = [op != zero for op in path]
    # edges in NB201_EDGES order: (0,1) (0,2) (1,2) (0,3) (1,3) (2,3)
    live2 = on[5]
    live1 = on[4] or (on[2] and live2)
    live_dst = {1: live1, 2: live2, 3: True}
    return [on[e] and live_dst[dst] for e, (_, dst) in enumerate(NB201_EDGES)]


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

    def forward(self, x: torch.Tensor, paths: Sequence[Path], shared: bool = False) -> torch.Tensor:
        """Logits of every path: ``len(paths)`` row blocks, in path order.

        Args:
            x: One row block per path, or with ``shared`` one block that every path sees.
            paths: Decision tuples.
            shared: ``x`` is a single block common to all paths (batched evaluation:
                work on it is done once, not once per path).
        """
        ctx = self.ctx
        old = ctx.groups
        ctx.groups = blocks.initial_groups(len(paths), shared)
        try:
            out = self.net(x, paths=list(paths))
            groups = ctx.groups
        finally:
            ctx.groups = old
        return blocks.to_archs(out, groups, len(paths))

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
