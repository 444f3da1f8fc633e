"""``nas-report``: compare the jobs of a multirun in one Markdown table and a few plots.

A sweep (``nas-search -m strategy=a,b seed=0,1,2``) leaves one directory per
job with its ``journal.sqlite`` and ``summary.json``. The journal has every
evaluation in order, so the report can answer "what would each strategy have
picked after 25, 50, 100 evaluations" from one run at the largest budget: the
pick is the best *objective* (e.g. ``val_acc``) so far, and the table shows the
*reported* metric of that pick (e.g. ``test_acc``), which no strategy ever saw.

Everything here is numpy and matplotlib (Agg, no display), so it runs on a
cluster login node or in CI.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.gap import rung_gap
from engine.journal import Journal, JournalError
from engine.scale import accuracy_scale
from engine.types import Evaluation, Status

_log = logging.getLogger("engine.report")
_SKIP_DIRS = {"wandb", ".hydra", ".submitit", "report"}


@dataclass
class Job:
    """One job of a sweep, read back from its output directory.

    Attributes:
        path: The job's output directory.
        label: What distinguishes it from the other jobs except the seed (e.g. ``strategy=random``).
        seed: Its seed.
        evaluations: Oracle evaluations in journal order (cached and skipped ones left out).
        final_fidelity: The fidelity whose best objective is the pick.
        summary: Its ``summary.json`` (empty when missing).
        overrides: Its Hydra overrides (``.hydra/overrides.yaml``).
        config: The config stored in the journal.
    """

    path: Path
    label: str
    seed: int | None
    evaluations: list[Evaluation]
    final_fidelity: str
    summary: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def trajectory(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Best objective so far and ``metric`` of that pick, after each evaluation (all fidelities count).

        ``nan`` until the first successful evaluation at the final fidelity.
        ``metric="objective"`` gives the objective itself.
        """
        n = len(self.evaluations)
        best = np.full(n, np.nan)
        pick = np.full(n, np.nan)
        cur: Evaluation | None = None
        for i, ev in enumerate(self.evaluations):
            if ev.ok and ev.fidelity == self.final_fidelity and (cur is None or ev.objective > cur.objective):  # type: ignore[operator]
                cur = ev
            if cur is not None:
                best[i] = cur.objective
                pick[i] = metric_value(cur, metric)
        return best, pick


def metric_value(ev: Evaluation, metric: str) -> float:
    """``metric`` of an evaluation: its objective, a reported metric or a visible one (``nan`` if absent)."""
    if metric == "objective":
        return float(ev.objective) if ev.objective is not None else math.nan
    if metric in ev.reported:
        return float(ev.reported[metric])
    return float(ev.metrics.get(metric, math.nan))


# -- reading a sweep -------------------------------------------------------------
def find_job_dirs(root: Path) -> list[Path]:
    """Directories under ``root`` (itself included) holding a journal, in natural order."""
    found = []
    for journal in root.rglob("journal.sqlite"):
        if _SKIP_DIRS.isdisjoint(journal.relative_to(root).parts[:-1]):
            found.append(journal.parent)

    def key(p: Path) -> list[Any]:
        return [(0, int(part)) if part.isdigit() else (1, part) for part in p.relative_to(root).parts]

    return sorted(set(found), key=key)


def _overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    from omegaconf import OmegaConf

    try:
        return [str(o) for o in OmegaConf.load(path)]
    except Exception as exc:
        _log.warning("cannot read %s: %s", path, exc)
        return []


def load_job(job_dir: Path, journal_name: str = "journal.sqlite") -> Job | None:
    """Read one job; ``None`` (with a warning) when its journal is in use or unreadable."""
    summary_path = job_dir / "summary.json"
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except (OSError, ValueError) as exc:
            _log.warning("ignoring unreadable %s: %s", summary_path, exc)
    try:
        with Journal(job_dir / journal_name) as journal:
            config = journal.get_meta("config") or {}
            evals = [ev for _, ev in journal.evaluations()]
    except JournalError as exc:
        _log.warning("skipping %s: %s", job_dir, exc)
        return None
    evals = [e for e in evals if not e.cached and e.status is not Status.SKIPPED]
    fidelities = list(dict.fromkeys(e.fidelity for e in evals))
    best = summary.get("best") or {}
    final = best.get("fidelity") or ("default" if "default" in fidelities or not fidelities else fidelities[-1])
    seed = summary.get("seed", config.get("seed"))
    return Job(
        path=job_dir,
        label="",
        seed=int(seed) if seed is not None else None,
        evaluations=evals,
        final_fidelity=final,
        summary=summary,
        overrides=_overrides(job_dir),
        config=config,
    )


