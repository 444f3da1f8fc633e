"""Stand-alone oracle: trains each architecture from scratch and reports its validation accuracy.

This is the ground truth a supernet's inherited accuracy is judged against. API:

- :class:`StandaloneOracle` ``(space, dataset, epochs, optimizer, lr, schedule, batch_size,
  weight_decay, seed, model, executor, device, hardware)``: ``evaluate(archs)`` trains one
  network per architecture. ``objective`` and ``metrics['val_acc']`` are validation accuracy
  (a fraction in [0, 1]); metrics also hold ``val_loss``, ``train_loss`` (mean of the last
  epoch), ``train_acc``, ``params``, ``flops`` and ``latency_ms``; ``test_acc`` is a
  report-only metric (``Evaluation.reported``) that no strategy ever sees, measured after
  the full training only (a shorter rung reports none). ``cost`` is
  the seconds the job took.
- :func:`train_job` ``(job: dict) -> dict``: one training, a picklable top-level function
  of plain inputs, so that any executor (in-process, process pool, Ray) can run it.
- :func:`job_seed` ``(seed, arch_string) -> int``: each job's seed, a pure function of the
  oracle seed and the architecture: a result never depends on batch composition, order
  or executor.
- Each job also carries ``threads``, the executor's torch thread count (``executor.threads``,
  1 by default in every executor), and :func:`train_job` trains with exactly that many: CPU
  kernels split reductions by thread count, so this is what makes a result bit-identical
  whether the job ran in this process, a worker process or a Ray task.

A run whose loss becomes NaN, infinite or larger than ``max_loss`` stops at once and becomes a failed evaluation
carrying the epoch, step and loss, never a crashed search.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.spaces import Architecture, SearchSpace
from engine.types import DEFAULT_FIDELITY, Evaluation
from oracles.accel import Accel, ResolvedAccel
from oracles.data import Dataset, dataset_from_config
from oracles.executors import (
    DEFAULT_THREADS,
    Executor,
    LocalExecutor,
    executor_threads,
    make_executor,
    start_executor,
    torch_threads,
)
from oracles.hardware import HardwareCost
from oracles.models import build_model, model_options_for, resolve_device

__all__ = ["Recipe", "StandaloneOracle", "evaluate_accuracy", "job_seed", "train_job", "train_model"]

_log = logging.getLogger(__name__)

_OPTIMIZERS = ("sgd", "adam")
_SCHEDULES = ("cosine", "constant")


def job_seed(seed: int, arch_string: str) -> int:
    """A 63-bit seed derived from the oracle seed and the architecture string."""
    digest = hashlib.sha256(f"{int(seed)}|{arch_string}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class Recipe(dict):
    """A training recipe, checked once where it is configured.

    Keys: ``epochs``, ``optimizer`` (sgd/adam), ``lr``, ``momentum``, ``schedule``
    (cosine/constant), ``batch_size``, ``weight_decay``, ``label_smoothing``, ``max_loss``.

    Raises:
        ValueError: naming the offending ``oracle.<key>``.
    """

    def __init__(
        self,
        epochs: int = 10,
        optimizer: str = "sgd",
        lr: float = 0.05,
        momentum: float = 0.9,
        schedule: str = "cosine",
        batch_size: int = 64,
        weight_decay: float = 5e-4,
        label_smoothing: float = 0.0,
        max_loss: float = 1e3,
    ) -> None:
        for key, n in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"oracle.{key} must be a positive integer, got {n!r}")
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"oracle.optimizer must be one of {list(_OPTIMIZERS)}, got {optimizer!r}")
        if schedule not in _SCHEDULES:
            raise ValueError(f"oracle.schedule must be one of {list(_SCHEDULES)}, got {schedule!r}")
        for key, v in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"oracle.{key} must be a finite non-negative number, got {v!r}")
        if lr == 0:
            raise ValueError("oracle.lr must be > 0")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"oracle.label_smoothing must lie in [0, 1), got {label_smoothing!r}")
        if isinstance(max_loss, bool) or not isinstance(max_loss, (int, float)) or not max_loss > 0:
            raise ValueError(f"oracle.max_loss must be a positive number, got {max_loss!r}")
        super().__init__(
            epochs=epochs,
            optimizer=optimizer,
            lr=float(lr),
            momentum=float(momentum),
            schedule=schedule,
            batch_size=batch_size,
            weight_decay=float(weight_decay),
            label_smoothing=float(label_smoothing),
            max_loss=float(max_loss),
        )


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` of ``model`` on ``(x, y)`` in eval mode."""
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(y), batch_size):
        out = model(x[i : i + batch_size])
        loss += float(nn.functional.cross_entropy(out, y[i : i + batch_size], reduction="sum"))
        correct += int((out.argmax(1) == y[i : i + batch_size]).sum())
    model.train(was_training)
    return correct / len(y), loss / len(y)


