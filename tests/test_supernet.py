"""Supernet: sampling rules, weight inheritance, few-shot routing, checkpoints, evaluation."""

from __future__ import annotations

import collections
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.spaces import ChainSpace, NB201Space, get_space
from oracles.data import load_dataset
from oracles.supernet import (
    ChainSupernet,
    CheckpointMismatch,
    FewShotPlan,
    NB201Supernet,
    SupernetConfig,
    SupernetOracle,
    SupernetTrainer,
    make_sampler,
)
from oracles.supernet.evaluation import InheritedEvaluator

torch.set_num_threads(1)

TINY_NB201 = {"channels": 4, "cells": 1}
SMALL_CHAIN = {"stages": 2, "depths": [1, 2], "kernels": [3, 5], "expands": [1, 3]}
CHAIN_MODEL = {"stem_channels": 4, "widths": [4, 8], "head_channels": 8}


def synthetic(seed: int = 0, shape: tuple[int, ...] = (1, 6, 6)) -> object:
    return load_dataset("synthetic", num_samples=96, num_classes=3, shape=list(shape), seed=seed)


def _recalibrated(net: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """``net`` with its BN statistics replaced by the exact (cumulative) ones of ``x``, in eval mode."""
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        net(x)
    return net.eval()


def tiny(**over: object) -> dict[str, object]:
    cfg: dict[str, object] = {
        "epochs": 2, "batch_size": 16, "measure_latency": False, "model": TINY_NB201,
        "recalibration_batches": 2, "eval_batch_archs": 3, "keep_last_epochs": 2,
    }
    cfg.update(over)
    return cfg


# -- sampling rules --------------------------------------------------------------------------
def test_fair_sampling_trains_every_option_exactly_once_per_step() -> None:
    space = NB201Space()
    sampler = make_sampler("fair", [range(d.n) for d in space.decisions], seed=0, ordered=False)
    for _ in range(20):
        paths = sampler.step()
        assert len(paths) == 5
        for d in range(len(space.decisions)):
            assert sorted(p[d] for p in paths) == [0, 1, 2, 3, 4]
    # unequal option counts: every option equally often (lcm paths)
    mixed = make_sampler("fair", [[0, 1], [0, 1, 2]], seed=1, ordered=False)
    paths = mixed.step()
    assert len(paths) == 6
    assert collections.Counter(p[0] for p in paths) == {0: 3, 1: 3}
    assert collections.Counter(p[1] for p in paths) == {0: 2, 1: 2, 2: 2}


def test_sampler_rules_state_and_errors() -> None:
    allowed = [[0, 1, 2]] * 4
    sandwich = make_sampler("sandwich", allowed, seed=0, ordered=True, num_random=2)
    paths = sandwich.step()
    assert paths[0] == (2, 2, 2, 2) and paths[1] == (0, 0, 0, 0) and len(paths) == 4
    uniform = make_sampler("uniform", allowed, seed=3, ordered=False)
    uniform.step()
    state = uniform.state_dict()
    first = [uniform.step() for _ in range(5)]
    uniform.load_state_dict(state)
    assert [uniform.step() for _ in range(5)] == first
    with pytest.raises(ValueError, match="sandwich"):
        make_sampler("sandwich", allowed, seed=0, ordered=False)
    with pytest.raises(ValueError, match=r"supernet\.sampling"):
        make_sampler("greedy", allowed, seed=0, ordered=False)
    with pytest.raises(ValueError, match=r"supernet\.epochs"):
        SupernetConfig.from_mapping({"epochs": 0})
    with pytest.raises(ValueError, match="no option"):
        SupernetConfig.from_mapping({"epoch": 3})


# -- inheritance: a sub-network of the supernet is the stand-alone network with copied weights --
@pytest.mark.parametrize(
    ("space", "cls", "shape", "options"),
    [
        (NB201Space(), NB201Supernet, (1, 6, 6), TINY_NB201),
        (NB201Space(), NB201Supernet, (2, 12), TINY_NB201),
        (ChainSpace(**SMALL_CHAIN), ChainSupernet, (1, 6, 6), CHAIN_MODEL),
        (ChainSpace(**SMALL_CHAIN), ChainSupernet, (2, 12), CHAIN_MODEL),
    ],
)
def test_subnetwork_equals_standalone_with_copied_weights(space, cls, shape, options) -> None:  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(0)
    net = cls(space, shape, 3, **options)
    with torch.no_grad():  # non-trivial BN statistics and affine parameters
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.weight.normal_(generator=gen)
                m.bias.normal_(generator=gen)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(4)]
    if isinstance(space, ChainSpace):  # the largest and the smallest are the interesting corner cases
        n = len(space.decisions)
        archs += [space.architecture([d.n - 1 for d in space.decisions]), space.architecture([0] * n)]
    else:  # no live edge at all; node 1 fed by nothing but feeding the output; two 3x3s on one input
        archs += [space.architecture([0] * 6), space.architecture([0, 3, 0, 0, 3, 1]),
                  space.architecture([3, 3, 2, 3, 1, 4])]
    x = torch.randn(10, *shape, generator=gen)
    for arch in archs:
        alone = net.extract(arch)
        for training in (True, False):
            net.train(training)
            alone.train(training)
            torch.testing.assert_close(net(x, [arch.decisions]), alone(x), rtol=0, atol=1e-6)
    # batched evaluation of several architectures with per-architecture BN recalibration
    # equals the naive path: stand-alone copy, reset statistics, one recalibration pass, evaluate
    net.eval()
    ctx = net.ctx
    paths = [a.decisions for a in [*archs, archs[0]]]  # a repeated architecture shares all its rows
    with torch.no_grad():
        ctx.mode, ctx.stats = "recal", {}
        net(x, paths, shared=True)  # one input block for all: shared prefixes are computed once
        ctx.mode = "stored"
        batched = net(x, paths, shared=True).reshape(len(paths), len(x), -1)
        # the same with one input block per architecture
        ctx.stats = {}
        ctx.mode = "recal"
        tiled = x.repeat(len(paths), *([1] * len(shape)))
        net(tiled, paths)
        ctx.mode = "stored"
        torch.testing.assert_close(net(tiled, paths).reshape(len(paths), len(x), -1), batched, rtol=1e-4, atol=1e-5)
        ctx.mode, ctx.stats = "plain", {}
        torch.testing.assert_close(batched[-1], batched[0], rtol=0, atol=0)
        for i, arch in enumerate(archs):
            alone = _recalibrated(net.extract(arch), x)
            torch.testing.assert_close(batched[i], alone(x), rtol=1e-4, atol=1e-5)


