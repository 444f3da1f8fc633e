"""``oracle=supernet``: inherited accuracy of sub-networks of a weight-sharing supernet."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.spaces import Architecture, ChainSpace, NB201Space, SearchSpace
from engine.types import DEFAULT_FIDELITY, Evaluation
from oracles.choices import network_of
from oracles.data import Dataset, dataset_from_config
from oracles.hardware import HardwareCost
from oracles.models import model_options_for, resolve_device
from oracles.supernet.chain import ChainSupernet
from oracles.supernet.config import SupernetConfig
from oracles.supernet.evaluation import InheritedEvaluator
from oracles.supernet.module import ModuleSupernet
from oracles.supernet.nb201 import NB201Supernet
from oracles.supernet.training import FewShotPlan, SupernetTrainer

_log = logging.getLogger(__name__)

CHECKPOINT_NAME = "supernet.pt"


def build_supernet(
    space: SearchSpace, input_shape: Sequence[int], num_classes: int, **model_options: Any
) -> NB201Supernet | ChainSupernet | ModuleSupernet:
    """The supernet module of ``space``: built-in for ``nb201`` and ``chain``, else its choice-module network.

    Raises:
        ValueError: for a space without a supernet or a bad model option.
    """
    model_options = {k: v for k, v in model_options.items() if not (k in ("builder", "network") and v is None)}
    if "builder" in model_options:
        raise ValueError(
            "model.builder builds stand-alone networks only; a supernet needs a network with choice modules"
            " (model.network=package.module:Net or space=module)"
        )
    network = network_of(space, model_options)
    if network is not None:
        return ModuleSupernet(space, network[0], input_shape, num_classes, **network[1])
    if isinstance(space, NB201Space):
        return NB201Supernet(space, input_shape, num_classes, **model_options)
    if isinstance(space, ChainSpace):
        return ChainSupernet(space, input_shape, num_classes, **model_options)
    raise ValueError(
        f"no supernet for space {space.name!r}: built-in supernets exist for ['chain', 'nb201'];"
        " for your own network with choice modules use space=module space.params.network=package.module:Net"
        " (or supernet.model.network=...)"
    )


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (``None``: unchanged), then restore the setting."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class SupernetOracle:
    """Scores architectures by the validation accuracy they inherit from a trained supernet.

    On first use it trains the supernet (or resumes / loads it from ``checkpoint``),
    showing progress; later calls only evaluate. The objective is inherited
    validation accuracy; ``params``, ``flops`` and ``latency_ms`` of the
    stand-alone sub-network are metrics; inherited test accuracy is report-only.

    Args:
        space: The search space (``nb201`` or ``chain``).
        dataset: A dataset config mapping (``{name: digits, ...}``), a name, or a
            :class:`~oracles.data.Dataset`.
        supernet: Supernet settings (see :class:`SupernetConfig` and ``conf/supernet/default.yaml``).
        seed: Seed of the supernet's initialisation, batch order and path sampling.
        checkpoint: Checkpoint file; ``None`` is ``<output_dir>/supernet.pt``, or no
            checkpoint when there is no output directory either.
        output_dir: The run's output directory (filled in by the search runner).
        parent_checkpoint: A finished one-shot checkpoint with the same parent settings,
            re-used as the parent of a few-shot supernet.
        latency_table: CSV of measured latencies (``arch``, ``latency_ms``) used instead of measuring.
        fidelity: Fidelity name written into the evaluations.
    """

    # What trains the supernet; ``oracles.supernet.ddp`` swaps in its data-parallel trainer under torchrun.
    trainer_factory: Callable[..., SupernetTrainer] = SupernetTrainer

    def __init__(
        self,
        space: SearchSpace,
        dataset: Mapping[str, Any] | str | Dataset = "digits",
        supernet: Mapping[str, Any] | SupernetConfig | None = None,
        seed: int = 0,
        checkpoint: str | os.PathLike[str] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        parent_checkpoint: str | os.PathLike[str] | None = None,
        latency_table: str | None = None,
        fidelity: str = DEFAULT_FIDELITY,
    ) -> None:
        self.space = space
        config = SupernetConfig.from_mapping(supernet)
        # model options may be given per space ({nb201: {...}, chain: {...}}), as in the oracle configs
        self.config = config.replace(model=model_options_for(space, config.model))
        self.data = dataset_from_config(dataset)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"oracle.seed must be an integer, got {seed!r}")
        self.seed = seed
        self.device = resolve_device(self.config.device)
        # fail now, not after training, on a space without a supernet or a bad model option
        probe = build_supernet(space, self.data.input_shape, self.data.num_classes, **self.config.model)
        self.ordered = probe.ordered
        self.model_options = probe.model_options
        self.plan = FewShotPlan(space, self.config.few_shot_splits, self.config.few_shot_decisions)
        if checkpoint is None and output_dir is not None:
            checkpoint = Path(output_dir) / CHECKPOINT_NAME
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.parent_checkpoint = Path(parent_checkpoint) if parent_checkpoint is not None else None
        self.fidelity = fidelity
        self.hardware = HardwareCost(
            space, self.data.input_shape, self.data.num_classes, self.model_options,
            latency=self.config.measure_latency, latency_batch_size=self.config.latency_batch_size,
            latency_table=latency_table, device=self.config.device,
        )
        self._hw_cache: dict[tuple[int, ...], dict[str, float]] = {}
        self.units: dict[str, nn.Module] = {}
        self.snapshots: dict[str, list[dict[str, torch.Tensor]]] = {}
        self.history: list[dict[str, Any]] = []
        self.training_seconds = 0.0
        self._unbilled = 0.0
        self._evaluator: InheritedEvaluator | None = None

    # -- metadata -----------------------------------------------------------
    def meta(self, parent: bool = False) -> dict[str, Any]:
        """What a checkpoint must match: space, training settings, data fingerprint, seed."""
        return {
            "space": self.space.name,
            "decisions": [[d.name, [str(o) for o in d.options]] for d in self.space.decisions],
            "supernet": self.config.parent_identity() if parent else self.config.training_identity(),
            "model": {k: v for k, v in self.model_options.items()},
            "data": {"name": self.data.name, "fingerprint": self.data.fingerprint},
            "seed": self.seed,
        }

    def _build(self) -> nn.Module:
        return build_supernet(self.space, self.data.input_shape, self.data.num_classes, **self.config.model)

    # -- training -----------------------------------------------------------
    def prepare(self) -> None:
        """Train, resume or load the supernet (idempotent)."""
        if self.units:
            return
        with torch_threads(self.config.num_threads):
            self._prepare()

    def _prepare(self) -> None:
        start = time.monotonic()
        x, y = (t.to(self.device) for t in self.data.train)
        _log.info("supernet for %s on %s: %s", self.space.name, self.data.describe(), self.config.training_identity())
        trainer = self.trainer_factory(
            self._build, self.space, self.config, (x, y), self.seed, self.meta(),
            checkpoint=self.checkpoint, parent_checkpoint=self.parent_checkpoint,
            parent_meta=self.meta(parent=True) if self.parent_checkpoint is not None else None,
            device=self.device, ordered=self.ordered,
        )
        state = trainer.run()
        for name, weights in state["units"].items():
            model = self._build().to(self.device)
            model.load_state_dict(weights)
            model.eval()
            self.units[name] = model
        self.snapshots = {k: list(v) for k, v in state.get("snapshots", {}).items()}
        self.history = trainer.history
        self.training_seconds = trainer.seconds
        self._unbilled = time.monotonic() - start
        splits = {"val": self.data.val, "test": self.data.test}
        self._evaluator = InheritedEvaluator(
            self.config, (x, y), {k: (a.to(self.device), b.to(self.device)) for k, (a, b) in splits.items()}, self.seed
        )

    def unit_for(self, arch: Architecture) -> str:
        """Name of the (sub-)supernet that evaluates ``arch``: few-shot routing."""
        return "parent" if self.plan.k == 0 else f"split{self.plan.route(arch.decisions)}"

    def score(self, archs: Sequence[Architecture], snapshot: int | None = None) -> list[dict[str, float]]:
        """Inherited ``val_acc``/``val_loss``/``test_acc``/``test_loss`` per architecture, in order.

        Args:
            archs: Architectures of the space.
            snapshot: Use the weights of an earlier epoch (index into the kept
                end-of-epoch snapshots, oldest first) instead of the final ones.
        """
        self.prepare()
        with torch_threads(self.config.num_threads):
            return self._score(archs, snapshot)

    def _score(self, archs: Sequence[Architecture], snapshot: int | None) -> list[dict[str, float]]:
        assert self._evaluator is not None
        by_unit: dict[str, list[int]] = {}
        for i, a in enumerate(archs):
            by_unit.setdefault(self.unit_for(a), []).append(i)
        out: list[dict[str, float]] = [{} for _ in archs]
        for name, idx in by_unit.items():
            model = self.units[name]
            if snapshot is not None:
                model = self._build().to(self.device)
                model.load_state_dict(self.snapshots[name][snapshot])
            for i, r in zip(idx, self._evaluator.evaluate(model, [archs[i].decisions for i in idx])):
                out[i] = r
        return out

    @property
    def num_snapshots(self) -> int:
        """End-of-epoch snapshots available for every unit (for rank stability across epochs)."""
        self.prepare()
        counts = [len(self.snapshots.get(u, [])) for u in self.units if self.plan.k == 0 or u != "parent"]
        return min(counts) if counts else 0

    def hardware_metrics(self, arch: Architecture) -> dict[str, float]:
        """``params``, ``flops``, ``latency_ms`` of the stand-alone sub-network (cached)."""
        if arch.decisions not in self._hw_cache:
            self._hw_cache[arch.decisions] = self.hardware(arch)
        return self._hw_cache[arch.decisions]

    def extract(self, arch: Architecture) -> nn.Module:
        """The stand-alone network of ``arch`` with the weights it inherits (a copy)."""
        self.prepare()
        return self.units[self.unit_for(arch)].extract(arch)  # type: ignore[operator]

    # -- the oracle protocol --------------------------------------------------
    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """Inherited validation accuracy of each architecture; bad ones become failed evaluations."""
        self.prepare()
        start = time.monotonic()
        good = [i for i, a in enumerate(archs) if self.space.contains(a)]
        results: dict[int, Evaluation] = {}
        for i, a in enumerate(archs):
            if i not in good:
                results[i] = Evaluation.failure(
                    a, self.fidelity, f"ValueError: {a.string!r} is not an architecture of space {self.space.name!r}"
                )
        try:
            scores = self.score([archs[i] for i in good])
        except Exception as exc:
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            _log.warning("supernet evaluation failed: %s", text)
            scores = None
            for i in good:
                results[i] = Evaluation.failure(archs[i], self.fidelity, text)
        if scores is not None:
            eval_seconds = time.monotonic() - start
            share = (eval_seconds + self._unbilled) / max(len(good), 1)
            self._unbilled = 0.0
            for i, s in zip(good, scores):
                arch = archs[i]
                try:
                    with torch_threads(self.config.num_threads):
                        hw = self.hardware_metrics(arch)
                except Exception as exc:
                    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                    results[i] = Evaluation.failure(arch, self.fidelity, text, share)
                    continue
                results[i] = Evaluation(
                    arch=arch,
                    fidelity=self.fidelity,
                    objective=s["val_acc"],
                    metrics={"val_acc": s["val_acc"], "val_loss": s["val_loss"], **hw},
                    reported={"test_acc": s["test_acc"]},
                    cost=share,
                )
        return [results[i] for i in range(len(archs))]