def _make_optimizer(model: nn.Module, recipe: Mapping[str, Any]) -> torch.optim.Optimizer:
    if recipe["optimizer"] == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=recipe["lr"], momentum=recipe["momentum"],
            weight_decay=recipe["weight_decay"], nesterov=recipe["momentum"] > 0,
        )
    return torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])


def train_model(
    model: nn.Module,
    ds: Dataset,
    recipe: Mapping[str, Any],
    seed: int,
    dev: torch.device,
    epochs: int | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    accel: ResolvedAccel | None = None,
) -> tuple[float, float]:
    """Train ``model`` (already on ``dev``) in place with ``recipe`` on ``ds.train``.

    The learning-rate schedule always spans ``recipe['epochs']``, so training to fewer
    ``epochs`` and continuing later from the :data:`checkpoint <on_epoch>` ends exactly
    where one uninterrupted training does: weights, optimizer, schedule and both random
    generators are part of the checkpoint. The batch order comes from a generator seeded
    with ``seed``; the global generator (dropout, if a model has it) is seeded with it too,
    inside a fork, so the caller's random state is left as it was.

    Args:
        epochs: Train until this many epochs are done (``None``: ``recipe['epochs']``).
        checkpoint: A state passed to ``on_epoch`` by an earlier call: its weights, optimizer,
            schedule and generators are restored and training continues from its epoch.
        on_epoch: Called after every epoch with the state to continue from (plain tensors
            and numbers, loadable with ``torch.load(..., weights_only=True)``).
        accel: GPU options resolved for ``dev`` (:mod:`oracles.accel`); ``None`` is plain fp32
            training with the data on ``dev``, what every option's ``auto`` gives on CPU.

    Returns:
        ``(mean training loss, training accuracy)`` of the last epoch.

    Raises:
        TrainingDiverged: when the loss becomes NaN, infinite or larger than ``recipe['max_loss']``.
        ValueError: when ``epochs`` is beyond the recipe or before the checkpoint.
    """
    total_epochs = int(recipe["epochs"])
    target = total_epochs if epochs is None else int(epochs)
    start_epoch = int(checkpoint["epoch"]) if checkpoint is not None else 0
    if not start_epoch <= target <= total_epochs:
        raise ValueError(
            f"cannot train to {target} epochs from a checkpoint at {start_epoch} with a recipe of {total_epochs}"
        )
    acc = accel or ResolvedAccel(bf16=False, channels_last=False, compile=False, data_on_device=True)
    gen = torch.Generator().manual_seed(seed)
    if acc.data_on_device:
        x, y = (t.to(dev) for t in ds.train)
    else:  # batches are copied from pinned host memory, overlapping the copy with compute
        x, y = (t.pin_memory() if dev.type == "cuda" else t for t in ds.train)
    if acc.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if acc.compile else model  # shares the parameters; state_dict stays plain
    n, bs = len(y), int(recipe["batch_size"])
    steps_per_epoch = max(1, math.ceil(n / bs))
    opt = _make_optimizer(model, recipe)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, total_epochs * steps_per_epoch)
        if recipe["schedule"] == "cosine" else None
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.get("label_smoothing", 0.0))
    max_loss = float(recipe.get("max_loss", math.inf))
    epoch_loss, epoch_acc = math.nan, math.nan
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        if checkpoint is not None:
            model.load_state_dict(checkpoint["model"])
            opt.load_state_dict(checkpoint["optimizer"])
            if sched is not None:
                sched.load_state_dict(checkpoint["scheduler"])
            gen.set_state(checkpoint["generator"])
            torch.set_rng_state(checkpoint["rng"])
            epoch_loss, epoch_acc = float(checkpoint["train_loss"]), float(checkpoint["train_acc"])
        model.train()
        for epoch in range(start_epoch, target):
            perm = torch.randperm(n, generator=gen).to(dev if acc.data_on_device else "cpu")
            loss_sum, correct = 0.0, 0
            for step in range(steps_per_epoch):
                idx = perm[step * bs : (step + 1) * bs]
                xb, yb = x[idx].to(dev, non_blocking=True), y[idx].to(dev, non_blocking=True)
                with acc.autocast(dev):
                    out = forward(xb)
                loss = loss_fn(out.float(), yb)
                value = float(loss.detach())
                # BatchNorm keeps a blown-up network finite, so a huge loss counts as divergence too.
                if not math.isfinite(value) or value > max_loss:
                    raise TrainingDiverged(
                        f"training diverged: loss {value:.4g} at epoch {epoch + 1}, step {step + 1}"
                        f" (oracle.max_loss={max_loss:g})"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                loss_sum += value * len(idx)
                correct += int((out.argmax(1) == yb).sum())
            epoch_loss, epoch_acc = loss_sum / n, correct / n
            if on_epoch is not None:
                on_epoch({
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "generator": gen.get_state(),
                    "rng": torch.get_rng_state(),
                    "train_loss": epoch_loss,
                    "train_acc": epoch_acc,
                })
    return epoch_loss, epoch_acc


def train_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """Train one architecture (from scratch, or on from its checkpoint) and measure it.

    Args:
        job: ``space`` (a SearchSpace), ``arch`` (canonical string), ``dataset`` (a
            config mapping or a :class:`~oracles.data.Dataset`), ``model`` (model
            options), ``recipe`` (a :class:`Recipe` as a dict), ``seed``, ``device``,
            ``hardware`` (options of :class:`~oracles.hardware.HardwareCost`), ``threads``
            (torch intra-op threads for the job; the caller's count is restored afterwards),
            and optionally ``epochs`` (train to this many, default the recipe's) and
            ``checkpoint`` (a file path: a training found there at no more than ``epochs`` is
            continued, and the state is written there after every epoch, so a killed job
            continues from its last epoch; removed once the recipe's full epochs are done).

    Returns:
        ``{"metrics": {...}, "reported": {"test_acc": ...}, "seconds": float}``.

    Raises:
        TrainingDiverged: when the loss becomes NaN or infinite.
    """
    # The thread count is part of what fixes the result (see the module docstring), so the job sets it
    # itself rather than trusting whatever the process it landed in was left with.
    with torch_threads(int(job.get("threads", DEFAULT_THREADS))):
        return _train_job(job)


def _load_checkpoint(path: str | None, target: int) -> tuple[dict[str, Any] | None, bool]:
    """The checkpoint at ``path`` if it can be continued to ``target`` epochs, and whether to write ``path``.

    A file that holds a longer training than ``target`` is left alone (a later promotion
    continues it); an unreadable one, cut by a kill, is overwritten.
    """
    if path is None:
        return None, False
    if not os.path.exists(path):
        return None, True
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a file cut by a kill is not worth a failed evaluation: train from scratch
        _log.warning("ignoring unreadable checkpoint %s (%s): training from scratch", path, exc)
        return None, True
    if int(state["epoch"]) > target:
        return None, False
    return state, True


def _save_checkpoint(path: str, state: Mapping[str, Any]) -> None:
    """Write ``state`` so that a kill at any moment leaves the previous file or the new one, whole."""
    tmp = f"{path}.{os.getpid()}.tmp"
    torch.save(dict(state), tmp)
    os.replace(tmp, path)


def _train_job(job: Mapping[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    space: SearchSpace = job["space"]
    arch = space.parse(job["arch"])
    ds = dataset_from_config(job["dataset"])
    recipe = job["recipe"]
    target = int(job.get("epochs") or recipe["epochs"])
    dev = resolve_device(job.get("device", "auto"))
    seed = job_seed(job["seed"], arch.string)
    path = job.get("checkpoint")
    ckpt, keep = _load_checkpoint(path, target)
    # Module initialisation draws from torch's global generator; fork_rng restores it afterwards,
    # so the seed fixes the initial weights without touching anyone else's random state.
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        model = build_model(space, arch, ds.input_shape, ds.num_classes, **job.get("model", {})).to(dev)
    done = int(ckpt["epoch"]) if ckpt is not None else 0
    before = float(ckpt.get("seconds", 0.0)) if ckpt is not None else 0.0

    def on_epoch(state: dict[str, Any]) -> None:
        if keep and path is not None:
            _save_checkpoint(path, {**state, "seconds": before + time.perf_counter() - start})

    accel = Accel.from_options(job.get("accel")).resolve(
        dev, len(ds.input_shape), ds.train[0].element_size() * ds.train[0].nelement()
    )
    train_loss, train_acc = train_model(model, ds, recipe, seed, dev, epochs=target, checkpoint=ckpt,
                                        on_epoch=on_epoch, accel=accel)
    val_acc, val_loss = evaluate_accuracy(model, ds.val[0].to(dev), ds.val[1].to(dev))
    full = target == int(recipe["epochs"])
    # The test split is measured at the full training only, as a table gives report-only columns: a rung's
    # test accuracy would inform no one and costs a pass over the test set per promotion.
    test_acc = evaluate_accuracy(model, ds.test[0].to(dev), ds.test[1].to(dev))[0] if full else None
    if not math.isfinite(val_loss):
        raise TrainingDiverged(f"training diverged: validation loss {val_loss}")
    if keep and path is not None and full and os.path.exists(path):
        os.remove(path)  # a full training is never continued
    seconds = time.perf_counter() - start
    hw = HardwareCost(space, ds.input_shape, ds.num_classes, job.get("model", {}), **job.get("hardware", {}))
    metrics = {
        "val_acc": val_acc,
        "val_loss": val_loss,
        "train_loss": train_loss,
        "train_acc": train_acc,
        "train_seconds": seconds,
        "epochs": float(target),
        "epochs_trained": float(target - done),
        "train_seconds_total": before + seconds,
        **hw(arch, model),
    }
    reported = {"test_acc": test_acc} if test_acc is not None else {}
    return {"metrics": metrics, "reported": reported, "seconds": time.perf_counter() - start}


class StandaloneOracle:
    """Trains every architecture from scratch with one recipe; validation accuracy is the objective.

    Args:
        space: The search space.
        dataset: Dataset config mapping (``{name: digits, ...}``, as in ``conf/dataset``), a
            name, or a :class:`~oracles.data.Dataset`. Loaded (and checked) here, so bad
            data fails before any training.
        epochs: Training epochs.
        optimizer: ``sgd`` (Nesterov momentum) or ``adam`` (AdamW).
        lr: Peak learning rate.
        momentum: SGD momentum.
        schedule: ``cosine`` (to zero over the run) or ``constant``.
        batch_size: Training batch size.
        weight_decay: Weight decay.
        label_smoothing: Cross-entropy label smoothing.
        max_loss: A training loss above this (or NaN/inf) is divergence: the evaluation
            fails. Cross-entropy at chance is ln(classes), about 2.3 for 10 classes.
        seed: Oracle seed; each job's seed is :func:`job_seed` of it and the architecture.
        model: Options of :func:`oracles.models.build_model` (``channels``, ``cells``... ).
        executor: ``local``, ``process``, ``ray``, a mapping ``{name: process, workers: 2, threads: 1}``
            or an executor. Its ``threads`` is the torch thread count of every training.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda:0``...
        hardware: Options of :class:`~oracles.hardware.HardwareCost` (``latency``,
            ``latency_batch_size``, ``latency_table``...).
        output_dir: Where the checkpoints of unfinished trainings are kept
            (``<output_dir>/checkpoints``): what a promotion to more epochs
            (:meth:`evaluate_epochs`) and a killed search continue from. ``None``: a
            temporary directory, removed by :meth:`close`. The runner gives the run directory.
        precision: ``auto`` (bf16 autocast on a CUDA GPU with bf16), ``bf16`` or ``fp32``.
        channels_last: ``auto`` (NHWC on CUDA for image inputs), ``true`` or ``false``.
        compile: ``torch.compile`` each network before it trains.
        data_on_device: ``auto`` (the training set on the GPU when under half its free memory),
            ``true`` or ``false``. These four are :mod:`oracles.accel`; with ``auto`` a CPU
            training is exactly what it is without them.

    Every training is checkpointed after each epoch until it reaches ``epochs``; the schedule
    always spans ``epochs``, so training to 3 epochs and later on to 9 gives what training to
    9 in one go gives. The metrics ``epochs`` and ``epochs_trained`` (epochs of this job) and
    ``train_seconds_total`` (all the architecture's training) say what was done.
    """

    def __init__(
        self,
        space: SearchSpace,
        dataset: Dataset | Mapping[str, Any] | str = "digits",
        epochs: int = 10,
        optimizer: str = "sgd",
        lr: float = 0.05,
        momentum: float = 0.9,
        schedule: str = "cosine",
        batch_size: int = 64,
        weight_decay: float = 5e-4,
        label_smoothing: float = 0.0,
        max_loss: float = 1e3,
        seed: int = 0,
        model: Mapping[str, Any] | None = None,
        executor: Executor | Mapping[str, Any] | str | None = "local",
        device: str = "auto",
        hardware: Mapping[str, Any] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        precision: str = "auto",
        channels_last: bool | str = "auto",
        compile: bool = False,
        data_on_device: bool | str = "auto",
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"oracle.seed must be a non-negative integer, got {seed!r}")
        self.space = space
        self.output_dir = None if output_dir is None else str(output_dir)
        self._tmp_dir: str | None = None
        self._tmp_lock = threading.Lock()
        self.recipe = Recipe(
            epochs, optimizer, lr, momentum, schedule, batch_size, weight_decay, label_smoothing, max_loss
        )
        self.seed = seed
        self.dataset_config: Dataset | dict[str, Any] | str = (
            dict(dataset) if isinstance(dataset, Mapping) else dataset
        )
        self.dataset = dataset_from_config(dataset)
        self.model_options = model_options_for(space, model)
        self.hardware_options = dict(hardware or {})
        self.device = str(resolve_device(device)) if device != "auto" else "auto"
        self.accel = Accel(precision, channels_last, compile, data_on_device)
        # Build one network and the cost model now: a bad model or hardware option fails here, not per job.
        probe = space.sample(np.random.default_rng(0))
        build_model(space, probe, self.dataset.input_shape, self.dataset.num_classes, **self.model_options)
        HardwareCost(space, self.dataset.input_shape, self.dataset.num_classes, self.model_options,
                     **self.hardware_options)
        self.executor = make_executor(executor)
        self.threads = executor_threads(self.executor)

    @property
    def epochs(self) -> int:
        """The full training length: what :meth:`evaluate` trains to and the schedule spans."""
        return int(self.recipe["epochs"])

    @property
    def concurrent(self) -> bool:
        """Whether the asynchronous loop may call :meth:`evaluate` from several threads at once.

        True when the trainings run in workers of their own (``executor=process`` or ``ray``);
        in-process trainings (``executor=local``) would compete for this process's torch threads.
        """
        return not isinstance(self.executor, LocalExecutor)

    def prepare(self) -> None:
        """Start the executor (connect to the Ray cluster, start a local Ray instance, create the pool).

        Why here and not on the first batch: the runner calls ``prepare()`` before the search and
        turns a ValueError into a refusal of the run, whereas an executor that fails in ``evaluate``
        makes every evaluation a failure that the journal keeps and a resume does not retry.

        Raises:
            ValueError: one line naming the executor, e.g. no Ray cluster at ``executor.address``.
        """
        start_executor(self.executor)

    def checkpoint_path(self, arch: Architecture) -> str:
        """The file that holds ``arch``'s unfinished training under this oracle's settings.

        Named by a hash of everything that fixes the training (space, architecture, data,
        network options, recipe, seed), so a changed setting never continues a stale file.
        """
        if self.output_dir is not None:
            root = os.path.join(self.output_dir, "checkpoints")
        else:
            with self._tmp_lock:
                if self._tmp_dir is None:
                    self._tmp_dir = tempfile.mkdtemp(prefix="nas-standalone-")
            root = self._tmp_dir
        os.makedirs(root, exist_ok=True)
        data = self.dataset_config if not isinstance(self.dataset_config, Dataset) else repr(self.dataset_config)
        key = json.dumps([self.space.name, arch.string, data, self.model_options, dict(self.recipe), self.seed,
                          self.accel.as_dict()], sort_keys=True, default=str)
        return os.path.join(root, hashlib.sha256(key.encode()).hexdigest()[:24] + ".pt")

    def job(self, arch: Architecture, epochs: int | None = None) -> dict[str, Any]:
        """The plain job that trains ``arch`` to ``epochs`` (default: all) (what executors ship)."""
        return {
            "space": self.space,
            "arch": arch.string,
            "dataset": self.dataset_config,
            "model": self.model_options,
            "recipe": dict(self.recipe),
            "seed": self.seed,
            "device": self.device,
            "hardware": self.hardware_options,
            "threads": self.threads,
            "accel": self.accel.as_dict(),
            "epochs": self.epochs if epochs is None else int(epochs),
            "checkpoint": self.checkpoint_path(arch),
        }

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """Train each architecture to the full epochs (in parallel when the executor allows).

        A training already started (a lower rung, a killed search) is continued from its
        checkpoint. Failures stay per architecture.
        """
        return self.evaluate_epochs(archs, self.epochs)

    def evaluate_epochs(self, archs: Sequence[Architecture], epochs: int) -> list[Evaluation]:
        """Train each architecture to ``epochs`` (at most :attr:`epochs`), continuing from its checkpoint.

        Raises:
            ValueError: if ``epochs`` is not between 1 and the full training.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= self.epochs:
            raise ValueError(f"epochs must be an integer between 1 and oracle.epochs={self.epochs}, got {epochs!r}")
        out: list[Evaluation | None] = [None] * len(archs)
        todo: list[int] = []
        for i, arch in enumerate(archs):
            if not self.space.contains(arch):
                out[i] = Evaluation.failure(
                    arch, DEFAULT_FIDELITY, f"{arch.string!r} is not an architecture of space {self.space.name!r}"
                )
            else:
                todo.append(i)
        start = time.perf_counter()
        results = self.executor.map(train_job, [self.job(archs[i], epochs) for i in todo])
        elapsed = time.perf_counter() - start
        for k, (i, res) in enumerate(zip(todo, results), start=1):
            arch = archs[i]
            if isinstance(res, BaseException):
                _log.warning("stand-alone training of %s failed: %s", arch.string, res)
                out[i] = Evaluation.failure(arch, DEFAULT_FIDELITY, str(res), elapsed / max(1, len(todo)))
                continue
            m = res["metrics"]
            _log.info(
                "stand-alone %d/%d: val_acc %.4f after %d epochs in %.1f s  %s",
                k, len(todo), m["val_acc"], epochs, res["seconds"], arch.string,
            )
            out[i] = Evaluation(
                arch=arch, objective=m["val_acc"], metrics=m, reported=res["reported"], cost=res["seconds"]
            )
        return [e for e in out if e is not None]

    def close(self) -> None:
        """Release the executor's workers and the temporary checkpoint directory, if any."""
        self.executor.close()
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None
