"""Supernet settings (the ``supernet`` config group), validated before anything trains."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oracles.supernet.sampling import SAMPLING_RULES

# Fields that change only how a trained supernet is *evaluated*: a checkpoint
# trained with other values of these is still the same supernet.
EVAL_ONLY_FIELDS = frozenset(
    {
        "bn_recalibration",
        "recalibration_batches",
        "finetune_steps",
        "finetune_lr",
        "eval_batch_archs",
        "eval_batch_size",
        "measure_latency",
        "latency_batch_size",
        "device",
        "num_threads",
        "retain_freed_memory",
    }
)
# Fields of the few-shot stage only: the parent supernet does not depend on them.
FEW_SHOT_FIELDS = frozenset({"few_shot_splits", "few_shot_decisions", "few_shot_epochs"})


@dataclass(frozen=True)
class SupernetConfig:
    """How the supernet is built, trained and evaluated.

    Attributes:
        sampling: ``uniform`` (SPOS), ``fair`` (FairNAS) or ``sandwich`` (chain only).
        sandwich_random: Random paths per sandwich step besides the largest and smallest.
        epochs: Training epochs of the (parent) supernet.
        batch_size: Training mini-batch size.
        lr: Initial SGD learning rate (cosine schedule to 0).
        momentum: SGD momentum (Nesterov).
        weight_decay: L2 weight decay.
        grad_clip: Gradient-norm clip per update (0: none).
        few_shot_splits: K > 1 splits the trained supernet into K sub-supernets (0: one-shot).
        few_shot_decisions: Decision indices to split on (``None``: the first decisions
            whose option product reaches K).
        few_shot_epochs: Training epochs of each sub-supernet after the split.
        bn_recalibration: Recompute BatchNorm statistics per sub-network before evaluating it.
        recalibration_batches: Training batches (of ``batch_size``) used to recalibrate.
        finetune_steps: SGD steps on a copy of the weights before evaluating (0: none).
        finetune_lr: Learning rate of those steps.
        eval_batch_archs: Architectures evaluated together in one batched forward.
        eval_batch_size: Examples per architecture per evaluation forward.
        keep_last_epochs: End-of-epoch weights kept (final included) for rank stability across epochs.
        measure_latency: Measure each sub-network's latency (else only params and FLOPs).
        latency_batch_size: Batch size of the latency measurement.
        model: Options of the network skeleton (width, cells per stage...), passed to the model builder.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        num_threads: torch CPU threads while training and evaluating (``None``: leave torch's
            setting). 1 by default: these small networks gain little from intra-op threads,
            and on a busy machine extra threads spin and slow everything down several-fold.
        retain_freed_memory: On CPU with glibc, keep freed memory for reuse instead of
            returning it to the OS (process-wide, see
            :func:`oracles.supernet.evaluation.retain_freed_memory`): batched evaluation
            allocates and frees hundreds of megabytes per chunk, and every fresh page
            faults; the resident set then stays at its peak.
    """

    sampling: str = "uniform"
    sandwich_random: int = 2
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 5.0
    few_shot_splits: int = 0
    few_shot_decisions: tuple[int, ...] | None = None
    few_shot_epochs: int = 10
    bn_recalibration: bool = True
    recalibration_batches: int = 4
    finetune_steps: int = 0
    finetune_lr: float = 0.01
    eval_batch_archs: int = 16
    eval_batch_size: int = 1024
    keep_last_epochs: int = 3
    measure_latency: bool = True
    latency_batch_size: int = 1
    model: Mapping[str, Any] = field(default_factory=dict)
    device: str = "auto"
    num_threads: int | None = 1
    retain_freed_memory: bool = True

    def __post_init__(self) -> None:
        def bad(key: str, want: str, got: Any) -> ValueError:
            return ValueError(f"supernet.{key} must be {want}, got {got!r}")

        if self.sampling not in SAMPLING_RULES:
            raise bad("sampling", f"one of {list(SAMPLING_RULES)}", self.sampling)
        for key in ("epochs", "batch_size", "eval_batch_archs", "eval_batch_size", "keep_last_epochs",
                    "latency_batch_size"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(key, "a positive integer", v)
        for key in ("sandwich_random", "few_shot_splits", "few_shot_epochs", "recalibration_batches",
                    "finetune_steps"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(key, "a non-negative integer", v)
        if self.few_shot_splits == 1:
            raise bad("few_shot_splits", "0 (one-shot) or at least 2", 1)
        for key in ("lr", "finetune_lr"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise bad(key, "a positive number", v)
        for key in ("momentum", "weight_decay", "grad_clip"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise bad(key, "a non-negative number", v)
        for key in ("bn_recalibration", "retain_freed_memory"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "true or false", getattr(self, key))
        if self.bn_recalibration and self.recalibration_batches < 1:
            raise bad("recalibration_batches", ">= 1 when bn_recalibration is true", self.recalibration_batches)
        if self.num_threads is not None and (
            isinstance(self.num_threads, bool) or not isinstance(self.num_threads, int) or self.num_threads < 1
        ):
            raise bad("num_threads", "null or a positive integer", self.num_threads)
        if self.device not in ("auto", "cpu", "cuda"):
            raise bad("device", "auto, cpu or cuda", self.device)
        if self.few_shot_decisions is not None:
            decs = tuple(self.few_shot_decisions)
            if not decs or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in decs):
                raise bad("few_shot_decisions", "null or a non-empty list of decision indices", self.few_shot_decisions)
            object.__setattr__(self, "few_shot_decisions", decs)
        if not isinstance(self.model, Mapping):
            raise bad("model", "a mapping of model options", self.model)
        object.__setattr__(self, "model", dict(self.model))

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | SupernetConfig | None) -> SupernetConfig:
        """Build from a config mapping, naming unknown keys.

        Raises:
            ValueError: for an unknown key or a bad value (the message names ``supernet.<key>``).
        """
        if isinstance(options, SupernetConfig):
            return options
        options = dict(options or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ValueError(f"supernet has no option(s) {unknown}; options are {sorted(names)}")
        if "model" in options and options["model"] is None:
            options["model"] = {}
        if options.get("few_shot_decisions") is not None:
            options["few_shot_decisions"] = tuple(options["few_shot_decisions"])
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        """Plain-types dictionary (JSON- and checkpoint-safe)."""
        out = dataclasses.asdict(self)
        out["few_shot_decisions"] = list(self.few_shot_decisions) if self.few_shot_decisions is not None else None
        out["model"] = dict(self.model)
        return out

    def training_identity(self) -> dict[str, Any]:
        """The fields a trained supernet depends on (stored in, and checked against, checkpoints)."""
        return {k: v for k, v in self.to_dict().items() if k not in EVAL_ONLY_FIELDS}

    def parent_identity(self) -> dict[str, Any]:
        """The fields the parent (pre-split) supernet depends on: few-shot settings excluded."""
        return {k: v for k, v in self.training_identity().items() if k not in FEW_SHOT_FIELDS}

    def replace(self, **changes: Any) -> SupernetConfig:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)
