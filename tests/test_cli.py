"""The Hydra CLI: configs through the compose API, and ``nas-search`` as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from omegaconf import DictConfig

from engine.cli import config_dir
from engine.runner import ConfigError, build_space, build_strategy, format_summary, run_search
from engine.spaces import get_space
from engine.strategies import list_strategies
from oracles.tabular import TabularOracle

CONF = Path(config_dir())


@pytest.fixture(scope="module")
def hydra_ctx() -> Iterator[None]:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        yield


def _cfg(*overrides: str) -> DictConfig:
    return compose(config_name="config", overrides=["progress=none", *overrides])


def test_default_search_writes_summary(hydra_ctx: None, tmp_path: Path) -> None:
    cfg = _cfg("budget.evaluations=30", "seed=3")
    summary = run_search(cfg, tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["strategy"] == "regularized_evolution" and on_disk["seed"] == 3
    assert on_disk["evaluations"] == 30 and on_disk["stop_reason"] == "evaluations"
    assert Path(on_disk["journal"]) == tmp_path / "journal.sqlite" and Path(on_disk["journal"]).is_file()
    best = on_disk["best"]
    space = get_space("nb201")
    row = TabularOracle(space).lookup(space.parse(best["arch"]))
    assert best["metrics"]["test_acc"] == row["test_acc"]  # reported-only metrics are in the summary
    assert best["objective"] == best["metrics"]["val_acc"] == row["val_acc"]
    text = format_summary(summary)
    assert best["arch"] in text and "test_acc" in text


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "strategy").glob("*.yaml")))
def test_every_strategy_config_builds_its_strategy(hydra_ctx: None, name: str) -> None:
    cfg = _cfg(f"strategy={name}")
    if "max_epochs" in cfg.strategy:  # a rung strategy takes its full training from an oracle that has one
        cfg = _cfg(f"strategy={name}", "oracle=standalone")
        assert build_strategy(cfg, build_space(cfg)).rungs[-1] == cfg.oracle.epochs  # type: ignore[attr-defined]
    assert cfg.strategy.name in list_strategies()
    space = build_space(cfg)
    strategy = build_strategy(cfg, space)
    assert strategy.name == cfg.strategy.name and strategy.seed == cfg.seed


@pytest.mark.parametrize("space", ["nb201", "chain"])
def test_space_configs(hydra_ctx: None, space: str) -> None:
    assert build_space(_cfg(f"space={space}")).name == space


def test_every_registered_strategy_has_a_config() -> None:
    shipped = {p.stem for p in (CONF / "strategy").glob("*.yaml")}
    missing = sorted(set(list_strategies()) - shipped)
    assert not missing, f"registered strategies without conf/strategy/<name>.yaml: {missing}"


def test_unknown_strategy_group_lists_options(hydra_ctx: None) -> None:
    with pytest.raises(MissingConfigException, match=r"(?s)strategy/evolution.*regularized_evolution"):
        _cfg("strategy=evolution")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("strategy.name=evolution", r"unknown strategy 'evolution'; available: .*regularized_evolution"),
        ("budget.evaluations=-5", r"budget\.evaluations"),
        ("batch_size=0", r"batch_size"),
        ("strategy.population=0", r"strategy\.population must be >= 1"),
        ("+strategy.temperature=1.0", r"strategy: .*temperature"),
        ("oracle.objective=accuracy", r"oracle: .*no column 'accuracy'"),
        ("oracle.table=/nonexistent/table.csv", r"oracle: table file not found"),
        ("space=chain space.params.stages=0", r"space: chain space needs stages >= 1"),
        ("output.journal=../escape.sqlite", r"output\.journal"),
    ],
)
def test_bad_value_names_the_key_and_writes_nothing(
    hydra_ctx: None, tmp_path: Path, override: str, message: str
) -> None:
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        run_search(_cfg("budget.evaluations=5", *override.split()), out)
    assert not (out / "summary.json").exists() and not (out / "journal.sqlite").exists()


def test_existing_run_needs_resume_and_the_same_config(hydra_ctx: None, tmp_path: Path) -> None:
    first = run_search(_cfg("budget.evaluations=8", "seed=1"), tmp_path)
    with pytest.raises(ConfigError, match="resume=true"):
        run_search(_cfg("budget.evaluations=8", "seed=1"), tmp_path)
    with pytest.raises(ConfigError, match=r"config differs in seed \(1 -> 2\)"):
        run_search(_cfg("budget.evaluations=8", "seed=2", "resume=true"), tmp_path)
    again = run_search(_cfg("budget.evaluations=8", "seed=1", "resume=true"), tmp_path)
    assert again["best"] == first["best"] and again["evaluations"] == 8


def _nas_search(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    script = Path(sys.executable).parent / "nas-search"  # the installed console script
    cmd = [str(script)] if script.is_file() else [sys.executable, "-c", "from engine.cli import main; main()"]
    return subprocess.run(
        [*cmd, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow
def test_multirun_and_error_exit_through_the_real_cli(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = _nas_search(
        "-m", "strategy=random,regularized_evolution", "seed=0,1", "budget.evaluations=12", "progress=none",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    assert sorted((s["strategy"], s["seed"]) for s in summaries) == [
        ("random", 0), ("random", 1), ("regularized_evolution", 0), ("regularized_evolution", 1)
    ]
    assert all(s["evaluations"] == 12 and s["best"]["metrics"]["test_acc"] > 0 for s in summaries)
    assert proc.stdout.count("best ") == 4  # one human summary per job

    bad = _nas_search("strategy.name=evolution", f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path)
    assert bad.returncode == 2
    out = bad.stdout + bad.stderr  # Hydra's log handler writes to stdout
    assert "unknown strategy 'evolution'; available:" in out and "regularized_evolution" in out
    assert not (tmp_path / "bad" / "summary.json").exists()
