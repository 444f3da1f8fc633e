"""Data-parallel supernet training under ``torchrun`` (DistributedDataParallel).

    torchrun --standalone --nproc_per_node=2 -m oracles.supernet.ddp --output-dir runs/sn \\
        space=nb201 dataset=mnist1d supernet.epochs=30 tracker=wandb

Every rank holds the (small) training set and draws the same batch order and the
same sampled paths from the same seeds; each takes its share of every batch
(``batch[rank::world_size]``) and DDP averages the gradients, so one step sees the
same global batch as a single process would. Gloo on CPU, NCCL on GPUs (one GPU per
rank, ``LOCAL_RANK``). Rank 0 alone writes the checkpoint (the same resumable
``supernet.pt`` a single process writes, so ``oracle=supernet
oracle.checkpoint=runs/sn/supernet.pt`` then loads it), ``supernet_train.json`` and
the W&B run (``job_type=supernet_train``); the other ranks wait at a barrier after
each save, so a resumed run restarts every rank from the same epoch.

The only difference from one process is BatchNorm during training: each rank
normalizes its share of the batch with its own statistics (the weights inherited
by sub-networks are recalibrated per architecture at evaluation anyway).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from oracles.supernet.sampling import Sampler
from oracles.supernet.training import SupernetTrainer

_log = logging.getLogger(__name__)


def init_distributed() -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)`` from torchrun's environment; a process group when world_size > 1."""
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return rank, world, torch.device(f"cuda:{local}") if cuda else torch.device("cpu")


class _AllPaths(nn.Module):
    """One forward over every sampled path, so DDP sees one forward and one backward per step.

    FairNAS and sandwich sampling train several paths per step; DDP cannot take
    several forwards before a backward, so the paths run inside one forward and
    their losses are summed (the gradient of the sum is the sum of the gradients
    a single process accumulates path by path).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, paths: Sequence[Any]) -> list[torch.Tensor]:
        return [self.net(x, [p]) for p in paths]


class DistributedSupernetTrainer(SupernetTrainer):
    """:class:`SupernetTrainer` whose epochs run data-parallel across the ranks of a process group.

    Args:
        *args: As :class:`SupernetTrainer`.
        rank: This process's rank.
        world_size: Number of processes.
        **kwargs: As :class:`SupernetTrainer`.
    """

    def __init__(self, *args: Any, rank: int = 0, world_size: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rank = rank
        self.world_size = world_size
        self._wrapped: tuple[int, nn.Module] | None = None

    def _ddp(self, model: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return _AllPaths(model)
        if self._wrapped is None or self._wrapped[0] != id(model):
            ids = [self.device.index] if self.device.type == "cuda" else None
            # Single-path training leaves most operations unused in a step: DDP must not wait for their gradients.
            self._wrapped = (id(model), DistributedDataParallel(_AllPaths(model), device_ids=ids,
                                                                 find_unused_parameters=True))
        return self._wrapped[1]

    def _save(self, state: dict[str, Any]) -> None:
        if self.rank == 0:
            super()._save(state)
        if self.world_size > 1:
            dist.barrier()

    def _epoch(
        self, model: nn.Module, opt: torch.optim.Optimizer, sched: Any, sampler: Sampler, gen: torch.Generator,
        stage: int, project_rng: np.random.Generator, bar: Any,
    ) -> tuple[float, int, int]:
        ddp = self._ddp(model)
        n, b = len(self.y), self.config.batch_size
        perm = torch.randperm(n, generator=gen)  # the same on every rank: same generator state
        loss_sum, correct, seen = 0.0, 0, 0
        for s in range(self._steps_per_epoch()):
            idx = perm[s * b : (s + 1) * b][self.rank :: self.world_size].to(self.device)
            xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            paths = sampler.step()  # the same on every rank: same sampler seed and state
            if stage > 0:
                paths = [self.plan.project(p, stage - 1, project_rng) for p in paths]
            opt.zero_grad(set_to_none=True)
            outputs = ddp(xb, paths)
            losses = [F.cross_entropy(logits, yb) for logits in outputs]
            total = torch.stack(losses).sum()
            if not torch.isfinite(total):
                raise FloatingPointError(f"supernet training diverged (loss {total.item()}) in stage {stage}")
            total.backward()
            for logits, loss in zip(outputs, losses):
                loss_sum += loss.item() * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
                seen += len(yb)
            if self.config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip)
            opt.step()
            sched.step()
            if bar is not None:
                bar.update(1)
        if self.world_size > 1:  # the epoch's loss and accuracy over the whole data, as one process reports them
            t = torch.tensor([loss_sum, float(correct), float(seen)], dtype=torch.float64)
            dist.all_reduce(t)
            loss_sum, correct, seen = float(t[0]), int(t[1]), int(t[2])
        return loss_sum, correct, seen


def main(argv: Sequence[str] | None = None) -> int:
    """Train the supernet of ``oracle=supernet`` data-parallel; rank 0 writes the outputs."""
    from hydra import compose, initialize_config_dir

    from engine.cli import config_dir
    from engine.runner import build_space
    from engine.tracking import open_tracking
    from oracles.supernet.oracle import CHECKPOINT_NAME, SupernetOracle

    ap = argparse.ArgumentParser(prog="python -m oracles.supernet.ddp", description=__doc__.split("\n")[0])
    ap.add_argument("--output-dir", required=True, help="where supernet.pt, supernet_train.json and wandb/ go")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides of the nas-search config (oracle=supernet implied)")
    args = ap.parse_args(argv)
    rank, world, device = init_distributed()
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base=None):
            cfg = compose("config", overrides=["oracle=supernet", *args.overrides])
        out = Path(args.output_dir)
        space = build_space(cfg)
        node = cfg.oracle
        seed = int(cfg.seed) if node.get("seed") is None else int(node.seed)
        checkpoint = node.get("checkpoint") or out / CHECKPOINT_NAME
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
        from omegaconf import OmegaConf

        plain = OmegaConf.to_container(node, resolve=True)
        assert isinstance(plain, dict)
        oracle = SupernetOracle(
            space, dataset=plain["dataset"], supernet=plain["supernet"], seed=seed, checkpoint=checkpoint,
            parent_checkpoint=plain.get("parent_checkpoint"), latency_table=plain.get("latency_table"),
        )
        oracle.device = device
        oracle.trainer_factory = lambda *a, **k: DistributedSupernetTrainer(*a, rank=rank, world_size=world, **k)
        session = (
            open_tracking(cfg, out, job_type="supernet_train", extra_artifacts=["supernet_train.json"])
            if rank == 0 else None
        )
        if session is not None:
            session.progress = None
            session.callbacks = []
        try:
            if session is not None and session.tracker is not None:
                session.tracker.start()  # before training: a crash mid-training leaves a failed run, not none
            oracle.prepare()
            if rank == 0:
                result = {"world_size": world, "checkpoint": str(checkpoint), "seconds": oracle.training_seconds,
                          "history": oracle.history, "seed": seed, "space": space.name}
                tmp = out / "supernet_train.json.tmp"
                tmp.write_text(json.dumps(result, indent=1))
                tmp.replace(out / "supernet_train.json")
                if session is not None and session.tracker is not None:
                    for i, rec in enumerate(oracle.history, start=1):
                        session.tracker.log({"epoch": i, **{k: v for k, v in rec.items() if k != "unit"}})
                    session.tracker.update_summary({"world_size": world, "training_seconds": oracle.training_seconds})
                    session.log_outputs()
        except BaseException as exc:
            if session is not None:
                session.close(exc)
            raise
        if session is not None:
            session.close()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
