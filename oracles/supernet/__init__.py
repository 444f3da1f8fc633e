"""Weight-sharing supernets: one network holding every architecture of a space.

- :class:`SupernetOracle` (``oracle=supernet``): trains or loads the supernet,
  then scores architectures by the accuracy they inherit.
- :class:`SupernetConfig`: the ``supernet`` config group (sampling rule,
  few-shot splits, BN recalibration, fine-tuning...).
- :class:`NB201Supernet`, :class:`ChainSupernet`: the modules; ``extract(arch)``
  gives the stand-alone network with the inherited weights.
"""

from __future__ import annotations

from oracles.supernet.chain import ChainSupernet
from oracles.supernet.checkpoint import CheckpointMismatch
from oracles.supernet.config import SupernetConfig
from oracles.supernet.nb201 import NB201Supernet
from oracles.supernet.oracle import SupernetOracle, build_supernet
from oracles.supernet.sampling import SAMPLING_RULES, make_sampler
from oracles.supernet.training import FewShotPlan, SupernetTrainer

__all__ = [
    "SAMPLING_RULES",
    "ChainSupernet",
    "CheckpointMismatch",
    "FewShotPlan",
    "NB201Supernet",
    "SupernetConfig",
    "SupernetOracle",
    "SupernetTrainer",
    "build_supernet",
    "make_sampler",
]
