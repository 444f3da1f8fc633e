"""``nas-gap``: measure the optimization gap between a supernet and stand-alone training.

One run draws ``n_archs`` architectures (stratified by model size), trains each
from scratch with ``standalone_seeds`` seeds (the ground truth, with its own
noise ceiling), and scores them with the supernet under every setting of
``settings`` (e.g. BN recalibration on/off, fair sampling, few-shot splits,
fine-tuning), side by side against the same ground truth. It writes
``gap.json``, a scatter plot and a rank-agreement plot to the output directory
and prints the table.

Expensive results are never computed twice: stand-alone results are appended
to a JSON-lines journal (``standalone_cache``) as they finish, and trained
supernets are checkpoints keyed by their training settings (``supernet_cache``);
a killed run, a rerun, or the jobs of a ``-m`` sweep pointed at the same files
pick up where they stopped.

Usage::

    nas-gap dataset=digits n_archs=50 standalone_seeds=2
    nas-gap -m supernet.sampling=uniform,fair settings=[] standalone_cache=/tmp/sa.jsonl supernet_cache=/tmp/sn
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from engine.cli import OutputGuard, _undo_hydra_outputs
from engine.gap import GapReport, measure_gap
from engine.scale import accuracy_scale
from engine.spaces import Architecture, SearchSpace, get_space

_log = logging.getLogger("nas_gap")


class GapConfigError(ValueError):
    """A bad ``nas-gap`` config value; the message names the key."""


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- architectures --------------------------------------------------------------------------
def stratified_sample(
    space: SearchSpace, n: int, key: Any, rng: np.random.Generator, pool_factor: int = 4
) -> list[Architecture]:
    """``n`` distinct architectures spread over ``key`` (e.g. parameter count).

    A pool of ``pool_factor * n`` random architectures is sorted by ``key`` and cut
    into ``n`` equal strata; one architecture is drawn from each, so small, medium
    and large networks are all represented instead of what uniform sampling favours.
    """
    pool: dict[tuple[int, ...], Architecture] = {}
    tries = 0
    while len(pool) < pool_factor * n and tries < 50 * pool_factor * n:
        a = space.sample(rng)
        pool.setdefault(a.decisions, a)
        tries += 1
    if len(pool) < n:
        raise GapConfigError(f"n_archs={n} exceeds the {len(pool)} distinct architectures found in the space")
    ordered = sorted(pool.values(), key=lambda a: (key(a), a.string))
    edges = np.linspace(0, len(ordered), n + 1).astype(int)
    return [ordered[int(rng.integers(lo, hi))] for lo, hi in itertools.pairwise(edges)]


# -- stand-alone ground truth, journaled ----------------------------------------------------
class StandaloneJournal:
    """Append-only JSON lines of stand-alone results, keyed by context, seed and architecture.

    The context is a digest of what a result depends on (space, data fingerprint,
    model options, recipe), so a file shared between runs only ever answers with
    results of the same setup.
    """

    def __init__(self, path: Path, context: Mapping[str, Any]) -> None:
        self.path = path
        self.context = _digest(context)
        self.results: dict[tuple[int, str], dict[str, Any]] = {}
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                for line_no, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        _log.warning("%s line %d is not JSON (a write cut short?); ignored", path, line_no)
                        continue
                    if rec.get("context") == self.context:
                        self.results[(int(rec["seed"]), str(rec["arch"]))] = rec

    def get(self, seed: int, arch: str) -> dict[str, Any] | None:
        """The stored result, if any."""
        return self.results.get((seed, arch))

    def add(self, seed: int, arch: str, record: Mapping[str, Any]) -> None:
        """Append one result durably (flushed and fsynced before returning)."""
        rec = {"context": self.context, "seed": seed, "arch": arch, **record}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.results[(seed, arch)] = rec


def run_standalone(
    cfg: DictConfig, space: SearchSpace, archs: Sequence[Architecture], journal: StandaloneJournal
) -> dict[str, list[dict[str, Any]]]:
    """Train every architecture with every seed (skipping journaled results); ``arch -> [result per seed]``."""
    from hydra.utils import instantiate

    seeds = [int(cfg.seed) + s for s in range(int(cfg.standalone_seeds))]
    chunk = max(1, int(cfg.standalone_chunk))
    total = len(seeds) * len(archs)
    done = sum(1 for s in seeds for a in archs if journal.get(s, a.string) is not None)
    if done:
        _log.info("stand-alone: %d of %d results taken from %s", done, total, journal.path)
    node = OmegaConf.to_container(cfg.standalone, resolve=True)
    assert isinstance(node, dict)
    for seed in seeds:
        todo = [a for a in archs if journal.get(seed, a.string) is None]
        if not todo:
            continue
        oracle = instantiate({**node, "seed": seed}, space=space, _convert_="all")
        try:
            for start in range(0, len(todo), chunk):
                batch = todo[start : start + chunk]
                t0 = time.monotonic()
                for ev in oracle.evaluate(batch):
                    rec: dict[str, Any] = {"ok": ev.ok, "error": ev.error, "cost": ev.cost}
                    if ev.ok:
                        rec.update(val_acc=ev.objective, metrics=dict(ev.metrics), reported=dict(ev.reported))
                    journal.add(seed, ev.arch.string, rec)
                done += len(batch)
                _log.info("stand-alone: %d/%d trained (seed %d, %.1f s for the last %d)",
                          done, total, seed, time.monotonic() - t0, len(batch))
        finally:
            close = getattr(oracle, "close", None)
            if close is not None:
                close()
    return {a.string: [journal.get(s, a.string) or {} for s in seeds] for a in archs}


# -- supernet settings ------------------------------------------------------------------------
def model_options(cfg: DictConfig, space: SearchSpace) -> dict[str, Any]:
    """The stand-alone recipe's network options for ``space`` (flat, or per space in the config)."""
    from oracles.models import model_options_for

    return model_options_for(space, _plain(cfg.standalone.get("model")) or {})


