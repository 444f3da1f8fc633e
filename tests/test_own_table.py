"""A table of one's own: the README's command on a two-column CSV, and the column defaults."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from engine.cli import config_dir
from engine.journal import Journal
from engine.runner import ConfigError, run_search
from engine.spaces import get_space
from oracles.tabular import SHIPPED_METRICS, TabularOracle

CHOICES = "space.params.decisions={depth: [2, 3, 4], width: [16, 32, 64], act: [relu, gelu]}"


@pytest.fixture(scope="module")
def hydra_ctx() -> Iterator[None]:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        yield


def _cfg(*overrides: str) -> DictConfig:
    return compose(config_name="config", overrides=["progress=none", *overrides])


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _nb201_table(tmp_path: Path, n: int = 60) -> tuple[Path, dict[str, float]]:
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = {space.sample(rng).string for _ in range(n * 3)}
    scores = {a: float(rng.uniform(50, 90)) for a in sorted(archs)[:n]}
    return _write(tmp_path / "my_table.csv", ["arch", "accuracy"], [[a, s] for a, s in scores.items()]), scores


def test_readme_command_on_a_two_column_table(hydra_ctx: None, tmp_path: Path) -> None:
    table, scores = _nb201_table(tmp_path)
    # The README's line, restricted to the table's cells by a budget below its size.
    cfg = _cfg(f"oracle.table={table}", "oracle.objective=accuracy", "oracle.reported=[]", "strategy=random",
               "budget.evaluations=5")
    summary = run_search(cfg, tmp_path / "run")  # failed before: "has no column 'latency_ms_raspi4'"
    assert summary["evaluations"] == 5
    journal = Journal(tmp_path / "run" / "journal.sqlite")
    try:
        seen = [e for _, e in journal.evaluations()]
    finally:
        journal.close()
    # Random search draws from the whole space; the cells in the table score their row.
    for e in seen:
        assert (e.arch.string in scores) == e.ok
        if e.ok:
            assert e.objective == scores[e.arch.string] and set(e.metrics) == {"accuracy"}


def test_own_table_defaults_other_numeric_columns_visible(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    space = get_space("choices", decisions={"depth": [2, 3], "act": ["relu", "gelu"]})
    rows = [[a.string, 80 + i, 10 * i, f"note{i}", 70 + i] for i, a in enumerate(space.enumerate())]
    table = _write(tmp_path / "t.csv", ["arch", "accuracy", "latency", "comment", "test_acc"], rows)
    with caplog.at_level(logging.INFO, logger="oracles.tabular"):
        oracle = TabularOracle(space, table=table, objective="accuracy")
    assert oracle.metrics == ("latency",) and oracle.reported == ("test_acc",)
    assert "visible to strategies: ['latency']" in caplog.text and "report-only: ['test_acc']" in caplog.text
    (e,) = oracle.evaluate([space.parse("depth=3,act=gelu")])
    assert e.ok and e.metrics == {"accuracy": 83.0, "latency": 30.0} and e.reported == {"test_acc": 73.0}
    # test_acc as the objective is then visible, not report-only
    assert TabularOracle(space, table=table, objective="test_acc").reported == ()
    with pytest.raises(ValueError, match=r"\['test_acc'\] cannot be both visible"):
        TabularOracle(space, table=table, objective="test_acc", reported=["test_acc"])


def test_shipped_table_defaults() -> None:
    oracle = TabularOracle(get_space("nb201"))
    assert oracle.metrics == SHIPPED_METRICS and oracle.reported == ("test_acc",)
    with pytest.raises(ValueError, match=r"oracle\.metrics must be a list"):
        TabularOracle(get_space("nb201"), metrics="latency_ms_pixel3")


def test_choices_space_on_own_table(hydra_ctx: None, tmp_path: Path) -> None:
    space = get_space("choices", decisions={"depth": [2, 3, 4], "width": [16, 32, 64], "act": ["relu", "gelu"]})
    rng = np.random.default_rng(1)
    scores = {a.string: float(rng.uniform(0, 1)) for a in space.enumerate()}
    table = _write(tmp_path / "t.csv", ["arch", "score"], [[a, s] for a, s in scores.items()])
    cfg = _cfg("space=choices", CHOICES, f"oracle.table={table}", "oracle.objective=score", "budget.evaluations=8")
    summary = run_search(cfg, tmp_path / "run")
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["space"] == "choices" and on_disk["evaluations"] == 8
    assert summary["best"]["objective"] == scores[summary["best"]["arch"]]
    journal = Journal(tmp_path / "run" / "journal.sqlite")
    try:
        seen = [e for _, e in journal.evaluations()]
    finally:
        journal.close()
    assert len(seen) == 8 and all(e.objective == scores[e.arch.string] for e in seen)
    assert summary["best"]["objective"] == max(e.objective for e in seen)


def test_choices_space_needs_decisions(hydra_ctx: None, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"space\.params\.decisions is required"):
        run_search(_cfg("space=choices"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="decision 'width' needs a non-empty list"):
        run_search(_cfg("space=choices", "space.params.decisions={width: []}"), tmp_path / "run")


def test_unquoted_choices_strings_are_refused_with_the_quoting_hint(tmp_path: Path) -> None:
    space = get_space("choices", decisions={"depth": [2, 3], "act": ["relu", "gelu"]})
    table = tmp_path / "t.csv"
    table.write_text("arch,score\n" + "".join(f"{a},1.0\n" for a in space.enumerate()))  # not quoted
    with pytest.raises(ValueError, match="line 2 has more fields than the header: quote architecture strings"):
        TabularOracle(space, table=table, objective="score")