def label_jobs(jobs: Sequence[Job]) -> None:
    """Label each job by the overrides that vary across the sweep, seed excluded.

    Overrides common to every job (``budget.evaluations=100``) say nothing about
    the difference between jobs, and the seed is what the statistics are over.
    Jobs without Hydra overrides are labelled by their strategy's name.
    """
    parsed = [dict(o.split("=", 1) for o in j.overrides if "=" in o) for j in jobs]
    keys = list(dict.fromkeys(k for p in parsed for k in p))
    varying = [k for k in keys if k.lstrip("+~") != "seed" and len({p.get(k) for p in parsed}) > 1]
    single = len(varying) == 1  # "random" reads better than "strategy=random"
    for job, p in zip(jobs, parsed):
        parts = [p[k] if single else f"{k.lstrip('+~')}={p[k]}" for k in varying if k in p]
        strategy = job.summary.get("strategy") or (job.config.get("strategy") or {}).get("name") or "?"
        job.label = ",".join(parts) if parts else str(strategy)


def load_sweep(root: str | Path) -> list[Job]:
    """Every readable job under ``root``, labelled.

    Raises:
        FileNotFoundError: when ``root`` is missing or holds no journal.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    dirs = find_job_dirs(root)
    if not dirs:
        raise FileNotFoundError(
            f"no journal.sqlite (or gap.json) under {root}: is it the output directory of a nas-search or nas-gap run?"
        )
    jobs = [j for j in (load_job(d) for d in dirs) if j is not None]
    label_jobs(jobs)
    return jobs


def default_metric(jobs: Sequence[Job]) -> str:
    """The first report-only metric found (e.g. ``test_acc``), else the objective."""
    for job in jobs:
        for ev in job.evaluations:
            if ev.reported:
                return next(iter(ev.reported))
    return "objective"


def objective_name(jobs: Sequence[Job]) -> str:
    """The name of the objective (``oracle.objective`` of the stored config), else ``objective``."""
    for job in jobs:
        oracle = job.config.get("oracle")
        if isinstance(oracle, Mapping) and isinstance(oracle.get("objective"), str):
            return str(oracle["objective"])
    return "objective"


def default_budgets(jobs: Sequence[Job]) -> list[int]:
    """Round budgets up to the smallest job's length, and that length itself."""
    lengths = [len(j.evaluations) for j in jobs if j.evaluations]
    if not lengths:
        return []
    n = min(lengths)
    steps = [b for b in (10, 25, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if b < n]
    return [*steps[-3:], n]


# -- statistics ------------------------------------------------------------------
def groups(jobs: Sequence[Job]) -> dict[str, list[Job]]:
    """Jobs by label, in first-seen order."""
    out: dict[str, list[Job]] = {}
    for j in jobs:
        out.setdefault(j.label, []).append(j)
    return out


def at_budget(values: np.ndarray, budget: int) -> float:
    """The value after ``budget`` evaluations (the last one when the job stopped earlier)."""
    if len(values) == 0:
        return math.nan
    return float(values[min(budget, len(values)) - 1])


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation and count of the finite values."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def decimals(values: Sequence[float]) -> int:
    """Decimals that suit the scale of ``values``, so a column never shows more or less precision than it has.

    An accuracy on a 0-1 scale needs 4 decimals to show what 2 show on a 0-100
    scale (``0.9612`` vs ``96.12``); values far below 1 keep three significant
    digits, so a small number never prints as ``0.0000``.
    """
    finite = [abs(float(x)) for x in values if math.isfinite(float(x))]
    top = max(finite, default=0.0)
    if top == 0.0 or top > 1.0:
        return 2
    if top >= 0.01:
        return 4
    return min(12, 2 - math.floor(math.log10(top)))


def _cell(values: Sequence[float], digits: int | None = None) -> str:
    """Mean ± sample std of the finite values; the mean alone for one value (a spread of one run says nothing).

    ``digits`` ``None`` picks the decimals from the values' scale (:func:`decimals`).
    """
    m, s, n = mean_std(values)
    if n == 0:
        return "-"
    d = decimals(values) if digits is None else digits
    if n == 1:
        return f"{m:.{d}f}"
    return f"{m:.{d}f} ± {s:.{d}f}"


def markdown_table(jobs: Sequence[Job], metric: str, budgets: Sequence[int], digits: int | None = None) -> str:
    """Per group: jobs, then mean ± std of ``metric`` of the pick at each budget, then of the final objective.

    ``digits`` ``None`` formats each column by the scale of its values (4 decimals
    for a 0-1 accuracy, 2 for a percentage), the same for every row so that rows
    compare digit by digit. A cell of a single run has no ``±``.
    """
    header = ["", "jobs", *[f"{metric} @ {b}" for b in budgets], f"{objective_name(jobs)} (final)", "evaluations"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "---:", *["---:"] * (len(header) - 2)]) + "|"]
    rows: list[tuple[str, int, list[list[float]], list[float]]] = []
    for label, members in groups(jobs).items():
        trajs = [j.trajectory(metric) for j in members]
        per_budget = [[at_budget(pick, b) for _, pick in trajs] for b in budgets]
        final = [at_budget(best, len(best)) for best, _ in trajs]
        rows.append((label, len(members), per_budget, final))
    if digits is None:
        metric_digits = decimals([v for _, _, per_budget, _ in rows for col in per_budget for v in col])
        final_digits = decimals([v for *_, final in rows for v in final])
    else:
        metric_digits = final_digits = digits
    for (label, n_jobs, per_budget, final), members in zip(rows, groups(jobs).values()):
        cells = [_cell(col, metric_digits) for col in per_budget]
        n_eval = _cell([float(len(j.evaluations)) for j in members], 0)
        lines.append("| " + " | ".join([f"`{label}`", str(n_jobs), *cells, _cell(final, final_digits), n_eval]) + " |")
    return "\n".join(lines)


