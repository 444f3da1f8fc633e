"""mypy reports no errors on ``engine`` and ``oracles``, so the README's test command (what CI runs) keeps them typed.

Runs ``python -m mypy engine oracles`` in a child process from the repository root, so it
reads ``[tool.mypy]`` of pyproject.toml exactly as on the command line. Not in-process
(``mypy.api.run``): a cold run leaves about 1 GB of mypyc-compiled state in the test
process, whose teardown at interpreter exit took 26 s and crashed CI's pytest with a
segmentation fault after every test had passed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_reports_no_errors() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "engine", "oracles"], cwd=ROOT, capture_output=True,
                          text=True, timeout=540)
    assert proc.returncode == 0, f"mypy engine oracles failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
