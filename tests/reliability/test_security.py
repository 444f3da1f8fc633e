"""Security: no unpickling, no config string run as code, outputs confined to the run directory."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest
from conftest import run_cli, tree

from engine.runner import ConfigError, run_search

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["engine", "oracles", "bench", "examples"]


def _sources() -> list[Path]:
    files = [p for d in SCANNED if (ROOT / d).is_dir() for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 20, "the scan must see the project's modules"
    return files


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


UNSAFE_CALLS = {
    "eval", "exec", "pickle.load", "pickle.loads", "cPickle.load", "dill.load", "dill.loads",
    "cloudpickle.load", "cloudpickle.loads", "marshal.load", "marshal.loads", "shelve.open",
    "yaml.unsafe_load", "torch.jit.load", "pd.read_pickle", "pandas.read_pickle", "jsonpickle.decode",
}


def _findings(path: Path) -> list[str]:
    out = []
    tree_ = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree_):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if name in UNSAFE_CALLS:
            out.append(f"{where}: {name}()")
        elif name.endswith(("torch.load", "torch.serialization.load")):
            if not _is_true(_kw(node, "weights_only")):
                out.append(f"{where}: torch.load without weights_only=True")
        elif name in ("np.load", "numpy.load") and _is_true(_kw(node, "allow_pickle")):
            out.append(f"{where}: np.load(allow_pickle=True)")
        elif name == "yaml.load":
            loader = _dotted(_kw(node, "Loader") or ast.Constant(None))
            if not loader.endswith(("SafeLoader", "CSafeLoader")):
                out.append(f"{where}: yaml.load without SafeLoader")
        elif name.startswith("subprocess.") and _is_true(_kw(node, "shell")):
            out.append(f"{where}: subprocess with shell=True")
        elif name == "os.system":
            out.append(f"{where}: os.system()")
    return out


def test_source_has_no_unsafe_loading_or_code_evaluation() -> None:
    findings = [f for p in _sources() for f in _findings(p)]
    assert not findings, "unsafe calls:\n" + "\n".join(findings)


def test_scanner_catches_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch, pickle, yaml, numpy as np\n"
        "torch.load('a.pt')\n"
        "torch.load('a.pt', weights_only=False)\n"
        "torch.load('a.pt', weights_only=True)\n"
        "pickle.loads(b'')\n"
        "eval('1')\n"
        "np.load('x.npy', allow_pickle=True)\n"
        "yaml.load(open('c'))\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = _findings(bad)
    finally:
        ROOT = saved
    assert [f.split(": ", 1)[1] for f in found] == [
        "torch.load without weights_only=True", "torch.load without weights_only=True", "pickle.loads()",
        "eval()", "np.load(allow_pickle=True)", "yaml.load without SafeLoader",
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        ["oracle._target_=os.system"],
        ["oracle._target_=builtins.eval"],
        ["oracle._target_=subprocess.Popen"],
        ["+oracle.extra={_target_: builtins.open, file: PWNED, mode: w}"],
        ["+oracle.inner=[{_target_: pathlib.Path.touch, self: PWNED}]"],
        ["oracle=faulty", "oracle.oracle._target_=builtins.exec"],
        ["+fidelities.cheap={_target_: shutil.rmtree, path: PWNED}", "strategy=random"],
    ],
)
def test_config_cannot_name_arbitrary_callables(
    overrides: list[str], make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    cfg = make_cfg(*overrides)
    if "fidelities" in overrides[0]:  # a strategy that asks only "default" never builds it: check directly
        from engine.runner import build_oracle
        from engine.spaces import get_space

        with pytest.raises(ConfigError, match=r"fidelities\.cheap\._target_='shutil\.rmtree'"):
            build_oracle(cfg.fidelities.cheap, get_space("nb201"), 0, "fidelities.cheap")
        return
    with pytest.raises(ConfigError, match=r"_target_=.*is not an oracle of this project"):
        run_search(cfg, out)
    assert not any(tmp_path.iterdir()), "nothing may be created"


def test_entry_point_and_project_targets_are_accepted(make_cfg, tmp_path: Path) -> None:
    summary = run_search(make_cfg("oracle=faulty", "budget.evaluations=3"), tmp_path)
    assert summary["evaluations"] == 3


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("journal", "../escaped.sqlite"),
        ("journal", "/tmp/absolute.sqlite"),
        ("journal", "a/../../escaped.sqlite"),
        ("journal", ""),
        ("summary", "../summary.json"),
        ("summary", "/etc/summary.json"),
        ("summary", "dir/"),
    ],
)
def test_output_names_cannot_leave_the_run_directory(key: str, value: str, make_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=rf"output\.{key}=") as info:
        run_search(make_cfg(f"output.{key}='{value}'"), out)
    assert "\n" not in str(info.value)
    assert not any(tmp_path.iterdir())


def test_output_subdirectory_inside_the_run_is_allowed(make_cfg, tmp_path: Path) -> None:
    run_search(make_cfg("output.journal=journals/j.sqlite", "budget.evaluations=2"), tmp_path)
    assert (tmp_path / "journals" / "j.sqlite").is_file()


def test_outputs_follow_the_users_umask(make_cfg, tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        run_search(make_cfg("budget.evaluations=2"), tmp_path / "private" / "run")
    finally:
        os.umask(old)
    made = [tmp_path / "private", *sorted((tmp_path / "private").rglob("*"))]
    assert len(made) >= 4
    for p in made:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, f"{p} is readable by others: {oct(mode)}"


def test_wandb_tracker_never_prompts_nor_sends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default W&B tracking: no account, no network, stdin closed; the run completes offline."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.netrc, no saved login
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens: an upload would fail
    proc = run_cli(["tracker=wandb", "budget.evaluations=3", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, 180)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-2000:]
    for prompt in ("wandb login", "api key", "enter your choice", "create a w&b account"):
        assert prompt not in output.lower()
    assert list((tmp_path / "run").rglob("offline-run-*")), "an offline W&B run directory is expected"
    assert not list((tmp_path / "run").glob("wandb/run-*")), "no online run may be created"


def test_refused_cli_run_leaves_nothing_behind(tmp_path: Path) -> None:
    before = tree(tmp_path)
    proc = run_cli(["strategy.population=-2"], tmp_path)
    assert proc.returncode == 2
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "population" in errors[0]
    assert tree(tmp_path) == before and not (tmp_path / "outputs").exists()