BANDS = ("sem", "ci", "std")


def band_label(band: str, level: float = 0.95) -> str:
    """How a band is described in plot titles."""
    return {"sem": "± 1 standard error", "std": "± 1 standard deviation"}.get(
        band, f"{level:.0%} Student-t confidence interval"
    )


def confidence_band(
    matrix: np.ndarray, band: str = "sem", level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and band per column over the rows (seeds), ignoring ``nan``; no band with one value.

    Args:
        matrix: One row per seed, one column per evaluation count.
        band: ``sem`` (standard error), ``std`` or ``ci`` (Student-t interval at
            ``level``; very wide with two or three seeds, hence not the default).
        level: Confidence level of ``ci``.
    """
    from scipy import stats

    if band not in BANDS:
        raise ValueError(f"band must be one of {', '.join(BANDS)}, got {band!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.sum(np.isfinite(matrix), axis=0)
        mean = np.full(matrix.shape[1], np.nan)
        ok = n > 0
        mean[ok] = np.nanmean(matrix[:, ok], axis=0)
        half = np.zeros(matrix.shape[1])
        two = n > 1
        if np.any(two):
            sd = np.nanstd(matrix[:, two], axis=0, ddof=1)
            if band == "std":
                half[two] = sd
            elif band == "sem":
                half[two] = sd / np.sqrt(n[two])
            else:
                half[two] = stats.t.ppf(0.5 + level / 2, n[two] - 1) * sd / np.sqrt(n[two])
    return mean, mean - half, mean + half


def _padded(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Rows of different lengths as one matrix; a shorter job keeps its last value (it stopped with that pick)."""
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        if 0 < len(r) < width:
            out[i, len(r):] = r[-1]
    return out


# -- plots -------------------------------------------------------------------------
def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120, layout="constrained")
    return fig


def _data_ylim(ax: Any, curves: Sequence[np.ndarray], lows: Sequence[np.ndarray], highs: Sequence[np.ndarray]) -> None:
    """Y-limits that hold every point of every mean curve, the earliest ones included, with a 5% margin.

    A zoom on the later part of the run would push the first evaluations below the
    axis and hide how fast each strategy got there. Bands may reach up to half the
    spread of the means beyond it; wider bands (few seeds, ``ci``) are cut rather
    than squashing the curves into a flat line.
    """
    finite = [(m[np.isfinite(m)], lo[np.isfinite(lo)], hi[np.isfinite(hi)]) for m, lo, hi in zip(curves, lows, highs)]
    finite = [t for t in finite if t[0].size]
    if not finite:
        return
    lo_m = min(float(m.min()) for m, _, _ in finite)
    hi_m = max(float(m.max()) for m, _, _ in finite)
    spread = hi_m - lo_m if hi_m > lo_m else max(1e-3, abs(hi_m) * 0.01)
    b_lo = min((float(lo.min()) for _, lo, _ in finite if lo.size), default=lo_m)
    b_hi = max((float(hi.max()) for _, _, hi in finite if hi.size), default=hi_m)
    low = min(lo_m, max(b_lo, lo_m - 0.5 * spread))
    high = max(hi_m, min(b_hi, hi_m + 0.5 * spread))
    pad = 0.05 * (high - low) if high > low else 0.5 * spread
    ax.set_ylim(low - pad, high + pad)


