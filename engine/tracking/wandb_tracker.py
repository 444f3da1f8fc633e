"""Weights & Biases tracking of one job: config, per-evaluation metrics, tables, artifacts.

One W&B run per Hydra job, grouped by the sweep, so a ``-m`` sweep shows up in
the W&B UI as one group whose runs can be compared directly. Offline mode is
the default: nothing leaves the machine and no login is ever asked for; the
offline run directory can be uploaded later with ``wandb sync``.
"""

from __future__ import annotations

import glob
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from engine.search import Search, SearchResult
    from engine.types import Evaluation

MODES = ("offline", "online", "disabled")
JOB_TYPES = ("search", "supernet_train", "gap")
# the console capture modes accepted here (a subset of what wandb.Settings takes)
_Console = Literal["off", "auto", "wrap", "redirect"]
_log = logging.getLogger("engine.tracking")


def _finite(value: Any) -> Any:
    """W&B refuses NaN in some panels; a missing value is clearer than a fake one."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class WandbTracker:
    """A W&B run, started lazily so that a config error never leaves an empty run behind.

    As a search callback it logs every new evaluation against the evaluation
    count (``define_metric``), keeps the best objective so far (and the
    report-only metrics of that best pick, e.g. ``test_acc``) in the summary,
    and at the end logs a table of every evaluated architecture and, for a
    multi-objective strategy whose ``report()`` has a Pareto front, a table of it.

    Args:
        output_dir: The job's output directory; the ``wandb/`` run directory goes there.
        job_type: ``search``, ``supernet_train`` or ``gap``.
        config: The resolved job config logged as the run's config.
        mode: ``offline`` (default), ``online`` or ``disabled``.
        project: W&B project.
        entity: W&B entity (user or team); ``None`` is the account default.
        group: W&B group: the sweep this job belongs to.
        name: Run name (``None``: W&B picks one).
        tags: Run tags.
        artifacts: Glob patterns, relative to ``output_dir``, of files logged as
            artifacts when the job ends (``summary.json``, supernet checkpoints).
        log_table: Log the table of every evaluation at the end.
        console: W&B console capture (``off`` by default: Hydra's job log already keeps it).

    Raises:
        ValueError: for a bad mode or job type, or ``online`` mode without W&B
            credentials (naming the ``tracker.*`` key); nothing is started then.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        job_type: str = "search",
        config: Mapping[str, Any] | None = None,
        mode: str = "offline",
        project: str = "nas-engine",
        entity: str | None = None,
        group: str | None = None,
        name: str | None = None,
        tags: Sequence[str] = (),
        artifacts: Sequence[str] = ("summary.json",),
        log_table: bool = True,
        console: str = "off",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"tracker.mode must be one of {', '.join(MODES)}, got {mode!r}")
        if job_type not in JOB_TYPES:
            raise ValueError(f"W&B job_type must be one of {', '.join(JOB_TYPES)}, got {job_type!r}")
        if console not in ("off", "auto", "wrap", "redirect"):
            raise ValueError(f"tracker.console must be off, auto, wrap or redirect, got {console!r}")
        os.environ.setdefault("WANDB_SILENT", "true")
        if mode == "online":
            import wandb

            # prompt=False: never ask for a key on a terminal, in a batch job or anywhere else.
            if not wandb.login(prompt=False, verify=False):
                raise ValueError(
                    "tracker.mode=online needs W&B credentials (set WANDB_API_KEY or run `wandb login`"
                    " once); use tracker.mode=offline to log locally and `wandb sync` later"
                )
        self.output_dir = Path(output_dir)
        self.job_type = job_type
        self.config = dict(config or {})
        self.mode = mode
        self.project = project
        self.entity = entity
        self.group = group
        self.name = name
        self.tags = list(tags)
        self.artifacts = list(artifacts)
        self.table_at_end = bool(log_table)
        self.console = cast(_Console, console)  # validated against these values above
        self.run: Any = None
        self._n = 0
        self._failures = 0
        self._best: Evaluation | None = None
        self._logged: list[tuple[int, Evaluation]] = []
        self._finished = False

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> Any:
        """Start the W&B run (once) and return it."""
        if self.run is not None:
            return self.run
        import wandb

        self.output_dir.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(silent=True, console=self.console, save_code=False)
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            group=self.group,
            job_type=self.job_type,
            name=self.name,
            tags=self.tags or None,
            config=self.config,
            dir=str(self.output_dir),
            mode=self.mode,  # type: ignore[arg-type]
            settings=settings,
            reinit="create_new",
        )
        if self.job_type == "search":
            self.run.define_metric("evaluation")
            self.run.define_metric("*", step_metric="evaluation")
            self.run.define_metric("best/objective", step_metric="evaluation", summary="max")
        _log.info("W&B run %s (%s mode) in %s", self.run.id, self.mode, self.run.dir)
        return self.run

    def finish(self, exit_code: int = 0) -> None:
        """Finish the run with ``exit_code`` (non-zero marks it failed); safe to call twice."""
        if self.run is None or self._finished:
            return
        self._finished = True
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as exc:  # tracking must never hide the job's own outcome
            _log.warning("could not finish the W&B run: %s", exc)

    # -- generic logging (any job type) ------------------------------------------
    def log(self, metrics: Mapping[str, Any], step_metric_value: int | None = None) -> None:
        """Log a dictionary of metrics (against the evaluation count for searches)."""
        run = self.start()
        data = {k: _finite(v) for k, v in metrics.items()}
        if step_metric_value is not None:
            data["evaluation"] = step_metric_value
        run.log(data)

    def update_summary(self, values: Mapping[str, Any]) -> None:
        """Set summary values (shown in the runs table of the W&B UI)."""
        run = self.start()
        for k, v in values.items():
            run.summary[k] = _finite(v)

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Log a ``wandb.Table``."""
        import wandb

        run = self.start()
        table = wandb.Table(columns=list(columns), data=[[_finite(v) for v in r] for r in rows])
        run.log({key: table})

    def log_files(self, name: str, artifact_type: str, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Log existing files as one artifact (missing files are skipped with a warning)."""
        import wandb

        existing = [Path(p) for p in paths if Path(p).is_file()]
        for p in paths:
            if not Path(p).is_file():
                _log.warning("artifact file %s does not exist; not logged", p)
        if not existing:
            return
        run = self.start()
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:128]
        artifact = wandb.Artifact(safe, type=artifact_type)
        for p in existing:
            artifact.add_file(str(p), name=p.name)
        run.log_artifact(artifact)

    def log_output_artifacts(self) -> None:
        """Log the files of ``artifacts`` (globs under the output directory)."""
        found: list[str] = []
        for pattern in self.artifacts:
            found.extend(sorted(glob.glob(str(self.output_dir / pattern), recursive=True)))
        found = [f for f in dict.fromkeys(found) if "/wandb/" not in f]
        summaries = [f for f in found if not f.endswith((".pt", ".pth", ".ckpt"))]
        checkpoints = [f for f in found if f.endswith((".pt", ".pth", ".ckpt"))]
        run_name = self.run.id if self.run is not None else "job"
        if summaries:
            self.log_files(f"{self.job_type}-summary-{run_name}", "summary", summaries)
        if checkpoints:
            self.log_files(f"{self.job_type}-checkpoint-{run_name}", "checkpoint", checkpoints)

    # -- search callback ------------------------------------------------------------
    def _record(self, ev: Evaluation, final: str) -> dict[str, Any]:
        self._n += 1
        self._failures += not ev.ok
        prefix = "" if ev.fidelity == final else f"{ev.fidelity}/"
        data: dict[str, Any] = {"evaluation": self._n, "failures": self._failures, f"{prefix}cost_seconds": ev.cost}
        if ev.ok:
            data[f"{prefix}objective"] = ev.objective
            data.update({f"{prefix}metrics/{k}": v for k, v in ev.metrics.items()})
            data.update({f"{prefix}reported/{k}": v for k, v in ev.reported.items()})
            if ev.fidelity == final and (self._best is None or (ev.objective or 0.0) > (self._best.objective or 0.0)):
                self._best = ev
        if self._best is not None:
            data["best/objective"] = self._best.objective
            data.update({f"best/{k}": v for k, v in self._best.reported.items()})
        self._logged.append((self._n, ev))
        return data

    def _log_new(self, search: Search, evaluations: Sequence[Evaluation]) -> None:
        final = search.strategy.final_fidelity
        for ev in evaluations:
            if ev.cached or ev.status.value == "skipped":
                continue
            self.log(self._record(ev, final))

    def on_start(self, search: Search) -> None:
        self.start()
        # A resumed search: its restored evaluations are logged too, so the run shows the whole curve.
        self._log_new(search, search.history)

    def on_evaluations(self, search: Search, evaluations: Sequence[Evaluation]) -> None:
        self._log_new(search, evaluations)

    def on_end(self, search: Search, result: SearchResult) -> None:
        summary: dict[str, Any] = {
            "evaluations": result.evaluations,
            "failures": result.failures,
            "stop_reason": result.stop_reason,
            "wall_seconds": result.wall_seconds,
            "oracle_seconds": result.oracle_seconds,
        }
        if result.best is not None:
            summary["best/objective"] = result.best.objective
            summary["best/arch"] = result.best.arch.string
            summary.update({f"best/{k}": v for k, v in {**result.best.metrics, **result.best.reported}.items()})
        self.update_summary(summary)
        if self.table_at_end and self._logged:
            metric_keys = sorted({k for _, e in self._logged for k in e.metrics})
            reported_keys = sorted({k for _, e in self._logged for k in e.reported})
            columns = ["evaluation", "arch", "fidelity", "status", "objective", *metric_keys,
                       *[f"reported/{k}" for k in reported_keys], "cost_seconds", "error"]
            rows = [
                [n, e.arch.string, e.fidelity, e.status.value, e.objective,
                 *[e.metrics.get(k) for k in metric_keys], *[e.reported.get(k) for k in reported_keys],
                 e.cost, e.error or ""]
                for n, e in self._logged
            ]
            self.log_table("evaluated_architectures", columns, rows)
        front = pareto_front_of(search.strategy)
        if front:
            keys = sorted({k for row in front for k in row if k != "arch"})
            self.log_table("pareto_front", ["arch", *keys], [[r.get("arch"), *[r.get(k) for k in keys]] for r in front])


