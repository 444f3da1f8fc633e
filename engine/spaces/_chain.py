"""A MobileNet-style chain space: stages of inverted-residual layers.

The Once-for-All / NetAdaptV2 family: each stage picks a depth, each layer a
kernel size and an expansion ratio. Layers beyond a stage's depth are inactive
and canonicalised to option 0, so one network has one string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from numbers import Integral

from engine.spaces._base import Architecture, Decision, SearchSpace

# ASCII digits without leading zeros: one canonical spelling per layer.
_LAYER = re.compile(r"k([1-9][0-9]*)e([1-9][0-9]*)")


def _positive_ints(key: str, values: Sequence[int]) -> tuple[int, ...]:
    """``values`` sorted, checked to be distinct positive integers (each is written into the string)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"chain space: {key} must be a non-empty list of positive integers, got {values!r}")
    bad = any(isinstance(v, bool) or not isinstance(v, Integral) or v < 1 for v in values)
    if bad or len(set(values)) != len(values):
        raise ValueError(f"chain space: {key} must be distinct positive integers, got {list(values)!r}")
    return tuple(sorted(int(v) for v in values))


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
        if isinstance(stages, bool) or not isinstance(stages, Integral) or stages < 1:
            raise ValueError(f"chain space needs stages >= 1 (an integer), got {stages!r}")
        self.stages: int = int(stages)
        self.depths: tuple[int, ...] = _positive_ints("depths", depths)
        self.kernels: tuple[int, ...] = _positive_ints("kernels", kernels)
        self.expands: tuple[int, ...] = _positive_ints("expands", expands)
        self.max_depth: int = max(self.depths)
        decisions: list[Decision] = []
        # Per stage: depth first, then (kernel, expand) per layer, so a sequential
        # builder knows the depth before it reaches the layers that may be inactive.
        for s in range(self.stages):
            decisions.append(Decision(f"s{s}.depth", self.depths))
            for layer in range(self.max_depth):
                decisions.append(Decision(f"s{s}.l{layer}.kernel", self.kernels))
                decisions.append(Decision(f"s{s}.l{layer}.expand", self.expands))
        self.decisions = tuple(decisions)
        self._stride: int = 1 + 2 * self.max_depth

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
