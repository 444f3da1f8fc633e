"""Inherited-weight evaluation: BN recalibration, optional fine-tuning, batches of architectures.

The accuracy a sub-network inherits depends as much on how it is evaluated as
on how the supernet was trained. BatchNorm statistics accumulated while training
mix all sub-networks, so by default each sub-network's statistics are
recomputed on a fixed set of training examples (the same for every
architecture, so none is favoured). Fine-tuning, when asked for, runs on a copy
of the weights: evaluating one architecture never changes what the next one
inherits.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import logging
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from oracles.supernet.bn import BNContext
from oracles.supernet.config import SupernetConfig

Path = tuple[int, ...]
Split = tuple[torch.Tensor, torch.Tensor]

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h) and the values set
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks below it come from the reusable heap
_TRIM_THRESHOLD = 1 << 30  # free memory kept at the top of the heap before any goes back to the OS


@functools.cache
def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the OS (process-wide, once).

    torch's CPU tensors come from ``malloc``. By default glibc serves large blocks
    with fresh ``mmap`` pages and gives freed heap memory back once more than a
    few megabytes lie free at its top, so a loop that allocates and frees the same
    large tensors page-faults on every one of their pages, every time: in batched
    evaluation that was a quarter of the CPU time (``bench/supernet_throughput.py``). This
    raises the ``mmap`` threshold to glibc's maximum (32 MiB) and the trim
    threshold to 1 GiB, what ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``
    would do at start-up. The resident memory then stays near its peak.

    Returns:
        Whether the allocator accepted the settings (``False`` off glibc: macOS, Windows, musl).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no mallopt (macOS), no process handle (Windows)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
    if ok:
        log.debug("glibc malloc: mmap threshold 32 MiB, trim threshold 1 GiB (supernet.retain_freed_memory)")
    return ok


class InheritedEvaluator:
    """Evaluates sub-networks of a supernet module with inherited weights.

    Args:
        config: Supernet settings (recalibration, fine-tuning, batching).
        train: Training split (recalibration and fine-tuning examples come from it).
        splits: Named splits to score, e.g. ``{"val": ..., "test": ...}``.
        seed: Seed of the fixed recalibration set and fine-tuning batches.
    """

    def __init__(self, config: SupernetConfig, train: Split, splits: dict[str, Split], seed: int) -> None:
        self.config = config
        self.train = train
        self.splits = splits
        self.seed = int(seed)
        n = len(train[1])
        gen = torch.Generator().manual_seed(self.seed + 7919)
        perm = torch.randperm(n, generator=gen)
        count = min(n, config.recalibration_batches * config.batch_size)
        idx = perm[:count].to(train[0].device)
        self.recal_x = train[0].index_select(0, idx)

    def evaluate(self, model: nn.Module, paths: Sequence[Path]) -> list[dict[str, float]]:
        """``{<split>_acc, <split>_loss}`` for each path, in order."""
        if self.config.retain_freed_memory and self.recal_x.device.type == "cpu":
            retain_freed_memory()
        if self.config.finetune_steps > 0:
            return [self._evaluate_finetuned(model, p, i) for i, p in enumerate(paths)]
        # Sorted, so that architectures batched together share long prefixes of decisions
        # (their early computations are then done once, see oracles.supernet.blocks).
        order = sorted(range(len(paths)), key=lambda i: tuple(paths[i]))
        out: list[dict[str, float]] = [{} for _ in paths]
        step = self.config.eval_batch_archs
        for start in range(0, len(order), step):
            chunk = order[start : start + step]
            for i, r in zip(chunk, self._evaluate_chunk(model, [paths[i] for i in chunk])):
                out[i] = r
        return out

    @torch.no_grad()
    def _evaluate_chunk(self, model: nn.Module, paths: list[Path]) -> list[dict[str, float]]:
        a = len(paths)
        # every supernet holds its BNContext as ``ctx``; nn.Module.__getattr__ is typed Tensor | Module
        ctx = cast(BNContext, model.ctx)
        was_training = model.training
        model.eval()
        try:
            # every split in one tensor; with recalibration the recalibration examples go
            # in front and the first pass both recalibrates and evaluates ("fused")
            names = list(self.splits)
            xs = torch.cat([self.splits[k][0] for k in names])
            ys = torch.cat([self.splits[k][1] for k in names])
            logits_parts = []
            size = self.config.eval_batch_size
            ctx.stats = {}
            for s in range(0, len(ys), size):
                xb = xs[s : s + size]
                if self.config.bn_recalibration and s == 0:
                    ctx.mode, ctx.recal_rows = "fused", len(self.recal_x)
                    out = model(_layout(torch.cat([self.recal_x, xb])), paths, shared=True)
                    logits_parts.append(out.reshape(a, len(self.recal_x) + len(xb), -1)[:, len(self.recal_x) :])
                else:
                    ctx.mode = "stored" if self.config.bn_recalibration else "plain"
                    logits_parts.append(model(_layout(xb), paths, shared=True).reshape(a, len(xb), -1))
            logits = torch.cat(logits_parts, dim=1)
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ys.repeat(a), reduction="none").reshape(a, -1)
            hit = (logits.argmax(-1) == ys.unsqueeze(0)).float()
            result: list[dict[str, float]] = [{} for _ in paths]
            start = 0
            for k in names:
                m = len(self.splits[k][1])
                acc = hit[:, start : start + m].mean(1).cpu()
                loss = ce[:, start : start + m].mean(1).cpu()
                for i in range(a):
                    result[i][f"{k}_acc"] = float(acc[i])
                    result[i][f"{k}_loss"] = float(loss[i])
                start += m
            return result
        finally:
            ctx.mode, ctx.stats = "plain", {}
            model.train(was_training)

    def _evaluate_finetuned(self, model: nn.Module, path: Path, index: int) -> dict[str, float]:
        tuned = copy.deepcopy(model)  # never the shared weights
        tuned.train()
        opt = torch.optim.SGD(tuned.parameters(), lr=self.config.finetune_lr, momentum=0.9)
        gen = torch.Generator().manual_seed(self.seed + 104729)  # same batches for every architecture
        x, y = self.train
        b = min(self.config.batch_size, len(y))
        for _ in range(self.config.finetune_steps):
            idx = torch.randperm(len(y), generator=gen)[:b].to(x.device)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(tuned(x.index_select(0, idx), [path]), y.index_select(0, idx)).backward()
            opt.step()
        return self._evaluate_chunk(tuned, [path])[0]


def _layout(x: torch.Tensor) -> torch.Tensor:
    """Images go channels-last: on CPU, convolutions and pooling over large batches of
    small feature maps run several times faster in that layout."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
