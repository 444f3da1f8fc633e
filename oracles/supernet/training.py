"""Supernet training: sampling rules, few-shot splitting, resumable epoch checkpoints.

Training runs in *stages*: stage 0 trains the parent supernet on the whole space;
with ``few_shot_splits = K`` stages 1..K each warm-start a copy of the parent and
train it on its part of the space (Zhao et al., 2021). The whole state (weights,
optimizer, scheduler, sampler and torch RNG, finished sub-supernets, recent
end-of-epoch snapshots) is written atomically at the end of every epoch, so a
killed training resumes at the last finished epoch and produces the same
weights as an uninterrupted one.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.spaces import Architecture, SearchSpace
from oracles.supernet.checkpoint import FORMAT, load_checked, save_atomic
from oracles.supernet.config import FEW_SHOT_FIELDS, SupernetConfig
from oracles.supernet.sampling import Sampler, make_sampler

_log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]


class FewShotPlan:
    """How the space is split into sub-supernets: by the options of some decisions.

    Args:
        space: The search space.
        splits: K, the number of sub-supernets (0: none).
        decisions: Decision indices to split on; ``None`` takes the first decisions
            whose option product reaches K.

    Raises:
        ValueError: naming ``supernet.few_shot_decisions`` / ``few_shot_splits`` when the split is impossible.
    """

    def __init__(self, space: SearchSpace, splits: int, decisions: Sequence[int] | None = None) -> None:
        self.k = int(splits)
        self.decisions: tuple[int, ...] = ()
        self.groups: list[list[tuple[int, ...]]] = []
        if self.k == 0:
            return
        n_dec = len(space.decisions)
        if decisions is None:
            chosen: list[int] = []
            product = 1
            for i, d in enumerate(space.decisions):
                if d.n > 1:
                    chosen.append(i)
                    product *= d.n
                if product >= self.k:
                    break
            decisions = chosen
        decisions = tuple(int(d) for d in decisions)
        bad = [d for d in decisions if not 0 <= d < n_dec]
        if bad:
            raise ValueError(f"supernet.few_shot_decisions {bad} out of range: the space has {n_dec} decisions")
        combos = list(itertools.product(*(range(space.decisions[d].n) for d in decisions)))
        if len(combos) < self.k:
            raise ValueError(
                f"supernet.few_shot_splits={self.k} exceeds the {len(combos)} option combinations of the split"
                f" decisions {[space.decisions[d].name for d in decisions]}"
            )
        self.decisions = decisions
        self.groups = [combos[i :: self.k] for i in range(self.k)]
        self._route = {c: i for i, g in enumerate(self.groups) for c in g}
        self.names = [space.decisions[d].name for d in decisions]

    def route(self, decisions: Sequence[int]) -> int:
        """Index of the sub-supernet that covers an architecture (0 without splits)."""
        if self.k == 0:
            return 0
        return self._route[tuple(decisions[d] for d in self.decisions)]

    def allowed(self, space: SearchSpace, group: int) -> list[list[int]]:
        """Per decision, the options sub-supernet ``group`` trains."""
        allowed = [list(range(d.n)) for d in space.decisions]
        for j, d in enumerate(self.decisions):
            allowed[d] = sorted({c[j] for c in self.groups[group]})
        return allowed

    def project(self, path: tuple[int, ...], group: int, rng: np.random.Generator) -> tuple[int, ...]:
        """Move a sampled path into ``group`` (a no-op for single-decision splits)."""
        combo = tuple(path[d] for d in self.decisions)
        if self._route[combo] == group:
            return path
        pick = self.groups[group][int(rng.integers(len(self.groups[group])))]
        out = list(path)
        for j, d in enumerate(self.decisions):
            out[d] = pick[j]
        return tuple(out)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description."""
        groups = [[list(c) for c in g] for g in self.groups]
        return {"splits": self.k, "decisions": list(self.decisions), "groups": groups}


def _progress(total: int, desc: str) -> Any:
    """A tqdm bar on a terminal; ``None`` (plain log lines per epoch) otherwise."""
    if not sys.stdout.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