# -- few-shot routing ------------------------------------------------------------------------
def test_few_shot_plan_routes_every_architecture_to_one_split() -> None:
    space = NB201Space()
    plan = FewShotPlan(space, 5)
    assert plan.decisions == (0,)
    counts = collections.Counter(plan.route(a.decisions) for a in space.enumerate())
    assert counts == {i: 3125 for i in range(5)}
    assert plan.allowed(space, 2)[0] == [2] and plan.allowed(space, 2)[1] == [0, 1, 2, 3, 4]
    two = FewShotPlan(space, 7, decisions=[3, 5])
    assert sorted(collections.Counter(two.route(a.decisions) for a in space.enumerate()).values())[0] > 0
    with pytest.raises(ValueError, match="few_shot_splits"):
        FewShotPlan(space, 6, decisions=[0])
    with pytest.raises(ValueError, match="few_shot_decisions"):
        FewShotPlan(space, 2, decisions=[9])


def test_few_shot_subsupernets_train_only_their_part_and_evaluate_what_they_cover(tmp_path: Path) -> None:
    space = NB201Space()
    data = synthetic()
    one_shot = SupernetOracle(space, data, tiny(), seed=0, checkpoint=tmp_path / "one.pt")
    one_shot.prepare()
    few = SupernetOracle(
        space, data, tiny(few_shot_splits=5, few_shot_epochs=1), seed=0, checkpoint=tmp_path / "few.pt",
        parent_checkpoint=tmp_path / "one.pt",
    )
    few.prepare()
    assert sorted(few.units) == ["parent", "split0", "split1", "split2", "split3", "split4"]
    parent = one_shot.units["parent"].state_dict()
    torch.testing.assert_close(few.units["parent"].state_dict(), parent)  # warm start re-used, not retrained
    # edge 0 is fixed to skip_connect in split 1 and to nor_conv_3x3 in split 3: the 3x3 conv
    # of edge 0 keeps the parent's weights in split 1 and is trained further in split 3
    conv3 = "net.layers.0.edges.0.3.1.weight"
    torch.testing.assert_close(few.units["split1"].state_dict()[conv3], parent[conv3])
    assert not torch.equal(few.units["split3"].state_dict()[conv3], parent[conv3])
    assert not torch.equal(few.units["split1"].state_dict()["net.stem.0.weight"], parent["net.stem.0.weight"])
    arch = space.parse("|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    assert few.unit_for(arch) == "split2"
    direct = few._evaluator.evaluate(few.units["split2"], [arch.decisions])[0]  # type: ignore[union-attr]
    assert few.score([arch])[0] == direct


# -- checkpoints -----------------------------------------------------------------------------
def test_checkpoint_round_trip_and_refusals(tmp_path: Path) -> None:
    space = NB201Space()
    data = synthetic()
    ckpt = tmp_path / "sn.pt"
    first = SupernetOracle(space, data, tiny(), seed=0, checkpoint=ckpt)
    first.prepare()
    assert ckpt.is_file() and not list(tmp_path.glob(".*tmp*"))
    again = SupernetOracle(space, data, tiny(bn_recalibration=False), seed=0, checkpoint=ckpt)  # eval-only change
    again.prepare()
    torch.testing.assert_close(again.units["parent"].state_dict(), first.units["parent"].state_dict())
    assert again.history == first.history
    with pytest.raises(CheckpointMismatch, match=r"supernet\.epochs"):
        SupernetOracle(space, data, tiny(epochs=3), seed=0, checkpoint=ckpt).prepare()
    with pytest.raises(CheckpointMismatch, match="fingerprint"):
        SupernetOracle(space, synthetic(seed=1), tiny(), seed=0, checkpoint=ckpt).prepare()
    with pytest.raises(CheckpointMismatch, match="space"):
        SupernetOracle(ChainSpace(**SMALL_CHAIN), data, tiny(model=CHAIN_MODEL), seed=0, checkpoint=ckpt).prepare()
    with pytest.raises(CheckpointMismatch, match="seed"):
        SupernetOracle(space, data, tiny(), seed=1, checkpoint=ckpt).prepare()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        SupernetOracle(space, data, tiny(), seed=0, checkpoint=junk).prepare()


class _Killed(Exception):
    pass


def test_training_killed_mid_way_resumes_to_the_same_weights(tmp_path: Path) -> None:
    space = NB201Space()
    data = synthetic()
    cfg = SupernetConfig.from_mapping(tiny(epochs=3, sampling="fair"))
    x, y = data.train  # type: ignore[attr-defined]

    def trainer(path: Path | None) -> SupernetTrainer:
        return SupernetTrainer(
            lambda: NB201Supernet(space, (1, 6, 6), 3, **TINY_NB201), space, cfg, (x, y), seed=0,
            meta={"test": 1}, checkpoint=path,
        )

    whole = trainer(None).run()
    killed = trainer(tmp_path / "k.pt")
    calls = {"n": 0}
    original = killed._epoch

    def dying(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Killed
        return original(*args, **kwargs)

    killed._epoch = dying  # type: ignore[method-assign]
    with pytest.raises(_Killed):
        killed.run()
    resumed = trainer(tmp_path / "k.pt").run()
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    torch.testing.assert_close(resumed["units"]["parent"], whole["units"]["parent"])
    assert len(resumed["snapshots"]["parent"]) == 1


# -- evaluation ------------------------------------------------------------------------------
def test_finetuning_never_changes_the_shared_weights() -> None:
    space = NB201Space()
    data = synthetic()
    oracle = SupernetOracle(space, data, tiny(finetune_steps=3, finetune_lr=0.1), seed=0)
    oracle.prepare()
    before = {k: v.clone() for k, v in oracle.units["parent"].state_dict().items()}
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(2)]
    tuned = oracle.score(archs)
    torch.testing.assert_close(oracle.units["parent"].state_dict(), before)
    plain = InheritedEvaluator(
        oracle.config.replace(finetune_steps=0), data.train, {"val": data.val}, 0  # type: ignore[attr-defined]
    ).evaluate(oracle.units["parent"], [a.decisions for a in archs])
    assert [t["val_loss"] for t in tuned] != [p["val_loss"] for p in plain]


def test_oracle_evaluations_carry_metrics_and_hide_test_accuracy() -> None:
    space = get_space("chain", **SMALL_CHAIN)
    data = synthetic(shape=(2, 12))
    oracle = SupernetOracle(space, data, tiny(model=CHAIN_MODEL, sampling="sandwich", measure_latency=True), seed=0)
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(4)]
    evs = oracle.evaluate([*archs, NB201Space().sample(rng)])
    assert [e.ok for e in evs] == [True] * 4 + [False]
    assert "not an architecture" in (evs[-1].error or "")
    for e in evs[:4]:
        assert 0.0 <= e.objective <= 1.0  # type: ignore[operator]
        assert e.metrics["val_acc"] == e.objective
        assert {"params", "flops", "latency_ms"} <= set(e.metrics) and e.metrics["params"] > 0
        assert set(e.reported) == {"test_acc"} and "test_acc" not in e.metrics
    # batched and one-by-one evaluation agree
    one = [oracle.score([a])[0]["val_acc"] for a in archs]
    assert one == [e.objective for e in evs[:4]]