def setting_configs(cfg: DictConfig, space: SearchSpace) -> list[tuple[str, dict[str, Any]]]:
    """``(name, supernet options)`` per setting: each entry of ``settings`` applied over ``supernet``."""
    base = dict(_plain(cfg.supernet))
    base["model"] = model_options(cfg, space)  # the supernet's sub-networks are exactly the stand-alone networks
    raw = _plain(cfg.settings) or []
    if not isinstance(raw, list):
        raise GapConfigError(f"settings must be a list of {{name: ..., <supernet option>: ...}}, got {raw!r}")
    if not raw:
        return [(str(cfg.get("setting_name") or "configured"), base)]
    out = []
    names: set[str] = set()
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise GapConfigError(f"settings[{i}] must be a mapping with a name, got {entry!r}")
        entry = dict(entry)
        name = str(entry.pop("name"))
        if name in names:
            raise GapConfigError(f"settings[{i}]: duplicate name {name!r}")
        names.add(name)
        out.append((name, {**base, **entry}))
    return out


def _scores_to_map(archs: Sequence[Architecture], scores: Sequence[Mapping[str, float]], key: str) -> dict[str, float]:
    return {a.string: float(s[key]) for a, s in zip(archs, scores)}


def evaluate_settings(
    cfg: DictConfig, space: SearchSpace, archs: Sequence[Architecture], cache_dir: Path
) -> list[dict[str, Any]]:
    """Train (or load) the supernet of every setting and score ``archs`` with it, with extra seeds and snapshots."""
    from oracles.supernet import SupernetConfig, SupernetOracle

    results = []
    seeds = [int(cfg.seed) + s for s in range(max(1, int(cfg.supernet_seeds)))]
    for name, options in setting_configs(cfg, space):
        try:
            sn_cfg = SupernetConfig.from_mapping(options)
        except ValueError as exc:
            raise GapConfigError(f"settings {name!r}: {exc}") from None
        entry: dict[str, Any] = {"name": name, "supernet": sn_cfg.to_dict(), "seeds": {}}
        for k, seed in enumerate(seeds):
            ident = {"space": space.name, "train": sn_cfg.training_identity(), "seed": seed,
                     "data": _plain(cfg.dataset)}
            parent_ident = {**ident, "train": {**sn_cfg.parent_identity(), "few_shot_splits": 0,
                                               "few_shot_decisions": None,
                                               "few_shot_epochs": sn_cfg.few_shot_epochs}}
            ckpt = cache_dir / f"supernet-{_digest(ident)}.pt"
            parent = cache_dir / f"supernet-{_digest(parent_ident)}.pt" if sn_cfg.few_shot_splits else None
            oracle = SupernetOracle(space, _plain(cfg.dataset), sn_cfg, seed=seed, checkpoint=ckpt,
                                    parent_checkpoint=parent)
            t0 = time.monotonic()
            oracle.prepare()
            t1 = time.monotonic()
            scores = oracle.score(archs)
            t2 = time.monotonic()
            run: dict[str, Any] = {
                "checkpoint": str(ckpt),
                "training_seconds": oracle.training_seconds,
                "load_seconds": t1 - t0,
                "eval_seconds": t2 - t1,
                "archs_per_second": len(archs) / max(t2 - t1, 1e-9),
                "val_acc": _scores_to_map(archs, scores, "val_acc"),
                "val_loss": _scores_to_map(archs, scores, "val_loss"),
                "test_acc": _scores_to_map(archs, scores, "test_acc"),
            }
            if k == 0 and cfg.epoch_stability:
                snapshots = [oracle.score(archs, snapshot=j) for j in range(oracle.num_snapshots)]
                run["epochs"] = [_scores_to_map(archs, snap, "val_acc") for snap in snapshots]
                run["epochs_loss"] = [_scores_to_map(archs, snap, "val_loss") for snap in snapshots]
            entry["seeds"][str(seed)] = run
            _log.info("setting %s, supernet seed %d: trained %.1f s, scored %d archs in %.1f s",
                      name, seed, oracle.training_seconds, len(archs), t2 - t1)
        results.append(entry)
    return results


