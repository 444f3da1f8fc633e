"""Packaging: every package is listed, and a built wheel carries the configs and the table.

``nas-search`` must work from a non-editable install, where nothing of the
source tree exists: the Hydra configs ship as the package ``engine.conf`` and the
NAS-Bench-201 table as package data of ``oracles``. A package missing from
pyproject's explicit list would silently be left out of the wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "outputs", "multirun", "wandb", "__pycache__", "*.pyc",
    ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis",
)


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _source_packages() -> set[str]:
    found = set()
    for top in ("engine", "oracles"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            if "__pycache__" not in rel.parts:
                found.add(".".join(rel.parts))
    return found


def test_every_package_is_listed_in_pyproject() -> None:
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    missing = sorted(_source_packages() - listed)
    assert not missing, f"packages with an __init__.py missing from [tool.setuptools] packages: {missing}"
    assert "engine.conf" in listed


def test_console_script_and_package_data_are_declared() -> None:
    cfg = _pyproject()
    assert cfg["project"]["scripts"]["nas-search"] == "engine.cli:main"
    assert cfg["tool"]["setuptools"]["package-dir"]["engine.conf"] == "conf"
    assert any(p.endswith("*.csv.gz") for p in cfg["tool"]["setuptools"]["package-data"]["oracles"])


def test_wheel_contains_configs_and_table(tmp_path: Path) -> None:
    pytest.importorskip("build")
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE)  # build in a copy: no build/ or egg-info in the checkout
    out = tmp_path / "dist"
    # --skip-dependency-check: setuptools >= 70.1 builds wheels itself; the "wheel" build
    # requirement only serves older setuptools and is not in the dev environment.
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
         "--outdir", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = out.glob("nas_engine-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "engine/conf/config.yaml" in names
    assert "oracles/data/nb201_cifar10.csv.gz" in names
    for yaml in (ROOT / "conf").rglob("*.yaml"):
        rel = yaml.relative_to(ROOT / "conf").as_posix()
        assert f"engine/conf/{rel}" in names, f"conf/{rel} is not in the wheel"
    for pkg in _source_packages():
        assert f"{pkg.replace('.', '/')}/__init__.py" in names, f"package {pkg} is not in the wheel"
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "nas-search = engine.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
