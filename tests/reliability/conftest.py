"""Shared helpers of the reliability tests: Hydra configs through the compose API, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from engine.cli import config_dir

Compose = Callable[..., DictConfig]


@pytest.fixture
def make_cfg() -> Compose:
    """``make_cfg(*overrides)``: the project's config composed by Hydra, as ``nas-search`` would see it."""

    def _make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=config_dir(), version_base=None):
            cfg = compose(config_name="config", overrides=list(overrides))
        with open_dict(cfg):
            cfg.pop("hydra", None)
        return cfg

    return _make


def cli_env() -> dict[str, str]:
    """Environment of a child ``nas-search``: one thread, W&B off."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", WANDB_MODE="disabled")
    return env


def run_cli(args: Sequence[str], cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run the real ``nas-search`` (as ``python -m engine.cli``) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=cli_env(),
    )


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: compare before/after to prove nothing was written."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
