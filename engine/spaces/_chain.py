"""A MobileNet-style chain space: stages of inverted-residual layers.

The Once-for-All / NetAdaptV2 family: each stage picks a depth, each layer a
kernel size and an expansion ratio. Layers beyond a stage's depth are inactive
and canonicalised to option 0, so one network has one string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from engine.spaces._base import Architecture, Decision, SearchSpace

_LAYER = re.compile(r"k(\d+)e(\d+)")


class ChainSpace(SearchSpace):
    """Stages of layers with elastic depth, kernel size and expansion ratio.

    Canonical string: stages joined by ``|``, layers of a stage by ``-``, a layer
    written ``k<kernel>e<expand>``, e.g. ``k3e4-k5e6|k3e3-k3e3-k7e6``.

    Args:
        stages: Number of stages.
        depths: Allowed number of layers per stage.
        kernels: Allowed depthwise kernel sizes.
        expands: Allowed expansion ratios.
    """

    name = "chain"

    def __init__(
        self,
        stages: int = 4,
        depths: Sequence[int] = (2, 3, 4),
        kernels: Sequence[int] = (3, 5, 7),
        expands: Sequence[int] = (3, 4, 6),
    ) -> None:
        if stages < 1 or not depths or min(depths) < 1 or not kernels or not expands:
            raise ValueError(
                "chain space needs stages >= 1 and non-empty depths (>= 1), kernels and expands"
            )
        self.stages = int(stages)
        self.depths = tuple(sorted(int(d) for d in depths))
        self.kernels = tuple(sorted(int(k) for k in kernels))
        self.expands = tuple(sorted(int(e) for e in expands))
        self.max_depth = max(self.depths)
        decisions: list[Decision] = []
        # Per stage: depth first, then (kernel, expand) per layer, so a sequential
        # builder knows the depth before it reaches the layers that may be inactive.
        for s in range(self.stages):
            decisions.append(Decision(f"s{s}.depth", self.depths))
            for layer in range(self.max_depth):
                decisions.append(Decision(f"s{s}.l{layer}.kernel", self.kernels))
                decisions.append(Decision(f"s{s}.l{layer}.expand", self.expands))
        self.decisions = tuple(decisions)
        self._stride = 1 + 2 * self.max_depth

    def stage_layers(self, decisions: Sequence[int]) -> list[list[tuple[int, int]]]:
        """Per stage, the active layers as ``(kernel, expand)`` values."""
        out = []
        for s in range(self.stages):
            base = s * self._stride
            depth = self.depths[decisions[base]]
            out.append(
                [
                    (self.kernels[decisions[base + 1 + 2 * i]], self.expands[decisions[base + 2 + 2 * i]])
                    for i in range(depth)
                ]
            )
        return out

    def active(self, decisions: Sequence[int]) -> list[bool]:
        act = []
        for s in range(self.stages):
            depth = self.depths[decisions[s * self._stride]]
            act.append(True)
            for layer in range(self.max_depth):
                act.extend([layer < depth] * 2)
        return act

    @property
    def size(self) -> int:
        per_layer = len(self.kernels) * len(self.expands)
        return sum(per_layer**d for d in self.depths) ** self.stages

    def enumerate(self, limit: int = 10_000_000):  # type: ignore[override]
        if self.size > limit:
            raise ValueError(f"space {self.name!r} has {self.size} architectures, above limit {limit}")
        return super().enumerate(limit=max(limit, math.prod(d.n for d in self.decisions)))

    def format(self, decisions: Sequence[int]) -> str:
        return "|".join(
            "-".join(f"k{k}e{e}" for k, e in layers) for layers in self.stage_layers(decisions)
        )

    def parse(self, string: str) -> Architecture:
        if not isinstance(string, str):
            raise ValueError(f"chain string must be a str, got {type(string).__name__}")
        stages = string.split("|")
        if len(stages) != self.stages:
            raise ValueError(
                f"invalid chain string {string!r}: expected {self.stages} stages separated by '|',"
                f" found {len(stages)}"
            )
        decisions: list[int] = []
        pos = 0
        for s, stage in enumerate(stages):
            layers = stage.split("-")
            if len(layers) not in self.depths:
                raise ValueError(
                    f"invalid chain string {string!r}: stage {s} at character {pos} has"
                    f" {len(layers)} layers; allowed depths are {list(self.depths)}"
                )
            decisions.append(self.depths.index(len(layers)))
            lpos = pos
            for layer in layers:
                m = _LAYER.fullmatch(layer)
                bad = None
                if m is None:
                    bad = "expected 'k<kernel>e<expand>'"
                elif int(m.group(1)) not in self.kernels:
                    bad = f"kernel {m.group(1)} not in {list(self.kernels)}"
                elif int(m.group(2)) not in self.expands:
                    bad = f"expand {m.group(2)} not in {list(self.expands)}"
                if bad is not None or m is None:
                    raise ValueError(
                        f"invalid chain string {string!r}: bad token {layer!r} at character {lpos}"
                        f" (stage {s}): {bad}"
                    )
                decisions += [self.kernels.index(int(m.group(1))), self.expands.index(int(m.group(2)))]
                lpos += len(layer) + 1
            decisions += [0, 0] * (self.max_depth - len(layers))
            pos += len(stage) + 1
        return self.architecture(decisions)
