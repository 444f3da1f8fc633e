"""How a training uses a GPU: bf16 autocast, channels-last layout, ``torch.compile``, data on the device.

The options are plain values in a job (so any executor ships them) and are resolved where
the job runs, against the device it got. ``auto`` turns each one on only where it is known
to help and changes nothing on CPU: a CPU training with the defaults is bit for bit what it
was before these options existed, so CPU results, checkpoints and tests are unaffected.

- ``precision``: ``auto`` (bf16 autocast on a CUDA GPU that supports bf16, else fp32),
  ``bf16`` (autocast on any device; refused on a GPU without bf16) or ``fp32``. bf16 needs
  no loss scaling, unlike fp16, which is why it is the only reduced precision offered.
- ``channels_last``: ``auto`` (on CUDA, for image inputs), ``true`` or ``false``. Convolutions
  on tensor cores run in NHWC; a 1-D or flat input has no such layout, so ``true`` there is a
  warning, not a silent no-op.
- ``compile``: ``torch.compile`` the network for training (the first epoch of every job pays
  the compilation; worth it for long trainings only, hence off by default).
- ``data_on_device``: ``auto`` keeps the whole training set on the GPU when it takes less than
  half its free memory (no host-to-device copy per step), ``true`` always, ``false`` copies
  each batch from pinned host memory.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["Accel", "ResolvedAccel"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedAccel:
    """What one training on one device does (see the module docstring)."""

    bf16: bool
    channels_last: bool
    compile: bool
    data_on_device: bool

    @contextlib.contextmanager
    def autocast(self, dev: torch.device) -> Iterator[None]:
        """bf16 autocast around a forward pass when enabled; nothing otherwise."""
        if self.bf16:
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
                yield
        else:
            yield


@dataclass(frozen=True)
class Accel:
    """The GPU options of a training, as configured (``oracle.precision`` and the rest).

    Raises:
        ValueError: naming the ``oracle.<key>`` that has a bad value.
    """

    precision: str = "auto"
    channels_last: bool | str = "auto"
    compile: bool = False
    data_on_device: bool | str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"oracle.precision must be auto, bf16 or fp32, got {self.precision!r}")
        for key in ("channels_last", "data_on_device"):
            value = getattr(self, key)
            if value is not True and value is not False and value != "auto":
                raise ValueError(f"oracle.{key} must be auto, true or false, got {value!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"oracle.compile must be true or false, got {self.compile!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> Accel:
        """From a job's or config's mapping; unknown keys are refused by name."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown GPU option(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**options)

    def as_dict(self) -> dict[str, Any]:
        """The plain mapping a job carries (and the checkpoint key hashes)."""
        return asdict(self)

    def resolve(self, dev: torch.device, input_dims: int, train_bytes: int = 0) -> ResolvedAccel:
        """What to do on ``dev`` for inputs of ``input_dims`` dimensions (3 for images, without the batch).

        Raises:
            ValueError: for ``precision=bf16`` on a GPU that has no bf16.
        """
        cuda = dev.type == "cuda"
        if self.precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
            raise ValueError(f"oracle.precision=bf16: {torch.cuda.get_device_name(dev)} has no bf16; use fp32")
        bf16 = self.precision == "bf16" or (self.precision == "auto" and cuda and torch.cuda.is_bf16_supported())
        image = input_dims == 3
        if self.channels_last is True and not image:
            warnings.warn("oracle.channels_last=true has no effect: the inputs are not images (N, C, H, W)",
                          stacklevel=2)
        channels_last = image and (self.channels_last is True or (self.channels_last == "auto" and cuda))
        if not cuda:
            on_device = True  # the CPU's memory is where the data already is
        elif self.data_on_device == "auto":
            free, _ = torch.cuda.mem_get_info(dev)
            on_device = train_bytes < free // 2
            if not on_device:
                _log.info("training data (%.1f GB) stays in host memory: over half the GPU's free memory",
                          train_bytes / 1e9)
        else:
            on_device = bool(self.data_on_device)
        return ResolvedAccel(bf16=bf16, channels_last=channels_last, compile=self.compile, data_on_device=on_device)
