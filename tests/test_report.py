"""``nas-report`` on sweeps whose numbers are known: table statistics, gap scatter, Pareto fronts, bad input."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.gap import kendall_tau
from engine.journal import Journal
from engine.spaces import get_space
from engine.tracking.report import confidence_band, load_sweep, main, write_report
from engine.types import Evaluation, Status

SPACE = get_space("nb201")
ARCHS = list(SPACE.enumerate())[:200]


def make_job(
    root: Path,
    num: int,
    strategy: str,
    seed: int,
    rows: Sequence[tuple[str, float, float]],
    summary_extra: dict[str, Any] | None = None,
    start: int = 0,
) -> Path:
    """A job directory as a sweep leaves it; ``rows`` are ``(fidelity, objective, test_acc)`` in order."""
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(
        f"- strategy={strategy}\n- seed={seed}\n- budget.evaluations={len(rows)}\n"
    )
    evals = [
        Evaluation(arch=ARCHS[start + i], fidelity=f, objective=o, metrics={"val_acc": o}, reported={"test_acc": t})
        for i, (f, o, t) in enumerate(rows)
    ]
    with Journal(job / "journal.sqlite") as j:
        j.set_meta("config", {"seed": seed, "strategy": {"name": strategy}, "oracle": {"objective": "val_acc"}})
        j.append(evals)
        # A cached repeat and a failure: neither may count as an evaluation of the pick.
        j.append([
            Evaluation(arch=ARCHS[start], objective=99.0, metrics={"val_acc": 99.0}, cached=True),
            Evaluation.failure(ARCHS[start + len(rows)], "default", "RuntimeError: boom"),
        ])
    final = [e for e in evals if e.fidelity == "default"]
    best = max(final, key=lambda e: e.objective or 0) if final else None
    summary: dict[str, Any] = {"strategy": strategy, "seed": seed, "evaluations": len(rows) + 1, "best": None}
    if best is not None:
        summary["best"] = {"arch": best.arch.string, "fidelity": "default", "objective": best.objective,
                           "metrics": {"test_acc": best.reported["test_acc"]}}
    summary.update(summary_extra or {})
    (job / "summary.json").write_text(json.dumps(summary))
    return job


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Two strategies x three seeds; the pick's test_acc after 2 and 4 evaluations is known by construction."""
    root = tmp_path / "sweep"
    n = 0
    for strategy, base in (("alpha", 90.0), ("beta", 80.0)):
        for seed in range(3):
            rows = [
                ("default", 50.0, 1.0),
                ("default", 60.0, base + seed),  # the pick after 2 and 3 evaluations
                ("default", 55.0, 7.0),
                ("default", 70.0, base + 2 * seed),  # the pick after 4
            ]
            make_job(root, n, strategy, seed, rows)
            n += 1
    return root


def test_table_has_mean_and_std_of_the_picks_metric_per_budget(sweep: Path) -> None:
    result = write_report(sweep, budgets=[2, 4])
    md = result["markdown"]
    assert result["jobs"] == 6
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in md.splitlines() if line.startswith("| `")}
    # alpha: picks 90, 91, 92 after 2; 90, 92, 94 after 4. beta: 80.. (std of 0,1,2 is 1; of 0,2,4 is 2).
    assert rows["`alpha`"] == ["3", "91.00 ± 1.00", "92.00 ± 2.00", "70.00 ± 0.00", "5 ± 0"]
    assert rows["`beta`"][1:3] == ["81.00 ± 1.00", "82.00 ± 2.00"]
    assert "test_acc @ 2" in md and "val_acc (final)" in md
    for f in result["files"]:
        assert Path(f).stat().st_size > 0
    assert (sweep / "report" / "best_so_far.png").is_file()
    assert not (sweep / "report" / "gap_scatter.png").exists()


def test_labels_ignore_common_overrides_and_seed(sweep: Path) -> None:
    jobs = load_sweep(sweep)
    assert sorted({j.label for j in jobs}) == ["alpha", "beta"]
    assert sorted(j.seed for j in jobs if j.label == "alpha") == [0, 1, 2]
    assert all(len(j.evaluations) == 5 for j in jobs)  # cached repeat left out, failure kept


def test_confidence_band_kinds() -> None:
    m = np.array([[1.0, 2.0], [3.0, np.nan]])
    mean, lo, hi = confidence_band(m, "sem")
    assert mean.tolist() == [2.0, 2.0]
    assert (hi - mean)[0] == pytest.approx(np.std([1, 3], ddof=1) / np.sqrt(2))
    assert (hi - mean)[1] == 0.0  # one value: no band
    _, lo_ci, _ = confidence_band(m, "ci")
    assert lo_ci[0] < lo[0]
    with pytest.raises(ValueError, match="band"):
        confidence_band(m, "iqr")