def proxy_scores(cfg: DictConfig, space: SearchSpace, archs: Sequence[Architecture]) -> dict[str, dict[str, float]]:
    """Zero-cost proxy scores (``proxies`` list; empty: none): ``proxy -> arch -> score``."""
    names = list(_plain(cfg.proxies) or [])
    if not names:
        return {}
    from oracles.proxies import ProxyOracle

    oracle = ProxyOracle(space, _plain(cfg.dataset), proxy=names[0], metrics=names[1:], seed=int(cfg.seed),
                         model=model_options(cfg, space), hardware={"latency": False})
    out: dict[str, dict[str, float]] = {n: {} for n in oracle.names}
    for ev in oracle.evaluate(archs):
        if ev.ok:
            for n in oracle.names:
                if n in ev.metrics:
                    out[n][ev.arch.string] = float(ev.metrics[n])
    return out


# -- report -----------------------------------------------------------------------------------
METRICS = ("val_acc", "val_loss")


def _standalone_score(record: Mapping[str, Any], metric: str) -> float | None:
    """A stand-alone result's score for ``metric``, higher is better (the loss negated); None if missing."""
    if not record.get("ok"):
        return None
    if metric == "val_acc":
        value = record.get("val_acc")
        return None if value is None else float(value)
    value = (record.get("metrics") or {}).get("val_loss")
    return None if value is None else -float(value)


def standalone_truth(standalone: Mapping[str, list[dict[str, Any]]], metric: str) -> dict[str, list[float]]:
    """Per architecture, its stand-alone scores for ``metric`` (one per seed), where every seed succeeded."""
    truth: dict[str, list[float]] = {}
    for a, runs in standalone.items():
        values = [_standalone_score(r, metric) for r in runs]
        if runs and all(v is not None for v in values):
            truth[a] = [float(v) for v in values if v is not None]
    return truth


def _supernet_scores(run: Mapping[str, Any], metric: str) -> tuple[dict[str, float], list[dict[str, float]]]:
    """One supernet's scores for ``metric`` (higher is better) and those of its end-of-epoch snapshots."""
    if metric == "val_acc":
        return dict(run["val_acc"]), [dict(e) for e in run.get("epochs", [])]
    return ({a: -v for a, v in run["val_loss"].items()},
            [{a: -v for a, v in e.items()} for e in run.get("epochs_loss", [])])


def tau_definition(n_defined: int, n_seeds: int) -> str:
    """How the headline tau of a supernet setting was formed, in words printed next to it.

    Spelled out because a single supernet seed and the mean over seeds give different
    figures, and a reader comparing ``nas-gap`` with another tool needs to know which one
    this is (and when a seed's tau was undefined and left out of the mean).
    """
    seeds = f"{n_seeds} supernet seed{'s' if n_seeds != 1 else ''}"
    if n_defined == n_seeds:
        return f"mean over {seeds}"
    return f"mean over {n_defined} of {seeds} (tau undefined for the others: constant scores)"


