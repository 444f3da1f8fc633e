"""``nas-export RUN_DIR``: the best architecture of a search as a network you keep.

Usage::

    nas-export RUN_DIR                          # inherited weights for a supernet run, else retrained
    nas-export RUN_DIR weights=inherited finetune_epochs=2
    nas-export RUN_DIR weights=retrain epochs=20 out=my_model
    nas-export RUN_DIR arch='depth=3,width=32,act=gelu' weights=retrain   # any one architecture

The network is exactly the one that was scored: the same space, network options
(width, cells) and data as the run's oracle. ``weights=inherited`` extracts it from
the run's trained supernet (``supernet.pt``), with its BatchNorm statistics
recalibrated as the search's evaluation did, optionally fine-tuned;
``weights=retrain`` trains it from scratch with the stand-alone recipe (the run's,
or the defaults of ``conf/oracle/standalone.yaml``). Validation and test accuracy
are measured on the exported module after reloading it from disk. The export goes
to ``RUN_DIR/export`` (``out=`` elsewhere) and is read back with
:func:`oracles.export.load_exported`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

_log = logging.getLogger("nas_export")

OPTIONS: dict[str, str] = {
    "weights": "inherited (from the run's supernet) or retrain (from scratch); default: inherited for supernet runs",
    "finetune_epochs": "epochs of fine-tuning after extraction (weights=inherited only; default 0)",
    "epochs": "training epochs for weights=retrain (default: the run's stand-alone recipe, else 10)",
    "arch": "architecture string to export instead of the run's best",
    "out": "export directory (default RUN_DIR/export); must not exist or be empty unless overwrite=true",
    "overwrite": "replace an existing export at out (default false)",
    "seed": "seed of retraining / fine-tuning (default: the run's seed)",
    "device": "auto, cpu or cuda (default auto)",
}


class ExportError(ValueError):
    """A refused export; the message names the problem."""


def _parse(argv: Sequence[str]) -> tuple[Path, dict[str, str]]:
    if not argv or argv[0] in ("-h", "--help"):
        lines = [__doc__.strip().split("\n\n")[1] if __doc__ else "", "options (key=value):"]
        lines += [f"  {k:<16} {v}" for k, v in OPTIONS.items()]
        sys.stdout.write("\n".join(lines) + "\n")
        raise SystemExit(0 if argv else 2)
    run_dir, options = Path(argv[0]), {}
    for item in argv[1:]:
        key, sep, value = item.partition("=")
        if not sep or key not in OPTIONS:
            raise ExportError(f"unknown option {item!r}; options are key=value with key in {sorted(OPTIONS)}")
        if key in options:
            raise ExportError(f"option {key!r} given twice")
        options[key] = value
    return run_dir, options


def _int(options: dict[str, str], key: str, default: int | None, minimum: int) -> int | None:
    if key not in options:
        return default
    try:
        value = int(options[key])
    except ValueError:
        raise ExportError(f"{key} must be an integer >= {minimum}, got {options[key]!r}") from None
    if value < minimum:
        raise ExportError(f"{key} must be an integer >= {minimum}, got {value}")
    return value


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _run_config(run_dir: Path) -> DictConfig:
    path = run_dir / ".hydra" / "config.yaml"
    if not run_dir.is_dir():
        raise ExportError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        raise ExportError(f"{run_dir} is not a nas-search run directory: no .hydra/config.yaml")
    cfg = OmegaConf.load(path)
    assert isinstance(cfg, DictConfig)
    return cfg


def export_run(run_dir: str | Path, **options: str) -> dict[str, Any]:
    """Export one architecture of the run in ``run_dir``; see the module doc for the options.

    Returns:
        The written ``model.json`` content, with the export directory under ``"path"``.

    Raises:
        ExportError: for a refused export (nothing is written then).
    """
    from engine.runner import ConfigError, build_oracle, build_space
    from oracles.data import dataset_from_config
    from oracles.export import SPEC_FILE, example_input, load_exported, recalibrate_bn, save_export
    from oracles.models import build_model, model_options_for, resolve_device
    from oracles.standalone import Recipe, evaluate_accuracy, job_seed, train_model

    run_dir = Path(run_dir)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ExportError(f"unknown option(s) {unknown}; options are {sorted(OPTIONS)}")
    cfg = _run_config(run_dir)
    target = str(cfg.oracle.get("_target_", ""))
    supernet_run = target.endswith("SupernetOracle")
    weights = options.get("weights") or ("inherited" if supernet_run else "retrain")
    if weights not in ("inherited", "retrain"):
        raise ExportError(f"weights must be inherited or retrain, got {weights!r}")
    if weights == "inherited" and not supernet_run:
        raise ExportError(
            f"weights=inherited needs a supernet run; {run_dir} used oracle {target}: use weights=retrain"
        )
    finetune = _int(options, "finetune_epochs", 0, 0)
    if weights == "retrain" and "finetune_epochs" in options:
        raise ExportError("finetune_epochs applies to weights=inherited only (retrain trains from scratch: use epochs)")
    if weights == "inherited" and "epochs" in options:
        raise ExportError("epochs applies to weights=retrain only (fine-tune inherited weights with finetune_epochs)")
    overwrite = options.get("overwrite", "false").lower()
    if overwrite not in ("true", "false"):
        raise ExportError(f"overwrite must be true or false, got {options['overwrite']!r}")
    out = Path(options["out"]) if options.get("out") else run_dir / "export"
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and overwrite != "true":
        raise ExportError(f"{out} already exists: choose another out= or pass overwrite=true")
    try:
        space = build_space(cfg)
    except ConfigError as exc:
        raise ExportError(str(exc)) from None
    summary_path = run_dir / str(cfg.output.get("summary", "summary.json"))
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    if options.get("arch"):
        try:
            arch = space.parse(options["arch"])
        except ValueError as exc:
            raise ExportError(f"arch: {exc}") from None
    else:
        if summary is None:
            raise ExportError(f"{run_dir} has no {summary_path.name} (the search did not finish): give arch=...")
        if not summary.get("best"):
            raise ExportError(f"{summary_path} has no best architecture (no successful evaluation)")
        arch = space.parse(summary["best"]["arch"])
    seed = _int(options, "seed", int(cfg.seed), 0)
    assert seed is not None
    device = resolve_device(options.get("device", "auto"))
    data_cfg = _plain(cfg.oracle.dataset) if "dataset" in cfg.oracle else _plain(cfg.dataset)
    try:
        data = dataset_from_config(data_cfg)
    except ValueError as exc:
        raise ExportError(f"dataset: {exc}") from None

    start = time.monotonic()
    record: dict[str, Any] = {"weights": weights, "run_dir": str(run_dir.resolve()), "seed": seed}
    if weights == "inherited":
        try:
            oracle: Any = build_oracle(cfg.oracle, space, int(cfg.seed), "oracle", run_dir)
        except ConfigError as exc:
            raise ExportError(str(exc)) from None
        if oracle.checkpoint is None or not oracle.checkpoint.is_file():
            raise ExportError(f"no trained supernet at {oracle.checkpoint}: the run's supernet checkpoint is needed")
        try:
            oracle.prepare()
        except ValueError as exc:
            raise ExportError(f"supernet checkpoint: {' '.join(str(exc).split())}") from None
        model_options = dict(oracle.model_options)
        model = oracle.extract(arch).to(device)
        if oracle.config.bn_recalibration:
            recalibrate_bn(model, oracle._evaluator.recal_x.to(device))
        record["bn_recalibration"] = bool(oracle.config.bn_recalibration)
        if oracle.config.finetune_steps:
            record["note"] = (f"the search scored each architecture after {oracle.config.finetune_steps} fine-tuning"
                              " steps on a copy; these weights are the supernet's before them")
        if finetune:
            sc = oracle.config
            recipe = Recipe(epochs=finetune, lr=sc.finetune_lr, batch_size=sc.batch_size, weight_decay=sc.weight_decay)
            train_model(model, data, recipe, job_seed(seed, arch.string), device)
            record["finetune"] = dict(recipe)
    else:
        if target.endswith("StandaloneOracle"):
            oc = _plain(cfg.oracle)
            recipe = Recipe(**{k: oc[k] for k in Recipe() if k in oc})
            model_options = model_options_for(space, oc.get("model"))
        elif supernet_run:
            recipe = Recipe()
            try:
                oracle = build_oracle(cfg.oracle, space, int(cfg.seed), "oracle", None)
            except ConfigError as exc:
                raise ExportError(str(exc)) from None
            model_options = dict(oracle.model_options)  # the very network the supernet scored
        else:
            recipe = Recipe()
            model_options = model_options_for(space, _plain(cfg.get("model")) or {})
            record["note"] = (f"the run's oracle ({target}) trained nothing here: this network is trained on"
                              f" {data.name}, its accuracy is not the run's objective")
        epochs = _int(options, "epochs", int(recipe["epochs"]), 1)
        recipe = Recipe(**{**recipe, "epochs": epochs})
        s = job_seed(seed, arch.string)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            model = build_model(space, arch, data.input_shape, data.num_classes, **model_options).to(device)
        train_model(model, data, recipe, s, device)
        record["recipe"] = dict(recipe)
    seconds = time.monotonic() - start

    spec = {
        "arch": arch.string,
        "space": {"name": str(cfg.space.name), "params": _plain(cfg.space.get("params")) or {}},
        "model": model_options,
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "dataset": data_cfg,
        **record,
        "seconds": seconds,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    try:
        written = save_export(model, spec, tmp, example_input(data.input_shape))
        # measured on the module rebuilt from the files, not on the one in memory
        reloaded = load_exported(tmp)
        metrics: dict[str, float] = {"params": float(sum(p.numel() for p in reloaded.parameters() if p.requires_grad))}
        for split in ("val", "test"):
            x, y = getattr(data, split)
            acc, loss = evaluate_accuracy(reloaded, x, y)
            metrics[f"{split}_acc"], metrics[f"{split}_loss"] = acc, loss
        if "program" in written["files"]:
            program = torch.export.load(str(tmp / written["files"]["program"])).module()
            with torch.no_grad():
                xv = data.val[0][:256]
                metrics["program_max_abs_diff"] = float((program(xv) - reloaded(xv)).abs().max())
        written["metrics"] = metrics
        best = (summary or {}).get("best") or {}
        if best.get("arch") == arch.string:
            written["summary"] = {"objective": best.get("objective"), "params": best.get("metrics", {}).get("params")}
        (tmp / SPEC_FILE).write_text(json.dumps(written, indent=2))
        if out.exists():
            shutil.rmtree(out)
        tmp.chmod(0o755)  # mkdtemp makes it private; an export is an ordinary directory
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    written["path"] = str(out)
    return written


def format_export(spec: dict[str, Any]) -> str:
    """The human summary of an export."""
    m = spec["metrics"]
    lines = [f"exported {spec['arch']}", f"  weights      {spec['weights']}" + (
        f" (+{spec['finetune']['epochs']} fine-tuning epochs)" if spec.get("finetune") else "")]
    params = f"  params       {int(m['params']):,}"
    scored = (spec.get("summary") or {}).get("params")
    if scored is not None:
        same = math.isclose(float(scored), m["params"])
        params += f"  (summary.json: {int(scored):,}{'' if same else ' - DIFFERENT NETWORK'})"
    lines.append(params)
    lines.append(f"  val_acc      {m['val_acc']:.4f}  (measured on the reloaded export)")
    obj = (spec.get("summary") or {}).get("objective")
    if obj is not None and spec["weights"] == "inherited" and not spec.get("finetune"):
        lines.append(f"               search's objective for it: {obj:.4f}")
    lines.append(f"  test_acc     {m['test_acc']:.4f}")
    lines.append(f"  time         {spec['seconds']:.1f} s")
    if spec.get("note"):
        lines.append(f"  note         {spec['note']}")
    from oracles.export import SPEC_FILE

    files = ", ".join([*spec["files"].values(), SPEC_FILE])
    lines.append(f"  files        {spec['path']}/ ({files})")
    if spec.get("program_error"):
        lines.append(f"  torch.export failed (weights still exported): {spec['program_error'][:200]}")
    elif "program_max_abs_diff" in m:
        lines.append(f"  model.pt2    max abs difference to the module {m['program_max_abs_diff']:.2e}")
    lines.append(f"  load with    oracles.load_exported({spec['path']!r})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-export``."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        run_dir, options = _parse(args)
        spec = export_run(run_dir, **options)
    except ExportError as exc:
        sys.stderr.write(f"nas-export: {exc}\n")
        return 2
    sys.stdout.write(format_export(spec) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
