"""A sweep sharing one evaluation store against the same sweep unshared, with stand-alone training on digits.

Runs, side by side in one invocation:

1. the sweep ``strategy=random,regularized_evolution,local_search seed=0,1`` on the joblib
   launcher (2 workers), stand-alone training on digits, without a store;
2. the same sweep with ``cache.path=``;
3. one more job on that store, SIGKILLed while it trains (a claim is in the store), then the
   store's integrity check, and the job resumed to its end.

It reports the trainings of each sweep (journal rows measured by an oracle; with the store, the
summaries' ``cache.evaluated``), the distinct architectures, whether every job journaled the
same results in both sweeps (architecture, status, objective and the accuracy metrics; times
differ from run to run by nature), and what the killed job left.

    python bench/shared_store.py [--budget 8] [--epochs 1] [--out bench/results/shared_store.md]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "shared_store.md"
ORACLE = ["oracle=standalone", "dataset=digits", "oracle.seed=0", "oracle.hardware.latency=false",
          "oracle.model.nb201.channels=4", "oracle.model.nb201.cells=1", "progress=none"]
SWEEP = ["-m", "strategy=random,regularized_evolution,local_search", "seed=0,1", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2"]
_KEPT = ("val_acc", "test_acc", "train_acc", "train_loss", "val_loss", "params", "flops")


def _cli(args: Sequence[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "engine.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _run(args: Sequence[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = _cli(args, cwd)
    _, err = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"nas-search {' '.join(args)} failed:\n{err[-3000:]}")
    return time.perf_counter() - start


def _rows(journal: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(journal)
    try:
        rows = db.execute("SELECT arch, status, objective, metrics, reported, cached FROM evaluations ORDER BY id")
        out = []
        for arch, status, objective, metrics, reported, cached in rows:
            values = {**json.loads(metrics), **json.loads(reported)}
            out.append((arch, status, objective, tuple((k, values.get(k)) for k in _KEPT), cached))
        return out
    finally:
        db.close()


def _sweep(sweep: Path) -> dict[tuple[str, int], dict[str, Any]]:
    jobs = {}
    for job in sorted(p for p in sweep.iterdir() if (p / "summary.json").exists()):
        summary = json.loads((job / "summary.json").read_text())
        jobs[(summary["strategy"], summary["seed"])] = {"summary": summary, "rows": _rows(job / "journal.sqlite")}
    return jobs


def _claims(store: Path) -> int:
    db = sqlite3.connect(store, timeout=30)
    try:
        return int(db.execute("SELECT COUNT(*) FROM entries WHERE status IS NULL").fetchone()[0])
    finally:
        db.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=int, default=8)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    common = [*SWEEP, *ORACLE, f"budget.evaluations={args.budget}", f"oracle.epochs={args.epochs}"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = root / "store.sqlite"
        t_alone = _run([*common, f"hydra.sweep.dir={root / 'alone'}"], root)
        t_shared = _run([*common, f"cache.path={store}", f"hydra.sweep.dir={root / 'shared'}"], root)
        alone, shared = _sweep(root / "alone"), _sweep(root / "shared")
        trainings_alone = sum(sum(not r[4] for r in j["rows"]) for j in alone.values())
        trainings_shared = sum(j["summary"]["cache"]["evaluated"] for j in shared.values())
        hits = sum(j["summary"]["cache"]["hits"] for j in shared.values())
        distinct = len({r[0] for j in shared.values() for r in j["rows"]})
        identical = sorted(alone) == sorted(shared) and all(alone[k]["rows"] == shared[k]["rows"] for k in alone)
        print(f"unshared: {trainings_alone} trainings in {t_alone:.0f} s; shared: {trainings_shared} trainings"
              f" ({hits} taken from the store) in {t_shared:.0f} s; {distinct} distinct architectures;"
              f" journals identical: {identical}", flush=True)

        # One more job on the store, killed while it trains, then resumed.
        run_dir = root / "killed"
        job = [*ORACLE, "strategy=random", "seed=7", f"budget.evaluations={args.budget}",
               f"oracle.epochs={max(3, args.epochs)}", f"cache.path={store}", f"hydra.run.dir={run_dir}"]
        proc = _cli([*job, "resume=auto"], root)
        journal = run_dir / "journal.sqlite"
        deadline = time.time() + 300
        # Killed once it has journaled an evaluation and holds a claim: in the middle of its next training.
        while time.time() < deadline and proc.poll() is None:
            if journal.exists() and _rows(journal) and _claims(store):
                break
            time.sleep(0.05)
        claims_at_kill = _claims(store)
        killed_after = len(_rows(journal)) if journal.exists() else 0
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        db = sqlite3.connect(store)
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.close()
        t_resume = _run([*job, "resume=auto"], root)
        rows = _rows(journal)
        left = _claims(store)
        summary = json.loads((run_dir / "summary.json").read_text())
        print(f"killed job: SIGKILL after {killed_after} journaled evaluations with {claims_at_kill} claim(s) in the"
              f" store; integrity_check {integrity}; resumed to {summary['evaluations']} evaluations in"
              f" {t_resume:.0f} s ({len({r[0] for r in rows})} distinct rows of {len(rows)}); claims left {left}",
              flush=True)
    lines = [
        "# Shared evaluation store: a 3-strategy x 2-seed sweep with stand-alone training on digits",
        "",
        f"`python bench/shared_store.py --budget {args.budget} --epochs {args.epochs}` (joblib launcher, 2 workers,"
        f" NB201 cells with C=4, N=1, {args.epochs} epoch(s), `oracle.seed=0`; measured on this 2-core machine):",
        "",
        "| sweep | trainings | taken from the store | wall s |",
        "|---|---|---|---|",
        f"| unshared | {trainings_alone} | - | {t_alone:.0f} |",
        f"| `cache.path=` | {trainings_shared} | {hits} | {t_shared:.0f} |",
        "",
        f"- Distinct architectures over the 6 jobs: {distinct}; trainings with the store: {trainings_shared}"
        f" ({'each once' if trainings_shared == distinct else 'NOT each once'}).",
        f"- Every job's journal (architecture, status, objective, accuracies and losses) identical to the unshared"
        f" sweep's: {identical}.",
        f"- A seventh job SIGKILLed while training ({claims_at_kill} claim(s) in the store, {killed_after} evaluations"
        f" journaled): `PRAGMA integrity_check` {integrity}; `resume=auto` completed it to {summary['evaluations']}"
        f" evaluations, no architecture journaled twice ({len({r[0] for r in rows})} distinct of {len(rows)} rows),"
        f" {left} claim(s) left in the store.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
