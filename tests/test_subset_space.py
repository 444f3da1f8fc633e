"""A table that holds part of a space: the search is restricted to its cells, for every strategy.

The restricted space must pass the same space checks as any other (strategies rely on
nothing else), and every registered strategy, run from its own config as a user would,
must spend its budget on cells the table holds: no "not in table" failures, and a
search that has measured every cell stops instead of asking repeats.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from engine.cli import config_dir
from engine.journal import Journal
from engine.runner import run_search
from engine.search import Budget
from engine.spaces import SearchSpace, SubsetSpace, get_space, restrict
from engine.strategies import list_strategies
from engine.testing import SPACE_CHECKS, SPACE_PARAMS
from oracles.tabular import default_table_path

CONF = Path(config_dir())
N_CELLS = 40


def _members(space: SearchSpace, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    found: dict[tuple[int, ...], object] = {}
    while len(found) < n:
        a = space.sample(rng)
        found.setdefault(a.decisions, a)
    return list(found.values())


@pytest.mark.parametrize("name", ["nb201", "chain", "choices"])
@pytest.mark.parametrize("check", sorted(SPACE_CHECKS))
def test_restricted_space_conforms(name: str, check: str) -> None:
    base = get_space(name, **SPACE_PARAMS.get(name, {}))
    SPACE_CHECKS[check](SubsetSpace(base, _members(base, N_CELLS)))


def test_restricted_operators_stay_in_the_set_and_reach_all_of_it() -> None:
    base = get_space("nb201")
    members = _members(base, N_CELLS)
    space = SubsetSpace(base, members)
    assert space.size == N_CELLS and space.root is base and space.name == base.name
    rng = np.random.default_rng(1)
    # A random walk by mutation visits every member: local search and evolution are not stuck in a corner.
    seen, arch = set(), members[0]
    for _ in range(3000):
        arch = space.mutate(arch, rng)
        seen.add(arch.decisions)
    assert seen == {a.decisions for a in members}
    # A sequential builder that follows allowed() always completes a member.
    for _ in range(50):
        prefix: list[int] = []
        while len(prefix) < len(base.decisions):
            options = np.flatnonzero(space.allowed(prefix))
            prefix.append(int(rng.choice(options)))
        assert space.contains(space.architecture(prefix))
    outside = next(a for a in base.enumerate() if not space.contains(a))
    with pytest.raises(ValueError, match="not among the 40 searched"):
        space.parse(outside.string)
    assert restrict(base, base.enumerate()) is base  # a table that covers the space changes nothing


@pytest.fixture(scope="module")
def partial_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared NAS-Bench-201 table cut to 40 rows, every column kept."""
    path = tmp_path_factory.mktemp("table") / "part.csv"
    src_path = default_table_path()
    opener = gzip.open if src_path.suffix == ".gz" else open
    with opener(src_path, "rt", newline="") as src, open(path, "w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for i, row in enumerate(reader):
            if i % 390 == 0:  # 40 rows spread over the table
                writer.writerow(row)
    return path


@pytest.fixture(scope="module")
def hydra_ctx() -> Iterator[None]:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        yield


@pytest.mark.parametrize("name", list_strategies())
def test_every_strategy_searches_only_the_tables_cells(
    name: str, partial_table: Path, hydra_ctx: None, tmp_path: Path
) -> None:
    group = f"strategy={name}" if (CONF / "strategy" / f"{name}.yaml").exists() else f"strategy.name={name}"
    overrides = ["progress=none", group, f"oracle.table={partial_table}", "budget.evaluations=30"]
    cfg = compose(config_name="config", overrides=overrides)
    if "max_epochs" in cfg.strategy:  # rung strategies need the objective after fewer epochs: any numeric column
        overrides += ["oracle.epochs=9", "oracle.epoch_columns={1: oneshot_supernet_acc, 3: oneshot_supernet_acc}"]
        cfg = compose(config_name="config", overrides=overrides)
    for fid in cfg.get("fidelities", {}):
        if "table" in cfg.fidelities[fid]:
            cfg.fidelities[fid].table = str(partial_table)
    Budget(**cfg.budget)  # the composed budget is valid as it stands
    summary = run_search(cfg, tmp_path / "run")
    with open(partial_table, newline="") as fh:
        held = {row["arch"] for row in csv.DictReader(fh)}
    journal = Journal(tmp_path / "run" / "journal.sqlite")
    try:
        asked = [e for _, e in journal.evaluations()]
    finally:
        journal.close()
    assert summary["failures"] == 0, [e.error for e in asked if not e.ok][:3]
    assert asked and all(e.arch.string in held for e in asked)
    assert summary["best"]["arch"] in held