class SupernetTrainer:
    """Trains one supernet (and its few-shot sub-supernets), resumable from an epoch checkpoint.

    Args:
        build: Builds a fresh supernet module (same structure each call).
        space: The search space.
        config: Supernet settings.
        train: Training ``(X, y)`` tensors (already on ``device``).
        seed: Seed of weight init, batch order and path sampling.
        meta: Metadata stored in, and checked against, the checkpoint.
        checkpoint: Where to save after every epoch (``None``: keep in memory only).
        parent_checkpoint: A finished one-shot checkpoint with the same parent settings,
            used as the parent of a few-shot training instead of training it again.
        device: Torch device.
    """

    def __init__(
        self,
        build: Callable[[], nn.Module],
        space: SearchSpace,
        config: SupernetConfig,
        train: tuple[torch.Tensor, torch.Tensor],
        seed: int,
        meta: Mapping[str, Any],
        checkpoint: str | Path | None = None,
        parent_checkpoint: str | Path | None = None,
        parent_meta: Mapping[str, Any] | None = None,
        device: torch.device | None = None,
        ordered: bool = False,
    ) -> None:
        self.build = build
        self.ordered = bool(ordered)
        self.space = space
        self.config = config
        self.x, self.y = train
        self.seed = int(seed)
        self.meta = dict(meta)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.parent_checkpoint = Path(parent_checkpoint) if parent_checkpoint is not None else None
        self.parent_meta = dict(parent_meta) if parent_meta is not None else None
        self.device = device or torch.device("cpu")
        self.plan = FewShotPlan(space, config.few_shot_splits, config.few_shot_decisions)
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0

    # -- stages -------------------------------------------------------------
    @property
    def stages(self) -> list[str]:
        """Unit names in training order: ``parent``, then ``split0`` .. ``split{K-1}``."""
        return ["parent"] + [f"split{i}" for i in range(self.plan.k)]

    def _epochs(self, stage: int) -> int:
        return self.config.epochs if stage == 0 else self.config.few_shot_epochs

    def _sampler(self, stage: int) -> Sampler:
        allowed = (
            [list(range(d.n)) for d in self.space.decisions] if stage == 0 else self.plan.allowed(self.space, stage - 1)
        )
        return make_sampler(self.config.sampling, allowed, self.seed * 1000 + stage, self.ordered,
                            self.config.sandwich_random)

    def _optim(self, model: nn.Module, stage: int) -> tuple[torch.optim.Optimizer, Any]:
        cfg = self.config
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for name, p in model.named_parameters():
            (no_decay if p.dim() <= 1 or name.endswith(".bias") else decay).append(p)
        lr = cfg.lr if stage == 0 else cfg.lr * 0.5
        opt = torch.optim.SGD(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
        )
        steps = max(1, self._epochs(stage) * self._steps_per_epoch())
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        return opt, sched

    def _steps_per_epoch(self) -> int:
        n, b = len(self.y), self.config.batch_size
        return max(1, n // b) if n >= b else 1

    # -- main ---------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train (or resume, or load) and return ``{"units": {name: state}, "snapshots": {...}, ...}``.

        The result's units are the final one-shot supernet (``parent``) and, with
        few-shot splitting, the sub-supernets ``split0..``.
        """
        state = self._load()
        if state is not None and state.get("done"):
            self.history = list(state.get("history", []))
            self.seconds = float(state.get("seconds", 0.0))
            return state
        if state is None and self.plan.k and self.parent_checkpoint is not None and self.parent_checkpoint.exists():
            state = self._state_from_parent()
        if state is None:
            state = self._fresh_state()
        self.history = list(state.get("history", []))
        self.seconds = float(state.get("seconds", 0.0))
        while not state["done"]:
            state = self._train_stage(state)
        return state

    def _fresh_state(self) -> dict[str, Any]:
        # Weight init draws from torch's default generator: fork it so the caller's state is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.build()
        gen = torch.Generator().manual_seed(self.seed)
        return {
            "format": FORMAT, "meta": self.meta, "stage": 0, "epoch": 0, "done": False,
            "model": model.state_dict(), "optimizer": None, "scheduler": None, "sampler": None,
            "torch_rng": gen.get_state(), "units": {}, "snapshots": {}, "recent": [], "history": [],
            "seconds": 0.0,
        }

    def _state_from_parent(self) -> dict[str, Any] | None:
        assert self.parent_checkpoint is not None and self.parent_meta is not None
        ignore = [f"supernet.{k}" for k in FEW_SHOT_FIELDS]
        parent = load_checked(self.parent_checkpoint, self.parent_meta, ignore=ignore)
        if parent["meta"].get("supernet", {}).get("few_shot_splits"):
            raise ValueError(f"parent_checkpoint {self.parent_checkpoint} is itself a few-shot supernet")
        if not parent.get("done"):
            _log.info("parent checkpoint %s is not finished: training the parent here", self.parent_checkpoint)
            return None
        _log.info("few-shot supernet: parent taken from %s", self.parent_checkpoint)
        state = self._fresh_state()
        state.update(
            stage=1, epoch=0, model=parent["units"]["parent"],
            units={"parent": parent["units"]["parent"]},
            snapshots={"parent": parent["snapshots"].get("parent", [])},
            history=list(parent.get("history", [])), seconds=float(parent.get("seconds", 0.0)),
        )
        return state

    def _load(self) -> dict[str, Any] | None:
        if self.checkpoint is None or not self.checkpoint.exists():
            return None
        state = load_checked(self.checkpoint, self.meta)
        _log.info(
            "supernet checkpoint %s: %s", self.checkpoint,
            "finished" if state.get("done") else f"resuming stage {state['stage']} after epoch {state['epoch']}",
        )
        return state

    def _train_stage(self, state: dict[str, Any]) -> dict[str, Any]:
        stage = int(state["stage"])
        name = self.stages[stage]
        epochs = self._epochs(stage)
        model = self.build().to(self.device)
        model.load_state_dict(state["model"])
        model.train()
        opt, sched = self._optim(model, stage)
        sampler = self._sampler(stage)
        if state["optimizer"] is not None:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            sampler.load_state_dict(state["sampler"])
        gen = torch.Generator()
        gen.set_state(state["torch_rng"])
        project_rng = np.random.default_rng([self.seed, stage])
        recent: list[StateDict] = list(state.get("recent", []))
        bar = _progress((epochs - state["epoch"]) * self._steps_per_epoch(), f"supernet {name}")
        try:
            for epoch in range(int(state["epoch"]), epochs):
                start = time.monotonic()
                loss_sum, correct, seen = self._epoch(model, opt, sched, sampler, gen, stage, project_rng, bar)
                seconds = time.monotonic() - start
                self.seconds += seconds
                record = {"unit": name, "epoch": epoch + 1, "loss": loss_sum / max(seen, 1),
                          "acc": correct / max(seen, 1), "seconds": seconds}
                self.history.append(record)
                if bar is None:
                    _log.info("supernet %s epoch %d/%d: loss %.4f, train acc %.3f (%.1f s)",
                              name, epoch + 1, epochs, record["loss"], record["acc"], seconds)
                done_stage = epoch + 1 == epochs
                weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                if not done_stage:
                    if epochs - (epoch + 1) < self.config.keep_last_epochs:
                        recent = [*recent, weights][-(self.config.keep_last_epochs - 1):]
                    state = {**state, "epoch": epoch + 1, "model": weights, "optimizer": opt.state_dict(),
                             "scheduler": sched.state_dict(), "sampler": sampler.state_dict(),
                             "torch_rng": gen.get_state(), "recent": recent, "history": self.history,
                             "seconds": self.seconds}
                else:
                    self._warn_if_chance(name, record)
                    units = {**state["units"], name: weights}
                    snapshots = {**state["snapshots"], name: recent[-(self.config.keep_last_epochs - 1):]
                                 if self.config.keep_last_epochs > 1 else []}
                    nxt = stage + 1
                    done = nxt >= len(self.stages)
                    fresh_gen = torch.Generator().manual_seed(self.seed * 1000 + nxt)
                    state = {**state, "stage": nxt, "epoch": 0, "done": done,
                             "model": units["parent"], "optimizer": None, "scheduler": None, "sampler": None,
                             "torch_rng": fresh_gen.get_state(), "units": units, "snapshots": snapshots,
                             "recent": [], "history": self.history, "seconds": self.seconds}
                if self.checkpoint is not None:
                    self._save(state)
        finally:
            if bar is not None:
                bar.close()
        return state

    def _warn_if_chance(self, name: str, record: Mapping[str, Any]) -> None:
        """Warn when a stage ends no better than always predicting the most frequent class.

        Gradient clipping keeps a far too large learning rate from producing NaNs, so
        such a supernet "trains" to the end and would score every architecture at
        chance level: a gap measured or a search run on it is meaningless.
        """
        majority = float(torch.bincount(self.y.flatten().long()).max()) / max(len(self.y), 1)
        if record["acc"] <= majority + 0.02:
            _log.warning(
                "supernet %s ended at training accuracy %.3f, no better than always predicting the most frequent"
                " class (%.3f): it has not learned; lower supernet.lr (now %g) or train more epochs",
                name, record["acc"], majority, self.config.lr,
            )

    def _save(self, state: dict[str, Any]) -> None:
        """Write the epoch checkpoint (a data-parallel trainer writes it from rank 0 only)."""
        assert self.checkpoint is not None
        save_atomic(state, self.checkpoint)

    def _epoch(
        self, model: nn.Module, opt: torch.optim.Optimizer, sched: Any, sampler: Sampler, gen: torch.Generator,
        stage: int, project_rng: np.random.Generator, bar: Any,
    ) -> tuple[float, int, int]:
        n, b = len(self.y), self.config.batch_size
        perm = torch.randperm(n, generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        for s in range(self._steps_per_epoch()):
            idx = perm[s * b : (s + 1) * b].to(self.device)
            xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            paths = sampler.step()
            if stage > 0:
                paths = [self.plan.project(p, stage - 1, project_rng) for p in paths]
            opt.zero_grad(set_to_none=True)
            for path in paths:  # FairNAS / sandwich: gradients of all paths accumulate, one update
                logits = model(xb, [path])
                loss = F.cross_entropy(logits, yb)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"supernet training diverged (loss {loss.item()}) in stage {stage}")
                loss.backward()
                loss_sum += loss.item() * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
                seen += len(yb)
            if self.config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip)
            opt.step()
            sched.step()
            if bar is not None:
                bar.update(1)
        return loss_sum, correct, seen


def route_all(plan: FewShotPlan, archs: Sequence[Architecture]) -> list[int]:
    """Sub-supernet index of each architecture (0 everywhere without splits)."""
    return [plan.route(a.decisions) for a in archs]


def unit_name(plan: FewShotPlan, index: int) -> str:
    """The unit evaluating architectures routed to ``index``."""
    return "parent" if plan.k == 0 else f"split{index}"