def test_two_fidelities_give_a_gap_scatter_with_kendall_tau(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    rng = np.random.default_rng(0)
    cheap = rng.uniform(40, 60, 12)
    final = cheap + rng.normal(0, 4, 12)
    for seed in range(2):
        # Architectures 0..11 at the cheap fidelity, then the same ones at the final fidelity.
        job = make_job(root, seed, "gap_aware", seed, [("supernet", float(c), 0.0) for c in cheap])
        with Journal(job / "journal.sqlite") as j:
            j.append([Evaluation(arch=ARCHS[i], objective=float(f), metrics={"val_acc": float(f)},
                                 reported={"test_acc": float(f)}) for i, f in enumerate(final)])
    result = write_report(root)
    assert (root / "report" / "gap_scatter.png").is_file()
    tau = kendall_tau(cheap, final)
    assert f"| 12 | {tau:.3f} |" in result["markdown"]


def test_pareto_fronts_from_summary(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    for seed in range(2):
        front = [{"arch": ARCHS[i].string, "val_acc": 80.0 + 3 * i + seed, "latency_ms_raspi4": 10.0 + 5 * i}
                 for i in range(4)]
        report = {"objectives": [{"metric": "val_acc", "direction": "max"},
                                 {"metric": "latency_ms_raspi4", "direction": "min"}],
                  "hypervolume": 100.0 + seed, "pareto_front": front}
        make_job(root, seed, "nsga2", seed, [("default", 80.0, 90.0), ("default", 85.0, 91.0)],
                 summary_extra={"nsga2": report})
    result = write_report(root)
    assert (root / "report" / "pareto.png").is_file()
    assert "front sizes [4, 4], hypervolume 100.50 ± 0.71" in result["markdown"]


def test_a_running_job_is_skipped_with_a_warning(sweep: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="engine.report")
    with Journal(sweep / "0" / "journal.sqlite"):
        result = write_report(sweep)
    assert result["jobs"] == 5
    assert any("in use" in r.getMessage() for r in caplog.records)


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str], sweep: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no journal.sqlite (or gap.json) under" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(sweep), "--budgets", "ten"])
    assert main([str(sweep), "--budgets", "0"]) == 2
    assert main([str(sweep), "--out", str(tmp_path / "r"), "--metric", "objective", "--band", "ci"]) == 0
    out = capsys.readouterr().out
    assert "objective @ 5" in out and (tmp_path / "r" / "report.md").is_file()


def test_skipped_rows_are_not_evaluations(tmp_path: Path) -> None:
    root = tmp_path / "s"
    job = make_job(root, 0, "alpha", 0, [("default", 1.0, 2.0)])
    with Journal(job / "journal.sqlite") as j:
        j.append([Evaluation(arch=ARCHS[50], status=Status.SKIPPED, error="budget spent")])
    (job_read,) = load_sweep(root)
    assert len(job_read.evaluations) == 2


def test_gap_json_of_nas_gap_alone_gives_the_scatter(tmp_path: Path) -> None:
    """The shape nas-gap writes: stand-alone means vs each supernet setting's per-seed scores."""
    rng = np.random.default_rng(1)
    archs = [a.string for a in ARCHS[:20]]
    truth = {a: float(v) for a, v in zip(archs, rng.uniform(0.3, 0.9, 20))}
    seeds = {str(s): {"val_acc": {a: truth[a] + float(rng.normal(0, 0.1)) for a in archs}} for s in range(2)}
    gap = {"standalone": {"mean_val_acc": truth}, "settings": [{"name": "uniform", "seeds": seeds}],
           "proxies": {}}
    (tmp_path / "gap").mkdir()
    (tmp_path / "gap" / "gap.json").write_text(json.dumps(gap))
    result = write_report(tmp_path / "gap")
    assert result["jobs"] == 0 and (tmp_path / "gap" / "report" / "gap_scatter.png").is_file()
    cheap = [np.mean([seeds[s]["val_acc"][a] for s in seeds]) for a in archs]
    tau = kendall_tau(cheap, [truth[a] for a in archs])
    assert f"| `uniform` | supernet | stand-alone val_acc | 20 | {tau:.3f} | - |" in result["markdown"]
    # with nas-gap's table, its own headline tau (mean of per-seed taus) is printed with its definition
    per_seed = [kendall_tau([seeds[s]["val_acc"][a] for a in archs], [truth[a] for a in archs]) for s in seeds]
    gap["table"] = [{"name": "uniform", "kind": "supernet", "kendall_tau": float(np.mean(per_seed)),
                     "kendall_tau_definition": "mean over 2 supernet seeds"}]
    (tmp_path / "gap" / "gap.json").write_text(json.dumps(gap))
    result = write_report(tmp_path / "gap")
    assert f"| {tau:.3f} | {np.mean(per_seed):.3f} (mean over 2 supernet seeds) |" in result["markdown"]


# -- printed output is true and formatted by its scale ------------------------------
@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every matplotlib figure the report makes, to inspect what the PNGs show."""
    from engine.tracking import report

    made: list[Any] = []
    original = report._figure

    def capture(width: float, height: float) -> Any:
        fig = original(width, height)
        made.append(fig)
        return fig

    monkeypatch.setattr(report, "_figure", capture)
    return made


def _table_rows(md: str) -> dict[str, list[str]]:
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in md.splitlines() if line.startswith("| `")}


def test_a_single_run_on_a_unit_scale_has_four_decimals_and_no_spread(tmp_path: Path, figures: list[Any]) -> None:
    root = tmp_path / "run"
    make_job(root, 0, "alpha", 0, [("default", 0.5, 0.41), ("default", 0.9612, 0.95873), ("default", 0.7, 0.6)])
    result = write_report(root / "0")
    md = result["markdown"]
    assert _table_rows(md)["`alpha`"] == ["1", "0.9587", "0.9612", "4"]  # not 0.96 ± 0.00
    assert "±" not in md and "+-" not in md
    assert "1 job in 1 group" in md and "one run per group, so no spread" in md
    assert "(a fraction of 1)" in md and "(in %)" not in md  # the scale is said where the figures are
    (fig,) = figures
    title = fig._suptitle.get_text()
    assert "1 run" in title and "mean over seeds" not in title


def test_several_seeds_on_a_percent_scale_keep_two_decimals_and_the_spread(sweep: Path, figures: list[Any]) -> None:
    md = write_report(sweep, budgets=[2])["markdown"]
    assert _table_rows(md)["`alpha`"][1] == "91.00 ± 1.00"
    assert "mean ± std over seeds" in md and "(in %)" in md
    assert figures[0]._suptitle.get_text().startswith("mean over seeds")
    assert all("(in %)" in ax.get_ylabel() for ax in figures[0].axes)


def test_best_so_far_shows_the_earliest_points_and_its_legend_covers_no_final_point(
    tmp_path: Path, figures: list[Any]
) -> None:
    root = tmp_path / "sweep"
    # A poor first evaluation, then a long plateau: a zoom on the later part would cut the first points off.
    rows = [("default", 10.0, 12.0), *[("default", 90.0 + i / 10, 93.0 + i / 10) for i in range(39)]]
    make_job(root, 0, "alpha", 0, rows)
    make_job(root, 1, "beta", 0, rows[::-1][:1] + rows[1:], start=40)
    write_report(root)
    (fig,) = figures
    fig.canvas.draw()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    assert legends
    for ax in fig.axes:
        low, high = ax.get_ylim()
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float)
            y = y[np.isfinite(y)]
            assert low < y.min() and y.max() < high  # the earliest points lie inside, with a margin
            x_end, y_end = line.get_xdata()[-1], line.get_ydata()[-1]
            px, py = ax.transData.transform((x_end, y_end))
            for legend in legends:
                assert not legend.get_window_extent().contains(px, py)


def test_gap_scatter_has_stand_alone_on_x_and_supernet_on_y_like_nas_gap(tmp_path: Path, figures: list[Any]) -> None:
    archs = [a.string for a in ARCHS[:6]]
    truth = {a: 0.5 + 0.05 * i for i, a in enumerate(archs)}  # stand-alone
    inherited = {a: 0.2 + 0.01 * i for i, a in enumerate(archs)}  # supernet, another scale on purpose
    gap = {"standalone": {"mean_val_acc": truth}, "settings": [{"name": "uniform", "seeds": {"0": {"val_acc":
           inherited}}}], "proxies": {}}
    (tmp_path / "gap").mkdir()
    (tmp_path / "gap" / "gap.json").write_text(json.dumps(gap))
    write_report(tmp_path / "gap")
    (fig,) = figures
    ax = fig.axes[0]
    xy = ax.collections[0].get_offsets()
    assert sorted(xy[:, 0].tolist()) == pytest.approx(sorted(truth.values()))
    assert sorted(xy[:, 1].tolist()) == pytest.approx(sorted(inherited.values()))
    assert "stand-alone" in ax.get_xlabel() and "inherited" in ax.get_ylabel()
    assert "a fraction of 1" in ax.get_xlabel() and "a fraction of 1" in ax.get_ylabel()
