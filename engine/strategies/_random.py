"""Random search: the baseline every other strategy must beat."""

from __future__ import annotations

from engine.spaces import Architecture
from engine.strategies._base import Strategy
from engine.strategies._registry import register


@register("random")
class RandomSearch(Strategy):
    """Uniform random sampling without repetition (Li & Talwalkar, 2019).

    Repeats are avoided because a repeated query costs budget in a real search
    and says nothing new; once the space is exhausted the strategy stops.
    """

    def _ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        for _ in range(n):
            arch = self.sample_new()
            if self.was_asked(arch) or arch in out:
                break  # the space (or what sampling reaches) is exhausted
            out.append(arch)
        return out