def _runs_title(counts: Sequence[int], band: str, level: float) -> str:
    """What the curves are: one run each (no band), or a mean over seeds with its band."""
    if counts and max(counts) == 1:
        return "1 run per group (no band: one seed)" if len(counts) > 1 else "1 run (no band: one seed)"
    title = f"mean over seeds, band: {band_label(band, level)}"
    if counts and min(counts) == 1:
        title += " (none for a group of 1 run)"
    return title


def plot_best_so_far(jobs: Sequence[Job], metric: str, path: Path, band: str = "sem", level: float = 0.95) -> Path:
    """Best objective so far and ``metric`` of the pick vs evaluations: mean and confidence band per group.

    The curves are steps (a pick holds until a better one is found); the legend
    sits beside the panels so it never covers the final points.
    """
    import matplotlib

    fig = _figure(12, 4.6)
    axes = fig.subplots(1, 2)
    colors = matplotlib.colormaps["tab10"]
    objective = objective_name(jobs)
    titles = [f"best {objective} so far", f"{metric} of the pick (best {objective} so far)"]
    per_panel: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[], []]
    counts: list[int] = []
    for gi, (label, members) in enumerate(groups(jobs).items()):
        trajs = [j.trajectory(metric) for j in members if j.evaluations]
        if not trajs:
            continue
        counts.append(len(trajs))
        for panel, ax in enumerate(axes):
            mat = _padded([t[panel] for t in trajs])
            mean, lo, hi = confidence_band(mat, band, level)
            x = np.arange(1, mat.shape[1] + 1)
            color = colors(gi % 10)
            name = f"{label} (1 run)" if len(trajs) == 1 else f"{label} (n={len(trajs)} seeds)"
            ax.plot(x, mean, color=color, lw=1.8, drawstyle="steps-post", label=name if panel == 0 else None)
            if len(trajs) > 1:
                ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0, step="post")
            per_panel[panel].append((mean, lo, hi))
    for panel, ax in enumerate(axes):
        ax.set_title(titles[panel], fontsize=11)
        ax.set_xlabel("evaluations")
        ax.set_ylabel((objective if panel == 0 else metric) + _scale_note(jobs, metric, panel))
        ax.grid(True, alpha=0.3)
        if per_panel[panel]:
            means, lows, highs = zip(*per_panel[panel])
            _data_ylim(ax, means, lows, highs)
    fig.legend(loc="outside right upper", fontsize=8, framealpha=0.9)
    fig.suptitle(_runs_title(counts, band, level), fontsize=10)
    fig.savefig(path)
    return path


def fidelity_pairs(jobs: Sequence[Job]) -> dict[str, tuple[str, str, list[tuple[str, float, float]]]]:
    """Per group: (cheap fidelity, final fidelity, [(arch, cheap objective, final objective)]) for archs at both.

    Repeated evaluations of one architecture (several seeds) are averaged.
    """
    out: dict[str, tuple[str, str, list[tuple[str, float, float]]]] = {}
    for label, members in groups(jobs).items():
        final = members[0].final_fidelity
        cheap_names = [f for j in members for e in j.evaluations if (f := e.fidelity) != final]
        if not cheap_names:
            continue
        cheap = max(set(cheap_names), key=cheap_names.count)
        a: dict[str, list[float]] = {}
        b: dict[str, list[float]] = {}
        for j in members:
            for e in j.evaluations:
                if e.ok and e.fidelity == cheap:
                    a.setdefault(e.arch.string, []).append(float(e.objective))  # type: ignore[arg-type]
                elif e.ok and e.fidelity == final:
                    b.setdefault(e.arch.string, []).append(float(e.objective))  # type: ignore[arg-type]
        both = [(k, float(np.mean(a[k])), float(np.mean(b[k]))) for k in a if k in b]
        if both:
            out[label] = (cheap, final, both)
    return out


