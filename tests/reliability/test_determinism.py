"""Determinism: the same seed and config on CPU give the same journal, for every registered strategy.

Parametrised over :func:`engine.strategies.list_strategies`, so a new strategy is
covered as soon as it registers. Each strategy runs here and, once more, in
another Python process with a different ``PYTHONHASHSEED`` (so an order that
depends on set or dict hashing shows up); the journals must agree row for row
(architecture, order, fidelity, status, objective, metrics). Where GPUs break
this, see docs/reliability.md.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from engine.cli import config_dir
from engine.journal import Journal
from engine.search import Budget, Search
from engine.spaces import get_space
from engine.strategies import create_strategy, list_strategies
from engine.types import DEFAULT_FIDELITY
from oracles.tabular import TabularOracle

EVALUATIONS = 12


def _options(name: str) -> dict:
    """The strategy's shipped config (conf/strategy/<name>.yaml) without its name, or no options."""
    if not (Path(config_dir()) / "strategy" / f"{name}.yaml").is_file():
        return {}
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="config", overrides=[f"strategy={name}"])
    options = OmegaConf.to_container(cfg.strategy, resolve=True)
    options.pop("name", None)
    if "max_epochs" in options and options["max_epochs"] is None:
        options["max_epochs"] = 9  # what the runner takes from oracle.epochs; this test builds strategies itself
    return options


def _run(name: str, options: dict, journal: Path) -> list[tuple]:
    space = get_space("nb201")
    strategy = create_strategy(name, space, seed=11, **options)
    oracles = {}
    for fid in strategy.fidelities:
        # The default / final fidelity looks up stand-alone validation accuracy; any other
        # fidelity the supernet's estimate: a real cheap-vs-expensive pair from the table.
        objective = "val_acc" if fid in (DEFAULT_FIDELITY, strategy.final_fidelity) else "oneshot_supernet_acc"
        oracles[fid] = TabularOracle(space, objective=objective, metrics=["latency_ms_raspi4", "latency_ms_pixel3"])
    budget = Budget(evaluations=EVALUATIONS, max_stall=50)
    with Journal(journal) as j:
        Search(strategy, oracles, budget, journal=j, batch_size=2).run()
    return _run_rows(journal)


def _run_rows(journal: Path) -> list[tuple]:
    db = sqlite3.connect(journal)
    try:
        return list(db.execute(
            "SELECT arch, fidelity, status, objective, metrics, reported, error, cached FROM evaluations ORDER BY id"
        ))
    finally:
        db.close()


def run_all(out: str) -> None:
    """Run every registered strategy into ``out/<name>.sqlite`` (the other process's half)."""
    torch.set_num_threads(1)
    for name in list_strategies():
        _run(name, _options(name), Path(out) / f"{name}.sqlite")


@pytest.fixture(scope="module")
def other_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("other_process")
    env = {**os.environ, "PYTHONHASHSEED": "20261125", "OMP_NUM_THREADS": "1"}
    here = str(Path(__file__).parent)
    code = f"import sys; sys.path.insert(0, {here!r}); import test_determinism as t; t.run_all(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("name", list_strategies())
def test_same_seed_same_journal(name: str, tmp_path: Path, other_process: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = _run(name, _options(name), tmp_path / "a.sqlite")
    finally:
        torch.set_num_threads(threads)
    there = _run_rows(other_process / f"{name}.sqlite")
    assert len(here) >= min(EVALUATIONS, 4), f"{name} made only {len(here)} evaluations"
    assert here == there
