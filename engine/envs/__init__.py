"""Gymnasium environments over search spaces.

Importing this package registers ``nas_engine/Architecture-v0``, so any
gymnasium agent can search a space::

    import gymnasium
    import engine.envs  # registers the environment
    env = gymnasium.make("nas_engine/Architecture-v0", space="nb201", oracle=my_oracle)

The environment builds one architecture per episode, one decision per step;
with an oracle (anything with ``evaluate(archs) -> list[Evaluation]``) the
terminal reward is the oracle's objective. The engine's ``rl`` strategy acts in
the same environment without an oracle and receives its rewards through ``tell``.
"""

from __future__ import annotations

import gymnasium

from engine.envs._architecture import ArchitectureEnv

ENV_ID = "nas_engine/Architecture-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="engine.envs._architecture:ArchitectureEnv")

__all__ = ["ENV_ID", "ArchitectureEnv"]
