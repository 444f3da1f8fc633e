"""Torch networks built from an architecture, for images (2-D) and signals (1-D).

API:

- :func:`build_model` ``(space, arch, input_shape, num_classes, **model_options) -> nn.Module``:
  the stand-alone network of ``arch``. ``input_shape`` of length 3 (``C, H, W``) builds 2-D
  layers, of length 2 (``C, L``) 1-D layers.
- NAS-Bench-201 building blocks, reused by the supernet: :func:`make_op` (the five cell
  operations ``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``;
  convolutions are ReLU-Conv-BN), :class:`ReLUConvBN`, :class:`ResidualReduction`,
  :class:`NB201Cell` and :class:`NB201Network`, the macro skeleton that takes any cell
  factory (a supernet passes one whose cells mix operations, and forwards keyword
  arguments such as the sampled architecture to every cell).
- Chain (MobileNetV2) blocks: :class:`InvertedResidual`, :func:`chain_plan` (per layer:
  in/out channels, kernel, expansion, stride) and :class:`ChainNetwork`.
- :func:`resolve_device` (``auto``: CUDA when present).

Why a dimension argument everywhere: MNIST-1D separates architectures far better than
8x8 digits at CPU scale (see docs/standalone_recipe.md), and the same operations must
exist as 1-D and 2-D layers for the supernet and the stand-alone network to match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import EllipsisType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.spaces import NB201_EDGES, NB201_OPS, Architecture, ChainSpace, NB201Space, SearchSpace

__all__ = [
    "NB201_OPS",
    "ChainNetwork",
    "InvertedResidual",
    "NB201Cell",
    "NB201Network",
    "ReLUConvBN",
    "ResidualReduction",
    "Zero",
    "build_model",
    "chain_plan",
    "conv",
    "make_op",
    "model_options_for",
    "resolve_device",
]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` is CUDA when available, else CPU; anything else is checked.

    Raises:
        ValueError: for an unknown device or CUDA requested without a GPU.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a torch device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use device=auto or cpu")
    return dev


def _check_dim(dim: int) -> None:
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 (signals) or 2 (images), got {dim!r}")


def conv(
    dim: int, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False
) -> nn.Module:
    """A same-padded 1-D or 2-D convolution."""
    _check_dim(dim)
    cls = nn.Conv1d if dim == 1 else nn.Conv2d
    return cls(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=bias)


def batch_norm(dim: int, channels: int, affine: bool = True, track_running_stats: bool = True) -> nn.Module:
    """BatchNorm1d or BatchNorm2d."""
    _check_dim(dim)
    cls = nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
    return cls(channels, affine=affine, track_running_stats=track_running_stats)


def avg_pool(
    dim: int, kernel: int, stride: int, padding: int = 0, count_include_pad: bool = True, ceil_mode: bool = False
) -> nn.Module:
    """AvgPool1d or AvgPool2d."""
    _check_dim(dim)
    cls = nn.AvgPool1d if dim == 1 else nn.AvgPool2d
    return cls(kernel, stride=stride, padding=padding, count_include_pad=count_include_pad, ceil_mode=ceil_mode)


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, batch norm: NAS-Bench-201's ``nor_conv_*`` operation."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        dim: int = 2,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            conv(dim, c_in, c_out, kernel, stride),
            batch_norm(dim, c_out, affine, track_running_stats),
        )


class Zero(nn.Module):
    """The ``none`` operation: zeros of the output shape (keeps the graph connected)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            index: tuple[EllipsisType | slice, ...] = (..., *[slice(None, None, self.stride)] * (x.ndim - 2))
            x = x[index]
        if self.c_out != x.shape[1]:
            shape = list(x.shape)
            shape[1] = self.c_out
            return x.new_zeros(shape)
        return x.mul(0.0)


class AvgPool3x3(nn.Module):
    """``avg_pool_3x3``, with a 1x1 ReLU-Conv-BN first when the channel count changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, dim: int, affine: bool, track_running_stats: bool) -> None:
        super().__init__()
        self.pre = (
            ReLUConvBN(c_in, c_out, 1, 1, dim, affine, track_running_stats) if c_in != c_out else nn.Identity()
        )
        self.pool = avg_pool(dim, 3, stride, padding=1, count_include_pad=False)
        self.stride, self.dim = stride, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.pre(x))

    def forward_depthwise(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with the pooling done as a depthwise convolution with a kernel of ones.

        The same numbers up to rounding, several times faster on CPU (3.4x on
        channels-last 8x8 maps at width 16), which matters for batched supernet
        evaluation. Not the default: the FLOP counter would count it as a convolution.
        """
        if self.stride != 1:
            return self.forward(x)
        x = self.pre(x)
        conv = F.conv1d if self.dim == 1 else F.conv2d
        window = (3,) * self.dim
        total = conv(x, x.new_ones((x.shape[1], 1, *window)), padding=1, groups=x.shape[1])
        count = conv(x.new_ones((1, 1, *x.shape[2:])), x.new_ones((1, 1, *window)), padding=1)
        return total / count


