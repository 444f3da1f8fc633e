"""``nas-search --help`` and ``nas-gap --help``: what each command does, its options with their defaults, examples.

The pages are Hydra help templates (``hydra.help`` in ``conf/config.yaml`` and ``conf/gap.yaml``); the
defaults they show are interpolated from the composed config, and the expectations here are read from
the same config through the compose API, so a changed default changes both.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from engine.cli import config_dir

CONF = Path(config_dir())


def _cfg(name: str, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(config_name=name, overrides=list(overrides), return_hydra_config=True)


def _help(module: str, cwd: Path, *overrides: str) -> str:
    """The help page a command prints, checking that it succeeds and writes nothing (no outputs/)."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *overrides, "--help"],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert not (cwd / "outputs").exists() and not (cwd / "multirun").exists()
    assert list(cwd.iterdir()) == []
    return proc.stdout


def _section(text: str, title: str) -> list[str]:
    """The non-empty lines of the ``== title ==`` section."""
    parts = re.split(r"^== (.+) ==$", text, flags=re.MULTILINE)
    sections = dict(zip(parts[1::2], parts[2::2]))
    assert title in sections, f"no '== {title} ==' section in:\n{text}"
    return [line for line in sections[title].splitlines() if line.strip()]


def _default(text: str, option: str) -> str:
    """The bracketed default at the end of the line that documents ``option=``."""
    lines = [line for line in _section(text, "Main options [default]") if line.lstrip().startswith(f"{option}=")]
    assert len(lines) == 1, f"{option}= not documented once in:\n{text}"
    m = re.search(r"\[([^\]]*)\]\s*$", lines[0])
    assert m is not None, lines[0]
    return m.group(1)


def _examples(text: str, command: str) -> list[str]:
    """The indented lines of the Examples section (the footer follows them unindented)."""
    lines = [line.strip() for line in _section(text, "Examples") if line.startswith("  ")]
    assert all(line.startswith(f"{command} ") for line in lines), lines
    return lines


def _group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_nas_search_help_says_what_it_does_with_its_defaults_and_examples(tmp_path: Path) -> None:
    text = _help("engine.cli", tmp_path)
    cfg = _cfg("config")
    choices = cfg.hydra.runtime.choices
    assert text.startswith("nas-search: run one neural architecture search")
    assert "Hydra (https://hydra.cc)" not in text  # not the stock page
    for what in ("journal.sqlite", "summary.json", "resume=true", "docs/user_guide.md", "nas-export RUN_DIR"):
        assert what in text, what
    expected = {
        "strategy": choices.strategy, "space": choices.space, "oracle": choices.oracle, "dataset": choices.dataset,
        "tracker": choices.tracker, "budget.evaluations": cfg.budget.evaluations, "seed": cfg.seed,
        "resume": cfg.resume, "batch_size": cfg.batch_size,
    }
    for option, value in expected.items():
        assert _default(text, option) == str(value), option
    assert expected["budget.evaluations"] == 100 and expected["oracle"] == "tabular"  # the README's figures
    for oracle in ("tabular", "supernet", "standalone", "proxy"):
        assert oracle in _group_options("oracle") and oracle in text
    assert _examples(text, "nas-search") == [
        "nas-search oracle=supernet dataset=digits budget.evaluations=100",
        "nas-search -m strategy=random,regularized_evolution seed=0,1,2",
    ]
    groups = _section(text, "Configuration groups")
    for group in sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "hydra"):
        assert f"{group}: {', '.join(_group_options(group))}" in groups, group


def test_nas_search_help_shows_the_values_of_overrides_given_with_it(tmp_path: Path) -> None:
    text = _help("engine.cli", tmp_path, "strategy=random", "budget.evaluations=7", "seed=3")
    assert (_default(text, "strategy"), _default(text, "budget.evaluations"), _default(text, "seed")) == (
        "random", "7", "3")


def test_nas_gap_help_lists_its_own_options_and_groups_only(tmp_path: Path) -> None:
    text = _help("oracles.gap_cli", tmp_path)
    cfg = _cfg("gap")
    assert text.startswith("nas-gap: measure how far a weight-sharing supernet")
    assert "nas-search" not in text and "Hydra (https://hydra.cc)" not in text
    for what in ("gap.json", "standalone_seeds", "noise ceiling"):
        assert what in text, what
    for option in ("n_archs", "standalone_seeds", "supernet_seeds", "seed", "metric", "top_fraction",
                   "epoch_stability", "parallel"):
        assert _default(text, option) == str(cfg[option]), option
    assert cfg.standalone_cache is None and cfg.supernet_cache is None
    assert _default(text, "standalone_cache").startswith("null") and _default(text, "supernet_cache").startswith("null")
    assert _default(text, "proxies") == ", ".join(cfg.proxies)
    options = "\n".join(_section(text, "Main options [default]"))
    settings = options[options.index("settings="):options.index("proxies=")]
    names = [s.name for s in cfg.settings]
    assert f"[{len(names)}: {', '.join(names)}]" in " ".join(settings.split())
    # the groups listed are exactly those conf/gap.yaml's defaults list composes, with their options
    groups = _section(text, "Configuration groups")[1:]
    listed = {m.group(1): line for line in groups if (m := re.match(r"(\w+): ", line))}
    composed = {k.split("@")[-1] for k in cfg.hydra.runtime.choices if not k.startswith("hydra/")}
    assert set(listed) == composed == {"dataset", "space", "supernet", "executor", "standalone"}
    for group in ("dataset", "space", "supernet", "executor"):
        assert listed[group].startswith(f"{group}: {', '.join(_group_options(group))}"), group
        assert listed[group].endswith(f"[{cfg.hydra.runtime.choices[group]}]") or group == "supernet"
    assert f"standalone.epochs [{cfg.standalone.epochs}]" in text
    assert f"standalone.model.nb201.channels [{cfg.standalone.model.nb201.channels}]" in text
    assert not re.search(r"\b(strategy|experiment)\b", text)
    assert _examples(text, "nas-gap") == [
        "nas-gap dataset=digits n_archs=50 standalone_seeds=2",
        "nas-gap -m supernet.sampling=uniform,fair settings=[] standalone_cache=/tmp/sa.jsonl supernet_cache=/tmp/sn",
    ]
