"""The chain (MobileNet-style) supernet: elastic kernel, elastic expansion, elastic depth.

Once-for-All / NetAdaptV2 style weight sharing:

- elastic kernel: a layer holds one depthwise kernel of the largest size; a
  smaller kernel is its centre;
- elastic expansion (ordered channels, "ordered dropout"): a layer holds the
  hidden channels of the largest expansion; a smaller expansion uses the first
  channels, so smaller widths are prefixes of larger ones;
- elastic depth: a stage holds its largest number of layers; depth ``d`` runs
  the first ``d``.

Because smaller choices are literally slices of larger ones, the sub-network of
an architecture maps onto its stand-alone :class:`oracles.models.ChainNetwork`
by slicing (:meth:`ChainSupernet.extract`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.spaces import Architecture, ChainSpace
from oracles import models
from oracles.supernet import blocks
from oracles.supernet.bn import BNContext, GroupBN
from oracles.supernet.nb201 import Path


class ElasticInvertedResidual(nn.Module):
    """An inverted-residual layer of the largest kernel and expansion, run at any smaller one.

    Parameter names follow :class:`oracles.models.InvertedResidual` with expansion
    (``block.0`` expansion conv, ``block.1`` BN, ``block.3`` depthwise conv,
    ``block.4`` BN, ``block.6`` projection, ``block.7`` BN).
    """

    def __init__(self, c_in: int, c_out: int, max_kernel: int, max_expand: int, stride: int, dim: int) -> None:
        super().__init__()
        hidden = c_in * max_expand
        self.c_in, self.c_out, self.stride, self.dim = c_in, c_out, stride, dim
        self.max_kernel = max_kernel
        self.block = nn.Sequential(
            models.conv(dim, c_in, hidden, 1),
            models.batch_norm(dim, hidden),
            nn.ReLU6(),
            models.conv(dim, hidden, hidden, max_kernel, stride, groups=hidden),
            models.batch_norm(dim, hidden),
            nn.ReLU6(),
            models.conv(dim, hidden, c_out, 1),
            models.batch_norm(dim, c_out),
        )
        self.residual = stride == 1 and c_in == c_out

    def forward_choice(self, x: torch.Tensor, kernel: int, expand: int) -> torch.Tensor:
        """The layer at ``kernel`` and ``expand`` (expansion 1 skips the expansion conv, as stand-alone)."""
        b = self.block
        conv = F.conv1d if self.dim == 1 else F.conv2d
        hidden = self.c_in * expand
        h = F.relu6(b[1](conv(x, self._conv_weight(0)[:hidden]))) if expand != 1 else x
        start = (self.max_kernel - kernel) // 2
        crop = (slice(None), slice(None)) + (slice(start, start + kernel),) * self.dim
        w = self._conv_weight(3)[:hidden][crop]
        h = F.relu6(b[4](conv(h, w, None, self.stride, kernel // 2, 1, hidden)))
        out = b[7](conv(h, self._conv_weight(6)[:, :hidden]))
        return x + out if self.residual else out

    def _conv_weight(self, i: int) -> torch.Tensor:
        """Weight of the convolution ``self.block[i]`` (cast: ``nn.Module.__getattr__`` is typed Tensor | Module)."""
        return cast(torch.Tensor, self.block[i].weight)


class ChainSupernet(nn.Module):
    """Weight-sharing supernet of a :class:`~engine.spaces.ChainSpace`.

    Args:
        space: The chain space.
        input_shape: ``(C, H, W)`` or ``(C, L)``.
        num_classes: Classifier outputs.
        **model_options: As for the stand-alone chain network: ``stem_channels``,
            ``head_channels``, ``widths``, ``strides``.
    """

    ordered = True

    def __init__(self, space: ChainSpace, input_shape: Sequence[int], num_classes: int, **model_options: Any) -> None:
        super().__init__()
        options = dict(model_options)
        self.stem_channels = int(options.pop("stem_channels", 16))
        self.head_channels = int(options.pop("head_channels", 128))
        self.widths = options.pop("widths", None)
        self.strides = options.pop("strides", None)
        if options:
            raise ValueError(
                f"unknown chain model option(s) {sorted(options)};"
                " options are ['head_channels', 'stem_channels', 'strides', 'widths']"
            )
        self.space = space
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        dim = len(self.input_shape) - 1
        largest = space.architecture([d.n - 1 for d in space.decisions])
        plan = models.chain_plan(space, largest, self.stem_channels, self.widths, self.strides)
        kmax, emax = max(space.kernels), max(space.expands)
        self.stem = nn.Sequential(
            models.conv(dim, self.input_shape[0], self.stem_channels, 3),
            models.batch_norm(dim, self.stem_channels),
            nn.ReLU6(),
        )
        self.blocks = nn.ModuleList(
            ElasticInvertedResidual(p["c_in"], p["c_out"], kmax, emax, p["stride"], dim) for p in plan
        )
        last = plan[-1]["c_out"]
        self.head = nn.Sequential(
            models.conv(dim, last, self.head_channels, 1), models.batch_norm(dim, self.head_channels), nn.ReLU6()
        )
        self.pool = nn.AdaptiveAvgPool1d(1) if dim == 1 else nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(self.head_channels, num_classes)
        self.ctx = BNContext()
        GroupBN.convert(self, self.ctx)
        # decision indices of each layer position (stage-major, max depth per stage)
        stride = 1 + 2 * space.max_depth
        self._layers = [
            (s, layer, s * stride, s * stride + 1 + 2 * layer, s * stride + 2 + 2 * layer)
            for s in range(space.stages)
            for layer in range(space.max_depth)
        ]

    @property
    def model_options(self) -> dict[str, Any]:
        """Options that build the matching stand-alone network."""
        return {
            "stem_channels": self.stem_channels,
            "head_channels": self.head_channels,
            "widths": self.widths,
            "strides": self.strides,
        }

    def _layer_choice(self, path: Path, pos: int) -> int:
        """0 when layer ``pos`` is skipped, else 1 + kernel index * n_expands + expand index."""
        _, layer, d_dec, k_dec, e_dec = self._layers[pos]
        if layer >= self.space.depths[path[d_dec]]:
            return 0
        return 1 + path[k_dec] * len(self.space.expands) + path[e_dec]

    def forward(self, x: torch.Tensor, paths: Sequence[Path], shared: bool = False) -> torch.Tensor:
        """Logits of every path: ``len(paths)`` row blocks, in path order.

        Args:
            x: One row block per path, or with ``shared`` one block that every path sees.
            paths: Decision tuples.
            shared: ``x`` is a single block common to all paths (batched evaluation).
        """
        paths = list(paths)
        ctx = self.ctx
        old = ctx.groups
        groups = blocks.initial_groups(len(paths), shared)
        ctx.groups = groups
        try:
            x = self.stem(x)
            if x.dim() == 4 and ctx.mode != "plain":  # batched evaluation: channels-last is faster on CPU
                x = x.contiguous(memory_format=torch.channels_last)
            n_exp = len(self.space.expands)
            for pos, layer in enumerate(self.blocks):
                block = cast(ElasticInvertedResidual, layer)  # nn.ModuleList iterates as plain nn.Module
                choice = {a: self._layer_choice(paths[a], pos) for g in groups for a in g}
                if len(paths) == 1:
                    c = choice[0]
                    x = x if c == 0 else block.forward_choice(
                        x, self.space.kernels[(c - 1) // n_exp], self.space.expands[(c - 1) % n_exp]
                    )
                    continue

                def run(c: int, rows: torch.Tensor, block: ElasticInvertedResidual = block) -> torch.Tensor:
                    if c == 0:  # layer beyond the stage's depth: identity
                        return rows
                    return block.forward_choice(rows, self.space.kernels[(c - 1) // n_exp],
                                                self.space.expands[(c - 1) % n_exp])

                x, groups = blocks.split_apply(x, groups, choice, ctx, run)
                ctx.groups = groups
            x = self.head(x)
            out = self.classifier(torch.flatten(self.pool(x), 1))
        finally:
            ctx.groups = old
        return blocks.to_archs(out, groups, len(paths))

    def extract(self, arch: Architecture) -> nn.Module:
        """The stand-alone network of ``arch`` carrying this supernet's weights (sliced copies)."""
        model = models.build_model(self.space, arch, self.input_shape, self.num_classes, **self.model_options)
        own = self.state_dict()
        # stand-alone block j -> supernet layer position
        positions = [
            pos for pos in range(len(self._layers)) if self._layer_choice(arch.decisions, pos) != 0
        ]
        state = {}
        for key, target in model.state_dict().items():
            parts = key.split(".")
            if parts[0] == "blocks":
                pos = positions[int(parts[1])]
                idx = int(parts[3])
                _, _, _, _, e_dec = self._layers[pos]
                if self.space.expands[arch.decisions[e_dec]] == 1:
                    idx += 3  # no expansion layers in the stand-alone block
                src = own[".".join(["blocks", str(pos), "block", str(idx), *parts[4:]])]
                conv_kernel = parts[-1] == "weight" and src.dim() > 2
                state[key] = _slice_to(src, target.shape, centre_from=2 if conv_kernel else None)
            else:
                state[key] = own[key].detach().clone()
        model.load_state_dict(state)
        return model


def _slice_to(t: torch.Tensor, shape: Sequence[int] | torch.Size, centre_from: int | None) -> torch.Tensor:
    """Prefix-slice ``t`` to ``shape``; dimensions from ``centre_from`` on are cut around their centre."""
    index = []
    for d, (have, want) in enumerate(zip(t.shape, shape)):
        if centre_from is not None and d >= centre_from:
            start = (have - want) // 2
            index.append(slice(start, start + want))
        else:
            index.append(slice(0, want))
    return t[tuple(index)].detach().clone()
