"""The table oracle's guards, defaults and look-ups, each required outcome pinned.

Written to kill the mutants of oracles/tabular.py that the other tests let live
(bench/mutation.py, bench/results/mutation.md). Tables are tiny CSVs written
here, so every value read back is known.
"""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from engine.spaces import ChoicesSpace, NB201Space, SearchSpace
from oracles.tabular import SHIPPED_METRICS, SHIPPED_REPORTED, TabularOracle, load_table


@pytest.fixture(scope="module")
def nb201() -> SearchSpace:
    return NB201Space()  # get_space would load every space plugin (torch, seconds) first


@pytest.fixture(scope="module")
def small() -> SearchSpace:
    return ChoicesSpace({"depth": [2, 3], "act": ["relu", "gelu"]})


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _table(tmp_path: Path, small: SearchSpace, header: list[str] | None = None) -> Path:
    """arch, acc (80+i), latency (10*i), comment (text), test_acc (70+i), secs (i+0.5) for the 4 cells."""
    header = header or ["arch", "acc", "latency", "comment", "test_acc", "secs"]
    full = {"acc": lambda i: 80 + i, "latency": lambda i: 10 * i, "comment": lambda i: f"note{i}",
            "test_acc": lambda i: 70 + i, "secs": lambda i: i + 0.5}
    rows = [[a.string, *(full[c](i) for c in header[1:])] for i, a in enumerate(small.enumerate())]
    return _write(tmp_path / "t.csv", header, rows)


# -- the guard that keeps a column from being both searched and report-only --------------------------


def test_the_objective_cannot_be_report_only_on_the_shipped_table(nb201: SearchSpace) -> None:
    """oracle.objective=test_acc keeps test_acc report-only by default on the shipped table: refused."""
    assert SHIPPED_REPORTED == ("test_acc",)
    with pytest.raises(ValueError, match=r"columns \['test_acc'\] cannot be both visible"):
        TabularOracle(nb201, objective="test_acc")
    with pytest.raises(ValueError, match=r"columns \['test_acc'\] cannot be both visible"):
        TabularOracle(nb201, objective="test_acc", metrics=[])



def test_a_metric_cannot_be_report_only(nb201: SearchSpace, small: SearchSpace, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"columns \['test_acc'\] cannot be both visible"):
        TabularOracle(nb201, metrics=["latency_ms_pixel3", "test_acc"])
    table = _table(tmp_path, small)
    with pytest.raises(ValueError, match=r"columns \['acc', 'latency'\] cannot be both visible"):
        TabularOracle(small, table=table, objective="acc", metrics=["latency"], reported=["latency", "acc"])
    with pytest.raises(ValueError, match=r"columns \['acc'\] cannot be both visible"):
        TabularOracle(small, table=table, objective="acc", metrics=[], reported=["acc"])
    # choosing the report-only columns explicitly makes test_acc a valid objective
    oracle = TabularOracle(small, table=table, objective="test_acc", metrics=["acc"], reported=[])
    assert oracle.objective == "test_acc" and oracle.reported == () and oracle.metrics == ("acc",)


# -- argument checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("cost", [-1.0, -1e-9, float("nan"), float("inf")])
def test_cost_seconds_must_be_a_finite_non_negative_number(nb201: SearchSpace, cost: float) -> None:
    with pytest.raises(ValueError, match=r"oracle\.cost_seconds"):
        TabularOracle(nb201, cost_seconds=cost)


@pytest.mark.parametrize(("key", "value"), [("metrics", "latency"), ("metrics", b"latency"), ("reported", "test_acc"),
                                            ("reported", {"test_acc"}), ("metrics", 3)])
def test_column_lists_must_be_lists(nb201: SearchSpace, key: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"oracle\.{key} must be a list of column names"):
        TabularOracle(nb201, **{key: value})  # type: ignore[arg-type]


def test_shipped_table_columns_and_costs(nb201: SearchSpace) -> None:
    oracle = TabularOracle(nb201, cost_seconds=0.0)
    assert oracle.metrics == SHIPPED_METRICS and oracle.reported == ("test_acc",) and oracle.objective == "val_acc"
    arch = nb201.sample(np.random.default_rng(0))
    (e,) = oracle.evaluate([arch])
    row = oracle.lookup(arch)
    assert e.ok and e.objective == row["val_acc"] and e.cost == 0.0
    assert set(e.metrics) == {"val_acc", *SHIPPED_METRICS} and e.reported == {"test_acc": row["test_acc"]}
    # the same columns chosen explicitly (the parsed table is then shared), with a simulated cost
    tuned = TabularOracle(nb201, metrics=list(SHIPPED_METRICS), reported=("test_acc",), cost_seconds=2.5)
    (e2,) = tuned.evaluate([arch])
    assert e2.cost == 2.5 and e2.metrics == e.metrics and tuned.reported == ("test_acc",)
    only_reported = TabularOracle(nb201, reported=["test_acc"])
    assert only_reported.metrics == SHIPPED_METRICS


# -- defaults of a table of one's own ----------------------------------------------------------------


