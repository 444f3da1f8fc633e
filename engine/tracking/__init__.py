"""Tracking of a job: W&B runs, progress display, and the end-of-sweep report.

The search loop only knows callbacks (``on_start``, ``on_evaluations``,
``on_end``); this package builds them from the ``tracker`` and ``progress``
config and wraps a job in a :class:`TrackingSession`, so that a W&B run is
finished (failed, with a non-zero exit code) even when the job raises.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from engine.tracking.progress import Progress, SearchProgress, progress_iter, resolve_mode
from engine.tracking.wandb_tracker import WandbTracker

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = [
    "Progress",
    "SearchProgress",
    "TrackingSession",
    "WandbTracker",
    "exit_code",
    "hydra_job_info",
    "open_tracking",
    "progress_iter",
    "resolve_mode",
]

_log = logging.getLogger("engine.tracking")
TRACKERS = ("none", "wandb")
_WANDB_KEYS = {"name", "mode", "project", "entity", "group", "run_name", "tags", "artifacts", "log_table", "console"}


def _plain(node: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def hydra_job_info() -> dict[str, Any]:
    """What Hydra knows about the running job: sweep dir, job number, overrides, choices.

    Empty when the job does not run under ``@hydra.main`` (tests, notebooks).
    """
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:  # pragma: no cover - Hydra is a dependency
        return {}
    if not HydraConfig.initialized():
        return {}
    hc = HydraConfig.get()
    info: dict[str, Any] = {
        "mode": "multirun" if hc.mode == RunMode.MULTIRUN else "run",
        "output_dir": str(hc.runtime.output_dir),
        "overrides": list(hc.overrides.task),
        "choices": {k: v for k, v in _plain(hc.runtime.choices).items() if not k.startswith("hydra/")},
    }
    if hc.mode == RunMode.MULTIRUN:
        info["sweep_dir"] = str(hc.sweep.dir)
        # HydraConfig.get() is typed as the HydraConf dataclass but is a DictConfig, whose .get gives
        # None for an unset (MISSING) job number instead of raising
        job = cast("DictConfig", hc.job)
        info["job_num"] = int(hc.job.num) if job.get("num") is not None else None
        info["override_dirname"] = str(hc.job.override_dirname)
    return info


def swept_keys(sweep_dir: str) -> list[str]:
    """The config keys a multirun sweeps over, read from the ``multirun.yaml`` Hydra writes first.

    Command-line sweeps (``seed=0,1,2``) and ``hydra.sweeper.params`` (the
    experiment presets) both count. Empty when the file is missing or unreadable.
    """
    path = Path(sweep_dir) / "multirun.yaml"
    if not path.is_file():
        return []
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        conf = OmegaConf.load(path)
        task = list(OmegaConf.select(conf, "hydra.overrides.task", default=[]) or [])
        params = OmegaConf.select(conf, "hydra.sweeper.params", default=None) or {}
        parsed = OverridesParser.create().parse_overrides([str(t) for t in task])
        keys = [o.key_or_group for o in parsed if o.is_sweep_override()]
        keys.extend(str(k).lstrip("+~") for k in params)
        return list(dict.fromkeys(keys))
    except Exception as exc:  # a run name is a nicety; never fail a job for it
        _log.debug("cannot read the sweep's overrides from %s: %s", path, exc)
        return []


def run_name(info: Mapping[str, Any]) -> str | None:
    """A run name from the values this job takes for the swept keys, e.g. ``strategy=random,seed=0``."""
    if "sweep_dir" not in info:
        return None
    keys = swept_keys(info["sweep_dir"])
    if keys:
        values = {}
        for o in info.get("overrides", []):
            key, _, value = str(o).partition("=")
            values[key.lstrip("+~")] = value
        picked = [f"{k}={values[k]}" for k in keys if k in values]
        if picked:
            return ",".join(picked)
    return info.get("override_dirname") or None


def sweep_group(sweep_dir: str) -> str:
    """A W&B group name for a sweep directory: its path relative to the cwd when it is below it.

    W&B limits group names to 128 characters, so longer paths keep their end,
    where the date and time of the sweep are.
    """
    p = Path(sweep_dir)
    try:
        text = str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        text = str(p)
    return text[-128:]


def exit_code(error: BaseException | None) -> int:
    """The exit code a job ends with: 0, 130 for Ctrl-C, ``SystemExit``'s own code, else 1."""
    if error is None:
        return 0
    if isinstance(error, KeyboardInterrupt):
        return 130
    if isinstance(error, SystemExit):
        return error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
    return 1