def pareto_front_of(strategy: Any) -> list[dict[str, Any]]:
    """The Pareto front a multi-objective strategy reports, as rows ``{"arch": ..., objective: value}``.

    A strategy opts in with a ``report()`` method returning a mapping with a
    ``pareto_front`` entry: a list of mappings (``arch`` plus objective values,
    possibly nested under ``objectives``/``values``) or of evaluations.
    """
    report = getattr(strategy, "report", None)
    if not callable(report):
        return []
    try:
        data = report()
    except Exception as exc:  # a report is a nicety; never fail the job for it
        _log.warning("strategy report() failed: %s", exc)
        return []
    front = data.get("pareto_front") if isinstance(data, Mapping) else None
    return normalise_front(front or [])


def normalise_front(front: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows ``{"arch": str, name: float, ...}`` from the shapes a Pareto front may come in."""
    rows: list[dict[str, Any]] = []
    for item in front:
        if isinstance(item, Mapping):
            row: dict[str, Any] = {"arch": str(item.get("arch", ""))}
            for nested in ("objectives", "values", "metrics"):
                if isinstance(item.get(nested), Mapping):
                    row.update({k: v for k, v in item[nested].items() if isinstance(v, (int, float))})
            row.update({k: v for k, v in item.items() if k != "arch" and isinstance(v, (int, float))})
            rows.append(row)
        elif hasattr(item, "arch") and hasattr(item, "metrics"):
            rows.append({"arch": item.arch.string, "objective": item.objective, **dict(item.metrics)})
    return rows