def test_search_with_supernet_oracle_writes_checkpoint_in_run_dir(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from engine.cli import config_dir
    from engine.runner import run_search

    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(
            "config",
            overrides=[
                "oracle=supernet", "space=nb201", "dataset=synthetic", "dataset.num_samples=96",
                "dataset.num_classes=3", "dataset.shape=[1,6,6]", "supernet.epochs=1", "supernet.batch_size=16",
                "supernet.model={channels: 4}", "supernet.measure_latency=false", "budget.evaluations=6",
                "strategy=random", "batch_size=3", "calibration.size=0",
            ],
        )
    summary = run_search(cfg, tmp_path)
    assert summary["evaluations"] == 6 and summary["failures"] == 0
    assert {"params", "flops", "test_acc"} <= set(summary["best"]["metrics"])
    assert (tmp_path / "supernet.pt").is_file()


@pytest.mark.parametrize(
    ("space", "options"), [(NB201Space(), TINY_NB201), (ChainSpace(**SMALL_CHAIN), CHAIN_MODEL)]
)
def test_evaluator_equals_naive_recalibrate_then_evaluate(space, options) -> None:  # type: ignore[no-untyped-def]
    data = synthetic()
    net = (NB201Supernet if isinstance(space, NB201Space) else ChainSupernet)(space, (1, 6, 6), 3, **options)
    rng = np.random.default_rng(2)
    archs = [space.sample(rng) for _ in range(5)]
    # eval_batch_size 10: the first chunk recalibrates and evaluates in one pass, later ones reuse the statistics
    cfg = SupernetConfig(recalibration_batches=2, batch_size=8, eval_batch_size=10, eval_batch_archs=3)
    evaluator = InheritedEvaluator(cfg, data.train, {"val": data.val, "test": data.test}, seed=0)  # type: ignore[attr-defined]
    results = evaluator.evaluate(net, [a.decisions for a in archs])
    for arch, res in zip(archs, results):
        alone = _recalibrated(net.extract(arch), evaluator.recal_x)
        with torch.no_grad():
            for split in ("val", "test"):
                x, y = getattr(data, split)
                logits = alone(x)
                assert res[f"{split}_acc"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))
                loss = float(torch.nn.functional.cross_entropy(logits, y))
                assert res[f"{split}_loss"] == pytest.approx(loss, abs=1e-5)


