"""Models: both spaces build for 1-D and 2-D inputs, with the right shapes and the cell's wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.spaces import NB201_OPS, ChainSpace, NB201Space
from oracles.models import AvgPool3x3, NB201Cell, build_model, chain_plan, make_op, resolve_device

torch.set_num_threads(1)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 7, 9), (1, 40), (2, 5)])
@pytest.mark.parametrize("space", [NB201Space(), ChainSpace(stages=3, depths=(1, 2))])
def test_output_shape_for_images_and_signals(space, shape) -> None:
    rng = np.random.default_rng(0)
    for _ in range(2):
        arch = space.sample(rng)
        model = build_model(space, arch, shape, 7)
        out = model(torch.randn(3, *shape))
        assert out.shape == (3, 7)
        assert torch.isfinite(out).all()
        conv_type = nn.Conv1d if len(shape) == 2 else nn.Conv2d
        assert any(isinstance(m, conv_type) for m in model.modules())


@pytest.mark.parametrize("dim,shape", [(1, (2, 4, 10)), (2, (2, 4, 6, 6))])
def test_every_operation_keeps_the_shape(dim: int, shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape)
    for op in NB201_OPS:
        y = make_op(op, 4, 4, 1, dim)(x)
        assert y.shape == x.shape, op
    assert torch.count_nonzero(make_op("none", 4, 4, 1, dim)(x)) == 0
    assert torch.equal(make_op("skip_connect", 4, 4, 1, dim)(x), x)
    pool = make_op("avg_pool_3x3", 4, 4, 1, dim)
    assert isinstance(pool, AvgPool3x3)  # the supernet's faster pooling gives the same averages, borders included
    torch.testing.assert_close(pool.forward_depthwise(x), pool(x), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="unknown NAS-Bench-201 operation 'conv_5x5'"):
        make_op("conv_5x5", 4, 4)


def test_cell_output_depends_only_on_connected_paths() -> None:
    space = NB201Space()
    # Only edge 3<-0 is a skip; every other edge is none: the cell is the identity.
    ident = space.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    cell = NB201Cell(space.ops(ident), 4, dim=1)
    x = torch.randn(2, 4, 6)
    assert torch.equal(cell(x), x)
    # All-none cells disconnect the input: the network's output no longer depends on it.
    dead = space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    model = build_model(space, dead, (1, 8, 8), 3).eval()
    a, b = model(torch.randn(2, 1, 8, 8)), model(torch.randn(2, 1, 8, 8))
    assert torch.allclose(a, b)


def test_nb201_width_and_cells_change_the_parameter_count() -> None:
    space = NB201Space()
    arch = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )

    def count(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    small = count(build_model(space, arch, (1, 8, 8), 10, channels=8, cells=1))
    wide = count(build_model(space, arch, (1, 8, 8), 10, channels=16, cells=1))
    deep = count(build_model(space, arch, (1, 8, 8), 10, channels=8, cells=2))
    assert small < deep and small < wide
    with pytest.raises(ValueError, match=r"unknown nb201 model option\(s\) \['width'\]"):
        build_model(space, arch, (1, 8, 8), 10, width=4)


def test_chain_plan_follows_the_architecture() -> None:
    space = ChainSpace(stages=2, depths=(1, 2), kernels=(3, 5), expands=(2, 4))
    arch = space.parse("k5e4|k3e2-k5e2")
    plan = chain_plan(space, arch, stem_channels=8, widths=[8, 12])
    assert [(p["kernel"], p["expand"], p["stride"]) for p in plan] == [(5, 4, 1), (3, 2, 2), (5, 2, 1)]
    assert [(p["c_in"], p["c_out"]) for p in plan] == [(8, 8), (8, 12), (12, 12)]
    model = build_model(space, arch, (1, 8, 8), 4, stem_channels=8, widths=[8, 12], head_channels=16)
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert [m.kernel_size[0] for m in depthwise] == [5, 3, 5]
    with pytest.raises(ValueError, match="one width and one stride per stage"):
        build_model(space, arch, (1, 8, 8), 4, widths=[8])


def test_build_model_rejects_foreign_architectures_and_bad_shapes() -> None:
    nb, ch = NB201Space(), ChainSpace()
    arch = nb.sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match="is not an architecture of space 'chain'"):
        build_model(ch, arch, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="input_shape must be"):
        build_model(nb, arch, (8,), 10)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("tpu9")