class _FactorizedReduce(nn.Module):
    """``skip_connect`` with stride 2 or a channel change (as in NAS-Bench-201)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dim: int, affine: bool, track_running_stats: bool) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = conv(dim, c_in, c_out, 1, stride)
        self.bn = batch_norm(dim, c_out, affine, track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.relu(x)))


def make_op(
    name: str,
    c_in: int,
    c_out: int,
    stride: int = 1,
    dim: int = 2,
    affine: bool = True,
    track_running_stats: bool = True,
) -> nn.Module:
    """One NAS-Bench-201 operation as a module.

    Args:
        name: One of :data:`engine.spaces.NB201_OPS`.
        c_in: Input channels.
        c_out: Output channels.
        stride: 1 inside cells.
        dim: 1 for signals, 2 for images.
        affine: Learnable BN scale and shift (supernets sometimes turn them off).
        track_running_stats: Keep BN running statistics (off for supernets that
            recalibrate or use batch statistics).

    Raises:
        ValueError: for an unknown operation name.
    """
    _check_dim(dim)
    if name == "none":
        return Zero(c_in, c_out, stride)
    if name == "skip_connect":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return _FactorizedReduce(c_in, c_out, stride, dim, affine, track_running_stats)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride, dim, affine, track_running_stats)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, stride, dim, affine, track_running_stats)
    if name == "avg_pool_3x3":
        return AvgPool3x3(c_in, c_out, stride, dim, affine, track_running_stats)
    raise ValueError(f"unknown NAS-Bench-201 operation {name!r}; operations are {list(NB201_OPS)}")


class NB201Cell(nn.Module):
    """A NAS-Bench-201 cell: node ``j`` sums its edges from nodes ``i < j``; node 3 is the output.

    Args:
        ops: Six operation names in :data:`engine.spaces.NB201_EDGES` order.
        channels: Channels of every node.
        dim: 1 or 2.
    """

    def __init__(self, ops: Sequence[str], channels: int, dim: int = 2, **op_options: Any) -> None:
        super().__init__()
        if len(ops) != len(NB201_EDGES):
            raise ValueError(f"a NAS-Bench-201 cell has {len(NB201_EDGES)} edges, got {len(ops)} operations")
        self.op_names = tuple(ops)
        self.edges = nn.ModuleList(make_op(op, channels, channels, 1, dim, **op_options) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for dst in range(1, 4):
            total = self.edges[k](nodes[0])
            for src in range(1, dst):
                total = total + self.edges[k + src](nodes[src])
            nodes.append(total)
            k += dst
        return nodes[-1]


class ResidualReduction(nn.Module):
    """NAS-Bench-201's reduction block: a stride-2 residual block doubling the channels."""

    def __init__(self, c_in: int, c_out: int, dim: int = 2) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, dim)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, dim)
        # ceil_mode: odd sizes round up like the stride-2 convolution does (5 -> 3, not 2).
        self.shortcut = nn.Sequential(avg_pool(dim, 2, 2, ceil_mode=True), conv(dim, c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class _Passthrough(nn.Module):
    """Wraps a module that takes no keyword arguments so the skeleton can pass them to all."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, **_: Any) -> torch.Tensor:
        return self.module(x)


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro skeleton: stem, three stages of ``cells`` cells joined by
    residual reductions (channels C, 2C, 4C), BN-ReLU, global average pooling, linear classifier.

    Args:
        cell_factory: ``(channels, stage, index) -> nn.Module``; a stand-alone network
            builds fixed :class:`NB201Cell`, a supernet its mixed cells.
        channels: C, the width of the first stage.
        cells: Cells per stage (N).
        in_channels: Channels of the input.
        num_classes: Classifier outputs.
        dim: 1 or 2.

    ``forward(x, **kwargs)`` passes ``kwargs`` to every cell (e.g. ``arch=`` for a supernet).
    """

    def __init__(
        self,
        cell_factory: Callable[[int, int, int], nn.Module],
        channels: int,
        cells: int,
        in_channels: int,
        num_classes: int,
        dim: int = 2,
    ) -> None:
        super().__init__()
        _check_dim(dim)
        if channels < 1 or cells < 1:
            raise ValueError(f"nb201 network needs channels >= 1 and cells >= 1, got {channels} and {cells}")
        self.stem = nn.Sequential(conv(dim, in_channels, channels, 3), batch_norm(dim, channels))
        layers: list[nn.Module] = []
        self.cell_layers: list[int] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(_Passthrough(ResidualReduction(c, 2 * c, dim)))
                c *= 2
            for i in range(cells):
                self.cell_layers.append(len(layers))
                layers.append(cell_factory(c, stage, i))
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(batch_norm(dim, c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool1d(1) if dim == 1 else nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def features(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """The pooled features before the classifier."""
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, **kwargs)
        return torch.flatten(self.pool(self.lastact(x)), 1)

    def forward(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.classifier(self.features(x, **kwargs))


class _FixedCell(NB201Cell):
    def forward(self, x: torch.Tensor, **_: Any) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, depthwise ``kernel`` conv (carrying the stride),
    1x1 linear projection; identity residual when shape is preserved.

    Args:
        c_in: Input channels.
        c_out: Output channels.
        kernel: Depthwise kernel size.
        expand: Expansion ratio (hidden channels = ``c_in * expand``).
        stride: 1 or 2.
        dim: 1 or 2.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int, stride: int = 1, dim: int = 2) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [conv(dim, c_in, hidden, 1), batch_norm(dim, hidden), nn.ReLU6(inplace=False)]
        layers += [
            conv(dim, hidden, hidden, kernel, stride, groups=hidden),
            batch_norm(dim, hidden),
            nn.ReLU6(inplace=False),
            conv(dim, hidden, c_out, 1),
            batch_norm(dim, c_out),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


def default_chain_widths(stages: int, stem: int = 16) -> list[int]:
    """Per-stage widths 16, 24, 32, 48, 64, 96, ... (small, CPU-friendly)."""
    base = [16, 24, 32, 48, 64, 96, 128, 160]
    scale = stem / 16
    return [max(1, round(w * scale)) for w in (base + [base[-1]] * stages)[:stages]]


def default_chain_strides(stages: int) -> list[int]:
    """Stage 0 keeps the resolution, every later stage starts with stride 2."""
    return [1] + [2] * (stages - 1)


def chain_plan(
    space: ChainSpace,
    arch: Architecture,
    stem_channels: int = 16,
    widths: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
) -> list[dict[str, int]]:
    """The layers of a chain architecture: ``c_in, c_out, kernel, expand, stride, stage, index``.

    Each stage's first layer carries the stage's stride and width change.

    Raises:
        ValueError: when ``widths`` or ``strides`` do not have one entry per stage.
    """
    widths = list(widths) if widths is not None else default_chain_widths(space.stages, stem_channels)
    strides = list(strides) if strides is not None else default_chain_strides(space.stages)
    if len(widths) != space.stages or len(strides) != space.stages:
        raise ValueError(
            f"chain model needs one width and one stride per stage ({space.stages}),"
            f" got widths={widths} strides={strides}"
        )
    plan = []
    c = stem_channels
    for s, layers in enumerate(space.stage_layers(arch.decisions)):
        for i, (kernel, expand) in enumerate(layers):
            plan.append(
                {
                    "c_in": c,
                    "c_out": widths[s],
                    "kernel": kernel,
                    "expand": expand,
                    "stride": strides[s] if i == 0 else 1,
                    "stage": s,
                    "index": i,
                }
            )
            c = widths[s]
    return plan


class ChainNetwork(nn.Module):
    """A MobileNetV2-style network: stem conv, inverted-residual stages, 1x1 head, pooling, classifier."""

    def __init__(
        self,
        plan: Sequence[dict[str, int]],
        in_channels: int,
        num_classes: int,
        stem_channels: int = 16,
        head_channels: int = 128,
        dim: int = 2,
    ) -> None:
        super().__init__()
        _check_dim(dim)
        self.stem = nn.Sequential(conv(dim, in_channels, stem_channels, 3), batch_norm(dim, stem_channels), nn.ReLU6())
        self.blocks = nn.Sequential(
            *(InvertedResidual(p["c_in"], p["c_out"], p["kernel"], p["expand"], p["stride"], dim) for p in plan)
        )
        last = plan[-1]["c_out"] if plan else stem_channels
        self.head = nn.Sequential(conv(dim, last, head_channels, 1), batch_norm(dim, head_channels), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool1d(1) if dim == 1 else nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


MODEL_SPACES = ("nb201", "chain")


def model_options_for(space: SearchSpace, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The model options that apply to ``space``.

    Configs may hold options per space (``{nb201: {channels: 16}, chain: {head_channels: 128}}``),
    so one oracle config works whichever space is selected; a flat mapping applies as is.
    """
    opts = dict(options or {})
    if any(k in MODEL_SPACES for k in opts):
        flat = {k: v for k, v in opts.items() if k not in MODEL_SPACES}
        if flat.get("builder") is not None or flat.get("network") is not None:
            return flat  # the user's network: the per-space entries configure the built-in ones only
        nested = opts.get(space.name) or {}
        return {**flat, **dict(nested)}
    return opts


def build_model(
    space: SearchSpace,
    arch: Architecture,
    input_shape: Sequence[int],
    num_classes: int,
    **model_options: Any,
) -> nn.Module:
    """The stand-alone network of ``arch``.

    Args:
        space: ``nb201`` or ``chain``.
        arch: An architecture of ``space``.
        input_shape: ``(C, H, W)`` for 2-D layers, ``(C, L)`` for 1-D layers.
        num_classes: Classifier outputs.
        **model_options: Options for this space (see :func:`model_options_for` for per-space
            mappings). Any space: ``builder`` (``package.module:build``, your own callable
            ``(arch, input_shape, num_classes, **other_options) -> nn.Module``) or ``network``
            (``package.module:Net``, a network with choice modules, see :mod:`oracles.choices`,
            whose extracted sub-network is built freshly initialised); a
            :class:`~oracles.choices.ModuleSpace` brings its network itself.
            ``nb201``: ``channels`` (C, default 16), ``cells`` (N per stage,
            default 2: with one cell per stage the fixed residual reductions dominate and the
            cell hardly changes accuracy, see docs/standalone_recipe.md). ``chain``:
            ``stem_channels`` (16), ``widths`` (per stage), ``strides`` (per stage),
            ``head_channels`` (128).

    Raises:
        ValueError: for an unknown space, an architecture of another space, a bad
            input shape or an unknown option.
    """
    if not space.contains(arch):
        raise ValueError(f"{arch.string!r} is not an architecture of space {space.name!r}")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"input_shape must be (C, L) or (C, H, W), got {list(shape)}")
    dim = len(shape) - 1
    # A network of the user's gets the flat options only (see model_options_for).
    user = {k: v for k, v in model_options_for(space, model_options).items() if v is not None}
    builder = user.pop("builder", None)
    if builder is not None:
        user.pop("network", None)
        return _user_model(str(builder), arch, shape, num_classes, user)
    from oracles.choices import network_of  # late: oracles.choices imports the supernet package, which imports this

    network = network_of(space, user)
    options = {k: v for k, v in model_options_for(space, model_options).items() if k not in ("builder", "network")}
    if network is not None:
        from oracles.supernet.module import standalone_network

        return standalone_network(space, arch, network[0], shape, num_classes, network[1])
    if isinstance(space, NB201Space):
        channels = int(options.pop("channels", 16))
        cells = int(options.pop("cells", 2))
        if options:
            raise ValueError(f"unknown nb201 model option(s) {sorted(options)}; options are ['cells', 'channels']")
        ops = space.ops(arch)
        return NB201Network(
            lambda c, _s, _i: _FixedCell(ops, c, dim), channels, cells, shape[0], num_classes, dim
        )
    if isinstance(space, ChainSpace):
        stem = int(options.pop("stem_channels", 16))
        head = int(options.pop("head_channels", 128))
        widths = options.pop("widths", None)
        strides = options.pop("strides", None)
        if options:
            raise ValueError(
                f"unknown chain model option(s) {sorted(options)};"
                " options are ['head_channels', 'stem_channels', 'strides', 'widths']"
            )
        plan = chain_plan(space, arch, stem, widths, strides)
        return ChainNetwork(plan, shape[0], num_classes, stem, head, dim)
    raise ValueError(
        f"no network for space {space.name!r}: built-in networks exist for ['chain', 'nb201'];"
        " name yours with model.builder=package.module:build (a callable (arch, input_shape, num_classes, **options))"
        " or model.network=package.module:Net (a network with choice modules)"
    )


def _user_model(
    spec: str, arch: Architecture, shape: tuple[int, ...], num_classes: int, options: Mapping[str, Any]
) -> nn.Module:
    """The user's stand-alone network: ``builder(arch, input_shape, num_classes, **options)``."""
    from oracles.choices import load_callable

    builder = load_callable(spec, "model.builder")
    model = builder(arch, shape, num_classes, **options)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model.builder={spec!r} returned {type(model).__name__}, not an nn.Module")
    return model
