"""Every registered space against engine.testing's space checks, and the checks against broken spaces.

New spaces are picked up from the registry (plugins included); a space that needs
options is built from its ``conf/space/<name>.yaml`` or, when that leaves a
mandatory value open, from BUILD below. A registered space with neither fails,
so adding a space without a way to check it is caught here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from engine.spaces import Architecture, ChainSpace, ChoicesSpace, SearchSpace, get_space, list_spaces
from engine.testing import SPACE_CHECKS, SPACE_PARAMS, check_space

CONF = Path(__file__).resolve().parents[1] / "conf" / "space"
# Spaces whose config leaves a value to the user: the options the test builds them with.
BUILD: dict[str, dict[str, Any]] = {"module": {"network": "tests.networks:ConvNet"}}


def _params(name: str) -> dict[str, Any]:
    if name in BUILD:
        return BUILD[name]
    path = CONF / f"{name}.yaml"
    if path.exists():
        node = OmegaConf.load(path)
        assert node.name == name, f"{path} names space {node.name!r}"
        try:
            return OmegaConf.to_container(node.get("params", {}), throw_on_missing=True)  # type: ignore[return-value]
        except MissingMandatoryValue:  # the user must give it: check with the suite's own options
            assert name in SPACE_PARAMS, f"{path} leaves a value open and SPACE_PARAMS has no {name!r}"
    return SPACE_PARAMS.get(name, {})


@pytest.mark.parametrize("name", list_spaces())
@pytest.mark.parametrize("check", sorted(SPACE_CHECKS))
def test_registered_space_conforms(name: str, check: str) -> None:
    SPACE_CHECKS[check](get_space(name, **_params(name)))


def test_builtin_spaces_are_registered() -> None:
    assert {"nb201", "chain", "choices", "module"} <= set(list_spaces())
    assert list_spaces("ch*") == ["chain", "choices"]


# -- the checks catch what they target ------------------------------------------------------------
DECISIONS = {"depth": [2, 3, 4], "width": [16, 32, 64], "act": ["relu", "gelu"]}


class _Unparseable(ChoicesSpace):
    def format(self, decisions: Sequence[int]) -> str:
        return super().format(decisions).upper()


class _SharedString(ChoicesSpace):
    def format(self, decisions: Sequence[int]) -> str:
        return super().format([0, *decisions[1:]])

    def parse(self, string: str) -> Architecture:
        return self.architecture(super().parse(string).decisions)


class _AcceptsAnything(ChoicesSpace):
    def parse(self, string: str) -> Architecture:
        try:
            return super().parse(string)
        except ValueError:
            return self.architecture([0] * len(self.decisions))


class _NonCanonicalMutation(ChainSpace):
    def mutate(self, arch: Architecture, rng: np.random.Generator, n: int = 1) -> Architecture:
        out = super().mutate(arch, rng, n)
        d = list(out.decisions)
        d[-1] = (d[-1] + 1) % self.decisions[-1].n  # touches the last layer even when it is inactive
        return Architecture(self.name, tuple(d), self.format(d))


class _FarMutation(ChoicesSpace):
    def mutate(self, arch: Architecture, rng: np.random.Generator, n: int = 1) -> Architecture:
        return self.architecture([(d + 2) % dec.n for d, dec in zip(arch.decisions, self.decisions)])


class _SelfNeighbour(ChoicesSpace):
    def neighbours(self, arch: Architecture) -> list[Architecture]:
        return [arch, *super().neighbours(arch)]


class _RaggedEncoding(ChoicesSpace):
    def encode(self, arch: Architecture, encoding: str = "onehot") -> np.ndarray:
        x = super().encode(arch, encoding)
        return x[: len(x) - arch.decisions[0]]


class _RandomEncoding(ChoicesSpace):
    def encode(self, arch: Architecture, encoding: str = "onehot") -> np.ndarray:
        return super().encode(arch, encoding) + np.random.default_rng().random() * 1e-3


class _CollidingOnehot(ChoicesSpace):
    def encode(self, arch: Architecture, encoding: str = "onehot") -> np.ndarray:
        x = super().encode(arch, encoding)
        return x[3:] if encoding == "onehot" else x  # drops the depth block


class _NeverLast(ChoicesSpace):
    def sample(self, rng: np.random.Generator) -> Architecture:
        return self.architecture([int(rng.integers(max(1, d.n - 1))) for d in self.decisions])


class _GlobalRng(ChoicesSpace):
    def sample(self, rng: np.random.Generator) -> Architecture:
        return super().sample(np.random.default_rng())


class _WrongSize(ChoicesSpace):
    @property
    def size(self) -> int:
        return 17


BROKEN: list[tuple[str, SearchSpace, str]] = [
    ("roundtrip", _Unparseable(DECISIONS), "refused its own string"),
    ("roundtrip", _SharedString(DECISIONS), r"parse\(.*\) gave"),
    ("errors", _AcceptsAnything(DECISIONS), "accepted a malformed string"),
    ("operators", _NonCanonicalMutation(stages=2), "not a canonical member"),
    ("operators", _FarMutation(DECISIONS), "not one of its neighbours"),
    ("operators", _SelfNeighbour(DECISIONS), "among its own neighbours"),
    ("encoding", _RaggedEncoding(DECISIONS), "has shape"),
    ("encoding", _RandomEncoding(DECISIONS), "not deterministic"),
    ("encoding", _CollidingOnehot(DECISIONS), "same one-hot encoding"),
    ("sampling", _NeverLast(DECISIONS), "never chose"),
    ("sampling", _GlobalRng(DECISIONS), "equal generators"),
    ("size", _WrongSize(DECISIONS), "size says 17"),
]


@pytest.mark.parametrize(("check", "space", "message"), BROKEN, ids=[f"{c}-{type(s).__name__}" for c, s, _ in BROKEN])
def test_check_catches_broken_space(check: str, space: SearchSpace, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        SPACE_CHECKS[check](space)
    with pytest.raises(AssertionError, match=message):
        check_space(space)
