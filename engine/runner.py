"""Build a search from a resolved config and run it: the body of ``nas-search``.

Kept apart from the Hydra entry point so tests and notebooks can call
:func:`run_search` with a config from Hydra's compose API.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from engine.calibration import run_calibration
from engine.calibration import summary_lines as calibration_lines
from engine.fidelity import EpochView, fidelity_epochs
from engine.gap import rung_gap
from engine.journal import Journal, JournalError, read_journal
from engine.scale import accuracy_scale
from engine.search import Budget, RetryPolicy, Search, SearchResult
from engine.spaces import SearchSpace, get_space, restrict
from engine.strategies import Strategy, create_strategy
from engine.types import DEFAULT_FIDELITY, Evaluation, Oracle

_log = logging.getLogger("engine")
# Close to the start of the process: the summary's whole-process time includes oracle preparation
# (supernet training), which the search's own wall clock does not.
_PROCESS_START = time.monotonic()

# Keys (dotted, with everything under them) that a resume may change: they decide when the search
# stops, where its results are shown or how transient faults are retried, never what an evaluation
# measures or what the strategy asks. Everything else (space, strategy and its options, seed,
# oracle, dataset, fidelities, batch size, executor threads) must match the journal's run.
_RESUME_FREE_KEYS = (
    "resume", "tracker", "progress", "budget", "retry", "output.summary", "executor.address", "cache",
    "calibration",  # trained after the search, from its results: changing it changes no search evaluation
)


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key."""