@pytest.mark.parametrize(("lr", "warns"), [(20.0, True), (0.05, False)])
def test_supernet_that_learned_nothing_is_reported(lr: float, warns: bool, caplog: pytest.LogCaptureFixture) -> None:
    # Gradient clipping keeps lr=20 finite, so training "succeeds" at chance accuracy: the user must hear it.
    oracle = SupernetOracle(NB201Space(), synthetic(), tiny(epochs=8, lr=lr), seed=0)
    with caplog.at_level("WARNING", logger="oracles.supernet.training"):
        oracle.prepare()
    assert any("has not learned" in r.getMessage() for r in caplog.records) is warns


# -- the CPU allocator setting of batched evaluation -------------------------------------------
_FAULTS = """
import resource, sys, torch
from oracles.supernet.evaluation import retain_freed_memory

def faults() -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):  # 16 tensors of 8 MiB alive at once, then freed, as a batched evaluation chunk does
        alive = [torch.ones(2 << 20) for _ in range(16)]
        del alive
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()
default = faults()
took = retain_freed_memory()
faults()
print(default, faults(), took)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_retained_freed_memory_is_reused_without_page_faults() -> None:
    """In a fresh process: glibc page-faults every large tensor anew; after the call it reuses them.

    The child starts with fixed 1 MiB thresholds (glibc's behaviour before its adaptive
    thresholds have grown, which depends on what ran before), so the baseline is the same every run.
    """
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 20)}
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS], capture_output=True, text=True, check=True, timeout=120, env=env
    )
    default, retained, took = out.stdout.split()
    assert took == "True"
    assert int(default) >= 5 * 16 * 1000  # 2,048 pages per 8 MiB tensor
    assert int(retained) < int(default) / 20
    with pytest.raises(ValueError, match=r"supernet\.retain_freed_memory"):
        SupernetConfig.from_mapping({"retain_freed_memory": "yes"})