def supernet_seed_tau(
    seeds: Mapping[str, Mapping[str, Any]], truth: Mapping[str, list[float]], top_fraction: float, metric: str
) -> dict[str, Any]:
    """The headline Kendall tau of one setting: the mean over its supernet seeds, with the per-seed values.

    Every supernet seed is ranked against the same stand-alone truth (the mean over the
    stand-alone seeds); the mean over supernet seeds is the figure ``nas-gap`` prints and
    stores as ``kendall_tau``, so that the printed number, ``gap.json`` and the plot use one
    definition instead of silently taking the first seed.

    Returns:
        ``kendall_tau`` and ``kendall_tau_mean_over_supernet_seeds`` (the mean; None if no
        seed's tau is defined), ``kendall_tau_per_supernet_seed`` (seed -> tau or None),
        ``kendall_tau_spread`` ([min, max] over the seeds, or None) and
        ``kendall_tau_definition`` (the words printed next to the figure).
    """
    per_seed: dict[str, float | None] = {}
    for seed, run in seeds.items():
        tau = measure_gap(_supernet_scores(run, metric)[0], truth, top_fraction=top_fraction).kendall_tau
        per_seed[str(seed)] = float(tau) if math.isfinite(tau) else None
    defined = [t for t in per_seed.values() if t is not None]
    mean = float(np.mean(defined)) if defined else None
    return {
        "kendall_tau": mean,
        "kendall_tau_mean_over_supernet_seeds": mean,
        "kendall_tau_per_supernet_seed": per_seed,
        "kendall_tau_spread": [min(defined), max(defined)] if defined else None,
        "kendall_tau_definition": tau_definition(len(defined), len(per_seed)),
    }


def build_report(
    standalone: Mapping[str, list[dict[str, Any]]],
    settings: Sequence[dict[str, Any]],
    proxies: Mapping[str, Mapping[str, float]],
    top_fraction: float,
    metric: str = "val_acc",
) -> tuple[dict[str, list[float]], list[dict[str, Any]]]:
    """Gap metrics per setting (and proxy) against the stand-alone mean over seeds.

    A supernet row's ``kendall_tau`` is the mean over its supernet seeds
    (:func:`supernet_seed_tau`); its other rank numbers (rho, top tau, top-k, pick) and the
    epoch stability are those of the first supernet seed (``first_supernet_seed``).

    Args:
        metric: ``val_acc``, or ``val_loss`` (ranked as the negated loss, so that higher is
            better on both sides and the signs of tau and the pick mean the same).
    """
    truth = standalone_truth(standalone, metric)
    rows = []
    for s in settings:
        runs = list(s["seeds"].values())
        first, epochs = _supernet_scores(runs[0], metric)
        rep: GapReport = measure_gap(
            first, truth, cheap_seeds=[_supernet_scores(r, metric)[0] for r in runs[1:]],
            cheap_epochs=[*epochs, first] if epochs else (),
            top_fraction=top_fraction,
        )
        rows.append({"name": s["name"], "kind": "supernet", **rep.to_dict(),
                     **supernet_seed_tau(s["seeds"], truth, top_fraction, metric),
                     "first_supernet_seed": next(iter(s["seeds"])),
                     "training_seconds": sum(r["training_seconds"] for r in runs),
                     "archs_per_second": runs[0]["archs_per_second"]})
    for name, scores in proxies.items():
        try:
            rep = measure_gap(scores, truth, top_fraction=top_fraction)
        except ValueError:
            continue
        rows.append({"name": f"proxy:{name}", "kind": "proxy", **rep.to_dict()})
    if len(proxies) >= 2:
        from oracles.proxies import rank_ensemble

        try:
            rep = measure_gap(rank_ensemble(proxies), truth, top_fraction=top_fraction)
        except ValueError:
            pass
        else:
            # Named short for the table; gap.json lists what it aggregates.
            rows.append({"name": "proxy:ensemble", "kind": "proxy", "members": list(proxies), **rep.to_dict()})
    return truth, rows


