"""Look-up oracle: metrics from a table (a benchmark's ground truth or the user's own)."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import math
import os
import zlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from engine.spaces import Architecture, SearchSpace
from engine.types import Evaluation
from oracles.base import BaseOracle

DEFAULT_TABLE = "nb201_cifar10"


def default_table_path() -> Path:
    """The NAS-Bench-201 CIFAR-10 table shipped inside the package."""
    return Path(str(resources.files("oracles") / "data" / f"{DEFAULT_TABLE}.csv.gz"))


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


@functools.lru_cache(maxsize=8)
def _read_table(path: str, mtime: float) -> tuple[list[str], list[dict[str, str]]]:
    with _open_text(Path(path)) as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise ValueError(f"table {path} is empty (no header row)")
        return list(reader.fieldnames), list(reader)


_PARSED: dict[tuple[object, ...], dict[tuple[int, ...], dict[str, float]]] = {}


def load_table(
    space: SearchSpace,
    path: str | os.PathLike[str],
    arch_column: str,
    columns: Sequence[str],
) -> dict[tuple[int, ...], dict[str, float]]:
    """Read ``columns`` of a CSV (optionally gzipped) into ``decisions -> {column: value}``.

    Raises:
        ValueError: naming the file, row and column of the first problem (missing
            file or column, unparsable architecture, non-numeric value, duplicate).
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"table file not found: {p}")
    try:
        key = (str(p.resolve()), p.stat().st_mtime, type(space), space.decisions, arch_column, tuple(columns))
        header, rows = _read_table(key[0], key[1])
    except (OSError, UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"cannot read table {p}: {exc}") from None
    if key in _PARSED:  # parsing 15,625 architecture strings dominates building an oracle
        return dict(_PARSED[key])
    for col in [arch_column, *columns]:
        if col not in header:
            raise ValueError(f"table {p} has no column {col!r}; columns are {header}")
    table: dict[tuple[int, ...], dict[str, float]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            arch = space.parse(row[arch_column])
        except ValueError as exc:
            raise ValueError(f"table {p} line {line}, column {arch_column!r}: {exc}") from None
        values: dict[str, float] = {}
        for col in columns:
            try:
                values[col] = float(row[col])
            except (TypeError, ValueError):
                raise ValueError(f"table {p} line {line}, column {col!r}: not a number: {row[col]!r}") from None
        if arch.decisions in table:
            raise ValueError(f"table {p} line {line}: architecture {arch.string!r} appears twice")
        table[arch.decisions] = values
    if not table:
        raise ValueError(f"table {p} has no rows")
    if len(_PARSED) >= 8:
        _PARSED.clear()
    _PARSED[key] = table
    return dict(table)


class TabularOracle(BaseOracle):
    """Metrics looked up in a table, with simulated cost.

    Args:
        space: The space the table's architectures belong to.
        table: CSV path (``.csv`` or ``.csv.gz``); ``None`` is the shipped
            NAS-Bench-201 CIFAR-10 table.
        arch_column: Column holding canonical architecture strings.
        objective: Column the search maximises.
        metrics: Further columns a strategy may see (e.g. latencies).
        reported: Columns kept for the report only (e.g. ``test_acc``); strategies never see them.
        cost_column: Column of simulated seconds per evaluation, if any.
        cost_seconds: Simulated seconds per evaluation when there is no cost column.
    """

    def __init__(
        self,
        space: SearchSpace,
        table: str | os.PathLike[str] | None = None,
        arch_column: str = "arch",
        objective: str = "val_acc",
        metrics: Sequence[str] = (),
        reported: Sequence[str] = ("test_acc",),
        cost_column: str | None = None,
        cost_seconds: float = 0.0,
    ) -> None:
        super().__init__(space)
        if not math.isfinite(cost_seconds) or cost_seconds < 0:
            raise ValueError(f"oracle.cost_seconds must be a non-negative number, got {cost_seconds!r}")
        overlap = ({objective} | set(metrics)) & set(reported)
        if overlap:
            raise ValueError(f"columns {sorted(overlap)} cannot be both visible and report-only")
        self.path = Path(table) if table is not None else default_table_path()
        self.objective = objective
        self.metrics = tuple(metrics)
        self.reported = tuple(reported)
        self.cost_column = cost_column
        self.cost_seconds = float(cost_seconds)
        columns = [objective, *self.metrics, *self.reported] + ([cost_column] if cost_column else [])
        self.table = load_table(space, self.path, arch_column, list(dict.fromkeys(columns)))

    def lookup(self, arch: Architecture) -> dict[str, float]:
        """All configured columns of ``arch``.

        Raises:
            KeyError: if the table has no row for it.
        """
        try:
            return self.table[arch.decisions]
        except KeyError:
            raise KeyError(f"architecture {arch.string!r} is not in table {self.path}") from None

    def _evaluate_one(self, arch: Architecture) -> Evaluation:
        row = self.lookup(arch)
        return Evaluation(
            arch=arch,
            objective=row[self.objective],
            metrics={self.objective: row[self.objective], **{m: row[m] for m in self.metrics}},
            reported={r: row[r] for r in self.reported},
            cost=row[self.cost_column] if self.cost_column else self.cost_seconds,
        )
