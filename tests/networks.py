"""Small networks with choice modules, importable by name (``tests.networks:ConvNet``) in tests."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from oracles.choices import ElasticConv, ElasticLinear, LayerChoice, ValueChoice


class ConvNet(nn.Module):
    """Every kind of choice: elastic width and kernel, a layer choice, a bypass, a tied width, a value read in forward.

    Works on images (``input_shape`` of length 3) and signals (length 2).
    """

    def __init__(self, input_shape: Sequence[int] = (1, 8, 8), num_classes: int = 3, width: int = 8) -> None:
        super().__init__()
        dim = len(input_shape) - 1
        tied = ValueChoice("mid", [width // 2, width])  # one decision for two layers
        self.stem = ElasticConv(int(input_shape[0]), ValueChoice("stem", [width // 2, width]),
                                ValueChoice("k", [1, 3, 5]), dim=dim, norm=True, act="relu")
        self.block = LayerChoice(
            {
                "conv": ElasticConv(width, tied, 3, dim=dim, norm=True, act="relu6"),
                "dw": ElasticConv(width, width, ValueChoice("dwk", [3, 5]), dim=dim, depthwise=True, norm=True),
                "skip": nn.Identity(),
            },
            label="block",
        )
        self.extra = ElasticConv(width, ValueChoice("extra", [0, width]), 3, dim=dim, norm=True, act="gelu")
        self.bn = (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(width)  # a plain BN after elastic widths
        self.act = ValueChoice("act", ["relu", "tanh"])
        self.pool = nn.AdaptiveAvgPool1d(1) if dim == 1 else nn.AdaptiveAvgPool2d(1)
        self.hidden = ElasticLinear(width, ValueChoice("hidden", [0, 6, 12]))
        self.head = ElasticLinear(12, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.extra(self.block(self.stem(x))))
        x = torch.relu(x) if self.act.value == "relu" else torch.tanh(x)
        return self.head(F.relu(self.hidden(torch.flatten(self.pool(x), 1))))


class Mismatched(nn.Module):
    """Uses one label with two different value lists: reading its space must fail."""

    def __init__(self) -> None:
        super().__init__()
        self.a = ElasticConv(1, ValueChoice("w", [2, 4]), 3)
        self.b = ElasticConv(4, ValueChoice("w", [2, 8]), 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def plain_builder(arch: object, input_shape: Sequence[int], num_classes: int, hidden: int = 16) -> nn.Module:
    """A stand-alone builder of the ``model.builder`` kind: any space, here an MLP sized by the architecture."""
    width = hidden * (1 + sum(getattr(arch, "decisions", ())) % 3)
    size = 1
    for s in input_shape:
        size *= int(s)
    return nn.Sequential(nn.Flatten(), nn.Linear(size, width), nn.ReLU(), nn.Linear(width, num_classes))
