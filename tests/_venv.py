"""A throw-away virtual environment that reuses this environment's installed packages.

Installing torch and friends into a fresh environment would take minutes, so the
child environment sees the parent's ``site-packages`` through a ``.pth`` file. The
line is a plain path, not ``site.addsitedir``, unless the project is wanted: the
parent's own ``.pth`` files are then not run, so its editable install of this
project does not leak into the child and what the child imports of ``engine`` is
what was installed into it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path


def child_venv(path: Path, with_project: bool = False) -> Path:
    """Create the environment at ``path``; returns its ``bin`` directory.

    Args:
        path: Where the environment goes.
        with_project: Also see this project as installed in the parent (its
            editable install), for testing a plugin against the current sources;
            ``False`` when the project itself is what gets installed into the child.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    purelib = Path(
        sysconfig.get_path("purelib", vars={"base": str(path), "platbase": str(path)})
    )
    purelib.mkdir(parents=True, exist_ok=True)
    parent = sysconfig.get_path("purelib")
    line = f"import site; site.addsitedir({parent!r})" if with_project else parent
    (purelib / "_parent_site_packages.pth").write_text(line + "\n")
    return path / "bin"


def pip_install(bin_dir: Path, *args: str) -> None:
    """``pip install`` into the child, offline, without dependencies (they come from the parent)."""
    cmd = [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q",
           "--no-deps", "--no-index", "--no-build-isolation", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def child_env(home: Path) -> dict[str, str]:
    """Environment for commands in the child: no source tree on the path, W&B kept local."""
    # WANDB_SERVICE is set by an in-process wandb.init of another test: a child must start its own service.
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "WANDB_MODE", "WANDB_SERVICE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({
        "WANDB_SILENT": "true",
        "WANDB_DATA_DIR": str(home / "wandb-data"),
        "WANDB_CACHE_DIR": str(home / "wandb-cache"),
        "WANDB_CONFIG_DIR": str(home / "wandb-config"),
        "OMP_NUM_THREADS": "1",
    })
    return env
