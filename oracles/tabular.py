"""Look-up oracle: metrics from a table (a benchmark's ground truth or the user's own)."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import logging
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from engine.spaces import Architecture, SearchSpace
from engine.types import Evaluation
from oracles.base import BaseOracle

_log = logging.getLogger(__name__)
DEFAULT_TABLE = "nb201_cifar10"
SHIPPED_METRICS: tuple[str, ...] = ("latency_ms_raspi4", "latency_ms_pixel3")
"""Visible columns of the shipped table by default (the hardware costs constrained searches use)."""
SHIPPED_REPORTED: tuple[str, ...] = ("test_acc",)
"""Report-only columns of the shipped table by default."""


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
        if row.get(None):  # type: ignore[call-overload]  # csv.DictReader puts fields beyond the header under None
            raise ValueError(
                f"table {p} line {line} has more fields than the header: quote architecture strings that"
                f" contain commas (\"depth=3,width=32\"), as Python's csv module writes them"
            )
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


def _own_defaults(
    path: Path,
    arch_column: str,
    objective: str,
    cost_column: str | None,
    metrics: Sequence[str] | None,
    reported: Sequence[str] | None,
    epoch_columns: Sequence[str] = (),
) -> tuple[Sequence[str], Sequence[str]]:
    """Default ``metrics``/``reported`` of a user's table, read from its header and values."""
    if not path.is_file():
        raise ValueError(f"table file not found: {path}")
    try:
        header, rows = _read_table(str(path.resolve()), path.stat().st_mtime)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"cannot read table {path}: {exc}") from None
    if reported is None:
        reported = [c for c in SHIPPED_REPORTED if c in header and c != objective]
    if metrics is None:
        # the objective after fewer epochs is a rung's result, not a free metric of the full training
        taken = {arch_column, objective, cost_column, *reported, *epoch_columns}
        metrics = [c for c in header if c not in taken and _numeric(rows, c)]
    return metrics, reported


def _check_epoch_columns(epochs: int | None, columns: Mapping[int, str] | None) -> dict[int, str]:
    """``oracle.epoch_columns`` with integer keys, checked against ``oracle.epochs``."""
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"oracle.epochs must be a positive integer or null, got {epochs!r}")
    if not columns:
        return {}
    if epochs is None:
        raise ValueError("oracle.epoch_columns needs oracle.epochs: the training length of the objective column")
    out: dict[int, str] = {}
    for k, col in dict(columns).items():
        try:
            e = int(k)
        except (TypeError, ValueError):
            raise ValueError(f"oracle.epoch_columns keys must be epoch counts, got {k!r}") from None
        if not 1 <= e < epochs:
            raise ValueError(f"oracle.epoch_columns.{k}: needs fewer epochs than oracle.epochs={epochs}")
        out[e] = str(col)
    return out


def _numeric(rows: Sequence[dict[str, str]], column: str) -> bool:
    try:
        for row in rows:
            float(row[column])
    except (TypeError, ValueError):
        return False
    return bool(rows)