def gap_json_taus(root: Path) -> dict[str, tuple[float, str]]:
    """``nas-gap``'s own headline tau per supernet setting (label as in :func:`gap_json_pairs`) and its definition.

    The scatter of :func:`gap_json_pairs` averages the supernet seeds' accuracies before one tau; ``nas-gap``
    reports the mean of the per-seed taus. The report prints nas-gap's figure with its definition, so the two
    tools give one number for one setting.
    """
    out: dict[str, tuple[float, str]] = {}
    for path in sorted(root.rglob("gap.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, Mapping) or not isinstance(data.get("table"), list):
            continue
        where = str(path.parent.relative_to(root)).replace(".", "") or "gap"
        for row in data["table"]:
            if isinstance(row, Mapping) and row.get("kind") == "supernet" and row.get("kendall_tau") is not None:
                name = f"{where}: {row.get('name')}" if where != "gap" else str(row.get("name"))
                out[name] = (float(row["kendall_tau"]), str(row.get("kendall_tau_definition") or "supernet seed 0"))
    return out


def gap_json_pairs(root: Path) -> dict[str, tuple[str, str, list[tuple[str, float, float]]]]:
    """Pairs from ``gap.json`` files of ``nas-gap`` under ``root``.

    Reads what ``nas-gap`` writes (``standalone.mean_val_acc`` against each of
    ``settings[*].seeds[*].val_acc``, supernet seeds averaged: one scatter per
    supernet setting), ``{"cheap": {arch: score}, "expensive": {arch: score or
    [scores]}}`` (the input of :func:`engine.gap.measure_gap`), or ``{"points":
    [{"arch", "cheap", "expensive"}]}``. Other shapes are skipped.
    """
    out: dict[str, tuple[str, str, list[tuple[str, float, float]]]] = {}
    for path in sorted(root.rglob("gap.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        where = str(path.parent.relative_to(root)).replace(".", "") or "gap"
        if isinstance(data, Mapping) and isinstance(data.get("settings"), list) and isinstance(
            (data.get("standalone") or {}).get("mean_val_acc"), Mapping
        ):
            truth = data["standalone"]["mean_val_acc"]
            for setting in data["settings"]:
                if not isinstance(setting, Mapping) or not isinstance(setting.get("seeds"), Mapping):
                    continue
                per_arch: dict[str, list[float]] = {}
                for run in setting["seeds"].values():
                    for arch, v in ((run or {}).get("val_acc") or {}).items():
                        if v is not None:
                            per_arch.setdefault(arch, []).append(float(v))
                pts_s = [(a, float(np.mean(v)), float(truth[a])) for a, v in per_arch.items()
                         if truth.get(a) is not None]
                pts_s = [p for p in pts_s if math.isfinite(p[1]) and math.isfinite(p[2])]
                if pts_s:
                    name = f"{where}: {setting.get('name', 'supernet')}" if where != "gap" else str(setting.get("name"))
                    out[name] = ("supernet", "stand-alone val_acc", pts_s)
            continue
        data = data.get("scores", data) if isinstance(data, Mapping) else data
        pts: list[tuple[str, float, float]] = []
        if isinstance(data, Mapping) and isinstance(data.get("cheap"), Mapping) and isinstance(
            data.get("expensive"), Mapping
        ):
            for k, c in data["cheap"].items():
                e = data["expensive"].get(k)
                if e is None:
                    continue
                e_val = float(np.mean(e)) if isinstance(e, (list, tuple)) else float(e)
                pts.append((k, float(c), e_val))
        elif isinstance(data, Mapping) and isinstance(data.get("points"), list):
            for p in data["points"]:
                if isinstance(p, Mapping) and "cheap" in p and "expensive" in p:
                    e = p["expensive"]
                    e_val = float(np.mean(e)) if isinstance(e, (list, tuple)) else float(e)
                    pts.append((str(p.get("arch", "")), float(p["cheap"]), e_val))
        pts = [p for p in pts if math.isfinite(p[1]) and math.isfinite(p[2])]
        if pts:
            out[where] = ("supernet", "stand-alone", pts)
    return out


def plot_gap(
    pairs: Mapping[str, tuple[str, str, list[tuple[str, float, float]]]], path: Path, accuracy: Sequence[str] = ()
) -> Path:
    """Final (stand-alone) objective on x, cheap (supernet, inherited) on y, per architecture; Kendall tau in titles.

    The axes follow ``nas-gap``'s ``gap_scatter.png`` (stand-alone on x, inherited
    on y), so the two plots of one study read the same way.
    """
    from engine.gap import kendall_tau

    n = len(pairs)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = _figure(4.4 * cols, 4.0 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (label, (cheap, final, pts)) in zip(axes, pairs.items()):
        x = np.array([p[2] for p in pts])  # final / stand-alone
        y = np.array([p[1] for p in pts])  # cheap / supernet
        tau = kendall_tau(y, x) if len(pts) >= 3 else math.nan
        ax.scatter(x, y, s=14, alpha=0.7, edgecolors="none")
        best = int(np.argmax(y))
        ax.scatter([x[best]], [y[best]], s=60, facecolors="none", edgecolors="red", label=f"{cheap} pick")
        x_scale, y_scale = (accuracy_scale("acc", v) if label in accuracy else None for v in (x, y))
        ax.set_xlabel(f"{final} objective (final{', ' + x_scale if x_scale else ''})")
        ax.set_ylabel(f"{cheap} objective ({'inherited' if cheap == 'supernet' else 'cheap'}"
                      f"{', ' + y_scale if y_scale else ''})")
        ax.set_title(f"{label}\nn={len(pts)}, Kendall tau of the points shown={tau:.3f}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.savefig(path)
    return path


def pareto_fronts(jobs: Sequence[Job]) -> dict[str, tuple[list[tuple[str, str]], list[list[dict[str, Any]]]]]:
    """Per group: the objectives ``[(metric, "max"|"min")]`` and each job's reported front (``summary.json``)."""
    from engine.tracking.wandb_tracker import normalise_front

    out: dict[str, tuple[list[tuple[str, str]], list[list[dict[str, Any]]]]] = {}
    for label, members in groups(jobs).items():
        for j in members:
            report = j.summary.get(str(j.summary.get("strategy")))
            if not isinstance(report, Mapping) or not report.get("pareto_front"):
                continue
            objectives = [
                (str(o.get("metric")), str(o.get("direction", "max")))
                for o in report.get("objectives") or []
                if isinstance(o, Mapping)
            ]
            front = normalise_front(report["pareto_front"])
            if len(objectives) < 2 and front:
                names = [k for k in front[0] if k != "arch"]
                objectives = [(names[0], "max"), (names[1], "min")] if len(names) >= 2 else []
            if len(objectives) >= 2:
                entry = out.setdefault(label, (objectives, []))
                entry[1].append(front)
    return out


def _focus_on_bulk(ax: Any, points: Sequence[tuple[float, float]]) -> int:
    """Limit the axes to the bulk of the points (3 IQR fences); returns how many fall outside.

    A front often ends in a degenerate extreme (an all-``none`` cell: 10% accuracy,
    zero latency) that would squash every interesting trade-off into a corner.
    """
    if len(points) < 5:
        return 0
    arr = np.asarray(points, dtype=float)
    keep = np.ones(len(arr), dtype=bool)
    for d in range(2):
        q1, q3 = np.percentile(arr[:, d], [25, 75])
        fence = 3 * (q3 - q1)
        if fence > 0:
            keep &= (arr[:, d] >= q1 - fence) & (arr[:, d] <= q3 + fence)
    if keep.all() or keep.sum() < 2:
        return 0
    inner = arr[keep]
    for d, setter in ((0, ax.set_xlim), (1, ax.set_ylim)):
        lo, hi = inner[:, d].min(), inner[:, d].max()
        pad = 0.06 * (hi - lo) if hi > lo else 1.0
        setter(lo - pad, hi + pad)
    return int((~keep).sum())


def plot_pareto(fronts: Mapping[str, tuple[list[tuple[str, str]], list[list[dict[str, Any]]]]], path: Path) -> Path:
    """The first two objectives of every job's Pareto front, one colour per group, as staircases."""
    import matplotlib

    fig = _figure(7.5, 5.2)
    ax = fig.subplots()
    colors = matplotlib.colormaps["tab10"]
    axis_names: tuple[str, str] | None = None
    all_points: list[tuple[float, float]] = []
    for gi, (label, (objectives, job_fronts)) in enumerate(fronts.items()):
        (mx, dx), (my, dy) = objectives[0], objectives[1]
        axis_names = axis_names or (f"{mx} ({dx})", f"{my} ({dy})")
        for k, front in enumerate(job_fronts):
            pts = sorted((float(r[mx]), float(r[my])) for r in front if mx in r and my in r)
            if not pts:
                continue
            all_points.extend(pts)
            x, y = zip(*pts)
            # The attainment staircase: at each x, the best y reachable by a point at least as good in x.
            ax.step(x, y, where="pre" if dx == "max" else "post", color=colors(gi % 10), alpha=0.55, lw=1.2,
                    label=f"{label} (n={len(job_fronts)})" if k == 0 else None)
            ax.scatter(x, y, color=colors(gi % 10), s=12, alpha=0.8)
    if axis_names:
        ax.set_xlabel(axis_names[0])
        ax.set_ylabel(axis_names[1])
    hidden = _focus_on_bulk(ax, all_points)
    title = "Pareto fronts (one staircase per job)"
    if hidden:
        title += f"\n{hidden} extreme point(s) outside the axes (e.g. a network of only 'none' operations)"
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path)
    return path


def _count(n: int, noun: str) -> str:
    """``1 job``, ``2 jobs``: the number with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _scale_note(jobs: Sequence[Job], metric: str, panel: int = 1) -> str:
    """`` (in %)`` or `` (a fraction of 1)`` for an accuracy, read off the values shown; empty otherwise."""
    values = [float(v) for j in jobs if j.evaluations for v in j.trajectory(metric)[panel]]
    scale = accuracy_scale(objective_name(jobs) if panel == 0 else metric, values)
    return f" ({scale})" if scale else ""


def _cells_say(jobs: Sequence[Job], metric: str) -> str:
    """What a table cell is: a mean ± std over seeds, or with one run per group the value of that run."""
    sizes = [len(m) for m in groups(jobs).values()]
    scale = _scale_note(jobs, metric)
    if max(sizes) == 1:
        return f"cells are its `{metric}`{scale} (one run per group, so no spread)."
    text = f"cells are mean ± std over seeds of its `{metric}`{scale}"
    return text + (" (a cell without ± is a single run)." if min(sizes) == 1 else ".")


# -- the report ----------------------------------------------------------------------
def write_report(
    root: str | Path,
    out_dir: str | Path | None = None,
    metric: str | None = None,
    budgets: Sequence[int] | None = None,
    band: str = "sem",
    level: float = 0.95,
) -> dict[str, Any]:
    """Aggregate the sweep under ``root``: ``report.md`` and PNG plots in ``out_dir`` (default ``root/report``).

    Returns:
        ``{"markdown": text, "files": [paths], "jobs": n}``.

    Raises:
        FileNotFoundError: when ``root`` holds no readable job and no ``gap.json``.
        ValueError: for a bad budget or confidence level.
    """
    root = Path(root)
    if budgets is not None and any(isinstance(b, bool) or int(b) < 1 for b in budgets):
        raise ValueError(f"budgets must be positive integers, got {list(budgets)}")
    if band not in BANDS:
        raise ValueError(f"the band must be one of {', '.join(BANDS)}, got {band!r}")
    if not 0 < level < 1:
        raise ValueError(f"the confidence level must be in (0, 1), got {level}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    gap_pairs = gap_json_pairs(root)
    jobs = load_sweep(root) if find_job_dirs(root) or not gap_pairs else []
    if not jobs and not gap_pairs:
        raise FileNotFoundError(f"no readable job under {root} (journals in use by running searches?)")
    out = Path(out_dir) if out_dir is not None else root / "report"
    out.mkdir(parents=True, exist_ok=True)
    metric = metric or default_metric(jobs)
    budgets = sorted({int(b) for b in budgets}) if budgets else default_budgets(jobs)
    files: list[Path] = []
    lines = [f"# Sweep report: {root}", ""]
    if jobs:
        lines += [
            f"{_count(len(jobs), 'job')} in {_count(len(groups(jobs)), 'group')}. The pick after *b* evaluations is"
            f" the architecture with the best `{objective_name(jobs)}` among the first *b*; {_cells_say(jobs, metric)}",
            "",
            markdown_table(jobs, metric, budgets),
            "",
        ]
    if any(j.evaluations for j in jobs):
        files.append(plot_best_so_far(jobs, metric, out / "best_so_far.png", band, level))
        lines += [f"![best so far]({files[-1].name})", ""]
    fid_pairs = fidelity_pairs(jobs)
    pairs = {**fid_pairs, **gap_pairs}
    if pairs:
        from engine.gap import kendall_tau

        # Which pairs are accuracies, so the axes can say their scale: nas-gap's are val_acc, a sweep's
        # are its objective.
        objective = objective_name(jobs)
        accuracy = [k for k, (_, final, _) in pairs.items()
                    if "acc" in final or (k in fid_pairs and "acc" in objective)]
        files.append(plot_gap(pairs, out / "gap_scatter.png", accuracy))
        headline = gap_json_taus(root)
        lines += ["## Cheap vs final fidelity", "",
                  "Kendall tau of the points plotted (for a `gap.json`: supernet seeds' accuracies averaged first);"
                  " for a `gap.json`, also nas-gap's own figure with its definition.", "",
                  "| | cheap | final | architectures | Kendall tau | nas-gap tau |",
                  "|---|---|---|---:|---:|---|"]
        for label, (cheap, final, pts) in pairs.items():
            tau = kendall_tau([p[1] for p in pts], [p[2] for p in pts]) if len(pts) >= 3 else math.nan
            own = f"{headline[label][0]:.3f} ({headline[label][1]})" if label in headline else "-"
            lines.append(f"| `{label}` | {cheap} | {final} | {len(pts)} | {tau:.3f} | {own} |")
        lines += ["", f"![gap]({files[-1].name})", ""]
    rung_rows = [(label, fid, g) for label, members in groups(jobs).items()
                 for fid, g in rung_gap(e for j in members for e in j.evaluations).items()]
    if rung_rows:
        lines += ["## Shorter training vs full training (epoch gap)", "",
                  "Per rung, on the architectures trained both to that rung and in full (results of one architecture"
                  " in several jobs averaged): how well the short training ranks what the full one ranks.", "",
                  "| | rung | architectures | Kendall tau | Spearman | top-k overlap |",
                  "|---|---|---:|---:|---:|---|"]

        def num(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        for label, fid, g in rung_rows:
            overlap = "-" if g["top_k_overlap"] is None else f"{g['top_k_overlap']:.2f} (k={g['top_k']})"
            lines.append(f"| `{label}` | {fid} | {g['architectures']} | {num(g['kendall_tau'])} |"
                         f" {num(g['spearman'])} | {overlap} |")
        lines.append("")
    fronts = pareto_fronts(jobs)
    if fronts:
        files.append(plot_pareto(fronts, out / "pareto.png"))
        lines += ["## Pareto fronts", ""]
        for label, (_, job_fronts) in fronts.items():
            hv = [
                float(j.summary[j.summary["strategy"]].get("hypervolume") or math.nan)
                for j in groups(jobs)[label]
                if isinstance(j.summary.get(str(j.summary.get("strategy"))), Mapping)
            ]
            lines.append(f"- `{label}`: front sizes {[len(f) for f in job_fronts]}, hypervolume {_cell(hv)}")
        lines += ["", f"![pareto]({files[-1].name})", ""]
    text = "\n".join(lines)
    md = out / "report.md"
    md.write_text(text)
    files.insert(0, md)
    return {"markdown": text, "files": [str(f) for f in files], "jobs": len(jobs)}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-report``."""
    parser = argparse.ArgumentParser(
        prog="nas-report",
        description="Aggregate a nas-search multirun: Markdown table and PNG plots per strategy.",
    )
    parser.add_argument("sweep_dir", help="the multirun directory (or one run's output directory)")
    parser.add_argument("--out", default=None, help="where report.md and the PNGs go (default: <sweep_dir>/report)")
    parser.add_argument("--metric", default=None,
                        help="metric of the pick in the table (default: the first report-only metric, e.g. test_acc;"
                             " 'objective' for the objective)")
    parser.add_argument("--budgets", default=None,
                        help="comma-separated evaluation counts for the table (default: round numbers up to the run)")
    parser.add_argument("--band", choices=BANDS, default="sem",
                        help="band around the mean curves: standard error (default), std, or Student-t interval")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of --band ci (default 0.95)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    budgets = None
    if args.budgets:
        try:
            budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
        except ValueError:
            parser.error(f"--budgets must be comma-separated integers, got {args.budgets!r}")
    try:
        result = write_report(args.sweep_dir, args.out, args.metric, budgets, args.band, args.level)
    except (FileNotFoundError, ValueError) as exc:
        sys.stderr.write(f"nas-report: {exc}\n")
        return 2
    sys.stdout.write(result["markdown"] + "\n\n")
    for f in result["files"]:
        sys.stdout.write(f"wrote {f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
