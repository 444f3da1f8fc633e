"""The winner as a model you keep: save, rebuild and load one architecture's network.

An export is a directory:

- ``model.pt``: the ``state_dict`` (tensors only: ``torch.load(..., weights_only=True)`` reads it);
- ``model.json``: the architecture string, the space (name and parameters), the network
  options, the input shape and classes (everything :func:`load_exported` needs to rebuild
  the module), how the weights were made, and the accuracy measured on the exported module;
- ``model.pt2``: a ``torch.export`` program of the network in eval mode (runs without
  this package: ``torch.export.load(path).module()``), when the network can be exported.

:func:`load_exported` rebuilds the module in a fresh process (the package of a user's own
network must be importable there) and loads the weights; nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.spaces import Architecture, SearchSpace, get_space
from oracles.models import build_model

__all__ = ["EXPORT_FORMAT", "build_exported", "load_exported", "read_export", "save_export"]

EXPORT_FORMAT = 1
WEIGHTS_FILE, SPEC_FILE, PROGRAM_FILE = "model.pt", "model.json", "model.pt2"


def build_exported(spec: Mapping[str, Any]) -> tuple[nn.Module, SearchSpace, Architecture]:
    """The module of an export's ``model.json`` (fresh weights), its space and architecture.

    Raises:
        ValueError: when the space, the architecture or the network cannot be rebuilt.
    """
    if spec.get("format") != EXPORT_FORMAT:
        raise ValueError(f"unsupported export format {spec.get('format')!r} (this version reads {EXPORT_FORMAT})")
    space = get_space(spec["space"]["name"], **dict(spec["space"].get("params") or {}))
    arch = space.parse(spec["arch"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(space, arch, spec["input_shape"], int(spec["num_classes"]), **dict(spec.get("model") or {}))
    return model, space, arch


def _spec_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / SPEC_FILE if p.is_dir() else p


def read_export(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``model.json`` of an export directory (or the file itself).

    Raises:
        ValueError: when it is missing or not valid JSON.
    """
    p = _spec_path(path)
    if not p.is_file():
        raise ValueError(f"no export at {path}: {p} not found (write one with nas-export RUN_DIR)")
    try:
        spec = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {p}: {exc}") from None
    if not isinstance(spec, dict) or "arch" not in spec or "space" not in spec:
        raise ValueError(f"{p} is not an export's model.json (no 'arch' or 'space')")
    return spec


def load_exported(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild an exported network and load its weights; returned in eval mode.

    Args:
        path: The export directory (or its ``model.json``).
        map_location: Where the weights go.

    Raises:
        ValueError: when the export is incomplete or does not match the rebuilt network.
    """
    spec = read_export(path)
    model, _, _ = build_exported(spec)
    weights = _spec_path(path).parent / WEIGHTS_FILE
    if not weights.is_file():
        raise ValueError(f"export {path} has no {WEIGHTS_FILE}")
    state = torch.load(weights, map_location=map_location, weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(f"weights {weights} do not fit the rebuilt network: {first}") from None
    return model.to(map_location).eval()


def save_export(
    model: nn.Module,
    spec: Mapping[str, Any],
    out: str | os.PathLike[str],
    example: torch.Tensor,
) -> dict[str, Any]:
    """Write ``model.pt``, ``model.json`` and (when torch can export it) ``model.pt2`` into ``out``.

    Args:
        model: The network (moved to CPU for saving).
        spec: What :func:`build_exported` needs (``arch``, ``space``, ``model``, ``input_shape``,
            ``num_classes``) plus anything to record (weights, metrics...).
        out: The export directory (created).
        example: One input batch for ``torch.export``.

    Returns:
        The written spec, with ``files`` and, if ``torch.export`` failed, ``program_error``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    written = {**dict(spec), "format": EXPORT_FORMAT, "files": {"weights": WEIGHTS_FILE}}
    tmp = out / (WEIGHTS_FILE + ".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(out / WEIGHTS_FILE)
    try:
        # the batch dimension stays dynamic: the program takes any number of examples
        program = torch.export.export(model, (example.cpu(),), dynamic_shapes=({0: torch.export.Dim.AUTO},))
        tmp = out / f"tmp-{PROGRAM_FILE}"  # torch.export wants the .pt2 suffix
        torch.export.save(program, str(tmp))
        tmp.replace(out / PROGRAM_FILE)
        written["files"]["program"] = PROGRAM_FILE
    except Exception as exc:  # torch.export cannot trace every network; the weights are still exported
        written["program_error"] = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    tmp = out / (SPEC_FILE + ".tmp")
    tmp.write_text(json.dumps(written, indent=2, default=_json_default))
    tmp.replace(out / SPEC_FILE)
    return written


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def recalibrate_bn(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's statistics to those of ``x`` (one pass, exact averages), as the supernet evaluates."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [(m, m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, as the hardware metrics count them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def max_abs_difference(a: nn.Module, b: Any, x: torch.Tensor) -> float:
    """Largest absolute difference between the outputs of two callables on ``x`` (eval mode, no gradients)."""
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())


def example_input(input_shape: Sequence[int], batch: int = 2) -> torch.Tensor:
    """A zero batch of the data's shape (export and tracing only need the shape)."""
    return torch.zeros(batch, *(int(s) for s in input_shape))
