"""Bad input, property-based: every malformed input gives a one-line ValueError naming the problem.

Each parser is fed generated inputs by hypothesis (arbitrary text, and valid
inputs with random damage, which reach deeper into the parser than noise does).
Either the input is accepted and means what it says (it round-trips), or the
parser raises ``ValueError`` with a one-line message that names the problem;
any other exception, or a hang, fails the test. Each test counts the cases it
ran and checks the count (docs/reliability.md lists them).
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.spaces import ChainSpace, NB201Space, get_space
from engine.spaces._nb201 import NB201_OPS

PARSER_CASES = 10_000
BATCH = 20
"""Inputs per hypothesis example: drawing a batch costs far less per input than one example each."""
FAST = settings(
    max_examples=PARSER_CASES // BATCH, deadline=None, database=None, derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def batch(strategy: st.SearchStrategy, size: int = BATCH) -> st.SearchStrategy[list]:
    """``size`` independent draws of ``strategy`` per example."""
    return st.lists(strategy, min_size=size, max_size=size)
CASES: Counter[str] = Counter()
"""Cases run per parser in this session (printed by the last test of the module)."""


def one_line_error(exc: BaseException, *must_contain: str) -> None:
    """The error is a ValueError whose message is one non-empty line containing ``must_contain``."""
    assert isinstance(exc, ValueError), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    for piece in must_contain:
        assert piece in text, (piece, text)


def _damaged(valid: st.SearchStrategy[str], alphabet: str) -> st.SearchStrategy[str]:
    """A valid string with random insertions, deletions and replacements."""

    @st.composite
    def damage(draw: st.DrawFn) -> str:
        s = list(draw(valid))
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["insert", "delete", "replace", "swap"]))
            i = draw(st.integers(0, max(0, len(s) - 1)))
            c = draw(st.sampled_from(alphabet) | st.characters())
            if op == "insert":
                s.insert(i, c)
            elif op == "delete" and s:
                del s[i]
            elif op == "replace" and s:
                s[i] = c
            elif op == "swap" and len(s) > 1:
                j = draw(st.integers(0, len(s) - 1))
                s[i], s[j] = s[j], s[i]
        return "".join(s)

    return damage()


def _numpy_damaged(space, rng: np.random.Generator, alphabet: str) -> str:
    """A valid string of ``space`` with 1-4 random character edits (numpy-driven, cheap)."""
    s = list(space.sample(rng).string)
    for _ in range(int(rng.integers(1, 5))):
        op, i = int(rng.integers(4)), int(rng.integers(max(1, len(s))))
        c = alphabet[int(rng.integers(len(alphabet)))] if rng.random() < 0.9 else chr(int(rng.integers(1, 0x3000)))
        if op == 0:
            s.insert(i, c)
        elif op == 1 and s:
            del s[i]
        elif op == 2 and s:
            s[i] = c
        elif len(s) > 1:
            j = int(rng.integers(len(s)))
            s[i], s[j] = s[j], s[i]
    return "".join(s)


def string_cases(space, valid: st.SearchStrategy[str], tokens: st.SearchStrategy[str], alphabet: str):
    """Per example: a few hypothesis-drawn strings (valid, damaged, token soup, text) and, from a
    drawn seed, numpy-damaged valid strings, ``BATCH`` in all."""
    drawn = batch(valid | _damaged(valid, alphabet) | tokens | st.text(max_size=200), 4)
    return st.builds(
        lambda ss, seed: ss + [_numpy_damaged(space, np.random.default_rng(seed), alphabet) for _ in range(BATCH - 4)],
        drawn, st.integers(0, 2**32 - 1),
    )


NB201 = NB201Space()
CHAIN = ChainSpace()
nb201_valid = st.lists(st.integers(0, 4), min_size=6, max_size=6).map(NB201.format)
chain_valid = st.builds(
    lambda seed: CHAIN.sample(np.random.default_rng(seed)).string, st.integers(0, 2**32 - 1)
)
nb201_tokens = st.lists(
    st.sampled_from([*NB201_OPS, "~0", "~1", "~2", "~3", "|", "+", "||", "~", "none~", "|+|", " "]), max_size=20
).map("".join)
chain_tokens = st.lists(st.sampled_from(["k3", "k5", "k7", "e3", "e4", "e6", "k", "e", "-", "|", "0", "9", "k03"]),
                        max_size=30).map("".join)


def test_nb201_parse() -> None:
    @FAST
    @given(string_cases(NB201, nb201_valid, nb201_tokens, "|+~0123_abcnorvskip"))
    def case(inputs: list[str]) -> None:
        for s in inputs:
            CASES["nb201 parse"] += 1
            try:
                arch = NB201.parse(s)
            except Exception as exc:
                one_line_error(exc, "NAS-Bench-201")
                continue
            assert arch.string == s and NB201.contains(arch) and NB201.parse(NB201.format(arch.decisions)) == arch

    case()
    assert CASES["nb201 parse"] >= PARSER_CASES


def test_chain_parse() -> None:
    @FAST
    @given(string_cases(CHAIN, chain_valid, chain_tokens, "k3579e46|-0"))
    def case(inputs: list[str]) -> None:
        for s in inputs:
            CASES["chain parse"] += 1
            try:
                arch = CHAIN.parse(s)
            except Exception as exc:
                one_line_error(exc, "chain string")
                continue
            assert arch.string == s and CHAIN.contains(arch)

    case()
    assert CASES["chain parse"] >= PARSER_CASES


def test_parse_rejects_non_strings() -> None:
    for bad in (None, 3, b"|none~0|", ["|none~0|"], 1.5):
        for space in (NB201, CHAIN):
            with pytest.raises(ValueError, match="must be a str"):
                space.parse(bad)  # type: ignore[arg-type]


def _decision_cases(space) -> st.SearchStrategy[list[tuple[list[int], str]]]:
    """Per example: hypothesis draws a seed and a damage rate; numpy makes ``BATCH`` decision
    vectors (valid samples with entries set out of range, lengths changed) and encoding names."""
    n = len(space.decisions)
    names = [*space.encodings, "path", "onehot", "graph", "", "ONEHOT"]

    def make(seed: int, rate: float, extreme: int) -> list[tuple[list[int], str]]:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(BATCH):
            d = list(space.sample(rng).decisions) if rng.random() < 0.7 else list(rng.integers(0, 7, n))
            for i in range(n):
                if rng.random() < rate:
                    d[i] = int(rng.choice([-1, space.decisions[i].n, extreme, -extreme, int(rng.integers(0, 9))]))
            if rng.random() < 0.1:
                d = d[: int(rng.integers(0, n))] if rng.random() < 0.5 else d + [0] * int(rng.integers(1, 3))
            out.append(([int(x) for x in d], names[int(rng.integers(len(names)))]))
        return out

    return st.builds(make, st.integers(0, 2**32 - 1), st.floats(0, 0.3), st.integers(2, 2**62))


@pytest.mark.parametrize("space", [NB201, CHAIN], ids=["nb201", "chain"])
def test_architecture_and_encode(space) -> None:
    sizes = {enc: len(space.encode(space.sample(np.random.default_rng(0)), enc)) for enc in space.encodings}

    @FAST
    @given(_decision_cases(space))
    def case(inputs: list[tuple[list[int], str]]) -> None:
        for decisions, encoding in inputs:
            CASES[f"{space.name} decisions+encode"] += 1
            try:
                arch = space.architecture(decisions)
            except Exception as exc:
                one_line_error(exc, "decision")
                continue
            assert space.contains(arch) and space.parse(arch.string) == arch
            try:
                vec = space.encode(arch, encoding)
            except Exception as exc:
                one_line_error(exc, "encoding", repr(encoding))
                assert encoding not in space.encodings
                continue
            assert vec.shape == (sizes[encoding],) and np.isfinite(vec).all()
            if encoding == "onehot":
                assert vec.sum() == sum(space.active(arch.decisions))

    case()
    assert CASES[f"{space.name} decisions+encode"] >= PARSER_CASES


def test_space_parameters() -> None:
    @settings(max_examples=500, deadline=None, database=None, derandomize=True)
    @given(
        st.sampled_from(["nb201", "chain", "Chain", "", "nb-201"]),
        st.dictionaries(
            st.sampled_from(["stages", "depths", "kernels", "expands", "width"]),
            st.integers(-2, 5) | st.lists(st.integers(-2, 8), max_size=4) | st.text(max_size=3) | st.none(),
            max_size=3,
        ),
    )
    def case(name: str, params: dict) -> None:
        CASES["space parameters"] += 1
        try:
            space = get_space(name, **params)
        except TypeError as exc:  # wrong keyword or type: the runner turns it into a ConfigError
            assert "\n" not in str(exc)
            return
        except Exception as exc:
            one_line_error(exc)
            return
        arch = space.sample(np.random.default_rng(0))
        assert space.parse(arch.string) == arch

    case()


# -- table loading ------------------------------------------------------------------------------

TABLE_CASES = 10_000


_CELLS = ["1.5", "93", "nan", "-inf", "", "x", "1e400", " 2", '"', '""', "a,b", "\x00", "\u00e9", "|none~0|"]
_COLUMNS = ["arch", "val_acc", "test_acc", "cost", "", "arch ", "ARCH", "\ufeffarch"]


def _numpy_csv(rng: np.random.Generator, extra: str) -> bytes:
    """A table-like CSV: a mostly right header, rows of valid/damaged architectures and odd cells."""
    header = ["arch", "val_acc"] if rng.random() < 0.8 else []
    header += [_COLUMNS[int(rng.integers(len(_COLUMNS)))] for _ in range(int(rng.integers(0, 3)))]
    rng.shuffle(header)
    rows = []
    for _ in range(int(rng.integers(0, 6))):
        row = []
        for col in header + ([""] if rng.random() < 0.1 else []):
            if col == "arch" and rng.random() < 0.8:
                row.append(NB201.sample(rng).string if rng.random() < 0.8 else _numpy_damaged(NB201, rng, "|+~0"))
            elif rng.random() < 0.7:
                row.append(f"{rng.normal(90, 5):.3f}")
            else:
                row.append(_CELLS[int(rng.integers(len(_CELLS)))])
        if rng.random() < 0.1:
            row = row[: int(rng.integers(0, len(row) + 1))]
        rows.append(",".join(row))
    if rows and rng.random() < 0.1:
        rows.append(rows[0])  # a duplicate architecture
    text = "\n".join([",".join(header), *rows]) + ("\n" if rng.random() < 0.5 else "")
    if rng.random() < 0.2:
        text += extra
    return text.encode("utf-8", errors="surrogatepass") if rng.random() < 0.95 else bytes(rng.integers(0, 256, 40))


def test_load_table(tmp_path: Path) -> None:
    from oracles.tabular import load_table

    names = iter(range(10**9))
    written: list[str] = []
    all_columns = ["val_acc", "test_acc", "cost", "missing"]

    @settings(max_examples=TABLE_CASES // BATCH, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, 2**32 - 1), st.text(max_size=30), st.binary(max_size=100))
    def case(seed: int, extra: str, noise: bytes) -> None:
        rng = np.random.default_rng(seed)
        for k in range(BATCH):
            data = noise if k == 0 else _numpy_csv(rng, extra)
            kind = [".csv", ".csv", ".csv.gz", ".gz-garbage"][int(rng.integers(4))]
            columns = [c for c in all_columns if rng.random() < 0.3]
            one_table(data, kind, columns)

    def one_table(data: bytes, kind: str, columns: list[str]) -> None:
        CASES["table loading"] += 1
        n = next(names)  # a fresh name: the reader caches by path and mtime
        if kind == ".csv.gz":
            path, data = tmp_path / f"{n}.csv.gz", gzip.compress(data, mtime=0)
        elif kind == ".gz-garbage":
            packed = gzip.compress(data, mtime=0)
            path, data = tmp_path / f"{n}.csv.gz", packed[: max(11, len(packed) // 2)] + data[:5]
        else:
            path = tmp_path / f"{n}.csv"
        path.write_bytes(data)
        written.append(path.name)
        try:
            table = load_table(NB201, path, "arch", columns)
        except Exception as exc:
            one_line_error(exc, str(path))
        else:
            assert table and all(NB201.contains(NB201.architecture(k)) for k in table)
            assert all(set(v) == set(columns) for v in table.values())
        assert path.read_bytes() == data

    case()
    assert CASES["table loading"] >= TABLE_CASES
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written), "the loader must write nothing"


# -- dataset loading ----------------------------------------------------------------------------

DATASET_CASES = 300


@st.composite
def _npz_arrays(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n = draw(st.integers(0, 12))
    dtypes = st.sampled_from(["float32", "float64", "int64", "uint8", "bool", "complex64", "U3"])
    shapes = st.sampled_from([(n,), (n, 4), (n, 1, 5), (n, 2, 3, 3), (n, 3, 3, 1), (n + 1, 4), ()])

    def arr() -> np.ndarray:
        shape, dtype = draw(shapes), draw(dtypes)
        a = np.random.default_rng(draw(st.integers(0, 100))).normal(size=shape) * 5
        if draw(st.booleans()):
            a.flat[: draw(st.integers(0, 2))] = draw(st.sampled_from([np.nan, np.inf, -1.0, 1e30]))
        with np.errstate(invalid="ignore", over="ignore"):
            return a.astype(dtype) if dtype != "U3" else a.astype(str).astype("U3")

    keys = draw(st.lists(st.sampled_from(["x", "y", "x_train", "y_train", "x_val", "y_val", "x_test", "y_test",
                                           "other"]), max_size=6, unique=True))
    return {k: arr() for k in keys}


def test_load_npz(tmp_path: Path) -> None:
    from oracles.data import load_npz

    counter = iter(range(10**9))

    @settings(max_examples=DATASET_CASES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(_npz_arrays(), st.sampled_from(["auto", "nchw", "nhwc", "nhw", "ncl", "flat", "bad"]),
           st.one_of(st.none(), st.binary(max_size=200)))
    def case(arrays: dict[str, np.ndarray], layout: str, raw: bytes | None) -> None:
        CASES["dataset loading (npz)"] += 1
        path = tmp_path / f"{next(counter)}.npz"
        if raw is None:
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            raw = buf.getvalue()
        path.write_bytes(raw)
        try:
            ds = load_npz(str(path), layout=layout)
        except Exception as exc:
            one_line_error(exc, "npz")
        else:
            for split in (ds.train, ds.val, ds.test):
                x, y = split[0], split[1]
                assert len(x) == len(y) and np.isfinite(np.asarray(x)).all()
        assert path.read_bytes() == raw

    case()
    assert CASES["dataset loading (npz)"] >= DATASET_CASES


def test_report_case_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\nhypothesis cases per parser: " + ", ".join(f"{k}: {v}" for k, v in sorted(CASES.items())))