class TabularOracle(BaseOracle):
    """Metrics looked up in a table, with simulated cost.

    Args:
        space: The space the table's architectures belong to.
        table: CSV path (``.csv`` or ``.csv.gz``); ``None`` is the shipped
            NAS-Bench-201 CIFAR-10 table.
        arch_column: Column holding canonical architecture strings.
        objective: Column the search maximises.
        metrics: Further columns a strategy may see (e.g. latencies). ``None``: for the
            shipped table its two latencies; for a table of your own every other
            numeric column (logged at start), since those columns are what it offers.
        reported: Columns kept for the report only (e.g. ``test_acc``); strategies never
            see them. ``None``: ``test_acc`` for the shipped table; for your own table
            its ``test_acc`` column if it has one (and it is not the objective), else none.
        cost_column: Column of simulated seconds per evaluation, if any.
        cost_seconds: Simulated seconds per evaluation when there is no cost column.
        epochs: The training length the objective column was measured after; with
            ``epoch_columns`` it makes training epochs a fidelity (successive halving,
            Hyperband, ASHA).
        epoch_columns: ``{epochs: column}``: the objective after fewer epochs, e.g.
            ``{12: val_acc_12}``. The simulated cost of a rung is the cost of the epochs
            added since the architecture's last rung in this oracle (a promotion continues
            a training), a fraction ``epochs / oracle.epochs`` of the full cost.
    """

    concurrent = True  # look-ups only: safe to call from the asynchronous loop's worker threads

    def __init__(
        self,
        space: SearchSpace,
        table: str | os.PathLike[str] | None = None,
        arch_column: str = "arch",
        objective: str = "val_acc",
        metrics: Sequence[str] | None = None,
        reported: Sequence[str] | None = None,
        cost_column: str | None = None,
        cost_seconds: float = 0.0,
        epochs: int | None = None,
        epoch_columns: Mapping[int, str] | None = None,
    ) -> None:
        super().__init__(space)
        epoch_columns = _check_epoch_columns(epochs, epoch_columns)
        if not math.isfinite(cost_seconds) or cost_seconds < 0:
            raise ValueError(f"oracle.cost_seconds must be a non-negative number, got {cost_seconds!r}")
        for key, value in (("metrics", metrics), ("reported", reported)):
            if value is not None and (isinstance(value, (str, bytes)) or not isinstance(value, Sequence)):
                raise ValueError(f"oracle.{key} must be a list of column names, got {value!r}")
        self.path = Path(table) if table is not None else default_table_path()
        if table is None:
            metrics = SHIPPED_METRICS if metrics is None else metrics
            reported = SHIPPED_REPORTED if reported is None else reported
        elif metrics is None or reported is None:
            metrics, reported = _own_defaults(
                self.path, arch_column, objective, cost_column, metrics, reported, list(epoch_columns.values())
            )
            _log.info(
                "table %s: objective %s; visible to strategies: %s; report-only: %s (set oracle.metrics and"
                " oracle.reported to choose)", self.path, objective, list(metrics) or "none", list(reported) or "none",
            )
        overlap = ({objective} | set(metrics)) & set(reported)
        if overlap:
            raise ValueError(
                f"columns {sorted(overlap)} cannot be both visible (objective or oracle.metrics) and report-only"
                f" (oracle.reported={list(reported)})"
            )
        self.objective = objective
        self.metrics = tuple(metrics)
        self.reported = tuple(reported)
        self.cost_column = cost_column
        self.cost_seconds = float(cost_seconds)
        self.epochs = epochs
        self.epoch_columns = epoch_columns
        self._trained: dict[tuple[int, ...], int] = {}  # epochs each architecture has been "trained" to
        columns = [objective, *self.metrics, *self.reported, *epoch_columns.values()]
        columns += [cost_column] if cost_column else []
        self.table = load_table(space, self.path, arch_column, list(dict.fromkeys(columns)))
        self.space = space

    def covers(self) -> list[Architecture]:
        """The architectures this table holds: the runner restricts a search to them."""
        return [self.space.architecture(d) for d in self.table]

    def lookup(self, arch: Architecture) -> dict[str, float]:
        """All configured columns of ``arch``.

        Raises:
            KeyError: if the table has no row for it.
        """
        try:
            return self.table[arch.decisions]
        except KeyError:
            raise KeyError(f"architecture {arch.string!r} is not in table {self.path}") from None

    def evaluate_epochs(self, archs: Sequence[Architecture], epochs: int) -> list[Evaluation]:
        """The objective after ``epochs`` (a column of ``epoch_columns``, or the objective at ``oracle.epochs``).

        Report-only columns are given at the full training only: the table has them for nothing else.

        Raises:
            ValueError: if the table has no column for ``epochs``.
        """
        self.check_epochs(epochs)
        self._at = epochs
        try:
            return super().evaluate(archs)
        finally:
            self._at = None

    _at: int | None = None

    def check_epochs(self, epochs: int) -> None:
        """Refuse an epoch count the table has no column for (the runner asks before the search).

        Raises:
            ValueError: naming the columns there are.
        """
        if self.epochs is None:
            raise ValueError("this table has no per-epoch columns: set oracle.epochs and oracle.epoch_columns")
        if epochs != self.epochs and epochs not in self.epoch_columns:
            raise ValueError(
                f"the table has no column for {epochs} epochs: oracle.epoch_columns has"
                f" {sorted(self.epoch_columns)} and the objective is at {self.epochs}"
            )

    def _evaluate_one(self, arch: Architecture) -> Evaluation:
        row = self.lookup(arch)
        full_cost = row[self.cost_column] if self.cost_column else self.cost_seconds
        at = self.epochs if self._at is None else self._at
        if at is None or at == self.epochs:
            metrics = {self.objective: row[self.objective], **{m: row[m] for m in self.metrics}}
            objective, reported = row[self.objective], {r: row[r] for r in self.reported}
        else:
            objective = row[self.epoch_columns[at]]
            metrics = {self.objective: objective, **{m: row[m] for m in self.metrics}}
            reported = {}
        cost = full_cost
        if self.epochs is not None and at is not None:
            before = self._trained.get(arch.decisions, 0)
            before = before if before <= at else 0  # a shorter rung after a longer one trains again
            cost = full_cost * (at - before) / self.epochs
            self._trained[arch.decisions] = at
            metrics["epochs"] = float(at)
        return Evaluation(arch=arch, objective=objective, metrics=metrics, reported=reported, cost=cost)
