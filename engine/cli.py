"""``nas-search``: the Hydra command-line entry point."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from engine.journal import JournalError
from engine.runner import ConfigError, print_summary, run_search


def config_dir() -> str:
    """The directory of the shipped Hydra configs.

    In a wheel the configs are the package ``engine.conf``; in a source checkout
    (editable install) they are the top-level ``conf/`` directory.
    """
    packaged = Path(__file__).resolve().parent / "conf"
    if (packaged / "config.yaml").is_file():
        return str(packaged)
    return str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base=None, config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    """Run one search (or one job of a ``-m`` sweep) and print its summary."""
    try:
        summary = run_search(cfg, HydraConfig.get().runtime.output_dir)
    except (ConfigError, JournalError) as exc:
        logging.getLogger("engine").error("%s", exc)
        sys.exit(2)
    print_summary(summary)


if __name__ == "__main__":
    main()
