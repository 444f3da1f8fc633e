"""BatchNorm that keeps separate statistics per architecture within one batched forward.

Evaluating many sub-networks one after the other spends most of its time in
Python and kernel-launch overhead on small networks. The supernet instead stacks
the inputs of ``A`` architectures along the batch dimension (architecture ``a``
owns rows ``a*n .. (a+1)*n``) and runs each candidate operation once on the rows
of the architectures that chose it. BatchNorm is the only layer that mixes rows,
so it must keep each architecture's statistics apart:

- ``plain`` mode is ordinary BatchNorm (training, or evaluation with the
  statistics accumulated during training when recalibration is off);
- ``recal`` mode normalizes each architecture's block with its own batch
  statistics and records them (the exact statistics of the whole recalibration
  set, which is what ``momentum=None`` recalibration over the same examples in
  one batch gives);
- ``stored`` mode normalizes each block with the statistics recorded for it.

Channels may be a prefix of the layer's width (ordered channels, chain space):
the first ``c`` weights and statistics are used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


class BNContext:
    """Shared state of the :class:`GroupBN` layers of one supernet.

    Attributes:
        mode: ``plain``, ``recal``, ``stored`` or ``fused`` (recalibrate on the first
            ``recal_rows`` rows of every block and evaluate the rest in the same pass).
        recal_rows: Rows per block used for the statistics in ``fused`` mode.
        groups: Per row block of the tensor being processed, the architectures it
            belongs to (several when they share the computation so far).
        stats: ``(layer id, architecture id) -> (mean, var)`` recorded in ``recal`` mode.
    """

    def __init__(self) -> None:
        self.mode = "plain"
        self.recal_rows = 0
        self.groups: tuple[tuple[int, ...], ...] = ()
        self.stats: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    @contextmanager
    def select(self, groups: Sequence[Sequence[int]]) -> Iterator[None]:
        """Within the block, the tensor's row blocks belong to the architectures ``groups``."""
        old = self.groups
        self.groups = tuple(tuple(g) for g in groups)
        try:
            yield
        finally:
            self.groups = old


class GroupBN(nn.BatchNorm2d):
    """BatchNorm for 1-D or 2-D feature maps with per-architecture statistics (see module doc).

    A drop-in for ``nn.BatchNorm1d/2d``: same parameters, buffers and state-dict keys.
    """

    ctx: BNContext | None = None
    layer_id: int = 0

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (3, 4):
            raise ValueError(f"expected a 3-D or 4-D input, got {input.dim()}-D")

    @classmethod
    def convert(cls, module: nn.Module, ctx: BNContext) -> nn.Module:
        """Replace every BatchNorm of ``module`` (in place) by a GroupBN sharing ``ctx``; returns ``module``."""
        counter = [0]

        def swap(parent: nn.Module) -> None:
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GroupBN):
                    new = cls(child.num_features, eps=child.eps, momentum=child.momentum, affine=child.affine,
                              track_running_stats=child.track_running_stats)
                    new.load_state_dict(child.state_dict())
                    new.train(child.training)
                    setattr(parent, name, new)
                    child = new
                if isinstance(child, GroupBN):
                    child.ctx = ctx
                    child.layer_id = counter[0]
                    counter[0] += 1
                else:
                    swap(child)

        if isinstance(module, GroupBN):
            module.ctx = ctx
        swap(module)
        return module

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        c = input.shape[1]
        weight = self.weight[:c] if self.weight is not None else None
        bias = self.bias[:c] if self.bias is not None else None
        ctx = self.ctx
        if ctx is None or ctx.mode == "plain":
            use_batch = self.training or self.running_mean is None
            momentum = 0.0 if self.momentum is None else self.momentum
            if self.training and self.track_running_stats and self.num_batches_tracked is not None:
                self.num_batches_tracked.add_(1)
                if self.momentum is None:
                    momentum = 1.0 / float(self.num_batches_tracked)
            rm = self.running_mean[:c] if self.running_mean is not None else None
            rv = self.running_var[:c] if self.running_var is not None else None
            return F.batch_norm(input, rm, rv, weight, bias, use_batch, momentum, self.eps)
        groups = ctx.groups
        g = len(groups)
        if g == 0 or input.shape[0] % g:
            raise RuntimeError(f"batch of {input.shape[0]} rows cannot be split into {g} architecture blocks")
        n = input.shape[0] // g
        channels_last = input.dim() == 4 and input.is_contiguous(memory_format=torch.channels_last)
        if channels_last:
            # (rows, H, W, C) is contiguous: each block is a (n, H*W, C) array, no copy
            x = input.permute(0, 2, 3, 1).reshape(g, n, -1, c)
            dims: tuple[int, ...] = (1, 2)
            view: tuple[int, ...] = (g, 1, 1, c)
        else:
            x = input.reshape(g, n, c, *input.shape[2:])
            dims = (1, *range(3, x.dim()))
            view = (g, 1, c) + (1,) * (x.dim() - 3)
        if ctx.mode in ("recal", "fused"):
            # statistics of the recalibration rows (all rows in "recal" mode, the first
            # ``ctx.recal_rows`` of each block in "fused" mode); two-pass mean and variance,
            # since torch.var_mean over middle dimensions is far slower on CPU
            r = n if ctx.mode == "recal" else ctx.recal_rows
            xr = x if r == n else x[:, :r]
            mean = xr.mean(dim=dims, keepdim=True)
            var = (xr - mean).square().mean(dim=dims)
            mean = mean.reshape(g, c)
            count = xr.numel() // (g * c)
            unbiased = var * (count / max(count - 1, 1))
            for i, members in enumerate(groups):
                for arch in members:
                    ctx.stats[(self.layer_id, arch)] = (mean[i], unbiased[i])
        elif ctx.mode == "stored":
            mean = torch.stack([ctx.stats[(self.layer_id, m[0])][0] for m in groups])
            var = torch.stack([ctx.stats[(self.layer_id, m[0])][1] for m in groups])
            unbiased = var
        else:
            raise RuntimeError(f"unknown BN mode {ctx.mode!r}")

        def affine(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            scale = torch.rsqrt(v + self.eps)
            if weight is not None:
                scale = scale * weight
            shift = -mean * scale
            if bias is not None:
                shift = shift + bias
            return scale.reshape(view), shift.reshape(view)

        if ctx.mode == "fused":
            # evaluation rows are normalized as in eval mode (unbiased running variance),
            # recalibration rows as in training mode (batch variance), as two passes would
            scale, shift = affine(unbiased)
            out = torch.addcmul(shift, x, scale)
            scale_b, shift_b = affine(var)
            out[:, :r] = torch.addcmul(shift_b, x[:, :r], scale_b)
        else:
            scale, shift = affine(var)
            out = torch.addcmul(shift, x, scale)
        if channels_last:  # back to (rows, C, H, W) in channels-last layout
            n_rows, h, w = input.shape[0], input.shape[2], input.shape[3]
            return out.reshape(n_rows, h, w, c).permute(0, 3, 1, 2)
        return out.reshape(input.shape)
