"""Kill and resume, fast version: a few SIGKILLs of real ``nas-search`` processes per configuration.

The full harness (20 kills per configuration, figures in docs/reliability.md) is
``python tests/reliability/kill_resume.py --kills 20``; here the same code runs
with fewer kills to respect the suite's time budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kill_resume import CONFIGS, kill_and_resume


@pytest.mark.slow
@pytest.mark.parametrize("config", ["regularized_evolution/b3+faults"])
def test_sigkill_at_random_points_loses_and_repeats_nothing(config: str, tmp_path: Path) -> None:
    fig = kill_and_resume(
        config, CONFIGS[config], tmp_path, kills=2, evaluations=16, delay=0.03, rng=np.random.default_rng(7)
    )
    assert fig.kills >= 1, fig.notes
    assert fig.lost == 0, fig
    assert fig.repeated == 0, fig
    assert fig.identical and fig.summary_identical, fig
    assert fig.evaluations_checked >= 16


@pytest.mark.slow
def test_sigkill_while_extending_a_finished_run_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Issue 14: a run finished at 8 evaluations (its third batch of 3 cut by the budget), resumed with 18 and
    killed during the extension."""
    config = "regularized_evolution/b3+faults"
    fig = kill_and_resume(
        config, CONFIGS[config], tmp_path, kills=2, evaluations=18, delay=0.03, rng=np.random.default_rng(11),
        extend_from=8,
    )
    assert fig.kills >= 1, fig.notes
    assert fig.lost == 0, fig
    assert fig.repeated == 0, fig
    assert fig.identical and fig.summary_identical, fig
