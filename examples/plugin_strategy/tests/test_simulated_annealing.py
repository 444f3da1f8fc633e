"""The engine's conformance suite over the plugin's strategy, found through its entry point."""

from __future__ import annotations

import pytest
from nas_plugin_example import SimulatedAnnealing

from engine.strategies import get_strategy
from engine.testing import CHECKS, SPACES


def test_registered_from_the_entry_point() -> None:
    assert get_strategy("simulated_annealing") is SimulatedAnnealing


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("check", sorted(CHECKS))
def test_conformance(check: str, space: str) -> None:
    CHECKS[check](SimulatedAnnealing, space=space)