def _num(v: float | None, digits: int = 3) -> str:
    """A number at the precision its scale deserves (3 decimals for taus and accuracies); ``-`` when undefined."""
    return "-" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The comparison as a fixed-width text table.

    The ``tau`` column is the headline (a supernet row's mean over its supernet seeds) and
    ``tau range`` its min..max over those seeds, so that a single lucky seed shows as such.
    """

    def f(v: Any) -> str:
        return f"{_num(v):>6}"

    def spread(r: Mapping[str, Any]) -> str:
        sp = r.get("kendall_tau_spread")
        return f"{_num(sp[0])}..{_num(sp[1])}" if sp else "-"

    top = f"top{float(rows[0]['top_fraction']):.0%}" if rows else "top"
    head = (f"{'setting':<22} {'tau':>6} {'tau range':>13} {'rho':>6} {top:>6} {'top-k':>6} {'pick':>5}"
            f" {'stab.s':>6} {'stab.e':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<22} {f(r['kendall_tau'])} {spread(r):>13} {f(r['spearman_rho'])} {f(r['tau_top'])} "
            f"{f(r['top_k_overlap'])} {r['pick_rank']:>5} {f(r['stability_seeds'])} {f(r['stability_epochs'])}"
        )
    return "\n".join(lines)


def format_ceiling(standalone: Mapping[str, Any], top_fraction: float, standalone_seeds: int) -> str:
    """The noise ceiling in words, each part from the value ``gap.json`` stores for it.

    The overall, top-fraction and split-half ceilings are defined independently (the top
    fraction holds few architectures, whose scores may tie where the overall ones do not),
    so each part is printed, or called undefined with its own reason, on its own: the
    printed line must never contradict ``gap.json`` or the plot's ceiling line.
    """
    overall = standalone.get("noise_ceiling")
    top = standalone.get("noise_ceiling_top")
    split = standalone.get("noise_ceiling_split")
    share = f"{top_fraction:.0%}"
    if overall is None:
        why = ("needs standalone_seeds >= 2" if standalone_seeds < 2
               else "no two stand-alone seeds both vary across the architectures")
        return f"noise ceiling (tau between stand-alone seeds): undefined ({why})"
    text = f"noise ceiling (mean tau between stand-alone seeds): {_num(overall)} overall, "
    text += (f"{_num(top)} within the top {share}" if top is not None
             else f"undefined within the top {share} (no two seeds both vary there)")
    if split is not None:
        text += f"; {_num(split)} between the means of the two halves of the seeds"
    return text


def make_plots(
    out: Path, truth: Mapping[str, list[float]], settings: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]],
    metric: str = "val_acc",
) -> list[str]:
    """``gap_scatter.png`` (supernet vs stand-alone per setting) and ``gap_rank_agreement.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    n = len(settings)
    cols = min(3, max(n, 1))
    nrows = math.ceil(max(n, 1) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.8 * nrows), squeeze=False)
    by_name = {r["name"]: r for r in rows}
    for ax, s in zip(axes.flat, settings):
        first, _ = _supernet_scores(next(iter(s["seeds"].values())), metric)
        keys = [a for a in truth if a in first]
        sign = 1.0 if metric == "val_acc" else -1.0  # plotted in the metric's own units
        x = [sign * float(np.mean(truth[a])) for a in keys]
        y = [sign * first[a] for a in keys]
        ax.scatter(x, y, s=14, alpha=0.75)
        r = by_name.get(s["name"], {})
        seed = next(iter(s["seeds"]))
        tau = (r.get("kendall_tau_per_supernet_seed") or {}).get(seed)  # the tau of the seed drawn here
        ax.set_title(f"{s['name']}  (supernet seed {seed}: tau {tau:.2f})" if tau is not None
                     else f"{s['name']}  (supernet seed {seed})", fontsize=9)
        label = metric.replace("_", " ")
        scale = accuracy_scale(metric, x + y)
        unit = f", {scale}" if scale else ""
        ax.set_xlabel(f"stand-alone {label} (mean over seeds{unit})", fontsize=8)
        ax.set_ylabel(f"inherited {label}{f' ({scale})' if scale else ''}", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    path = out / "gap_scatter.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(str(path))

    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(rows) + 2), 3.8))
    names = [r["name"] for r in rows]
    idx = np.arange(len(rows))
    width = 0.27
    top = f"{float(rows[0]['top_fraction']):.0%}" if rows else "top"
    n_seeds = max((len(r.get("kendall_tau_per_supernet_seed") or {}) for r in rows), default=1)
    for j, (key, label) in enumerate(
        [("kendall_tau", f"Kendall tau (mean over {n_seeds} supernet seed{'s' if n_seeds != 1 else ''}, range)"),
         ("tau_top", f"tau in top {top} (first supernet seed)"), ("stability_seeds", "stability (seeds)")]
    ):
        vals = [v if (v := r.get(key)) is not None else np.nan for r in rows]
        err = None
        if key == "kendall_tau":  # the bar is the mean; the whisker spans the supernet seeds
            err = np.array([[m - sp[0], sp[1] - m] if (sp := r.get("kendall_tau_spread")) and m == m else [0.0, 0.0]
                            for r, m in zip(rows, vals)]).T
        ax.bar(idx + (j - 1) * width, vals, width, label=label, yerr=err, capsize=3 if err is not None else 0)
    ceiling = next((r["noise_ceiling"] for r in rows if r.get("noise_ceiling") is not None), None)
    if ceiling is not None:
        ax.axhline(ceiling, color="k", linestyle="--", linewidth=1, label="noise ceiling (stand-alone seeds)")
    split = next((r["noise_ceiling_split"] for r in rows if r.get("noise_ceiling_split") is not None), None)
    if split is not None:
        ax.axhline(split, color="k", linestyle=":", linewidth=1, label="noise ceiling (mean of half the seeds)")
    ax.set_xticks(idx)
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel(f"rank agreement ({metric})")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not over them
    fig.tight_layout()
    path = out / "gap_rank_agreement.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(str(path))
    return files