class TrackingSession:
    """The trackers and progress display of one job, finished when the job ends however it ends.

    Use as a context manager around the job; pass :attr:`callbacks` to the
    search. Leaving the block with an exception finishes the W&B run with a
    non-zero exit code (130 for Ctrl-C) and re-raises.

    Attributes:
        callbacks: Search callbacks (the tracker, then the progress display).
        tracker: The W&B tracker, or ``None`` for ``tracker=none``.
    """

    def __init__(self, tracker: WandbTracker | None, progress: SearchProgress | None) -> None:
        self.tracker = tracker
        self.progress = progress
        # The tracker first: its on_start (W&B start-up, seconds) must not count in the progress rate.
        self.callbacks: list[Any] = [cb for cb in (tracker, progress) if cb is not None]

    def __enter__(self) -> TrackingSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(exc)

    def close(self, error: BaseException | None = None) -> None:
        """Close the progress display and finish the W&B run (exit code from ``error``)."""
        if self.progress is not None:
            self.progress.close("failed" if exit_code(error) != 0 else "")
        if self.tracker is not None:
            if exit_code(error) != 0 and self.tracker.run is not None:
                try:
                    self.tracker.update_summary({"error": f"{type(error).__name__}: {error}"[:1000]})
                except Exception as exc:
                    _log.warning("could not record the error in the W&B run: %s", exc)
            self.tracker.finish(exit_code(error))

    def log_outputs(self, summary: Mapping[str, Any] | None = None) -> None:
        """At the job's end: log the output files (``summary.json``, checkpoints) as artifacts."""
        if self.tracker is None:
            return
        if summary is not None and summary.get("evaluations") is not None and self.tracker.run is None:
            # A search that had nothing left to do still gets its run.
            self.tracker.start()
        self.tracker.log_output_artifacts()


def open_tracking(
    cfg: Any,
    output_dir: str | os.PathLike[str],
    job_type: str = "search",
    extra_artifacts: Sequence[str] = (),
) -> TrackingSession:
    """Build the tracking session of a job from ``cfg.tracker`` and ``cfg.progress``.

    Nothing is started here (the W&B run starts with the search), so a config
    error found later still leaves nothing behind.

    Args:
        cfg: The job's resolved config (``tracker`` and ``progress`` may be absent: none, auto).
        output_dir: The job's output directory.
        job_type: ``search``, ``supernet_train`` or ``gap``.
        extra_artifacts: More globs (relative to ``output_dir``) to log as artifacts.

    Raises:
        ValueError: for a bad ``tracker.*`` or ``progress`` value, naming the key.
    """
    tracker_cfg = _plain(cfg.get("tracker")) if hasattr(cfg, "get") else None
    tracker_cfg = dict(tracker_cfg or {"name": "none"})
    name = tracker_cfg.get("name", "none")
    if name not in TRACKERS:
        raise ValueError(f"tracker.name must be one of {', '.join(TRACKERS)}, got {name!r}")
    progress_mode = cfg.get("progress", "auto") if hasattr(cfg, "get") else "auto"
    progress = SearchProgress(progress_mode) if job_type == "search" else None
    if progress is not None and progress.mode == "none":
        progress = None
    tracker = None
    if name == "wandb":
        unknown = sorted(set(tracker_cfg) - _WANDB_KEYS)
        if unknown:
            raise ValueError(f"unknown tracker keys {unknown}; known: {sorted(_WANDB_KEYS)}")
        info = hydra_job_info()
        group = tracker_cfg.get("group") or (sweep_group(info["sweep_dir"]) if "sweep_dir" in info else None)
        name_of_run = tracker_cfg.get("run_name") or run_name(info)
        config = {k: v for k, v in (_plain(cfg) or {}).items() if k != "hydra"}
        if info:
            config["hydra"] = {k: info[k] for k in ("overrides", "choices", "job_num") if k in info}
        artifacts = [*(tracker_cfg.get("artifacts") or []), *extra_artifacts]
        tags = tracker_cfg.get("tags") or []
        if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
            raise ValueError(f"tracker.tags must be a list of strings, got {tags!r}")
        tracker = WandbTracker(
            output_dir,
            job_type=job_type,
            config=config,
            mode=str(tracker_cfg.get("mode", "offline")),
            project=str(tracker_cfg.get("project") or "nas-engine"),
            entity=tracker_cfg.get("entity"),
            group=group,
            name=name_of_run,
            tags=tags,
            artifacts=artifacts,
            log_table=bool(tracker_cfg.get("log_table", True)),
            console=str(tracker_cfg.get("console", "off")),
        )
    return TrackingSession(tracker, progress)