def _plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def build_space(cfg: DictConfig) -> SearchSpace:
    """The search space named by ``cfg.space`` (a registered name, plugins included)."""
    node = cfg.space.get("params")
    if node is None:
        node = OmegaConf.create({})
    if not isinstance(node, DictConfig):
        raise ConfigError(f"space.params must be a mapping of options, got {node!r}")
    try:
        params = OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as exc:
        name = cfg.space.name
        raise ConfigError(f"{exc.full_key} is required for space={name}: give it on the command line") from None
    if not isinstance(params, dict):
        raise ConfigError(f"space.params must be a mapping of options, got {params!r}")
    try:
        return get_space(cfg.space.name, **{str(k): v for k, v in params.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"space: {exc}") from None


def build_strategy(cfg: DictConfig, space: SearchSpace) -> Strategy:
    """The strategy named by ``cfg.strategy.name`` with the rest of ``cfg.strategy`` as options."""
    options = dict(_plain(cfg.strategy))
    name = options.pop("name", None)
    if not name:
        raise ConfigError("strategy.name is missing")
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if "max_epochs" in options:
        options["max_epochs"] = _max_epochs(cfg, options["max_epochs"])
    try:
        return create_strategy(name, space, seed=seed, **options)
    except (TypeError, ValueError) as exc:
        text = str(exc)
        raise ConfigError(text if text.startswith("strategy.") else f"strategy: {text}") from None


def _max_epochs(cfg: DictConfig, given: Any) -> Any:
    """A rung strategy's ``max_epochs``: the oracle's full training, which it must not contradict.

    The final rung is the ``default`` fidelity, the oracle's own training length, so
    ``strategy.max_epochs: null`` takes ``oracle.epochs``, and a different value is refused
    rather than searched with rungs that do not end where the oracle's training does.
    """
    epochs = cfg.oracle.get("epochs") if "oracle" in cfg else None
    if given is None:
        if not isinstance(epochs, int) or isinstance(epochs, bool):
            raise ConfigError(
                f"strategy.max_epochs is null and oracle {cfg.oracle.get('_target_')} has no epochs to take it from:"
                " use oracle=standalone, or a table with oracle.epochs and oracle.epoch_columns"
            )
        return epochs
    if isinstance(epochs, int) and given != epochs:
        raise ConfigError(
            f"strategy.max_epochs={given} differs from oracle.epochs={epochs}: the last rung is the oracle's full"
            " training (leave strategy.max_epochs null)"
        )
    return given


def build_oracle(
    node: DictConfig, space: SearchSpace, seed: int, key: str, output_dir: str | os.PathLike[str] | None = None
) -> Oracle:
    """Instantiate an oracle config (``_target_`` plus options) for ``space``.

    ``seed: null`` in the node is filled with the run's seed, and ``output_dir: null``
    with the run's output directory (where an oracle keeps files such as a supernet checkpoint).
    """
    from hydra.utils import instantiate  # imported late: Hydra is heavy and not needed by the library

    if "_target_" not in node:
        raise ConfigError(f"{key}._target_ is missing: name the oracle class to build")
    # Hydra instantiates nested ``_target_``s too (an oracle wrapping another), so
    # every one of them must name a class of this project or of an installed plugin.
    for where, target in _targets(node, key):
        if not target.startswith(("oracles.", "engine.")) and not _is_entry_point(target):
            raise ConfigError(
                f"{where}._target_={target!r} is not an oracle of this project or of an installed"
                " 'nas_engine.oracles' entry point"
            )
    kwargs: dict[str, Any] = {"space": space}
    if "seed" in node and node.seed is None:
        kwargs["seed"] = seed
    if "output_dir" in node and node.output_dir is None and output_dir is not None:
        kwargs["output_dir"] = str(output_dir)
    try:
        return instantiate(node, **kwargs, _convert_="all")
    except Exception as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(f"{key}: {cause}") from None


def _targets(node: Any, key: str) -> list[tuple[str, str]]:
    """Every ``(config key, _target_)`` inside ``node``, nested mappings and lists included."""
    found: list[tuple[str, str]] = []
    if isinstance(node, DictConfig | dict):
        for k, v in node.items():
            if k == "_target_":
                found.append((key, str(v)))
            else:
                found.extend(_targets(v, f"{key}.{k!s}"))
    elif isinstance(node, ListConfig | list | tuple):
        for i, v in enumerate(node):
            found.extend(_targets(v, f"{key}[{i}]"))
    return found


def _is_entry_point(target: str) -> bool:
    from importlib.metadata import entry_points

    return any(ep.value.replace(":", ".") == target for ep in entry_points(group="nas_engine.oracles"))


def build_oracles(
    cfg: DictConfig, space: SearchSpace, strategy: Strategy, output_dir: str | os.PathLike[str] | None = None
) -> dict[str, Oracle]:
    """Oracles for every fidelity the strategy asks: ``oracle`` is the default one.

    An ``epochs=<n>`` fidelity (a rung of successive halving, Hyperband or ASHA) is served by
    ``oracle`` itself, trained to ``n`` epochs (:class:`engine.fidelity.EpochView`), so that a
    promotion continues the training the lower rung started.
    """
    oracles: dict[str, Oracle] = {}
    rungs = [f for f in strategy.fidelities if fidelity_epochs(f) is not None]
    if rungs and DEFAULT_FIDELITY not in strategy.fidelities:
        raise ConfigError(f"strategy {strategy.name!r} asks epoch rungs {rungs} without the full training")
    for fid in sorted(strategy.fidelities, key=lambda f: f != DEFAULT_FIDELITY):
        epochs = fidelity_epochs(fid)
        if fid == DEFAULT_FIDELITY:
            oracles[fid] = build_oracle(cfg.oracle, space, int(cfg.seed), "oracle", output_dir)
        elif epochs is not None:
            base = oracles[DEFAULT_FIDELITY]
            if not _trains_to_epochs(base):
                raise ConfigError(
                    f"strategy {strategy.name!r} asks fidelity {fid!r}, but oracle {cfg.oracle.get('_target_')} cannot"
                    " evaluate after fewer epochs: use oracle=standalone, or a table with oracle.epochs and"
                    " oracle.epoch_columns"
                )
            try:
                oracles[fid] = EpochView(base, epochs)  # type: ignore[arg-type]
            except ValueError as exc:
                raise ConfigError(f"fidelity {fid!r}: {exc} (oracle.epochs)") from None
        elif fid in cfg.get("fidelities", {}):
            # each extra fidelity keeps its files in a sub-directory named after it
            sub = Path(output_dir) / fid if output_dir is not None else None
            oracles[fid] = build_oracle(cfg.fidelities[fid], space, int(cfg.seed), f"fidelities.{fid}", sub)
        else:
            raise ConfigError(f"strategy {strategy.name!r} needs an oracle for fidelity {fid!r}: set fidelities.{fid}")
    return oracles


def fidelity_key(fidelity: str) -> str:
    """The config key of the oracle that serves ``fidelity``: ``oracle`` for the default one and its
    epoch rungs, ``fidelities.<name>`` for the others."""
    if fidelity == DEFAULT_FIDELITY or fidelity_epochs(fidelity) is not None:
        return "oracle"
    return f"fidelities.{fidelity}"


def _trains_to_epochs(oracle: Any) -> bool:
    """Whether ``oracle`` can evaluate after fewer epochs than its full training."""
    epochs = getattr(oracle, "epochs", None)
    return callable(getattr(oracle, "evaluate_epochs", None)) and isinstance(epochs, int) and epochs > 1


def restrict_to_oracles(space: SearchSpace, oracles: dict[str, Oracle], budget: Budget) -> SearchSpace:
    """The part of ``space`` that every oracle can measure (``space`` itself when they all cover it).

    A table that holds 300 of 15,625 cells would otherwise fail every other proposal
    as "not in table"; searching only what it holds keeps the budget for real results.
    """
    searched = space
    for fid, oracle in oracles.items():
        covers = getattr(oracle, "covers", None)
        if not callable(covers):
            continue
        held = [a for a in covers() if searched.contains(a)]
        key = fidelity_key(fid)
        if not held:
            raise ConfigError(f"{key} cannot measure any architecture of space {space.name}")
        before = searched.size
        searched = restrict(searched, held)
        if searched.size < before:
            _log.warning(
                "%s can measure %d of the %d architectures of space %s: the search is restricted to those",
                key, searched.size, space.size, space.name,
            )
    if searched is not space and budget.evaluations is not None and budget.evaluations > searched.size:
        _log.warning(
            "budget.evaluations=%d is more than the %d architectures searched: the search ends when every one"
            " is measured", budget.evaluations, searched.size,
        )
    return searched


def build_budget(cfg: DictConfig) -> Budget:
    """The budget from ``cfg.budget``."""
    b = _plain(cfg.budget)
    if not isinstance(b, dict):
        raise ConfigError(f"budget must be a mapping of limits, got {b!r}")
    known = [f.name for f in dataclasses.fields(Budget)]
    unknown = sorted(str(k) for k in b if k not in known)
    if unknown:
        keys = ", ".join("budget." + k for k in unknown)
        raise ConfigError(f"unknown budget key(s) {keys}; known: {', '.join(known)}")
    try:
        return Budget(**b)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build_retry(cfg: DictConfig) -> RetryPolicy:
    """The retry policy from ``cfg.retry`` (no retries when the key is absent)."""
    node = cfg.get("retry")
    if node is None:
        return RetryPolicy()
    r = _plain(node)
    if not isinstance(r, dict):
        raise ConfigError(f"retry must be a mapping with attempts and errors, got {r!r}")
    try:
        return RetryPolicy(**r)
    except TypeError as exc:
        raise ConfigError(f"retry: {exc}") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def output_path(out: Path, cfg: DictConfig, key: str) -> Path:
    """``out / cfg.output.<key>``, refused when it could leave the output directory.

    Output file names come from the config, which may come from anyone's command
    line; an absolute name or a ``..`` would write outside the run's directory.

    Raises:
        ConfigError: for an empty, absolute or ``..``-containing name.
    """
    name = cfg.output.get(key)
    text = "" if name is None else str(name)
    rel = Path(text)
    if not text.strip() or rel.is_absolute() or ".." in rel.parts or text.endswith(("/", os.sep)):
        raise ConfigError(
            f"output.{key}={text!r} must be a file name relative to the output directory (no '..', not absolute)"
        )
    return out / rel


# Oracle options that say where or how a result is computed, never what it is: left out of the store's key.
_NOT_IN_KEY = ("output_dir", "executor")


def check_cache_options(cfg: DictConfig) -> tuple[bool, float]:
    """``cache.seed_in_key`` and ``cache.lease_seconds``, type-checked.

    Raises:
        ConfigError: naming the key.
    """
    node = cfg.get("cache") or {}
    unknown = sorted(str(k) for k in node if k not in ("path", "seed_in_key", "lease_seconds"))
    if unknown:
        raise ConfigError(f"unknown cache key(s) {', '.join('cache.' + k for k in unknown)};"
                          " known: path, seed_in_key, lease_seconds")
    seed_in_key = node.get("seed_in_key", False)
    if not isinstance(seed_in_key, bool):
        raise ConfigError(f"cache.seed_in_key must be true or false, got {seed_in_key!r}")
    lease = node.get("lease_seconds", 60)
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease > 0:
        raise ConfigError(f"cache.lease_seconds must be a positive number, got {lease!r}")
    path = node.get("path")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise ConfigError(f"cache.path must be a file path or null, got {path!r}")
    return seed_in_key, float(lease)


def open_store(cfg: DictConfig, oracles: dict[str, Oracle]) -> tuple[Any, dict[str, Oracle]]:
    """Wrap each oracle in the shared evaluation store of ``cfg.cache`` (no store: ``(None, oracles)``).

    The key of a stored result is the architecture, the fidelity and a fingerprint of the space and
    of the fidelity's resolved oracle config (its dataset and recipe included), so jobs share a
    result only when it would be the same result. An oracle that takes the run's seed is left out
    unless ``cache.seed_in_key`` puts the seed in the key.

    Raises:
        ConfigError: for a bad ``cache`` value or a store file that cannot be used.
    """
    seed_in_key, lease = check_cache_options(cfg)
    node = cfg.get("cache")
    if node is None or node.get("path") is None:
        return None, oracles
    from engine.store import EvaluationStore, StoredOracle, StoreError, fingerprint

    try:
        store = EvaluationStore(str(node.path), lease_seconds=float(lease))
    except (StoreError, OSError) as exc:
        raise ConfigError(f"cache.path: {exc}") from None
    wrapped: dict[str, Oracle] = {}
    for fid, oracle in oracles.items():
        key = fidelity_key(fid)
        conf = _plain(cfg.oracle if key == "oracle" else cfg.fidelities[fid])
        seeded = isinstance(conf, dict) and "seed" in conf and conf["seed"] is None
        if seeded and not seed_in_key:
            _log.warning(
                "cache: %s takes the run's seed (%s.seed is null), so its results are not shared; set %s.seed to a"
                " number to share them across seeds, or cache.seed_in_key=true to share them between jobs of the"
                " same seed", key, key, key,
            )
            wrapped[fid] = oracle
            continue
        ident = {k: v for k, v in dict(conf).items() if k not in _NOT_IN_KEY}
        fp = fingerprint({"space": _plain(cfg.space), "oracle": ident, "seed": int(cfg.seed) if seeded else None})
        wrapped[fid] = StoredOracle(oracle, store, fp, fid)
    return store, wrapped


def _store_report(store: Any, oracles: dict[str, Oracle]) -> dict[str, Any]:
    """What the store did for this process, for ``summary.json``."""
    from engine.store import StoredOracle

    shared = {f: o for f, o in oracles.items() if isinstance(o, StoredOracle)}
    return {
        "path": str(store.path),
        "fidelities": sorted(shared),
        "hits": sum(o.hits for o in shared.values()),
        "evaluated": sum(o.evaluated for o in shared.values()),
        "waited": sum(o.waited for o in shared.values()),
    }


def prepare_oracles(oracles: dict[str, Oracle]) -> None:
    """Run each oracle's optional ``prepare()`` (train or load a supernet) before the search starts.

    A setup failure (an unreadable or mismatched checkpoint) then stops the run
    with its message, instead of failing every evaluation one by one and leaving
    those failures in the journal, where a resume would keep them.

    Raises:
        ConfigError: naming the oracle's config key and the problem.
    """
    for fid, oracle in oracles.items():
        prepare = getattr(oracle, "prepare", None)
        if callable(prepare):
            try:
                prepare()
            except (ValueError, OSError, FloatingPointError) as exc:  # FloatingPointError: a diverged supernet
                key = fidelity_key(fid)
                text = " ".join(str(exc).split())  # one line, even when torch's message has many
                raise ConfigError(f"{key}: {text}") from None


def _identity(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as the journal keeps it (Hydra's own node left out)."""
    return {k: v for k, v in _plain(cfg).items() if k != "hydra"}


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict) or (not node and prefix):
        return {prefix: node}
    out: dict[str, Any] = {}
    for k, v in node.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def resume_differences(
    stored: Mapping[str, Any], current: Mapping[str, Any], overrides: Sequence[str] = ()
) -> list[str]:
    """The keys that forbid resuming a journal written under ``stored`` with the config ``current``.

    A key free to change on resume (budget, presentation: ``_RESUME_FREE_KEYS``) never counts. A
    key that the journal's config lacks (a release added it after the run started) counts as
    unchanged unless the user set it in ``overrides``: it then has the default the new release
    gives it, which is what the earlier release did without a key. A key the journal has and the
    config lacks (removed by a release) decides nothing any more and is ignored too.

    Args:
        stored: The config kept in the journal.
        current: The config of this run.
        overrides: The command-line overrides (``key=value``, ``+key=value``, ``group=option``).

    Returns:
        The differing keys, dotted and sorted; empty when the resume may go on.
    """
    set_by_user = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    old, new = _flatten(dict(stored)), _flatten(dict(current))
    changed = []
    for key in sorted(set(old) | set(new)):
        if _under(key, _RESUME_FREE_KEYS) or key not in new:
            continue
        if key not in old:
            if any(_under(key, [k]) or _under(k, [key]) for k in set_by_user):
                changed.append(key)
        elif old[key] != new[key]:
            changed.append(key)
    return changed


def _warm_paths(cfg: DictConfig) -> list[str]:
    """``cfg.warm_start`` as a list of paths (one path may be given alone)."""
    node = cfg.get("warm_start")
    if node is None:
        return []
    if isinstance(node, str):
        return [node]
    if not isinstance(node, ListConfig) or any(not isinstance(p, str) for p in node):
        raise ConfigError(f"warm_start must be a run directory, a journal or a list of them, got {node!r}")
    return [str(p) for p in node]


def load_warm_start(cfg: DictConfig, strategy: Strategy) -> tuple[list[Evaluation], list[dict[str, Any]]]:
    """The evaluations named by ``cfg.warm_start`` that this run's strategy can use, and their origin.

    A source counts only if it measured what this run measures: the same space, and the same
    oracle config for every fidelity both ask (``oracle`` for the default one, ``fidelities.<name>``
    for the others). Other differences (strategy, seed, budget) are what a warm start is for. Rows
    at fidelities this strategy does not ask and cache hits are left out; an architecture measured
    twice counts once (the first result).

    Raises:
        ConfigError: for a missing or unreadable source, or one that measured something else.
    """
    paths = _warm_paths(cfg)
    identity = _identity(cfg)
    new = _flatten(identity)
    keys = ["space", *dict.fromkeys(fidelity_key(f) for f in strategy.fidelities)]
    evaluations: list[Evaluation] = []
    origin: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for text in paths:
        path = Path(text)
        if path.is_dir():
            path = path / str(cfg.output.journal)
        try:
            meta, rows = read_journal(path)
        except JournalError as exc:
            raise ConfigError(f"warm_start: {exc}") from None
        stored = meta.get("config")
        if not isinstance(stored, dict):
            raise ConfigError(f"warm_start: {path} has no run config, so what it measured cannot be checked")
        old = _flatten(stored)
        differ = sorted(k for k in set(old) | set(new) if _under(k, keys) and old.get(k) != new.get(k))
        if differ:
            shown = ", ".join(f"{k} ({old.get(k, 'absent')!r} -> {new.get(k, 'absent')!r})" for k in differ[:4])
            raise ConfigError(f"warm_start: {path} measured something else: {shown}")
        if stored.get("seed") != identity.get("seed") and any(k.endswith(".seed") and new[k] is None for k in new
                                                               if _under(k, keys)):
            _log.warning("warm_start: %s ran with seed %s and this run with seed %s; its evaluations are used as"
                         " measured under its seed", path, stored.get("seed"), identity.get("seed"))
        used = 0
        for ev in rows:
            if ev.fidelity in strategy.fidelities and ev.status.value != "skipped" and ev.query not in seen:
                seen.add(ev.query)
                evaluations.append(ev)
                used += 1
        origin.append({"path": str(path.resolve()), "evaluations": used, "rows": len(rows)})
        _log.info("warm_start: %d evaluations from %s (%d rows)", used, path, len(rows))
    return evaluations, origin


def _log_extension(old: Mapping[str, Any], new: Mapping[str, Any], strategy: Strategy) -> None:
    """Say which budget a resume changed, and when the result will differ from one uninterrupted run."""
    changes = [f"budget.{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
               if old.get(k) != new.get(k)]
    if not changes:
        return
    _log.info("resuming with a changed budget: %s", ", ".join(changes))
    if strategy.plans_with_budget:
        _log.warning(
            "strategy %s plans with its budget: continued under a changed budget, it will not ask what one"
            " uninterrupted run with the new budget would have asked", strategy.name,
        )


def evaluation_record(ev: Evaluation) -> dict[str, Any]:
    """A JSON-ready record of an evaluation, report-only metrics included."""
    return {
        "arch": ev.arch.string,
        "fidelity": ev.fidelity,
        "objective": ev.objective,
        "metrics": {**dict(ev.metrics), **dict(ev.reported)},
        "cost": ev.cost,
        "status": ev.status.value,
        **({"error": ev.error} if ev.error else {}),
    }


def uses_dataset(cfg: DictConfig) -> bool:
    """Whether any oracle of the run reads the ``dataset`` group (a table does not)."""
    nodes = [cfg.get("oracle"), *dict(cfg.get("fidelities") or {}).values()]
    return any(OmegaConf.is_config(n) and "dataset" in n for n in nodes)


def describe_oracle(cfg: DictConfig) -> dict[str, Any]:
    """What measured the run: the oracle's class, and its table or dataset (for ``summary.json``)."""
    node = cfg.get("oracle")
    target = str(node.get("_target_", "")) if OmegaConf.is_config(node) else ""
    out: dict[str, Any] = {"oracle": target.rsplit(".", 1)[-1] or None}
    if OmegaConf.is_config(node) and "table" in node:
        out["table"] = str(node.table) if node.table is not None else "shipped NAS-Bench-201 CIFAR-10 table"
    out["dataset"] = str(cfg.dataset.name) if uses_dataset(cfg) and "dataset" in cfg else None
    return out


def _workers(cfg: DictConfig, result: SearchResult) -> dict[str, Any]:
    """How many evaluations ran at once and, where the loop can tell, how busy their workers were."""
    batch, asynchronous = int(cfg.get("batch_size", 1)), bool(cfg.get("asynchronous", False))
    # Share of batch_size x wall time that oracle calls ran: 1.0 is every worker busy all the time. Rounds
    # of several evaluations cannot tell how long each ran inside an oracle's call, so say nothing there.
    known = (asynchronous or batch == 1) and result.wall_seconds > 0
    return {"batch_size": batch, "asynchronous": asynchronous,
            "busy": round(result.busy_seconds / (batch * result.wall_seconds), 3) if known else None}


def summarize(
    cfg: DictConfig, result: SearchResult, journal_path: Path | None, strategy: Strategy | None = None
) -> dict[str, Any]:
    """The content of ``summary.json``; a strategy's :meth:`Strategy.report` goes under its name."""
    summary = {
        "strategy": cfg.strategy.name,
        "space": cfg.space.name,
        **describe_oracle(cfg),
        "seed": int(cfg.seed),
        "evaluations": result.evaluations,
        "per_fidelity": result.per_fidelity,
        "failures": result.failures,
        "failures_by_error": _failure_kinds(result),
        "retries": result.retries,
        "workers": _workers(cfg, result),
        "stop_reason": result.stop_reason,
        "oracle_seconds": result.oracle_seconds,
        "wall_seconds": result.wall_seconds,
        "process_seconds": time.monotonic() - _PROCESS_START,
        "best": evaluation_record(result.best) if result.best is not None else None,
        "journal": str(journal_path) if journal_path is not None else None,
    }
    if result.warm_started:
        warm = result.history[: result.warm_started]
        summary["warm_start"] = {
            "evaluations": result.warm_started,
            "best_is_warm_start": any(result.best is e for e in warm),
            "sources": [str(p) for p in _warm_paths(cfg)],
        }
    if strategy is not None and any(fidelity_epochs(f) is not None for f in strategy.fidelities):
        # The epoch gap: how well each shorter training ranks what the full one ranks.
        summary["epoch_gap"] = rung_gap(result.history[result.warm_started:])
    report = strategy.report() if strategy is not None else {}
    if report:
        summary[str(cfg.strategy.name)] = report
    constraint = report.get("constraint") if isinstance(report, dict) else None
    if constraint:
        # A constrained search's answer is the best architecture that meets the constraint, not the best overall.
        feasible = report.get("best_feasible") or {}
        match = [e for e in result.history if e.ok and e.arch.string == feasible.get("arch")]
        summary["constraint"] = constraint
        summary["best_unconstrained"] = summary["best"]
        summary["best"] = evaluation_record(max(match, key=lambda e: e.objective or 0.0)) if match else None
    return summary


def _failure_kinds(result: SearchResult) -> dict[str, int]:
    """Failed oracle evaluations counted by the error's first word (its exception type)."""
    kinds: dict[str, int] = {}
    for ev in result.history:
        if ev.status.value == "failed" and not ev.cached:
            head = (ev.error or "unknown").split(":", 1)[0].strip() or "unknown"
            kinds[head] = kinds.get(head, 0) + 1
    return dict(sorted(kinds.items()))


def _objective_note(best: dict[str, Any]) -> str:
    """``  (val_acc, in %)``: which metric the objective is and, for an accuracy, its scale.

    The shipped table gives accuracies in %, the torch oracles as fractions; a user
    comparing the two must not have to guess.
    """
    names = [k for k, v in best.get("metrics", {}).items() if isinstance(v, float) and v == best["objective"]]
    if not names:
        return ""
    name = names[0]
    scale = accuracy_scale(name, [v for k, v in best["metrics"].items() if "acc" in k and isinstance(v, float)])
    return f"  ({name}, {scale})" if scale else f"  ({name})"


def format_summary(summary: dict[str, Any]) -> str:
    """A one-screen human summary."""
    measured = [f"oracle {summary['oracle']}"] if summary.get("oracle") else []
    if summary.get("table"):
        measured.append(f"table {summary['table']}")
    if summary.get("dataset"):
        measured.append(f"dataset {summary['dataset']}")
    lines = [
        f"strategy {summary['strategy']} on space {summary['space']} (seed {summary['seed']})",
        *([f"  measured by  {', '.join(measured)}"] if measured else []),
        f"  evaluations  {summary['evaluations']}  (failed {summary['failures']}; stopped: {summary['stop_reason']})",
        f"  time         {summary['wall_seconds']:.1f} s search wall, {summary['oracle_seconds']:.1f} s oracle"
        + (f"; {summary['process_seconds']:.1f} s this process (oracle preparation such as supernet training included)"
           if "process_seconds" in summary else ""),
    ]
    best = summary.get("best")
    constraint = summary.get("constraint")
    if constraint:
        names = constraint["metric"] if isinstance(constraint.get("metric"), list) else [constraint.get("metric")]
        present = [n for n in names if best is not None and n in best["metrics"]]
        metric = present[0] if present else " or ".join(map(str, names))
        met = "the best below meets it" if best is not None else "no evaluated architecture meets it"
        lines.append(f"  constraint   {metric} <= {constraint['max']} ({met})")
    if best is None and constraint and summary.get("best_unconstrained"):
        lines.append(f"  best         none within the constraint; best overall {summary['best_unconstrained']['arch']}")
    elif best is None:
        lines.append("  best         none (no successful evaluation)")
    else:
        lines.append(f"  best         {best['arch']}")
        lines.append(f"  objective    {best['objective']:.4f}{_objective_note(best)}")
        for k, v in sorted(best["metrics"].items()):
            lines.append(f"    {k:<22} {v:.4f}" if isinstance(v, float) else f"    {k:<22} {v}")
    cache = summary.get("cache")
    if cache and not cache.get("fidelities"):
        lines.append(f"  cache        {cache['path']} not used: no oracle of this run gives results it may share")
    elif cache:
        lines.append(f"  cache        {cache['hits']} results taken from {cache['path']},"
                     f" {cache['evaluated']} evaluated here ({cache['waited']} waited for another job)")
    if summary.get("calibration"):
        lines.extend(calibration_lines(summary["calibration"]))
    for fid, g in (summary.get("epoch_gap") or {}).items():
        if g["kendall_tau"] is None:
            why = "too few for a rank correlation" if g["architectures"] < 3 else "one of the scores is constant there"
            lines.append(f"  epoch gap    {fid} vs full training: {g['architectures']} architectures at both, {why}")
        else:
            lines.append(f"  epoch gap    {fid} vs full training: Kendall tau {g['kendall_tau']:.2f}, top-{g['top_k']}"
                         f" overlap {g['top_k_overlap']:.2f} ({g['architectures']} architectures at both)")
    warm = summary.get("warm_start")
    if warm:
        lines.append(f"  warm start   {warm['evaluations']} evaluations of earlier runs told first (not in the count"
                     " above)" + ("; the best is one of them" if warm.get("best_is_warm_start") else ""))
    if summary.get("journal"):
        lines.append(f"  journal      {summary['journal']}")
    return "\n".join(lines)


def run_search(
    cfg: DictConfig, output_dir: str | os.PathLike[str], callbacks: Sequence[Any] = (), dataset_chosen: bool = False,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Build everything from ``cfg``, run (or resume) the search, write ``summary.json``.

    Args:
        cfg: The resolved config (see ``conf/config.yaml``).
        output_dir: Where the journal and the summary go.
        callbacks: Extra search callbacks (trackers add theirs from ``cfg.tracker``).
        dataset_chosen: The user set ``dataset`` (the CLI knows from the overrides): warn when no
            oracle reads it.
        overrides: The command-line overrides: on resume, a key the journal's config lacks counts as
            changed only when the user set it here (see :func:`resume_differences`).

    Returns:
        The summary dictionary.

    Raises:
        ConfigError: for a bad config value (nothing is written then).
        engine.journal.JournalError: when the journal is in use or unreadable.
    """
    from engine.tracking import open_tracking  # late: keeps W&B and tqdm out of library imports

    try:
        session = open_tracking(cfg, output_dir, job_type="search")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    # The session finishes the W&B run (failed, exit code 1) when the search raises.
    with session:
        summary = _run_search(cfg, output_dir, [*callbacks, *session.callbacks], dataset_chosen, overrides)
        session.log_outputs(summary)
    return summary


def check_run_options(cfg: DictConfig) -> None:
    """Type-check the top-level run options, naming the key and the expected type.

    Raises:
        ConfigError: for the first bad value.
    """
    for key in cfg:
        node = cfg._get_node(key)
        if key == "hydra" or not OmegaConf.is_config(node):
            if OmegaConf.is_missing(cfg, key):
                raise ConfigError(f"{key!s} is required (it has no default): give it on the command line")
            continue
        try:
            OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
        except MissingMandatoryValue as exc:
            raise ConfigError(f"{exc.full_key} is required (it has no default): give it on the command line") from None
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    resume = cfg.get("resume", False)
    if not isinstance(resume, bool) and resume != "auto":
        raise ConfigError(f"resume must be true, false or auto, got {resume!r}")
    batch_size = cfg.get("batch_size", 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(cfg.get("asynchronous", False), bool):
        raise ConfigError(f"asynchronous must be true or false, got {cfg.get('asynchronous')!r}")


def validate_config(cfg: DictConfig) -> None:
    """Everything about ``cfg`` that can be checked without building an oracle or writing a file.

    A ``-m`` sweep checks every job with this before the first one starts, so a bad value in
    the last job does not stop the sweep halfway and leave the first jobs' directories.

    Raises:
        ConfigError: naming the key.
    """
    check_run_options(cfg)
    space = build_space(cfg)
    build_strategy(cfg, space)
    build_budget(cfg)
    build_retry(cfg)
    check_cache_options(cfg)
    check_calibration(cfg)
    for text in _warm_paths(cfg):
        if not Path(text).exists():
            raise ConfigError(f"warm_start: there is no run directory or journal at {text}")
    out = Path(".")
    output_path(out, cfg, "journal")
    output_path(out, cfg, "summary")


def check_calibration(cfg: DictConfig) -> None:
    """``calibration.*`` values, checked before anything runs.

    Raises:
        ConfigError: naming the key.
    """
    node = cfg.get("calibration")
    if node is None:
        return
    for key, low in (("size", 0), ("top", 1), ("bootstrap", 100)):
        v = node.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"calibration.{key} must be an integer >= {low}, got {v!r}")
    if node.size and node.top > node.size:
        raise ConfigError(f"calibration.top={node.top} is more than calibration.size={node.size}")
    if node.size and not OmegaConf.is_config(node.get("oracle")):
        raise ConfigError("calibration.oracle must be an oracle config (_target_ and options)")


def _calibrate(
    cfg: DictConfig, space: SearchSpace, strategy: Strategy, result: SearchResult, out: Path, budget: Budget,
    overrides: Sequence[str],
) -> dict[str, Any] | None:
    """Calibrate a supernet search stand-alone (:mod:`engine.calibration`); ``None`` when it does not apply."""
    node = cfg.get("calibration")
    supernet = describe_oracle(cfg)["oracle"] == "SupernetOracle" and DEFAULT_FIDELITY in strategy.fidelities
    if node is None or not supernet:
        if node is not None and any(o.lstrip("+~").startswith("calibration") for o in overrides):
            _log.warning("calibration.* has no effect: only a search with oracle=supernet is calibrated")
        return None
    if int(node.size) == 0:
        return None
    left = None if budget.oracle_seconds is None else max(0.0, budget.oracle_seconds - result.oracle_seconds)
    _log.info("calibration: training %d architectures stand-alone to judge the supernet's ranking", node.size)
    return run_calibration(
        result.history, lambda: build_oracle(node.oracle, space, int(cfg.seed), "calibration.oracle", out),
        out / "calibration.jsonl", int(node.size), int(node.top), left, int(cfg.seed), int(node.bootstrap),
    )


def _warn_serial(oracles: Mapping[str, Any], batch_size: int) -> None:
    """Say when ``asynchronous=true`` cannot overlap anything, rather than ignore it silently."""
    if batch_size == 1:
        _log.warning("asynchronous=true has no effect with batch_size=1: one evaluation runs at a time either way;"
                     " set batch_size to the number of workers")
        return
    serial = sorted(f for f, o in oracles.items() if not getattr(o, "concurrent", False))
    if serial:
        _log.warning(
            "asynchronous=true: the oracle of fidelity %s runs one evaluation at a time (not thread-safe, or"
            " executor=local trains in this process); use executor=process or executor=ray for %d at once",
            ", ".join(serial), batch_size,
        )


def _run_search(
    cfg: DictConfig, output_dir: str | os.PathLike[str], callbacks: Sequence[Any], dataset_chosen: bool = False,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    out = Path(output_dir)
    check_run_options(cfg)
    check_calibration(cfg)
    space = build_space(cfg)
    strategy = build_strategy(cfg, space)
    budget = build_budget(cfg)
    batch_size = int(cfg.get("batch_size", 1))
    retry = build_retry(cfg)
    journal_path = output_path(out, cfg, "journal")
    summary_path = output_path(out, cfg, "summary")
    oracles = build_oracles(cfg, space, strategy, out)
    searched = restrict_to_oracles(space, oracles, budget)
    if searched is not space:
        strategy = build_strategy(cfg, searched)
    if not uses_dataset(cfg) and dataset_chosen:
        _log.warning(
            "dataset=%s has no effect: oracle %s reads its results from a table; choose oracle=supernet, standalone"
            " or proxy to search on that dataset", cfg.dataset.get("name"), describe_oracle(cfg)["oracle"],
        )

    exists = journal_path.exists()
    if cfg.resume == "auto":  # a requeued job: continue what is there, or start
        pass
    elif exists and not cfg.resume:
        raise ConfigError(
            f"{journal_path} already exists: pass resume=true to continue it, or choose another hydra.run.dir"
        )
    elif cfg.resume and not exists:
        raise ConfigError(
            f"resume=true but there is no journal at {journal_path}: give the run's directory as hydra.run.dir"
            " (resume=false starts a new search)"
        )
    parent_existed = journal_path.parent.exists()
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    journal = Journal(journal_path)
    discard = False
    store: Any = None
    store_report: dict[str, Any] | None = None
    try:
        stored = journal.get_meta("config")
        if stored is not None and stored.get("warm_start") and not _warm_paths(cfg):
            # A resumed search has its warm start in its journal already: it need not be named again.
            cfg.warm_start = stored["warm_start"]
        identity = _identity(cfg)
        if stored is not None:
            changed = resume_differences(stored, identity, overrides)
            if changed:
                old, new = _flatten(stored), _flatten(identity)
                shown = ", ".join(f"{k} ({old.get(k, 'absent')!r} -> {new.get(k)!r})" for k in changed)
                raise ConfigError(
                    f"cannot resume {journal_path}: the config differs in {shown}; these decide what the search"
                    " measures (only budget, retry, tracker, progress, output.summary and cache may change)"
                )
            _log_extension(stored.get("budget") or {}, identity.get("budget") or {}, strategy)
        if stored is None:
            journal.set_meta("config", identity)
        warm, origin = load_warm_start(cfg, strategy) if stored is None else ([], [])
        store, oracles = open_store(cfg, oracles)
        prepare_oracles(oracles)
        asynchronous = bool(cfg.get("asynchronous", False))
        if asynchronous:
            _warn_serial(oracles, batch_size)
        search = Search(
            strategy, oracles, budget, journal=journal, batch_size=batch_size, callbacks=callbacks, retry=retry,
            warm_start=warm, warm_origin=origin, asynchronous=asynchronous,
        )
        result = search.run()
        if stored is not None and stored != identity:
            # The latest budget, for the next resume and nas-report; written once the journal was read
            # whole, so a journal that cannot be resumed is left exactly as it was.
            journal.set_meta("config", identity)
        store_report = _store_report(store, oracles) if store is not None else None
    except ConfigError:
        discard = not exists and len(journal) == 0  # refused before anything was evaluated: leave no trace
        raise
    finally:
        journal.close()
        if store is not None:
            store.close()
        if discard:
            for leftover in (journal_path, *(Path(f"{journal_path}{s}") for s in ("-wal", "-shm"))):
                leftover.unlink(missing_ok=True)
            if not parent_existed and not any(journal_path.parent.iterdir()):
                journal_path.parent.rmdir()
    calibration = _calibrate(cfg, searched, strategy, result, out, budget, overrides)
    summary = summarize(cfg, result, journal_path, strategy)
    if calibration is not None:
        summary["calibration"] = calibration
    if store_report is not None:
        summary["cache"] = store_report
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = summary_path.with_name(summary_path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(summary_path)
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    """Print the human summary to stdout."""
    sys.stdout.write(format_summary(summary) + "\n")
