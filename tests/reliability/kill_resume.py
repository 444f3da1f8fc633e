"""Kill-and-resume harness: SIGKILL real ``nas-search`` processes at random points, resume, compare.

For one configuration it runs the search once uninterrupted (the reference), then
runs it again in another directory, killing the process ``kills`` times at random
points (after a random number of committed evaluations, plus a random fraction
of one evaluation, or at a random time that may fall in the start-up) and
resuming it each time with ``resume=auto``, and finally lets it finish. It checks:

- **lost**: journal rows committed before a kill that are missing from, or
  differ in, the final journal; and rows of the reference missing at the end;
- **repeated**: oracle calls, in a resumed process, of an architecture that an
  earlier process had already committed (counted from the fault-injecting
  oracle's trace file), and extra rows in the final journal;
- **identical**: the final journal equals the reference row for row
  (architecture, order, status, objective, metrics, error; not the cost, since
  a failed or retried attempt costs the wall time it took, which no two runs
  share) and
  ``summary.json`` names the same best architecture with the same counts.

Run the full harness (20 kills per configuration) with::

    python tests/reliability/kill_resume.py --kills 20

The test suite imports :func:`kill_and_resume` with fewer kills.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

Row = tuple[object, ...]

CONFIGS: dict[str, list[str]] = {
    "random/b1": ["strategy=random", "batch_size=1"],
    "regularized_evolution/b1": ["strategy=regularized_evolution", "batch_size=1"],
    "regularized_evolution/b4": ["strategy=regularized_evolution", "batch_size=4"],
    "local_search/b2": ["strategy=local_search", "batch_size=2"],
    "regularized_evolution/b3+faults": [
        "strategy=regularized_evolution",
        "batch_size=3",
        "oracle.rate=0.15",
        "oracle.kinds=[raise,nan_loss,oom,batch]",
        "oracle.transient=1",
    ],
}
"""Harness configurations: overrides on top of ``oracle=faulty`` (the tabular oracle, wrapped)."""


@dataclass
class Figures:
    """What one configuration's run of the harness found."""

    config: str
    kills: int = 0
    processes: int = 0
    evaluations_checked: int = 0
    oracle_calls: int = 0
    lost: int = 0
    repeated: int = 0
    identical: bool = False
    summary_identical: bool = False
    finished_early: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was lost or repeated and the result matches the reference."""
        return self.lost == 0 and self.repeated == 0 and self.identical and self.summary_identical


def journal_rows(path: Path) -> list[Row]:
    """The evaluation rows of a journal, in order, read through a read-only connection.

    A row is ``(arch, fidelity, status, objective, metrics, reported, error, cached)``.
    """
    if not path.exists() or path.stat().st_size == 0:
        return []
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return list(
            db.execute(
                "SELECT arch, fidelity, status, objective, metrics, reported, error, cached"
                " FROM evaluations ORDER BY id"
            )
        )
    except sqlite3.OperationalError:  # killed before the schema existed
        return []
    finally:
        db.close()


def _command(run_dir: Path, overrides: Sequence[str], oracle: str = "faulty") -> list[str]:
    # The configs are read from a snapshot taken when the harness starts, so that an edit of
    # conf/ during a long run does not make the resumed process's config differ.
    snapshot = run_dir.parent / "conf"
    if not snapshot.is_dir():
        from engine.cli import config_dir

        shutil.copytree(config_dir(), snapshot)
    return [
        sys.executable, "-m", "engine.cli", f"--config-path={snapshot}", f"oracle={oracle}", *overrides,
        f"hydra.run.dir={run_dir}",
    ]


def _run(run_dir: Path, overrides: Sequence[str], timeout: float = 900.0, oracle: str = "faulty") -> None:
    proc = subprocess.run(
        _command(run_dir, overrides, oracle), capture_output=True, text=True, timeout=timeout, env=_env()
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nas-search failed ({proc.returncode}) in {run_dir}:\n{proc.stderr[-2000:]}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", WANDB_MODE="disabled", HYDRA_FULL_ERROR="1")
    return env


def _prefix_len(a: Sequence[Row], b: Sequence[Row]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _summary_key(path: Path) -> tuple[object, ...]:
    s = json.loads(path.read_text())
    best = s["best"] or {}
    return (best.get("arch"), best.get("objective"), s["evaluations"], s["failures"], s["per_fidelity"])


def kill_and_resume(
    name: str,
    overrides: Sequence[str],
    workdir: Path,
    kills: int = 20,
    evaluations: int = 120,
    delay: float = 0.02,
    seed: int = 0,
    rng: np.random.Generator | None = None,
    extend_from: int | None = None,
) -> Figures:
    """Run the harness for one configuration (see the module docstring).

    Args:
        name: Label of the configuration.
        overrides: Hydra overrides on top of ``oracle=faulty``.
        workdir: Where the reference and killed runs put their directories.
        kills: SIGKILLs to deliver (fewer if the search finishes first).
        evaluations: The search budget.
        delay: Real seconds per evaluation, so kills land mid-search.
        seed: The search seed.
        rng: Chooses the kill points.
        extend_from: First finish the killed run's directory with this smaller budget, then kill and
            resume it with ``evaluations`` (a budget extension); the reference runs ``evaluations`` at once.
    """
    rng = rng or np.random.default_rng(12345)
    fig = Figures(config=name)
    base = [*overrides, f"seed={seed}", f"budget.evaluations={evaluations}"]
    ref_dir, run_dir = workdir / "reference", workdir / "killed"
    _run(ref_dir, base)
    ref = journal_rows(ref_dir / "journal.sqlite")
    trace = workdir / "trace.tsv"
    # resume=auto: the first process may be killed before it wrote a journal (a requeued job).
    chain = [*base, "resume=auto", f"oracle.delay_seconds={delay}", f"oracle.trace={trace}"]
    journal = run_dir / "journal.sqlite"
    committed: list[int] = []  # rows in the journal when each process started
    pids: list[int] = []
    log = (workdir / "stderr.log").open("w")
    try:
        if extend_from is not None:
            first = [*overrides, f"seed={seed}", f"budget.evaluations={extend_from}", *chain[len(base):]]
            committed.append(0)
            proc = subprocess.Popen(_command(run_dir, first), stdout=subprocess.DEVNULL, stderr=log, env=_env())
            pids.append(proc.pid)
            fig.processes += 1
            if proc.wait(timeout=300) != 0:
                fig.notes.append(f"the first run (budget {extend_from}) exited with {proc.returncode}")
        for k in range(kills):
            before = journal_rows(journal)
            committed.append(len(before))
            proc = subprocess.Popen(_command(run_dir, chain), stdout=subprocess.DEVNULL, stderr=log, env=_env())
            pids.append(proc.pid)
            fig.processes += 1
            if rng.random() < 0.25:
                time.sleep(float(rng.uniform(0.0, 1.5)))  # may land in the start-up
            else:
                step = max(1, (len(ref) - len(before)) // (kills - k + 1))
                target = len(before) + int(rng.integers(1, 2 * step + 1))
                while proc.poll() is None and len(journal_rows(journal)) < target:
                    time.sleep(0.02)
                time.sleep(float(rng.uniform(0.0, 2 * delay)))
            if proc.poll() is not None:
                fig.finished_early += 1
                fig.notes.append(f"process {k} finished before its kill")
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            fig.kills += 1
            after = journal_rows(journal)
            if after[: len(before)] != before:
                fig.notes.append(f"kill {k}: rows committed earlier changed")
        committed.append(len(journal_rows(journal)))
        final_proc = subprocess.Popen(_command(run_dir, chain), stdout=subprocess.DEVNULL, stderr=log, env=_env())
        pids.append(final_proc.pid)
        fig.processes += 1
        if final_proc.wait(timeout=300) != 0:
            fig.notes.append(f"final resume exited with {final_proc.returncode}")
    finally:
        log.close()
    final = journal_rows(journal)
    fig.evaluations_checked = len(final)
    # Lost: a row present after some kill (or in the reference) that the final journal lacks.
    lost_after_kill = max((c - _prefix_len(final[:c], ref[:c]) for c in committed), default=0)
    fig.lost = max(lost_after_kill, len(ref) - _prefix_len(final, ref))
    # Repeated: a resumed process calling the oracle for an architecture an earlier one committed.
    calls = [line.split("\t") for line in trace.read_text().splitlines()] if trace.exists() else []
    fig.oracle_calls = len(calls)
    done_before: dict[str, set[str]] = {}
    for pid, n in zip(pids, committed):
        done_before[str(pid)] = {str(r[0]) for r in final[:n] if not r[7]}
    fig.repeated = sum(1 for pid, arch in calls if arch in done_before.get(pid, set()))
    fig.repeated += max(0, len(final) - len(ref))
    fig.identical = final == ref
    try:
        fig.summary_identical = _summary_key(run_dir / "summary.json") == _summary_key(ref_dir / "summary.json")
    except (OSError, KeyError, ValueError) as exc:
        fig.notes.append(f"summary: {exc}")
    return fig


SUPERNET_CONFIGS: dict[str, list[str]] = {
    "supernet/one-shot": [],
    "supernet/few-shot": ["supernet.few_shot_splits=2", "supernet.few_shot_epochs=4"],
}
"""Supernet configurations: overrides on top of :data:`SUPERNET_BASE`."""

SUPERNET_BASE = [
    "supernet.measure_latency=false", "supernet.model={channels: 8, cells: 1}", "supernet.keep_last_epochs=2",
    "strategy=random", "budget.evaluations=8", "batch_size=2",
]


def kill_supernet_and_resume(
    name: str,
    overrides: Sequence[str],
    workdir: Path,
    kills: int = 20,
    epochs: int = 16,
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> Figures:
    """Kill a real supernet search mid-training ``kills`` times; it must resume from its last checkpoint.

    Each process is killed at a random moment after the checkpoint file changed
    (an epoch finished), so most kills land inside the next epoch. Besides the
    journal comparison of :func:`kill_and_resume`, the figures count the epochs
    logged over all processes: resuming from the checkpoint means each epoch is
    completed once (a kill between an epoch's log line and its checkpoint may
    repeat one), where starting over would repeat every epoch done before a kill.
    """
    rng = rng or np.random.default_rng(4321)
    fig = Figures(config=name)
    base = [*SUPERNET_BASE, *overrides, f"supernet.epochs={epochs}", f"seed={seed}"]
    ref_dir, run_dir = workdir / "reference", workdir / "killed"
    _run(ref_dir, base, oracle="supernet")
    ref = journal_rows(ref_dir / "journal.sqlite")
    ref_epochs = _epoch_lines(ref_dir)
    # Seconds of one epoch in the reference, so that a kill lands inside the epoch after a checkpoint.
    durations = [float(m) for m in re.findall(r"epoch \d+/\d+: .*\((\d+\.\d+) s\)", "\n".join(_log_lines(ref_dir)))]
    epoch_s = max(0.2, float(np.median(durations))) if durations else 1.0
    chain = [*base, "resume=auto"]
    checkpoint = run_dir / "supernet.pt"
    log = (workdir / "stderr.log").open("w")
    committed: list[int] = []
    try:
        for k in range(kills):
            before = journal_rows(run_dir / "journal.sqlite")
            committed.append(len(before))
            stamp = checkpoint.stat().st_mtime_ns if checkpoint.exists() else None
            proc = subprocess.Popen(
                _command(run_dir, chain, "supernet"), stdout=subprocess.DEVNULL, stderr=log, env=_env()
            )
            fig.processes += 1
            # Wait for progress: a new checkpoint (an epoch finished) or, once trained, a new journal row.
            while proc.poll() is None:
                now = checkpoint.stat().st_mtime_ns if checkpoint.exists() else None
                if now != stamp or len(journal_rows(run_dir / "journal.sqlite")) > len(before):
                    break
                time.sleep(0.05)
            time.sleep(float(rng.uniform(0.0, epoch_s)))
            if proc.poll() is not None:
                fig.finished_early += 1
                fig.notes.append(f"process {k} finished before its kill")
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            fig.kills += 1
        committed.append(len(journal_rows(run_dir / "journal.sqlite")))
        final = subprocess.run(_command(run_dir, chain, "supernet"), stdout=subprocess.DEVNULL, stderr=log,
                               env=_env(), timeout=900)
        fig.processes += 1
        if final.returncode != 0:
            fig.notes.append(f"final resume exited with {final.returncode}")
    finally:
        log.close()
    rows = journal_rows(run_dir / "journal.sqlite")
    fig.evaluations_checked = len(rows)
    fig.lost = max(max((c - _prefix_len(rows[:c], ref[:c]) for c in committed), default=0),
                   len(ref) - _prefix_len(rows, ref))
    fig.repeated = max(0, len(rows) - len(ref))
    fig.identical = rows == ref
    try:
        fig.summary_identical = _summary_key(run_dir / "summary.json") == _summary_key(ref_dir / "summary.json")
    except (OSError, KeyError, ValueError) as exc:
        fig.notes.append(f"summary: {exc}")
    trained = _epoch_lines(run_dir)
    resumed = sum("resuming stage" in line for line in _log_lines(run_dir))
    fig.notes.append(
        f"epochs logged {trained} for {ref_epochs} in the reference; {resumed} resumes from a checkpoint"
    )
    fig.oracle_calls = trained
    return fig


def _log_lines(run_dir: Path) -> list[str]:
    return [line for p in run_dir.glob("*.log") for line in p.read_text(errors="replace").splitlines()]


def _epoch_lines(run_dir: Path) -> int:
    return sum(" epoch " in line and "supernet" in line and "loss" in line for line in _log_lines(run_dir))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness over :data:`CONFIGS` and print a table (and JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs per configuration")
    ap.add_argument("--evaluations", type=int, default=120, help="search budget per configuration")
    ap.add_argument("--delay", type=float, default=0.02, help="real seconds per evaluation")
    ap.add_argument("--seed", type=int, default=0, help="search seed")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), help=f"subset of {list(CONFIGS)}")
    ap.add_argument("--supernet", nargs="*", default=[], help=f"supernet configurations: {list(SUPERNET_CONFIGS)}")
    ap.add_argument("--epochs", type=int, default=16, help="supernet training epochs")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed + 2026)
    out: list[Figures] = []
    print(f"{'config':<34} {'kills':>5} {'procs':>5} {'checked':>7} {'calls':>6} {'lost':>4} {'rep':>4} identical")
    for name in args.configs:
        with tempfile.TemporaryDirectory(prefix="kill_resume_") as tmp:
            start = time.monotonic()
            fig = kill_and_resume(
                name, CONFIGS[name], Path(tmp), args.kills, args.evaluations, args.delay, args.seed, rng
            )
        out.append(fig)
        print(
            f"{name:<34} {fig.kills:>5} {fig.processes:>5} {fig.evaluations_checked:>7} {fig.oracle_calls:>6}"
            f" {fig.lost:>4} {fig.repeated:>4} {fig.identical and fig.summary_identical}"
            f"  ({time.monotonic() - start:.0f} s){'  ' + '; '.join(fig.notes) if fig.notes else ''}",
            flush=True,
        )
    for name in args.supernet:
        with tempfile.TemporaryDirectory(prefix="kill_resume_") as tmp:
            start = time.monotonic()
            fig = kill_supernet_and_resume(
                name, SUPERNET_CONFIGS[name], Path(tmp), args.kills, args.epochs, args.seed, rng
            )
        out.append(fig)
        print(
            f"{name:<34} {fig.kills:>5} {fig.processes:>5} {fig.evaluations_checked:>7} {fig.oracle_calls:>6}"
            f" {fig.lost:>4} {fig.repeated:>4} {fig.identical and fig.summary_identical}"
            f"  ({time.monotonic() - start:.0f} s)  {'; '.join(fig.notes)}",
            flush=True,
        )
    total = Figures(config="total")
    for f in out:
        total.kills += f.kills
        total.processes += f.processes
        total.evaluations_checked += f.evaluations_checked
        total.oracle_calls += f.oracle_calls
        total.lost += f.lost
        total.repeated += f.repeated
    total.identical = total.summary_identical = all(f.ok for f in out)
    print(
        f"{'total':<34} {total.kills:>5} {total.processes:>5} {total.evaluations_checked:>7}"
        f" {total.oracle_calls:>6} {total.lost:>4} {total.repeated:>4} {total.identical}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(f) for f in [*out, total]], indent=2))
    return 0 if total.identical else 1


if __name__ == "__main__":
    sys.exit(main())
