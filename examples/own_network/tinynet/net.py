"""A small 1-D convolutional network with five choice points.

Written as ordinary PyTorch; the choice modules of ``oracles.choices`` mark what
the search may change. nas-engine reads the space from their labels, trains this
very module as the supernet, and extracts the plain network of the winner.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from oracles.choices import ElasticConv, ElasticLinear, LayerChoice, ValueChoice

MAX_WIDTH = 24


class TinyNet(nn.Module):
    """Stem, one chosen block, an optional extra layer, pooling, classifier.

    Choices (label: values): ``stem_width`` [8, 16, 24] and ``stem_kernel`` [3, 5, 7]
    of the first convolution; ``block``, one of a 3-wide convolution, a 5-wide
    depthwise convolution or max pooling; ``extra`` [0, 16, 24], the width of an
    extra layer, 0 removing it (a bypass); ``act``, the activation after the block.

    Args:
        input_shape: ``(channels, length)`` of one signal.
        num_classes: Classifier outputs.
    """

    def __init__(self, input_shape: Sequence[int] = (1, 64), num_classes: int = 4) -> None:
        super().__init__()
        c_in = int(input_shape[0])
        self.stem = ElasticConv(c_in, ValueChoice("stem_width", [8, 16, 24]), ValueChoice("stem_kernel", [3, 5, 7]),
                                dim=1, norm=True, act="relu")
        self.block = LayerChoice(
            {
                "conv3": ElasticConv(MAX_WIDTH, MAX_WIDTH, 3, dim=1, norm=True),
                "dwconv5": ElasticConv(MAX_WIDTH, MAX_WIDTH, 5, dim=1, depthwise=True, norm=True),
                "maxpool": nn.MaxPool1d(3, stride=1, padding=1),
            },
            label="block",
        )
        self.act = ValueChoice("act", ["relu", "gelu"])
        self.extra = ElasticConv(MAX_WIDTH, ValueChoice("extra", [0, 16, 24]), 3, dim=1, norm=True, act="relu")
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = ElasticLinear(MAX_WIDTH, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.block(x)
        x = F.relu(x) if self.act.value == "relu" else F.gelu(x)
        x = self.extra(x)
        return self.head(torch.flatten(self.pool(x), 1))
