"""GPU options of stand-alone training: validated by name, resolved per device, CPU unchanged with auto."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from engine.spaces import get_space
from oracles.accel import Accel, ResolvedAccel
from oracles.data import dataset_from_config
from oracles.models import build_model
from oracles.standalone import Recipe, StandaloneOracle, train_model

SPACE = get_space("nb201")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return dataset_from_config({"name": "digits", "train_size": 256})


def _model(ds) -> torch.nn.Module:  # type: ignore[no-untyped-def]
    arch = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|")
    torch.manual_seed(0)
    return build_model(SPACE, arch, ds.input_shape, ds.num_classes, channels=8, cells=1)


@pytest.mark.parametrize(("options", "match"), [
    ({"precision": "fp16"}, "oracle.precision must be auto, bf16 or fp32"),
    ({"channels_last": "yes"}, "oracle.channels_last must be auto, true or false"),
    ({"channels_last": 1}, "oracle.channels_last must be auto, true or false"),
    ({"data_on_device": None}, "oracle.data_on_device must be auto, true or false"),
    ({"compile": "auto"}, "oracle.compile must be true or false"),
    ({"amp": True}, r"unknown GPU option\(s\) \['amp'\]"),
])
def test_bad_options_are_refused_by_name(options: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Accel.from_options(options)


def test_the_oracle_refuses_a_bad_option_before_any_training() -> None:
    with pytest.raises(ValueError, match=r"oracle\.precision"):
        StandaloneOracle(SPACE, dataset="digits", epochs=1, precision="half", hardware={"latency": False})


def test_auto_changes_nothing_on_cpu() -> None:
    assert Accel().resolve(CPU, input_dims=3, train_bytes=10**12) == ResolvedAccel(
        bf16=False, channels_last=False, compile=False, data_on_device=True
    )


def test_cpu_training_with_the_defaults_is_the_plain_training_bit_for_bit(digits) -> None:  # type: ignore[no-untyped-def]
    recipe = Recipe(epochs=2, batch_size=64)
    plain, tuned = _model(digits), _model(digits)
    a = train_model(plain, digits, recipe, seed=3, dev=CPU)
    b = train_model(tuned, digits, recipe, seed=3, dev=CPU, accel=Accel().resolve(CPU, 3))
    assert a == b
    for (k, v), w in zip(plain.state_dict().items(), tuned.state_dict().values()):
        assert torch.equal(v, w), k


def test_explicit_bf16_and_channels_last_really_train_differently_on_cpu(digits) -> None:  # type: ignore[no-untyped-def]
    recipe = Recipe(epochs=2, batch_size=64)
    base = _model(digits)
    ref = train_model(copy.deepcopy(base), digits, recipe, seed=3, dev=CPU)
    bf16 = Accel(precision="bf16").resolve(CPU, 3)
    assert bf16.bf16
    loss, acc = train_model(copy.deepcopy(base), digits, recipe, seed=3, dev=CPU, accel=bf16)
    assert loss != ref[0]  # the setting has an effect: it is not silently ignored
    assert abs(loss - ref[0]) < 0.3 and acc > 0.5  # and bf16 still trains
    nhwc = Accel(channels_last=True).resolve(CPU, 3)
    model = copy.deepcopy(base)
    loss, _ = train_model(model, digits, recipe, seed=3, dev=CPU, accel=nhwc)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert loss == pytest.approx(ref[0], rel=1e-3)  # the same computation in another layout


def test_channels_last_on_inputs_that_are_not_images_warns() -> None:
    with pytest.warns(UserWarning, match="oracle.channels_last=true has no effect"):
        got = Accel(channels_last=True).resolve(CPU, input_dims=2)
    assert not got.channels_last
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not Accel().resolve(CPU, input_dims=2).channels_last  # auto says nothing


def test_gpu_options_are_part_of_the_checkpoint_name() -> None:
    arch = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|")
    opts = {"dataset": "digits", "epochs": 3, "hardware": {"latency": False}}
    a = StandaloneOracle(SPACE, **opts)
    b = StandaloneOracle(SPACE, **opts, precision="bf16")
    try:
        assert a.checkpoint_path(arch) != b.checkpoint_path(arch)  # a bf16 training never continues an fp32 one
        assert a.job(arch)["accel"] == Accel().as_dict()
    finally:
        a.close()
        b.close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_uses_the_gpu_well(digits) -> None:  # type: ignore[no-untyped-def]
    dev = torch.device("cuda")
    got = Accel().resolve(dev, 3, train_bytes=digits.train[0].nelement() * 4)
    assert got.bf16 == torch.cuda.is_bf16_supported()
    assert got.channels_last and got.data_on_device
    model = _model(digits).to(dev)
    _, acc = train_model(model, digits, Recipe(epochs=2), seed=3, dev=dev, accel=got)
    assert acc > 0.5
