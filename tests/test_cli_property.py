"""``nas-search`` refusing a bad value as a user types it, end to end (issue 12's acceptance).

The in-process property test (tests/reliability/test_config_validation.py) covers many
combinations of values; this one checks what only the real command shows: exit status,
one line on stderr naming the key, nothing on stdout, no output directory. Each case is a
process (about 10 s), so one bad value per kind of check: a word for a number, a strategy
option read only late in a search, a typo of a key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES = [
    ("budget.evaluations", "abc"),
    ("strategy.mutation_tries", "-2"),  # never read in a 2-evaluation search: must be refused at start anyway
    ("+budget.evalutions", "10"),
]


@pytest.mark.parametrize(("key", "value"), CASES)
def test_bad_value_is_refused_naming_the_key(key: str, value: str, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "engine.cli", "progress=none", "budget.evaluations=2", f"{key}={value}"]
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0, f"{key}={value} was accepted: {proc.stdout[-300:]}"
    assert proc.stdout == "", proc.stdout
    assert len(lines) == 1 and key.lstrip("+").split(".")[-1] in lines[0], f"{key}={value}: {proc.stderr}"
    assert not any(tmp_path.iterdir()), f"{key}={value} left {sorted(p.name for p in tmp_path.iterdir())}"
