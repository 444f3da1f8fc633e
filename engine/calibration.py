"""Calibration of a supernet search: a few stand-alone trainings that say what its ranking is worth here.

A supernet's inherited accuracy ranks architectures well on some tasks and barely at all on
others (the optimization gap), and a user cannot tell which from the search alone. After a
supernet search the runner trains a small calibration set stand-alone, chosen from the
search's own results:

- the supernet's ``top`` best (the candidates for the final pick), and
- the rest spread evenly over the supernet's ranking (so the agreement is measured across
  the whole range, not only among near-ties at the top).

It then reports the agreement (Kendall tau with a bootstrap interval, top-k overlap), a
plain verdict, and the final pick *confirmed* at stand-alone fidelity: the stand-alone best
among the supernet's top candidates. The verdict reads the interval's lower end, because
with a handful of architectures the point estimate alone over-promises:

- ``pick``: lower end >= 0.5; the supernet's ranking can be trusted to choose the winner;
- ``prune``: lower end > 0; it ranks better than chance, so it can discard the bad part of the
  space, but the pick must be confirmed stand-alone (which this step does);
- ``none``: lower end <= 0; on this task it cannot be told from chance.

Every calibration result is appended to ``calibration.jsonl`` in the run directory as soon as
it is measured, so a killed run continues with the architectures still to train.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.gap import kendall_tau, top_k_overlap
from engine.spaces import Architecture
from engine.types import Evaluation, Oracle

__all__ = ["agreement", "choose", "run_calibration", "summary_lines"]

_log = logging.getLogger(__name__)

PICK, PRUNE = 0.5, 0.0  # thresholds on the lower end of the tau interval (module docstring)


def choose(scores: Mapping[Architecture, float], size: int, top: int) -> list[Architecture]:
    """The calibration set: the ``top`` best by ``scores``, then the rest evenly spread over the ranking."""
    ranked = sorted((a for a, s in scores.items() if math.isfinite(s)), key=lambda a: -scores[a])
    picks = ranked[: min(top, size)]
    rest = ranked[len(picks):]
    m = min(size - len(picks), len(rest))
    if m > 0:
        idx = sorted({int(i) for i in np.linspace(0, len(rest) - 1, m).round()})
        picks += [rest[i] for i in idx]
    return picks


def agreement(cheap: Sequence[float], standalone: Sequence[float], top: int, seed: int = 0,
              bootstrap: int = 1000, level: float = 0.9) -> dict[str, Any]:
    """Kendall tau between the two scores with a percentile bootstrap interval, top-k overlap and the verdict."""
    a, b = np.asarray(cheap, float), np.asarray(standalone, float)
    n = a.size
    out: dict[str, Any] = {"architectures": n, "kendall_tau": None, "tau_interval": None,
                           "top_k": min(top, n), "top_k_overlap": None}
    if n >= 2:
        out["top_k_overlap"] = top_k_overlap(a, b, min(top, n))
    tau = kendall_tau(a, b) if n >= 3 else float("nan")
    if not math.isfinite(tau):
        out.update(verdict="unknown", reason=f"{n} architectures are too few (or their scores constant) to rank")
        return out
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(bootstrap):
        i = rng.integers(0, n, n)
        t = kendall_tau(a[i], b[i])
        if math.isfinite(t):
            draws.append(t)
    lo, hi = (float(np.quantile(draws, q)) for q in ((1 - level) / 2, (1 + level) / 2))
    out.update(kendall_tau=tau, tau_interval=[lo, hi], level=level)
    if lo >= PICK:
        out.update(verdict="pick", reason=f"its ranking agrees with stand-alone training (tau {tau:.2f}, {level:.0%}"
                   f" interval {lo:.2f} to {hi:.2f}): it can be trusted to pick on this task")
    elif lo > PRUNE:
        out.update(verdict="prune", reason=f"it ranks better than chance (tau {tau:.2f}, interval {lo:.2f} to"
                   f" {hi:.2f}) but not well enough to pick: use it to prune, confirm the pick stand-alone")
    else:
        out.update(verdict="none", reason=f"its ranking cannot be told from chance on this task (tau {tau:.2f},"
                   f" interval {lo:.2f} to {hi:.2f}): do not trust its scores; raise calibration.size for a"
                   " sharper answer, or change the supernet settings (nas-gap)")
    return out


def _load(path: Path) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: that architecture is trained again
            done[rec["arch"]] = rec
    return done


def run_calibration(
    history: Sequence[Evaluation], make_oracle: Callable[[], Oracle], path: Path, size: int, top: int,
    seconds_left: float | None = None, seed: int = 0, bootstrap: int = 1000,
) -> dict[str, Any]:
    """Train the calibration set stand-alone (continuing from ``path``) and judge the supernet by it.

    Args:
        history: The supernet search's evaluations (its ``default``-fidelity results are the scores).
        make_oracle: Builds the stand-alone oracle (called only if something is left to train).
        path: ``calibration.jsonl`` of the run: results so far, appended to as they come.
        size: Architectures in the calibration set.
        top: How many of them are the supernet's best (the candidates for the pick).
        seconds_left: Oracle seconds the budget still allows (``None``: no limit); trainings stop
            once it is spent, and the report says the set was cut.
        seed: Seed of the bootstrap.
        bootstrap: Bootstrap resamples of the tau interval.

    Returns:
        What ``summary.json`` holds under ``calibration``.
    """
    scores: dict[Architecture, float] = {}
    for ev in history:
        if ev.ok and ev.objective is not None and ev.fidelity == "default":
            scores.setdefault(ev.arch, float(ev.objective))
    chosen = choose(scores, size, top)
    ranked = sorted(scores, key=lambda a: -scores[a])
    done = _load(path)
    todo = [a for a in chosen if a.string not in done]
    cut = False
    if todo:
        oracle = make_oracle()
        spent = sum(float(r["cost"]) for r in done.values())
        try:
            for k, arch in enumerate(todo, start=1):
                if seconds_left is not None and spent >= seconds_left:
                    cut = True
                    break
                ev = oracle.evaluate([arch])[0]
                rec: dict[str, Any] = {"arch": arch.string, "ok": ev.ok, "standalone": ev.objective, "cost": ev.cost,
                       "reported": dict(ev.reported), "error": ev.error}
                with path.open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                done[arch.string] = rec
                spent += ev.cost
                _log.info("calibration %d/%d: stand-alone %s, supernet %.4f  %s", k, len(todo),
                          f"{ev.objective:.4f}" if ev.ok and ev.objective is not None else "failed",
                          scores[arch], arch.string)
        finally:
            close = getattr(oracle, "close", None)
            if callable(close):
                close()
    rows: list[dict[str, Any]] = []
    for arch in chosen:
        got = done.get(arch.string)
        if got is None:
            continue
        rows.append({"arch": arch.string, "supernet": scores[arch], "supernet_rank": ranked.index(arch) + 1,
                     "standalone": got["standalone"] if got["ok"] else None,
                     "test_acc": got["reported"].get("test_acc"),
                     "seconds": got["cost"], "candidate": chosen.index(arch) < top})
    ok = [r for r in rows if r["standalone"] is not None]
    out: dict[str, Any] = {
        "size": size, "top": top, "trained": len(rows), "failed": len(rows) - len(ok),
        "seconds": sum(float(r["seconds"]) for r in rows), "cut_by_budget": cut,
        **agreement([r["supernet"] for r in ok], [r["standalone"] for r in ok], top, seed, bootstrap),
        "architectures": rows,
    }
    out["pick"] = _pick(ok)
    return out


def _pick(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The stand-alone best of the supernet's candidates, and why it won."""
    candidates = [r for r in rows if r["candidate"]]
    if not candidates:
        return None
    win = max(candidates, key=lambda r: r["standalone"])
    own = min(candidates, key=lambda r: r["supernet_rank"])
    if win is own:
        why = (f"the supernet's own pick, confirmed: the best stand-alone of its top {len(candidates)}"
               f" ({win['standalone']:.4f})")
    else:
        why = (f"best stand-alone ({win['standalone']:.4f}) of the supernet's top {len(candidates)}; its own pick"
               f" (supernet rank {own['supernet_rank']}) reached {own['standalone']:.4f} stand-alone")
    return {"arch": win["arch"], "standalone": win["standalone"], "test_acc": win["test_acc"],
            "supernet_rank": win["supernet_rank"], "reason": why}


def summary_lines(cal: Mapping[str, Any]) -> list[str]:
    """The stdout lines of a calibration report."""
    lines = [f"  calibration  {cal['trained']} architectures trained stand-alone in {cal['seconds']:.1f} s"
             + (" (cut: the budget's oracle seconds ran out)" if cal["cut_by_budget"] else "")
             + (f", {cal['failed']} failed" if cal["failed"] else "")]
    if cal["kendall_tau"] is not None:
        lo, hi = cal["tau_interval"]
        lines.append(f"  supernet vs  stand-alone: Kendall tau {cal['kendall_tau']:.2f} ({cal['level']:.0%} interval"
                     f" {lo:.2f} to {hi:.2f}), top-{cal['top_k']} overlap {cal['top_k_overlap']:.2f}")
    lines.append(f"  verdict      {cal['verdict']}: {cal['reason']}")
    pick = cal.get("pick")
    if pick:
        lines.append(f"  pick         {pick['arch']}")
        lines.append(f"               {pick['reason']}")
    return lines