def _check(cfg: DictConfig) -> None:
    """Refuse bad scalar config values; needs nothing but the config, so it can run before Hydra writes."""
    for key in ("n_archs", "standalone_seeds", "supernet_seeds", "standalone_chunk"):
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise GapConfigError(f"{key} must be a positive integer, got {v!r}")
    if cfg.n_archs < 3:
        raise GapConfigError(f"n_archs must be >= 3 to rank anything, got {cfg.n_archs}")
    top = cfg.get("top_fraction")
    if isinstance(top, bool) or not isinstance(top, (int, float)) or not 0 < float(top) <= 1:
        raise GapConfigError(f"top_fraction must lie in (0, 1], got {top!r}")
    if cfg.get("metric", "val_acc") not in METRICS:
        raise GapConfigError(f"metric must be one of {list(METRICS)}, got {cfg.get('metric')!r}")


def run_gap(cfg: DictConfig, output_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The body of ``nas-gap``: returns (and writes as ``gap.json``) the full result.

    Raises:
        GapConfigError: for a bad config value, before anything is trained.
    """
    from oracles.data import dataset_from_config
    from oracles.models import build_model
    from oracles.supernet import SupernetConfig

    _check(cfg)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        space = get_space(cfg.space.name, **(_plain(cfg.space.get("params")) or {}))
        data = dataset_from_config(_plain(cfg.dataset))
    except ValueError as exc:
        raise GapConfigError(str(exc)) from None
    settings_list = setting_configs(cfg, space)
    for name, options in settings_list:  # every setting is checked before anything trains
        try:
            SupernetConfig.from_mapping(options)
        except ValueError as exc:
            raise GapConfigError(f"settings {name!r}: {exc}") from None
    model_opts = model_options(cfg, space)
    rng = np.random.default_rng(int(cfg.seed))

    def size(a: Architecture) -> int:
        net = build_model(space, a, data.input_shape, data.num_classes, **model_opts)
        return sum(p.numel() for p in net.parameters())

    archs = stratified_sample(space, int(cfg.n_archs), size, rng)
    _log.info("nas-gap: %d architectures of %s on %s; %d setting(s): %s", len(archs), space.name,
              data.describe(), len(settings_list), [n for n, _ in settings_list])

    sa_path = Path(cfg.standalone_cache) if cfg.get("standalone_cache") else out / "standalone.jsonl"
    recipe = {k: v for k, v in (_plain(cfg.standalone) or {}).items() if k not in ("executor", "_target_", "seed")}
    recipe.pop("dataset", None)
    journal = StandaloneJournal(
        sa_path, {"space": [[d.name, list(map(str, d.options))] for d in space.decisions],
                  "data": data.fingerprint, "recipe": recipe},
    )
    t0 = time.monotonic()
    cache = Path(cfg.supernet_cache) if cfg.get("supernet_cache") else out
    if cfg.parallel:
        # Stand-alone jobs run in the executor's worker processes, driven from a thread,
        # while this process trains and scores the supernets.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(run_standalone, cfg, space, archs, journal)
            settings = evaluate_settings(cfg, space, archs, cache)
            t1 = time.monotonic()
            standalone = pending.result()
    else:
        settings = evaluate_settings(cfg, space, archs, cache)
        t1 = time.monotonic()
        standalone = run_standalone(cfg, space, archs, journal)
    t2 = time.monotonic()
    proxies = proxy_scores(cfg, space, archs)
    metric = str(cfg.get("metric", "val_acc"))
    truth, rows = build_report(standalone, settings, proxies, float(cfg.top_fraction), metric)
    acc_truth = truth if metric == "val_acc" else standalone_truth(standalone, "val_acc")
    accs = [float(np.mean(v)) for v in acc_truth.values()]
    result = {
        "space": space.name,
        "dataset": data.describe(),
        "n_archs": len(archs),
        "metric": metric,
        "standalone_seeds": int(cfg.standalone_seeds),
        "supernet_seeds": int(cfg.supernet_seeds),
        "archs": [a.string for a in archs],
        "standalone": {
            "journal": str(sa_path),
            "ok": len(truth),
            "mean_val_acc": {a: float(np.mean(v)) for a, v in acc_truth.items()},
            "per_seed": truth,
            "spread": [min(accs), max(accs)] if accs else None,
            "noise_ceiling": rows[0]["noise_ceiling"] if rows else None,
            "noise_ceiling_top": rows[0]["noise_ceiling_top"] if rows else None,
            "noise_ceiling_split": rows[0]["noise_ceiling_split"] if rows else None,
            "seconds": t2 - t0,
        },
        "settings": settings,
        "proxies": proxies,
        "table": rows,
        # The headline figure per supernet setting, and what it is (also in each table row).
        "kendall_tau_definition": (
            f"Kendall tau-b between one supernet seed's inherited {metric} and the stand-alone {metric}"
            f" (mean over {int(cfg.standalone_seeds)} stand-alone seeds), averaged over the"
            f" {int(cfg.supernet_seeds)} supernet seeds; table[*].kendall_tau_spread is its min and max over them"
        ),
        "kendall_tau_mean_over_supernet_seeds": {r["name"]: r["kendall_tau"] for r in rows if r["kind"] == "supernet"},
        "supernet_seconds": t1 - t0,
        "config": _plain(cfg),
    }
    result["plots"] = make_plots(out, truth, settings, [r for r in rows if r["kind"] == "supernet"], metric)
    tmp = out / "gap.json.tmp"
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(out / "gap.json")
    result["table_text"] = report_text(result, rows, float(cfg.top_fraction))
    return result


def report_text(result: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], top_fraction: float) -> str:
    """The table with the words that say what its numbers are, and the noise ceiling.

    Which supernet seeds the tau averages, and which columns come from the first seed
    alone, are printed next to the figures because tools reading the same ``gap.json``
    may define a setting's tau differently.
    """
    metric = str(result["metric"])
    ranked = "val_acc" if metric == "val_acc" else "val_loss (ranked lowest first)"
    supernet = [r for r in rows if r["kind"] == "supernet"]
    lines = [f"rank agreement on {ranked} against the stand-alone mean over {result['standalone_seeds']} seed(s)"]
    if supernet:
        first = supernet[0]["first_supernet_seed"]
        defs = sorted({str(r["kendall_tau_definition"]) for r in supernet})
        lines.append(f"tau: Kendall tau, {'; '.join(defs)} (tau range: min..max over those seeds);"
                     f" rho, top, top-k, pick and stab.e: supernet seed {first} only")
        best = max((r for r in supernet if r["kendall_tau"] is not None), key=lambda r: r["kendall_tau"], default=None)
        if best is not None:
            sp = best["kendall_tau_spread"]
            lines.append(f"best setting: {best['name']}, tau {_num(best['kendall_tau'])}"
                         f" ({best['kendall_tau_definition']}, range {_num(sp[0])}..{_num(sp[1])})")
    lines.append(format_table(rows))
    lines.append(format_ceiling(result["standalone"], top_fraction, int(result["standalone_seeds"])))
    return "\n".join(lines)


def summary_text(result: Mapping[str, Any], gap_json: str | os.PathLike[str]) -> str:
    """What ``nas-gap`` prints at the end: the headline, the table, and where every output went.

    Numbers are rounded by their scale (accuracies and taus to 3 decimals) because raw
    floats suggest a precision a few hundred validation images do not have.
    """
    sa = result["standalone"]
    spread = sa.get("spread")
    scale = accuracy_scale("val_acc", spread or ())
    acc = (f"stand-alone val acc (mean over {result['standalone_seeds']} seed(s)) spans"
           f" {_num(spread[0])} to {_num(spread[1])} ({scale}) over {sa['ok']} architecture(s)" if spread
           else "stand-alone val acc: no architecture trained successfully with every seed")
    lines = [
        f"optimization gap on {result['dataset']} ({result['n_archs']} architectures,"
        f" {result['standalone_seeds']} stand-alone seeds, {result['supernet_seeds']} supernet seeds)",
        acc,
        str(result["table_text"]),
        f"gap.json: {Path(gap_json).absolute()}",
        *(f"plot: {Path(p).absolute()}" for p in result.get("plots", [])),
        f"stand-alone journal: {Path(sa['journal']).absolute()}",
    ]
    return "\n".join(lines)


def _config_dir() -> str:
    from engine.cli import config_dir

    return config_dir()


class GapOutputGuard(OutputGuard):
    """Refuse a bad config before Hydra creates anything, and remember what Hydra is about to create.

    Hydra's ``on_run_start`` comes before the run directory, ``.hydra/`` and the log file
    exist, so the scalar checks of :func:`_check` refuse there and leave nothing behind;
    the snapshot taken by :class:`engine.cli.OutputGuard` lets a later refusal (a bad
    supernet setting, a dataset that does not load) undo only what this run created.
    Registered in ``conf/gap.yaml`` under ``hydra.callbacks``.
    """

    before: frozenset[str] | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check the config, then snapshot the run directory (and the names already in it)."""
        try:
            _check(config)
        except GapConfigError as exc:
            _refuse(exc)
        super().on_run_start(config, **kwargs)
        run_dir = Path(str(config.hydra.run.dir)).absolute()
        GapOutputGuard.before = frozenset(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else frozenset()


def _refuse(exc: BaseException) -> None:
    """One line on stderr and exit code 2: the form of every refusal of ``nas-gap``."""
    sys.stderr.write(f"nas-gap: error: {' '.join(str(exc).split())}\n")
    sys.stderr.flush()
    sys.exit(2)


def _wrote_nothing(run_dir: Path) -> bool:
    """True when this run added nothing to ``run_dir`` but Hydra's ``.hydra/`` and log file.

    Only then is a refused run undone: results a run wrote before failing (a journal,
    checkpoints) are kept, with the ``.hydra`` record and log that say where they came from.
    """
    before = GapOutputGuard.before
    if before is None or not run_dir.is_dir():
        return False
    return all(p.name in before or p.name == ".hydra" or p.suffix == ".log" for p in run_dir.iterdir())


def main() -> None:
    """Console entry point (a Hydra app over ``conf/gap.yaml``)."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(version_base=None, config_path=_config_dir(), config_name="gap")
    def _app(cfg: DictConfig) -> None:
        out = Path(HydraConfig.get().runtime.output_dir)
        try:
            result = run_gap(cfg, out)
        except ValueError as exc:  # GapConfigError, bad data, refused checkpoints
            if _wrote_nothing(out):  # refused before writing anything: undo what Hydra made for this run
                before = GapOutputGuard.before or frozenset()
                _undo_hydra_outputs()
                for log in out.glob("*.log"):  # also in a directory that existed: a refusal writes nothing
                    if log.name not in before:
                        log.unlink(missing_ok=True)
            OutputGuard.snapshot, GapOutputGuard.before = {}, None
            _refuse(exc)
        OutputGuard.snapshot, GapOutputGuard.before = {}, None
        sys.stdout.write(summary_text(result, out / "gap.json") + "\n")

    _app()


if __name__ == "__main__":
    # Run through the module ``oracles.gap_cli``, not ``__main__``, like engine.cli: Hydra
    # instantiates GapOutputGuard from ``oracles.gap_cli``, so both must be one module.
    from oracles.gap_cli import main as _main

    _main()
