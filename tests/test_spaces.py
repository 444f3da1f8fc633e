"""Search spaces: canonical strings, parsing errors, operators, encodings, enumeration."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from engine.spaces import NB201_OPS, Architecture, ChainSpace, NB201Space, get_space

TABLE = Path("/work/shared/data/nb201_cifar10.csv")
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def nb201() -> NB201Space:
    return NB201Space()


@pytest.fixture(scope="module")
def chain() -> ChainSpace:
    return ChainSpace()


def test_every_row_of_the_nb201_table_round_trips_byte_identically(nb201: NB201Space) -> None:
    with open(TABLE, newline="") as fh:
        strings = [row["arch"] for row in csv.DictReader(fh)]
    assert len(strings) == 15_625
    seen = set()
    for s in strings:
        arch = nb201.parse(s)
        assert arch.string == s
        assert nb201.format(arch.decisions) == s
        seen.add(arch.decisions)
    assert len(seen) == 15_625 == nb201.size


def test_nb201_example_and_edge_order(nb201: NB201Space) -> None:
    arch = nb201.parse(EXAMPLE)
    assert nb201.ops(arch) == [
        "nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect"
    ]
    assert [d.name for d in nb201.decisions] == [
        "edge(1<-0)", "edge(2<-0)", "edge(2<-1)", "edge(3<-0)", "edge(3<-1)", "edge(3<-2)"
    ]
    assert str(arch) == EXAMPLE
    assert nb201.values(arch)["edge(2<-1)"] == "avg_pool_3x3"


def _position(message: str) -> int:
    m = re.search(r"at character (\d+)", message)
    assert m, message
    return int(m.group(1))


@pytest.mark.parametrize(
    ("bad", "token"),
    [
        (EXAMPLE.replace("avg_pool_3x3~1", "max_pool_3x3~1"), "max_pool_3x3~1"),
        (EXAMPLE.replace("skip_connect~2", "skip_connect~1"), "skip_connect~1"),
        (EXAMPLE.replace("|nor_conv_3x3~1|", "|nor_conv_3x3|"), "nor_conv_3x3"),
    ],
)
def test_malformed_nb201_token_is_named_with_its_position(nb201: NB201Space, bad: str, token: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(token))) as info:
        nb201.parse(bad)
    pos = _position(str(info.value))
    assert bad[pos:].startswith(token)


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        ("", "3 node groups"),
        (EXAMPLE + "+|none~0|", "3 node groups"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|", "needs 3 edge"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must start and end with '|'"),
    ],
)
def test_malformed_nb201_structure(nb201: NB201Space, bad: str, what: str) -> None:
    with pytest.raises(ValueError, match=re.escape(what)):
        nb201.parse(bad)


def test_non_string_is_a_value_error(nb201: NB201Space, chain: ChainSpace) -> None:
    for space in (nb201, chain):
        with pytest.raises(ValueError, match="must be a str"):
            space.parse(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "token"),
    [
        ("k3e4-k5e6|k3e3-k3e3-k9e6|k3e3-k3e3|k3e3-k3e3", "k9e6"),
        ("k3e4-k5e6|k3e3-k3e3-k7e5|k3e3-k3e3|k3e3-k3e3", "k7e5"),
        ("k3e4-k5e6|k3e3-x-k7e6|k3e3-k3e3|k3e3-k3e3", "x"),
    ],
)
def test_malformed_chain_token_is_named_with_its_position(chain: ChainSpace, bad: str, token: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(token))) as info:
        chain.parse(bad)
    pos = _position(str(info.value))
    assert bad[pos:].startswith(token)


@pytest.mark.parametrize(
    ("bad", "what"),
    [("k3e4-k5e6|k3e3", "expected 4 stages"), ("k3e4|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "allowed depths")],
)
def test_malformed_chain_structure(chain: ChainSpace, bad: str, what: str) -> None:
    with pytest.raises(ValueError, match=re.escape(what)):
        chain.parse(bad)


def test_chain_canonicalisation(chain: ChainSpace) -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = chain.sample(rng)
        assert chain.parse(arch.string) == arch and chain.parse(arch.string).string == arch.string
        assert chain.contains(arch)
        # Changing an inactive layer changes nothing: same architecture, same string.
        act = chain.active(arch.decisions)
        inactive = [i for i, a in enumerate(act) if not a]
        if inactive:
            d = list(arch.decisions)
            d[inactive[0]] = chain.decisions[inactive[0]].n - 1
            other = chain.architecture(d)
            assert other == arch and hash(other) == hash(arch) and other.string == arch.string
            raw = Architecture("chain", tuple(d), arch.string)
            assert not chain.contains(raw)
    assert chain.parse("k3e4-k5e6|k3e3-k3e3-k7e6|k5e3-k5e3|k3e3-k3e3-k3e3-k7e6").string == (
        "k3e4-k5e6|k3e3-k3e3-k7e6|k5e3-k5e3|k3e3-k3e3-k3e3-k7e6"
    )


def test_chain_allowed_mask_forces_inactive_layers_to_option_zero(chain: ChainSpace) -> None:
    # Stage 0 with depth 2 (option 0): layers 2 and 3 are inactive.
    prefix = [0] + [1, 1] * 2
    mask = chain.allowed(prefix)
    assert mask.tolist() == [True, False, False]
    assert chain.allowed([2]).all()  # depth 4: layer 0 is active
    with pytest.raises(ValueError, match="already complete"):
        chain.allowed([0] * len(chain.decisions))


def test_sizes(nb201: NB201Space, chain: ChainSpace) -> None:
    assert nb201.size == 5**6
    assert chain.size == (9**2 + 9**3 + 9**4) ** 4
    small = ChainSpace(stages=2, depths=(1, 2), kernels=(3, 5), expands=(3, 6))
    archs = list(small.enumerate())
    assert len(archs) == len({a.decisions for a in archs}) == small.size == (4 + 16) ** 2
    assert len({a.string for a in archs}) == small.size
    assert all(small.contains(a) for a in archs)


def test_enumerate(nb201: NB201Space, chain: ChainSpace) -> None:
    archs = list(nb201.enumerate())
    assert len(archs) == len(set(archs)) == 15_625
    assert archs == list(nb201.enumerate())  # a fixed order
    with pytest.raises(ValueError, match="above limit"):
        next(iter(chain.enumerate()))
    with pytest.raises(ValueError, match="above limit"):
        next(iter(nb201.enumerate(limit=100)))


@pytest.mark.parametrize("name", ["nb201", "chain"])
def test_mutate_changes_exactly_one_active_decision(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(1)
    for _ in range(300):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert child != arch and space.contains(child)
        diff = [i for i, (a, b) in enumerate(zip(arch.decisions, child.decisions)) if a != b]
        if name == "nb201":
            assert len(diff) == 1
        else:
            # One active decision changed; a depth change may also reset now-inactive layers.
            changed_active = [i for i in diff if space.active(arch.decisions)[i] and space.active(child.decisions)[i]]
            assert len(changed_active) <= 1
    a = space.sample(np.random.default_rng(3))
    assert space.mutate(a, np.random.default_rng(9)) == space.mutate(a, np.random.default_rng(9))


@pytest.mark.parametrize("name", ["nb201", "chain"])
def test_crossover_takes_each_decision_from_a_parent(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(2)
    for _ in range(100):
        a, b = space.sample(rng), space.sample(rng)
        c = space.crossover(a, b, rng)
        assert space.contains(c)
        if name == "nb201":
            assert all(x in (y, z) for x, y, z in zip(c.decisions, a.decisions, b.decisions))
    a = space.sample(rng)
    assert space.crossover(a, a, rng) == a


def test_nb201_neighbours(nb201: NB201Space) -> None:
    arch = nb201.parse(EXAMPLE)
    nbs = nb201.neighbours(arch)
    assert len(nbs) == len(set(nbs)) == 6 * 4
    assert all(sum(x != y for x, y in zip(n.decisions, arch.decisions)) == 1 for n in nbs)
    assert nbs == nb201.neighbours(arch)


def test_chain_neighbours_are_distinct_and_one_active_decision_away(chain: ChainSpace) -> None:
    arch = chain.sample(np.random.default_rng(4))
    nbs = chain.neighbours(arch)
    assert arch not in nbs and len(nbs) == len(set(nbs))
    n_active = sum(chain.active(arch.decisions))
    depth_moves = chain.stages * (len(chain.depths) - 1)
    layer_moves = (n_active - chain.stages) * 2  # each active kernel/expand decision has 2 other options
    assert len(nbs) == depth_moves + layer_moves


def test_onehot_and_path_encodings(nb201: NB201Space, chain: ChainSpace) -> None:
    arch = nb201.parse(EXAMPLE)
    onehot = nb201.encode(arch)
    assert onehot.shape == (30,) and onehot.sum() == 6
    assert onehot.reshape(6, 5).argmax(axis=1).tolist() == list(arch.decisions)
    path = nb201.encode(arch, "path")
    assert path.shape == (4 + 16 + 64,)
    assert path.sum() == 4  # all four input-output paths avoid 'none'
    none_cell = nb201.architecture([NB201_OPS.index("none")] * 6)
    assert nb201.encode(none_cell, "path").sum() == 0
    with pytest.raises(ValueError, match="no encoding 'graph'"):
        nb201.encode(arch, "graph")
    c = chain.sample(np.random.default_rng(0))
    vec = chain.encode(c)
    assert vec.sum() == sum(chain.active(c.decisions))
    with pytest.raises(ValueError, match="no encoding 'path'"):
        chain.encode(c, "path")


def test_architecture_validation(nb201: NB201Space) -> None:
    with pytest.raises(ValueError, match="has 6 decisions, got 5"):
        nb201.architecture([0] * 5)
    with pytest.raises(ValueError, match=r"edge\(1<-0\).*got index 5"):
        nb201.architecture([5, 0, 0, 0, 0, 0])
    a = nb201.architecture([1] * 6)
    assert a == Architecture("nb201", (1,) * 6, "anything") and hash(a) == hash(Architecture("nb201", (1,) * 6, ""))
    assert a != Architecture("chain", (1,) * 6, a.string)
    with pytest.raises(AttributeError):
        a.decisions = (0,) * 6  # type: ignore[misc]


def test_get_space_unknown_lists_available() -> None:
    with pytest.raises(ValueError, match=r"unknown space 'nb301'.*chain.*nb201"):
        get_space("nb301")
    with pytest.raises(ValueError, match="stages >= 1"):
        ChainSpace(stages=0)


def test_sampling_is_seeded_and_covers_options(nb201: NB201Space) -> None:
    a = [nb201.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = np.random.default_rng(0)
    counts = np.zeros((6, 5))
    for _ in range(2000):
        for i, d in enumerate(nb201.sample(rng).decisions):
            counts[i, d] += 1
    assert counts.min() > 300  # uniform over options: about 400 each
