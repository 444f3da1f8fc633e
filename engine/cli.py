"""``nas-search``: the Hydra command-line entry point."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
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


_HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


class OutputGuard(Callback):
    """Undo what Hydra wrote for a run that our code refuses (bad config, journal in use or damaged).

    Hydra creates the run directory, ``.hydra/*.yaml`` and the job log before the
    task starts, so without this a typo would leave an ``outputs/<date>/<time>``
    directory behind, and a refused resume would overwrite the ``.hydra`` record
    of the run it pointed at. Registered in ``conf/config.yaml`` under
    ``hydra.callbacks``; single runs only (a sweep keeps its directories).
    """

    snapshot: dict[str, Any] = {}

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.run.dir)).absolute()
        created = []
        d = run_dir
        while not d.exists() and d != d.parent:
            created.append(d)
            d = d.parent
        subdir = config.hydra.get("output_subdir")
        hydra_dir = run_dir / str(subdir) if subdir is not None else None
        files = {}
        if hydra_dir is not None:
            for name in _HYDRA_FILES:
                f = hydra_dir / name
                files[f] = f.read_bytes() if f.is_file() else None
        logs = {p.name for p in run_dir.glob("*.log")} if run_dir.is_dir() else set()
        OutputGuard.snapshot = {"run_dir": run_dir, "created": created, "files": files, "logs": logs,
                                "hydra_dir": hydra_dir}


    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check every job of the sweep before the first one starts (a refusal then runs none)."""
        problems = sweep_problems(list(config.hydra.overrides.task))
        if problems:
            for line in problems:
                sys.stderr.write(f"nas-search: {line}\n")
            sys.exit(2)


def sweep_problems(task_overrides: list[str]) -> list[str]:
    """One line per job of a ``-m`` sweep whose config is refused: ``job i (overrides): message``."""
    from hydra import compose
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from engine.runner import validate_config

    try:
        parsed = OverridesParser.create().parse_overrides(task_overrides)
        (jobs,) = BasicSweeper.split_arguments(parsed, None)
    except Exception as exc:  # a sweep this check cannot expand: Hydra's sweeper reports it, or runs it
        logging.getLogger("engine").debug("sweep not checked ahead: %s", exc)
        return []
    problems = []
    for i, job in enumerate(jobs):
        try:
            validate_config(compose(config_name="config", overrides=job))
        except ConfigError as exc:
            problems.append(f"job {i} ({' '.join(job)}): {exc}; no job was started")
        except Exception as exc:  # composing failed: Hydra will say why when it composes the job
            logging.getLogger("engine").debug("job %d not checked ahead: %s", i, exc)
    return problems


def _undo_hydra_outputs() -> None:
    """Restore the ``.hydra`` files and remove the log and directories Hydra made for this run."""
    snap, OutputGuard.snapshot = OutputGuard.snapshot, {}
    if not snap:
        return
    try:
        for path, data in snap["files"].items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
        run_dir: Path = snap["run_dir"]
        if snap["created"]:  # an existing run's log keeps the line saying why this attempt was refused
            for log in run_dir.glob("*.log"):
                if log.name not in snap["logs"]:
                    log.unlink(missing_ok=True)
        hydra_dir = snap["hydra_dir"]
        for d in ([hydra_dir] if hydra_dir is not None else []) + snap["created"]:
            if d.is_dir() and not any(d.iterdir()) and (d in snap["created"] or d == hydra_dir):
                if d == hydra_dir and any(v is not None for v in snap["files"].values()):
                    continue
                d.rmdir()
    except OSError as exc:  # cleaning up must never hide the real error
        logging.getLogger("engine").debug("could not undo Hydra's outputs: %s", exc)


# Launchers that come from an optional extra: hydra/launcher=<name> -> (module, extra).
_LAUNCHER_EXTRAS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "launchers"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "launchers"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "launchers"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "launchers"),
}


def missing_launcher(argv: list[str]) -> str | None:
    """The one-line refusal for a ``hydra/launcher=`` whose plugin is not installed, else None.

    Hydra's own message (``Could not find 'hydra/launcher/joblib'``) does not say
    that the launcher ships as an extra of this package.
    """
    import importlib.util

    for arg in argv:
        if arg.startswith("hydra/launcher="):
            name = arg.split("=", 1)[1]
            module, extra = _LAUNCHER_EXTRAS.get(name, (None, None))
            if module is not None and importlib.util.find_spec(module) is None:
                return (f"hydra/launcher={name} needs the Hydra launcher plugin {module.split('.')[-1]}:"
                        f" pip install 'nas-engine[{extra}]'")
    return None


def main() -> None:
    """``nas-search``: refuse a launcher that is not installed, then hand over to Hydra."""
    message = missing_launcher(sys.argv[1:])
    if message is not None:
        sys.stderr.write(f"nas-search: {message}\n")
        sys.exit(2)
    _main()


@hydra.main(version_base=None, config_path=config_dir(), config_name="config")
def _main(cfg: DictConfig) -> None:
    """Run one search (or one job of a ``-m`` sweep) and print its summary."""
    try:
        hc = HydraConfig.get()
        chosen = any(o.lstrip("+~").startswith("dataset") for o in hc.overrides.task)
        summary = run_search(cfg, hc.runtime.output_dir, dataset_chosen=chosen, overrides=list(hc.overrides.task))
    except (ConfigError, JournalError) as exc:
        logging.getLogger("engine").error("%s", exc)
        _undo_hydra_outputs()
        sys.exit(2)
    OutputGuard.snapshot = {}
    print_summary(summary)
    if summary.get("best") is None and summary.get("best_unconstrained") is None:
        logging.getLogger("engine").error(
            "the search ended with no successful evaluation (%d failed): see failures_by_error in summary.json",
            summary.get("failures", 0),
        )
        sys.exit(1)


if __name__ == "__main__":
    # Run through the module ``engine.cli``, not ``__main__``: Hydra instantiates
    # OutputGuard from ``engine.cli``, so its snapshot must be the one main() reads.
    from engine.cli import main as entry

    entry()
