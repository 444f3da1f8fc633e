"""mypy reports no errors on ``engine`` and ``oracles``, so the README's test command (what CI runs) keeps them typed.

Runs mypy in-process through :func:`mypy.api.run` from the repository root, so it reads
``[tool.mypy]`` of pyproject.toml exactly as ``mypy engine oracles`` on the command line does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_reports_no_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # mypy finds pyproject.toml and the package paths from the working directory
    stdout, stderr, status = api.run(["engine", "oracles"])
    assert status == 0, f"mypy engine oracles failed (exit {status}):\n{stdout}{stderr}"
