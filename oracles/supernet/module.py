"""The supernet of a user's network with choice modules (:mod:`oracles.choices`).

One module holds every architecture: the network itself, its choice modules
reading the active architecture from a shared :class:`~oracles.choices.ChoiceContext`
and its BatchNorm layers swapped for :class:`~oracles.supernet.bn.GroupBN`. It
speaks the protocol the trainer and the inherited evaluator use for the built-in
supernets (``forward(x, paths, shared)``, ``ctx``, ``extract``, ``ordered``,
``model_options``), so sampling rules, BN recalibration, fine-tuning, few-shot
splitting, checkpoints and resume work on it unchanged.

Batched evaluation runs the architectures of a chunk one after the other on the
shared input (with per-architecture BN statistics). The built-in NB201 and chain
supernets also share the computation of common prefixes between architectures,
which a generic network's arbitrary ``forward`` does not allow (docs/design.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from engine.spaces import Architecture, SearchSpace
from oracles.choices import ChoiceContext, bind, build_network, choices_of, extract
from oracles.supernet import blocks
from oracles.supernet.bn import BNContext, GroupBN

Path = tuple[int, ...]


class ModuleSupernet(nn.Module):
    """Weight-sharing supernet of a network with choice modules.

    Args:
        space: The space of the network's labels (a :class:`~oracles.choices.ModuleSpace`
            or any space with the same decisions: names and values).
        network: ``package.module:factory`` of the network.
        input_shape: Shape of one example.
        num_classes: Classifier outputs.
        **kwargs: Further arguments of the factory.

    Raises:
        ValueError: when the network's choices do not match the space's decisions.
    """

    def __init__(
        self, space: SearchSpace, network: str, input_shape: Sequence[int], num_classes: int, **kwargs: Any
    ) -> None:
        super().__init__()
        self.space = space
        self.network_spec = str(network)
        self.network_kwargs = dict(kwargs)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.net = build_network(self.network_spec, self.input_shape, num_classes, self.network_kwargs)
        found = choices_of(self.net)
        expected = {d.name: sorted(map(str, d.options)) for d in space.decisions}
        have = {k: sorted(map(str, v)) for k, v in found.items()}
        if have != expected:
            diff = sorted(k for k in set(have) | set(expected) if have.get(k) != expected.get(k))
            raise ValueError(
                f"network {self.network_spec!r} does not match space {space.name!r}: the choices {diff} differ"
                f" (network: { {k: have.get(k) for k in diff} }, space: { {k: expected.get(k) for k in diff} })"
            )
        self.choice_ctx: ChoiceContext = bind(self.net, ChoiceContext())
        self.ctx = BNContext()
        GroupBN.convert(self.net, self.ctx)
        self._names = [d.name for d in space.decisions]
        self._options = [d.options for d in space.decisions]
        # Sandwich sampling takes the last option as the largest: true when every decision is ordinal.
        self.ordered = all(getattr(space, "ordinal", [False] * len(self._names)))

    @property
    def model_options(self) -> dict[str, Any]:
        """What rebuilds the same network (stored in checkpoints and exports)."""
        return {"network": self.network_spec, **self.network_kwargs}

    def values(self, path: Sequence[int]) -> dict[str, Any]:
        """Decision indices -> label -> value."""
        return {n: opts[i] for n, opts, i in zip(self._names, self._options, path)}

    def forward(self, x: torch.Tensor, paths: Sequence[Path], shared: bool = False) -> torch.Tensor:
        """Logits of every path: ``len(paths)`` row blocks, in path order.

        Args:
            x: One row block per path, or with ``shared`` one block that every path sees.
            paths: Decision tuples.
            shared: ``x`` is a single block common to all paths (batched evaluation).
        """
        paths = list(paths)
        ctx = self.ctx
        if len(paths) == 1 and ctx.mode == "plain":  # training: one path, ordinary modules
            self.choice_ctx.values = self.values(paths[0])
            return self.net(x)
        old = ctx.groups
        rows = blocks.split_blocks(x, 1 if shared else len(paths))
        outs = []
        try:
            for a, path in enumerate(paths):
                self.choice_ctx.values = self.values(path)
                ctx.groups = ((a,),)
                outs.append(self.net(rows[0] if shared else rows[a]))
        finally:
            ctx.groups = old
        return torch.cat(outs)

    def extract(self, arch: Architecture) -> nn.Module:
        """The plain network of ``arch`` with the weights it inherits (a copy, no choice module inside)."""
        example = torch.zeros(2, *self.input_shape, device=next(self.parameters()).device)
        return extract(self.net, self.values(arch.decisions), example)


def standalone_network(
    space: SearchSpace,
    arch: Architecture,
    network: str,
    input_shape: Sequence[int],
    num_classes: int,
    kwargs: Mapping[str, Any] | None = None,
) -> nn.Module:
    """The stand-alone network of ``arch``: extracted from a fresh network, every layer freshly initialised.

    Re-initialising after extraction gives each plain layer PyTorch's default
    initialisation for its own (sliced) shape, as if the user had written that
    network by hand; the draw comes from torch's global generator (seed it first).
    """
    supernet = ModuleSupernet(space, network, input_shape, num_classes, **dict(kwargs or {}))
    model = supernet.extract(arch)
    for m in model.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset) and m is not model:
            reset()
    return model
