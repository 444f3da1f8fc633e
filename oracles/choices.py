"""Choice modules: put labelled choices inside your own ``nn.Module`` and search over them.

The NNI-3 / Once-for-All idea, in plain PyTorch. A user writes one network with
choice points; the search space is read from their labels (:func:`choices_of`,
:class:`ModuleSpace`), the same module is the weight-sharing supernet
(:class:`ModuleSupernet`), and :func:`extract` turns it into the plain network of
one architecture, with the weights it inherits and no choice module left inside.

- :class:`ValueChoice` ``(label, values)``: one decision; read ``.value`` in
  ``forward`` (an activation name, a dropout rate), or pass it to an elastic layer.
  Several layers may share one ``ValueChoice`` (or one label): one decision ties them.
- :class:`LayerChoice` ``(candidates, label)``: one of several candidate modules.
- :class:`ElasticConv` ``(in_channels, out_channels, kernel_size, ...)``: a convolution
  whose width and kernel size may be choices. It holds one weight of the largest
  width and kernel; a smaller width is a prefix of its output channels (ordered
  dropout / Once-for-All), a smaller kernel its centre. Input channels follow the
  input (a prefix), so layers after an elastic one need no extra wiring. With
  ``norm``/``act`` it is a conv-BN-activation layer, and a width of ``0`` makes the
  whole layer a bypass (its input passes through): NetAdaptV2's channel-level
  bypass, which makes depth and width one decision.
- :class:`ElasticLinear` ``(in_features, out_features)``: the same for a linear layer.

BatchNorm layers of the user's network need nothing special: the supernet swaps them
for :class:`~oracles.supernet.bn.GroupBN`, which uses a prefix of its channels.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.spaces import Architecture, ChoicesSpace, SearchSpace

__all__ = [
    "ChoiceContext",
    "ElasticConv",
    "ElasticLinear",
    "FixedValue",
    "LayerChoice",
    "ModuleSpace",
    "ValueChoice",
    "activate",
    "choices_of",
    "extract",
    "load_callable",
]

Value = int | float | str


class ChoiceContext:
    """The active architecture of a network's choice modules: label -> chosen value.

    One context is shared by every choice module of a network (set by
    :func:`activate` or :class:`ModuleSupernet`), so changing the architecture is
    one dictionary assignment, not a walk over the modules.
    """

    def __init__(self) -> None:
        self.values: dict[str, Value] = {}


class _Labelled(nn.Module):
    """A module that reads one decision (``label``) from the shared :class:`ChoiceContext`."""

    label: str
    options: tuple[Value, ...]

    def __init__(self, label: str, options: Sequence[Value]) -> None:
        super().__init__()
        if not isinstance(label, str) or not label or any(c in label for c in ",= \t\n"):
            raise ValueError(f"choice label must be a non-empty string without ',', '=' or spaces, got {label!r}")
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or not options:
            raise ValueError(f"choice {label!r}: values must be a non-empty list, got {options!r}")
        if len(set(options)) != len(options):
            raise ValueError(f"choice {label!r}: values must be distinct, got {list(options)!r}")
        self.label = label
        self.options = tuple(options)
        self._ctx: ChoiceContext | None = None

    @property
    def value(self) -> Value:
        """The chosen value of this decision in the active architecture.

        Raises:
            RuntimeError: when no architecture is active (the network is used outside
                a supernet: call :func:`activate` or :func:`extract` first).
        """
        ctx = self._ctx
        if ctx is None or self.label not in ctx.values:
            raise RuntimeError(
                f"choice {self.label!r} has no active value: run the network through oracles.choices.activate(...)"
                " or ModuleSupernet, or extract(...) a plain network"
            )
        return ctx.values[self.label]

    def extra_repr(self) -> str:
        return f"label={self.label!r}, options={list(self.options)}"


class ValueChoice(_Labelled):
    """A labelled choice among ``values`` (numbers are ordinal in the space, other values categorical).

    Use ``self.choice.value`` in ``forward``, or pass it as an elastic layer's width or kernel.

    Args:
        label: Name of the decision in the space and in architecture strings.
        values: The options; numbers are sorted ascending by the space.
    """

    def __init__(self, label: str, values: Sequence[Value]) -> None:
        super().__init__(label, values)

    def forward(self, *_: Any) -> Value:
        return self.value


class FixedValue(nn.Module):
    """What :func:`extract` leaves of a :class:`ValueChoice`: its chosen ``value``, fixed."""

    def __init__(self, label: str, value: Value) -> None:
        super().__init__()
        self.label = label
        self.value = value

    def forward(self, *_: Any) -> Value:
        return self.value

    def extra_repr(self) -> str:
        return f"label={self.label!r}, value={self.value!r}"


class LayerChoice(_Labelled):
    """One of several candidate modules, chosen by the decision ``label``.

    Args:
        candidates: A mapping name -> module, or a list (named after their classes when
            those are distinct, else ``"0"``, ``"1"``...).
        label: Name of the decision.
    """

    def __init__(self, candidates: Mapping[str, nn.Module] | Sequence[nn.Module], label: str) -> None:
        if isinstance(candidates, Mapping):
            named = {str(k): v for k, v in candidates.items()}
        else:
            mods = list(candidates)
            names = [type(m).__name__.lower() for m in mods]
            if len(set(names)) != len(names):
                names = [f"op{i}" for i in range(len(mods))]
            named = dict(zip(names, mods))
        if not named or not all(isinstance(m, nn.Module) for m in named.values()):
            raise ValueError(f"LayerChoice {label!r}: candidates must be a non-empty list or mapping of nn.Modules")
        for name in named:
            if not name or any(c in name for c in ",= \t\n") or name.lstrip("-").replace(".", "", 1).isdigit():
                raise ValueError(
                    f"LayerChoice {label!r}: candidate name {name!r} must be a word (no ',', '=', spaces;"
                    " not a number)"
                )
        super().__init__(label, list(named))
        self.candidates = nn.ModuleDict(named)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.candidates[str(self.value)](*args, **kwargs)


def _as_choice(value: int | ValueChoice, what: str) -> int | ValueChoice:
    if isinstance(value, ValueChoice):
        bad = [v for v in value.options if isinstance(v, bool) or not isinstance(v, int) or v < 0]
        if bad:
            raise ValueError(f"{what} choice {value.label!r} must hold non-negative integers, got {bad}")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer or a ValueChoice, got {value!r}")
    return value


def _largest(value: int | ValueChoice) -> int:
    return int(max(value.options)) if isinstance(value, ValueChoice) else int(value)


def _current(value: int | ValueChoice) -> int:
    return int(value.value) if isinstance(value, ValueChoice) else int(value)


_ACTS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "gelu": nn.GELU, "silu": nn.SiLU, "hardswish": nn.Hardswish,
    "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
}


class ElasticConv(nn.Module):
    """A 1-D or 2-D convolution of elastic width and kernel, optionally followed by BN and an activation.

    Args:
        in_channels: The largest number of input channels (an input may bring a prefix of them).
        out_channels: Output width, or a :class:`ValueChoice` of widths; ``0`` among them
            makes the layer a bypass (needs ``stride == 1``; the input must then fit where
            the output goes, as in a residual stage).
        kernel_size: Kernel size, or a :class:`ValueChoice` of odd sizes (smaller ones are the centre).
        stride: Stride.
        dim: 1 (signals) or 2 (images).
        depthwise: One filter per channel (``groups = channels``); the width then follows the input.
        bias: Learnable bias of the convolution.
        norm: Follow the convolution by BatchNorm (of the same elastic width).
        act: Activation after it: ``relu``, ``relu6``, ``gelu``, ``silu``, ``hardswish``, ``tanh``,
            ``sigmoid`` or ``None``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | ValueChoice,
        kernel_size: int | ValueChoice = 3,
        stride: int = 1,
        dim: int = 2,
        depthwise: bool = False,
        bias: bool = False,
        norm: bool = False,
        act: str | None = None,
    ) -> None:
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"ElasticConv: dim must be 1 or 2, got {dim!r}")
        self.width = _as_choice(out_channels, "ElasticConv out_channels")
        self.kernel = _as_choice(kernel_size, "ElasticConv kernel_size")
        kernels = self.kernel.options if isinstance(self.kernel, ValueChoice) else (self.kernel,)
        if any(int(k) % 2 == 0 or int(k) < 1 for k in kernels):
            raise ValueError(f"ElasticConv: kernel sizes must be odd and positive, got {list(kernels)}")
        widths = self.width.options if isinstance(self.width, ValueChoice) else (self.width,)
        if 0 in widths and stride != 1:
            raise ValueError("ElasticConv: a width of 0 (bypass) needs stride 1, so that the input can pass through")
        if act is not None and act not in _ACTS:
            raise ValueError(f"ElasticConv: act must be one of {sorted(_ACTS)} or None, got {act!r}")
        self.in_channels, self.stride, self.dim, self.depthwise = int(in_channels), int(stride), dim, bool(depthwise)
        self.max_width, self.max_kernel = _largest(self.width), _largest(self.kernel)
        if depthwise and self.max_width != self.in_channels:
            raise ValueError("ElasticConv: a depthwise convolution needs out_channels == in_channels")
        shape = (self.max_width, 1 if depthwise else self.in_channels) + (self.max_kernel,) * dim
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.zeros(self.max_width)) if bias else None
        self.bn = (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(self.max_width) if norm else None
        self.act = act
        self.act_fn = _ACTS[act]() if act is not None else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation of a convolution of the largest shape."""
        reference = (nn.Conv1d if self.dim == 1 else nn.Conv2d)(
            self.weight.shape[1] * (self.max_width if self.depthwise else 1), self.max_width, self.max_kernel,
            groups=self.max_width if self.depthwise else 1, bias=self.bias is not None,
        )
        with torch.no_grad():
            self.weight.copy_(reference.weight)
            if self.bias is not None and reference.bias is not None:
                self.bias.copy_(reference.bias)

    def active_weight(self, in_channels: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """The weight, bias and groups of the active width and kernel for an input of ``in_channels``."""
        k = _current(self.kernel)
        start = (self.max_kernel - k) // 2
        window = (slice(start, start + k),) * self.dim
        if self.depthwise:
            w = self.weight[(slice(0, in_channels), slice(None), *window)]
            b = self.bias[:in_channels] if self.bias is not None else None
            return w, b, in_channels
        width = _current(self.width)
        w = self.weight[(slice(0, width), slice(0, in_channels), *window)]
        b = self.bias[:width] if self.bias is not None else None
        return w, b, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.depthwise and _current(self.width) == 0:
            return x  # channel-level bypass: the layer is removed
        c = x.shape[1]
        if c > self.weight.shape[1] * (self.max_width if self.depthwise else 1):
            raise RuntimeError(f"ElasticConv built for at most {self.in_channels} input channels got {c}")
        w, b, groups = self.active_weight(c)
        conv = F.conv1d if self.dim == 1 else F.conv2d
        y = conv(x, w, b, self.stride, w.shape[-1] // 2, 1, groups)
        if self.bn is not None:
            y = self.bn(y)
        if self.act_fn is not None:
            y = self.act_fn(y)
        return y


class ElasticLinear(nn.Module):
    """A linear layer of elastic width: inputs may be a prefix of ``in_features``; width may be a choice.

    Args:
        in_features: The largest number of input features.
        out_features: Output width or a :class:`ValueChoice` of widths (``0``: bypass).
        bias: Learnable bias.
    """

    def __init__(self, in_features: int, out_features: int | ValueChoice, bias: bool = True) -> None:
        super().__init__()
        self.width = _as_choice(out_features, "ElasticLinear out_features")
        self.in_features, self.max_width = int(in_features), _largest(self.width)
        self.weight = nn.Parameter(torch.empty(self.max_width, self.in_features))
        self.bias = nn.Parameter(torch.empty(self.max_width)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation of a linear layer of the largest shape."""
        reference = nn.Linear(self.in_features, self.max_width, bias=self.bias is not None)
        with torch.no_grad():
            self.weight.copy_(reference.weight)
            if self.bias is not None and reference.bias is not None:
                self.bias.copy_(reference.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = _current(self.width)
        if width == 0:
            return x
        c = x.shape[-1]
        b = self.bias[:width] if self.bias is not None else None
        return F.linear(x, self.weight[:width, :c], b)


# -- reading the space ------------------------------------------------------------------------
def _labelled(module: nn.Module) -> Iterator[_Labelled]:
    """Every labelled module, inactive LayerChoice candidates included (each once)."""
    seen: set[int] = set()
    for m in module.modules():
        if isinstance(m, _Labelled) and id(m) not in seen:
            seen.add(id(m))
            yield m
        if isinstance(m, (ElasticConv, ElasticLinear)):
            for v in (getattr(m, "width", None), getattr(m, "kernel", None)):
                if isinstance(v, ValueChoice) and id(v) not in seen:
                    seen.add(id(v))
                    yield v


def choices_of(module: nn.Module) -> dict[str, list[Value]]:
    """The decisions of a network with choice modules: label -> values, in the order first met.

    Raises:
        ValueError: when one label is used with different values, or there is no choice at all.
    """
    found: dict[str, tuple[Value, ...]] = {}
    for m in _labelled(module):
        if m.label in found and found[m.label] != m.options:
            raise ValueError(
                f"choice label {m.label!r} is used with different values: {list(found[m.label])} and {list(m.options)}"
            )
        found.setdefault(m.label, m.options)
    if not found:
        raise ValueError(f"{type(module).__name__} has no choice modules (LayerChoice, ValueChoice, ElasticConv...)")
    return {k: list(v) for k, v in found.items()}


def bind(module: nn.Module, ctx: ChoiceContext) -> ChoiceContext:
    """Make every choice module of ``module`` read the active architecture from ``ctx``."""
    for m in _labelled(module):
        m._ctx = ctx
    return ctx


def activate(module: nn.Module, values: Mapping[str, Value]) -> nn.Module:
    """Set the active architecture of ``module`` (label -> value) and return it, to run it as that network."""
    ctx = next((m._ctx for m in _labelled(module) if m._ctx is not None), None) or bind(module, ChoiceContext())
    ctx.values = dict(values)
    return module


# -- extraction -------------------------------------------------------------------------------
def _replace(module: nn.Module, fn: Callable[[nn.Module], nn.Module | None]) -> nn.Module:
    """Replace, top-down, every sub-module for which ``fn`` returns a new module (its children are then visited)."""
    new = fn(module)
    if new is not None:
        return _replace(new, fn)
    for name, child in list(module.named_children()):
        setattr(module, name, _replace(child, fn))
    return module


def _plain_bn(bn: nn.modules.batchnorm._BatchNorm, channels: int, dim: int) -> nn.Module:
    """A plain BatchNorm1d/2d of the first ``channels`` channels of ``bn`` (weights and statistics)."""
    out = (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(
        channels, eps=bn.eps, momentum=bn.momentum, affine=bn.affine, track_running_stats=bn.track_running_stats
    )
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            src, dst = getattr(bn, name), getattr(out, name)
            if src is not None and dst is not None:
                dst.copy_(src[:channels])
        if bn.num_batches_tracked is not None and out.num_batches_tracked is not None:
            out.num_batches_tracked.copy_(bn.num_batches_tracked)
    out.train(bn.training)
    return out


def _static_conv(layer: ElasticConv, in_channels: int) -> nn.Module:
    w, b, groups = layer.active_weight(in_channels)
    conv = (nn.Conv1d if layer.dim == 1 else nn.Conv2d)(
        in_channels, w.shape[0], w.shape[-1], stride=layer.stride, padding=w.shape[-1] // 2, groups=groups,
        bias=b is not None,
    )
    with torch.no_grad():
        conv.weight.copy_(w)
        if b is not None and conv.bias is not None:
            conv.bias.copy_(b)
    parts: list[nn.Module] = [conv]
    if layer.bn is not None:
        parts.append(_plain_bn(cast(nn.modules.batchnorm._BatchNorm, layer.bn), w.shape[0], layer.dim))
    if layer.act is not None:
        parts.append(_ACTS[layer.act]())
    return parts[0] if len(parts) == 1 else nn.Sequential(*parts)


def _static_linear(layer: ElasticLinear, in_features: int) -> nn.Module:
    width = _current(layer.width)
    lin = nn.Linear(in_features, width, bias=layer.bias is not None)
    with torch.no_grad():
        lin.weight.copy_(layer.weight[:width, :in_features])
        if layer.bias is not None and lin.bias is not None:
            lin.bias.copy_(layer.bias[:width])
    return lin


def extract(
    network: nn.Module, values: Mapping[str, Value], example: torch.Tensor
) -> nn.Module:
    """The plain network of one architecture: chosen candidates, sliced weights, no choice module left.

    Args:
        network: A network with choice modules (a supernet's, or a fresh one).
        values: The architecture, label -> value.
        example: One input batch (its shape matters, not its values): a forward pass
            records which input width every elastic layer and BatchNorm sees.

    Returns:
        A copy; ``network`` is not changed. BatchNorm layers come out as plain
        ``BatchNorm1d/2d`` of the width they see, carrying their statistics.
    """
    from oracles.supernet.bn import GroupBN

    net = copy.deepcopy(network)
    ctx = bind(net, ChoiceContext())
    ctx.values = dict(values)
    missing = sorted(set(choices_of(network)) - set(values))
    if missing:
        raise ValueError(f"architecture gives no value for the choice(s) {missing}")

    def pick(m: nn.Module) -> nn.Module | None:
        return m.candidates[str(m.value)] if isinstance(m, LayerChoice) else None

    net = _replace(net, pick)
    seen: dict[int, tuple[int, int]] = {}  # id(module) -> (input channels, spatial dims)
    # Every traced module stays referenced until the end: a module freed by a replacement
    # could otherwise hand its id to a newly built one, which would then look traced.
    keep = list(net.modules())
    hooks = []
    for m in net.modules():
        if isinstance(m, (ElasticConv, ElasticLinear, nn.modules.batchnorm._BatchNorm)):
            def record(mod: nn.Module, args: tuple[Any, ...]) -> None:
                x = args[0]
                dims = x.dim() - 2
                seen[id(mod)] = (int(x.shape[-1] if isinstance(mod, ElasticLinear) else x.shape[1]), dims)
            hooks.append(m.register_forward_pre_hook(record))
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(example)
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)

    def fix(m: nn.Module) -> nn.Module | None:
        if isinstance(m, ValueChoice):
            return FixedValue(m.label, m.value)
        if isinstance(m, ElasticConv):
            if id(m) not in seen:  # never reached: keep the full layer, plain
                return _static_conv(m, m.in_channels) if not m.depthwise or _current(m.width) else nn.Identity()
            if not m.depthwise and _current(m.width) == 0:
                return nn.Identity()
            return _static_conv(m, seen[id(m)][0])
        if isinstance(m, ElasticLinear):
            if _current(m.width) == 0:
                return nn.Identity()
            return _static_linear(m, seen[id(m)][0] if id(m) in seen else m.in_features)
        if isinstance(m, GroupBN) or (
            isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) in seen and seen[id(m)][0] != m.num_features
        ):
            channels, dims = seen.get(id(m), (m.num_features, 2 if isinstance(m, nn.BatchNorm2d) else 1))
            return _plain_bn(m, channels, 1 if dims <= 1 else 2)
        return None

    out = _replace(net, fix)
    del keep
    return out


# -- a network named in a config -------------------------------------------------------------
def load_callable(spec: str, key: str = "network") -> Callable[..., Any]:
    """Import ``package.module:attr`` (or ``package.module.attr``).

    A module that is not importable from ``sys.path`` is looked up in the current
    directory too, as ``python -m`` would: a console script such as ``nas-search``
    does not put the working directory on the path, and users name modules of the
    project they run it from.

    Raises:
        ValueError: naming ``key`` when the module or attribute cannot be found.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"{key} must be 'package.module:callable', got {spec!r}")
    mod_name, _, attr = spec.partition(":") if ":" in spec else spec.rpartition(".")
    if not mod_name or not attr:
        raise ValueError(f"{key}={spec!r} must be 'package.module:callable'")
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        if exc.name != mod_name.split(".")[0] or cwd in sys.path or "" in sys.path:
            raise ValueError(f"{key}={spec!r}: cannot import {mod_name!r}: {exc}") from None
        sys.path.append(cwd)
        try:
            module = importlib.import_module(mod_name)
        except ImportError as again:
            sys.path.remove(cwd)
            raise ValueError(f"{key}={spec!r}: cannot import {mod_name!r} (also tried {cwd}): {again}") from None
    except ImportError as exc:
        raise ValueError(f"{key}={spec!r}: cannot import {mod_name!r}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{key}={spec!r}: module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{key}={spec!r} is not callable")
    return cast(Callable[..., Any], obj)


def build_network(
    spec: str, input_shape: Sequence[int] | None, num_classes: int | None, kwargs: Mapping[str, Any] | None = None
) -> nn.Module:
    """Call the network factory ``spec`` with the data's ``input_shape`` and ``num_classes``.

    They are passed as keywords when the factory takes them (and are not already in
    ``kwargs``); a factory with fixed shapes may simply not take them.

    Raises:
        ValueError: naming the problem (unknown factory, missing shapes, not a module).
    """
    factory = load_callable(spec)
    kw = dict(kwargs or {})
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for name, value in (("input_shape", input_shape), ("num_classes", num_classes)):
        if name not in kw and value is not None and (name in params or takes_any):
            kw[name] = tuple(int(s) for s in value) if isinstance(value, Sequence) else int(value)
    try:
        net = factory(**kw)
    except TypeError as exc:
        raise ValueError(f"network {spec!r} could not be built with {sorted(kw)}: {exc}") from None
    if not isinstance(net, nn.Module):
        raise ValueError(f"network {spec!r} returned {type(net).__name__}, not an nn.Module")
    return net


class ModuleSpace(ChoicesSpace):
    """The search space of a network with choice modules, read from its labels.

    Registered as ``space=module``: ``space.params.network=my_pkg.net:MyNet``. The space
    is data (label -> values, canonical strings ``label=value,...`` as in
    :class:`~engine.spaces.ChoicesSpace`); it keeps the network's name so that the
    torch oracles build the same network for it (the supernet, and the stand-alone
    network of an architecture by :func:`extract`).

    Args:
        network: ``package.module:factory`` returning the network; called with
            ``input_shape`` and ``num_classes`` when it takes them.
        input_shape: Shape of one example used to read the labels (``None``: the
            factory's default); the oracles build it for their data.
        num_classes: Classifier outputs used to read the labels (``None``: default).
        name: The space's name in strings and journals.
        kwargs: Further keyword arguments of the factory.
    """

    def __init__(
        self,
        network: str,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        name: str = "module",
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.network = str(network)
        self.network_kwargs = dict(kwargs or {})
        try:
            net = build_network(self.network, input_shape, num_classes, self.network_kwargs)
        except ValueError as exc:
            raise ValueError(f"{exc} (give space.params.input_shape and num_classes if it needs them)") from None
        super().__init__(choices_of(net), name=name)

    def values_of(self, arch: Architecture) -> dict[str, Value]:
        """The architecture as label -> value (what :func:`activate` and :func:`extract` take)."""
        return dict(self.values(arch))


def network_of(space: SearchSpace, model_options: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
    """The choice-module network for ``space``: ``(factory, kwargs)`` from ``model.network`` or the space itself."""
    opts = dict(model_options or {})
    spec = opts.pop("network", None)
    if spec is not None:
        opts.pop("builder", None)
        return str(spec), opts
    if isinstance(space, ModuleSpace):
        return space.network, {**space.network_kwargs, **opts}
    return None
