"""Choice modules in a user's own network: the space read from labels, the supernet, extraction, the oracles."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine.spaces import get_space
from oracles.choices import ElasticConv, LayerChoice, ModuleSpace, ValueChoice, activate, choices_of, extract
from oracles.data import load_dataset
from oracles.hardware import count_params
from oracles.models import build_model
from oracles.supernet import SupernetConfig, SupernetOracle
from oracles.supernet.evaluation import InheritedEvaluator
from oracles.supernet.module import ModuleSupernet

torch.set_num_threads(1)
NET = "tests.networks:ConvNet"
# The example package's network (examples/own_network), imported from its sources.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "own_network"))
TINYNET = "tinynet.net:TinyNet"
CHOICE_TYPES = ("LayerChoice", "ValueChoice", "ElasticConv", "ElasticLinear", "GroupBN")


def _randomise_bn(net: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.weight.normal_(generator=gen)
                m.bias.normal_(generator=gen)


def test_space_is_read_from_the_labels() -> None:
    space = ModuleSpace(NET)
    assert {d.name: list(d.options) for d in space.decisions} == {
        "stem": [4, 8], "k": [1, 3, 5], "block": ["conv", "dw", "skip"], "mid": [4, 8], "dwk": [3, 5],
        "extra": [0, 8], "act": ["relu", "tanh"], "hidden": [0, 6, 12],
    }
    arch = space.parse(space.format(space.sample(np.random.default_rng(0)).decisions))
    assert space.contains(arch) and "block=" in arch.string
    with pytest.raises(ValueError, match="'w' is used with different values"):
        ModuleSpace("tests.networks:Mismatched")
    with pytest.raises(ValueError, match="cannot import"):
        ModuleSpace("no_such_package.net:Net")
    with pytest.raises(ValueError, match="has no choice modules"):
        choices_of(nn.Linear(2, 2))


def test_choice_modules_refuse_bad_arguments_and_inactive_use() -> None:
    with pytest.raises(ValueError, match="needs stride 1"):
        ElasticConv(4, ValueChoice("w", [0, 4]), 3, stride=2)
    with pytest.raises(ValueError, match="odd"):
        ElasticConv(4, 4, ValueChoice("k", [2, 3]))
    with pytest.raises(ValueError, match="label"):
        ValueChoice("a,b", [1, 2])
    with pytest.raises(ValueError, match="distinct"):
        ValueChoice("a", [1, 1])
    with pytest.raises(ValueError, match="candidate name"):
        LayerChoice({"1": nn.Identity()}, "op")
    layer = LayerChoice([nn.Identity(), nn.ReLU()], "op")
    assert layer.options == ("identity", "relu")
    with pytest.raises(RuntimeError, match="no active value"):
        layer(torch.zeros(1))
    activate(layer, {"op": "relu"})
    assert float(layer(torch.tensor([-1.0]))) == 0.0


@pytest.mark.parametrize(("network", "shape"), [(NET, (1, 8, 8)), (NET, (2, 12)), (TINYNET, (1, 64))])
def test_extracted_network_equals_the_supernet_path(network: str, shape: tuple[int, ...]) -> None:
    space = ModuleSpace(network, input_shape=shape)
    net = ModuleSupernet(space, network, shape, 3)
    _randomise_bn(net)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(10, *shape, generator=gen)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(12)]
    n = len(space.decisions)
    archs += [space.architecture([d.n - 1 for d in space.decisions]), space.architecture([0] * n)]
    for arch in archs:
        alone = net.extract(arch)
        assert not [type(m).__name__ for m in alone.modules() if type(m).__name__ in CHOICE_TYPES]
        for training in (True, False):
            net.train(training)
            alone.train(training)
            torch.testing.assert_close(net(x, [arch.decisions]), alone(x), rtol=0, atol=1e-5)
        # the stand-alone network of the architecture has the same structure and parameter count
        fresh = build_model(space, arch, shape, 3, network=network)
        assert count_params(fresh) == count_params(alone)
        assert fresh.state_dict().keys() == alone.state_dict().keys()
    # batched evaluation with per-architecture BN recalibration equals recalibrating each extracted network
    net.eval()
    data = load_dataset("synthetic", num_samples=96, num_classes=3, shape=list(shape), seed=0)
    cfg = SupernetConfig(recalibration_batches=2, batch_size=8, eval_batch_size=10, eval_batch_archs=3)
    evaluator = InheritedEvaluator(cfg, data.train, {"val": data.val}, seed=0)
    results = evaluator.evaluate(net, [a.decisions for a in archs[:5]])
    from oracles.export import recalibrate_bn

    for arch, res in zip(archs[:5], results):
        alone = net.extract(arch)
        recalibrate_bn(alone, evaluator.recal_x)
        with torch.no_grad():
            logits = alone(data.val[0])
        assert res["val_acc"] == pytest.approx(float((logits.argmax(1) == data.val[1]).float().mean()))
        assert res["val_loss"] == pytest.approx(float(nn.functional.cross_entropy(logits, data.val[1])), abs=1e-5)


def test_extract_needs_every_value_and_leaves_the_network_unchanged() -> None:
    net = ModuleSupernet(ModuleSpace(NET), NET, (1, 8, 8), 3).net
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match="no value for the choice"):
        extract(net, {"stem": 4}, torch.zeros(2, 1, 8, 8))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_supernet_oracle_trains_and_scores_a_user_network(tmp_path: Path) -> None:
    data = {"name": "synthetic", "num_samples": 160, "num_classes": 3, "shape": [1, 8, 8], "seed": 0}
    space = ModuleSpace(NET)
    cfg = {"epochs": 2, "batch_size": 16, "eval_batch_archs": 4, "measure_latency": False}
    oracle = SupernetOracle(space, dataset=data, supernet=cfg, seed=0, output_dir=tmp_path)
    archs = [space.sample(np.random.default_rng(s)) for s in range(6)]
    evals = oracle.evaluate(archs)
    assert all(e.ok for e in evals), [e.error for e in evals]
    assert (tmp_path / "supernet.pt").is_file()
    for arch, ev in zip(archs, evals):  # params of the scored network are those of its extraction
        assert ev.metrics["params"] == count_params(oracle.extract(arch))
    # a second oracle on the same checkpoint loads it (no training) and scores identically
    again = SupernetOracle(space, dataset=data, supernet=cfg, seed=0, output_dir=tmp_path)
    assert [e.objective for e in again.evaluate(archs)] == [e.objective for e in evals]
    # fair sampling works on it; sandwich needs every decision ordered, which a layer choice is not
    SupernetOracle(space, dataset=data, supernet={**cfg, "epochs": 1, "sampling": "fair"}, seed=0).prepare()
    with pytest.raises(ValueError, match="sandwich"):
        SupernetOracle(space, dataset=data, supernet={**cfg, "sampling": "sandwich"}, seed=0).prepare()


def test_standalone_and_proxy_oracles_use_a_user_network_and_a_user_builder() -> None:
    from oracles.proxies import ProxyOracle
    from oracles.standalone import StandaloneOracle

    data = {"name": "synthetic", "num_samples": 96, "num_classes": 3, "shape": [1, 8, 8], "seed": 0}
    space = ModuleSpace(NET)
    arch = space.sample(np.random.default_rng(3))
    ev = StandaloneOracle(space, dataset=data, epochs=1, hardware={"latency": False}).evaluate([arch])[0]
    assert ev.ok and ev.metrics["params"] == count_params(build_model(space, arch, (1, 8, 8), 3))
    ev = ProxyOracle(space, dataset=data, metrics=[], hardware={"latency": False}).evaluate([arch])[0]
    assert ev.ok, ev.error
    # a plain builder for a built-in space: the user's own network, not the engine's
    nb201 = get_space("nb201")
    cell = nb201.sample(np.random.default_rng(0))
    model = {"builder": "tests.networks:plain_builder", "hidden": 8}
    ev = StandaloneOracle(nb201, dataset=data, epochs=1, model=model, hardware={"latency": False}).evaluate([cell])[0]
    assert ev.ok and ev.metrics["params"] == count_params(build_model(nb201, cell, (1, 8, 8), 3, **model))
    with pytest.raises(ValueError, match=r"model\.builder"):
        StandaloneOracle(nb201, dataset=data, model={"builder": "tests.networks:nothing_here"})
    json.dumps(ev.metrics)


def test_a_module_of_the_working_directory_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nas-search, a console script, does not put the working directory on sys.path; users name modules there."""
    from oracles.choices import load_callable

    (tmp_path / "cwd_builder_mod.py").write_text("def build(arch, input_shape, num_classes):\n    return None\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert load_callable("cwd_builder_mod:build", "model.builder").__name__ == "build"
    with pytest.raises(ValueError, match=r"model\.builder='no_such_mod_here:build': cannot import"):
        load_callable("no_such_mod_here:build", "model.builder")