def test_own_table_defaults(small: SearchSpace, tmp_path: Path) -> None:
    table = _table(tmp_path, small)
    oracle = TabularOracle(small, table=table, objective="acc", cost_column="secs")
    # every other numeric column is visible, test_acc is report-only, the cost column is neither
    assert oracle.metrics == ("latency",) and oracle.reported == ("test_acc",)
    archs = list(small.enumerate())
    evals = oracle.evaluate(archs)
    assert [e.objective for e in evals] == [80.0, 81.0, 82.0, 83.0]
    assert [e.cost for e in evals] == [0.5, 1.5, 2.5, 3.5]
    assert evals[2].metrics == {"acc": 82.0, "latency": 20.0} and evals[2].reported == {"test_acc": 72.0}
    # only one of the two given: the other still defaults
    assert TabularOracle(small, table=table, objective="acc", metrics=["latency"]).reported == ("test_acc",)
    assert TabularOracle(small, table=table, objective="acc", reported=[]).metrics == ("latency", "test_acc", "secs")
    assert TabularOracle(small, table=table, objective="acc", metrics=[], reported=[]).metrics == ()


def test_own_table_without_test_acc_reports_nothing(small: SearchSpace, tmp_path: Path) -> None:
    table = _table(tmp_path, small, ["arch", "acc", "latency", "comment"])
    oracle = TabularOracle(small, table=table, objective="acc")
    assert oracle.reported == () and oracle.metrics == ("latency",) and oracle.cost_seconds == 0.0
    (e,) = oracle.evaluate([next(iter(small.enumerate()))])
    assert e.cost == 0.0


def test_a_column_with_a_blank_is_not_numeric(small: SearchSpace, tmp_path: Path) -> None:
    rows = [[a.string, 80 + i, "" if i == 1 else 5, 3] for i, a in enumerate(small.enumerate())]
    table = _write(tmp_path / "t.csv", ["arch", "acc", "gappy", "full"], rows)
    assert TabularOracle(small, table=table, objective="acc").metrics == ("full",)


def test_own_table_missing_file_is_named(small: SearchSpace, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="table file not found"):
        TabularOracle(small, table=tmp_path / "nope.csv", objective="acc")
    with pytest.raises(ValueError, match="table file not found"):
        TabularOracle(small, table=tmp_path / "nope.csv", objective="acc", metrics=[], reported=[])
    with pytest.raises(ValueError, match="table file not found"):
        TabularOracle(small, table=tmp_path, objective="acc")  # a directory is no table


# -- reading tables --------------------------------------------------------------------------------


def test_load_table_values_and_copies(small: SearchSpace, tmp_path: Path) -> None:
    table = _table(tmp_path, small)
    got = load_table(small, table, "arch", ["acc", "secs"])
    archs = list(small.enumerate())
    assert got == {a.decisions: {"acc": 80.0 + i, "secs": i + 0.5} for i, a in enumerate(archs)}
    got.clear()  # the caller's copy: the cache is unaffected
    assert len(load_table(small, table, "arch", ["acc", "secs"])) == 4
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(table.read_bytes()))
    assert load_table(small, gz, "arch", ["acc"])[archs[3].decisions] == {"acc": 83.0}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("arch,acc\n", "has no rows"),
        ("arch,other\n\"depth=2,act=relu\",1\n", "has no column 'acc'"),
        ("arch,acc\n\"depth=2,act=relu\",1\n\"depth=3,act=relu\",x\n", "line 3, column 'acc': not a number: 'x'"),
        ("arch,acc\n\"depth=2,act=relu\",1\n\"depth=2,act=relu\",2\n", "line 3: architecture .* appears twice"),
        ("arch,acc\n\"depth=2,act=relu\",1\ndepth=3,act=relu,2\n", "line 3 has more fields than the header"),
        ("arch,acc\n\"depth=9,act=relu\",1\n", "line 2, column 'arch'"),
    ],
)
def test_load_table_refusals_name_the_line(small: SearchSpace, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_table(small, path, "arch", ["acc"])


def test_unreadable_tables_are_refused(small: SearchSpace, tmp_path: Path) -> None:
    bad = tmp_path / "t.csv.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read table"):
        load_table(small, bad, "arch", ["acc"])
    with pytest.raises(ValueError, match="cannot read table"):
        TabularOracle(small, table=bad, objective="acc")
    with pytest.raises(ValueError, match="table file not found"):
        load_table(small, tmp_path / "missing.csv", "arch", ["acc"])


def test_lookup_of_a_missing_architecture_names_it_and_the_table(small: SearchSpace, tmp_path: Path) -> None:
    rows = [[a.string, 1.0] for a in list(small.enumerate())[:2]]
    table = _write(tmp_path / "part.csv", ["arch", "acc"], rows)
    oracle = TabularOracle(small, table=table, objective="acc")
    missing = list(small.enumerate())[3]
    with pytest.raises(KeyError, match=f"{missing.string!r} is not in table"):
        oracle.lookup(missing)
    (e,) = oracle.evaluate([missing])
    assert not e.ok and "not in table" in (e.error or "")


def test_a_rewritten_table_is_read_again(small: SearchSpace, tmp_path: Path) -> None:
    """The caches are keyed by the file's modification time: a new version of the file is never served stale."""
    table = _table(tmp_path, small)
    first = load_table(small, table, "arch", ["acc"])
    rows = [[a.string, 50 + i] for i, a in enumerate(small.enumerate())]
    _write(table, ["arch", "acc"], rows)
    st = table.stat()
    os.utime(table, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    again = load_table(small, table, "arch", ["acc"])
    assert first != again and sorted(v["acc"] for v in again.values()) == [50.0, 51.0, 52.0, 53.0]
