"""A gymnasium environment that builds one architecture of a search space per episode."""

from __future__ import annotations

import logging
import math
import traceback
from typing import Any, SupportsFloat

import gymnasium
import numpy as np
from gymnasium import spaces

from engine.spaces import Architecture, SearchSpace, get_space
from engine.types import Evaluation

_log = logging.getLogger(__name__)


class ArchitectureEnv(gymnasium.Env[np.ndarray, np.int64]):
    """Build an architecture one decision per step; the terminal reward is the oracle's objective.

    NAS as a sequential decision problem (Zoph & Le, 2017): step ``t`` picks
    the option of decision ``t`` of the space, so an episode has exactly
    ``len(space.decisions)`` steps and ends with ``terminated=True`` on a
    complete architecture. Decisions made irrelevant by earlier ones (layers
    beyond a stage's depth) allow only option 0, so every architecture has
    exactly one build path.

    * Actions: ``Discrete(max options)``. ``info["action_mask"]`` and
      :meth:`action_masks` (int8, 1 = allowed, the gymnasium and sb3-contrib
      convention) give the options allowed at the current step, from
      ``space.allowed(prefix)``. An action outside the mask is replaced by the
      first allowed option, flagged in ``info["invalid_action"]`` and charged
      ``invalid_action_penalty``, so agents without masking still work.
    * Observations: ``MultiDiscrete``, one entry per decision (0 = not decided
      yet, ``k + 1`` = option ``k``) followed by the step index.
    * Rewards: 0 until the last step. Then, with an ``oracle`` (anything with
      ``evaluate(archs) -> list[Evaluation]``; the engine never imports an
      oracle implementation), the evaluation's objective, or
      ``failure_reward`` when it failed or the oracle raised. Without an
      oracle the reward is 0 and the caller scores ``info["architecture"]``
      itself, which is how the ``rl`` strategy uses this environment.

    Args:
        space: A search space or the name of one (``"nb201"``, ``"chain"``).
        oracle: Scores complete architectures; ``None`` for a reward-free builder.
        failure_reward: Terminal reward of a failed evaluation.
        invalid_action_penalty: Added to the reward of a step whose action was not allowed.
        render_mode: ``None`` or ``"ansi"`` (the partial architecture as text).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        space: SearchSpace | str = "nb201",
        oracle: Any = None,
        failure_reward: float = 0.0,
        invalid_action_penalty: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(space, str):
            space = get_space(space)
        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace or a space name, got {type(space).__name__}")
        if oracle is not None and not callable(getattr(oracle, "evaluate", None)):
            raise TypeError(f"oracle must have an evaluate(archs) method, got {type(oracle).__name__}")
        for key, value in (("failure_reward", failure_reward), ("invalid_action_penalty", invalid_action_penalty)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number, got {value!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.space = space
        self.oracle = oracle
        self.failure_reward = float(failure_reward)
        self.invalid_action_penalty = float(invalid_action_penalty)
        self.render_mode = render_mode
        self.n_decisions = len(space.decisions)
        self.n_actions = max(d.n for d in space.decisions)
        self.action_space = spaces.Discrete(self.n_actions)
        self.observation_space = spaces.MultiDiscrete(
            np.array([d.n + 1 for d in space.decisions] + [self.n_decisions + 1], dtype=np.int64)
        )
        self._prefix: list[int] = []
        self._arch: Architecture | None = None

    # -- helpers --------------------------------------------------------------
    @property
    def prefix(self) -> tuple[int, ...]:
        """The decisions taken so far in this episode."""
        return tuple(self._prefix)

    @property
    def architecture(self) -> Architecture | None:
        """The complete architecture of the finished episode (``None`` before the end)."""
        return self._arch

    def _observation(self) -> np.ndarray:
        obs = np.zeros(self.n_decisions + 1, dtype=np.int64)
        obs[: len(self._prefix)] = np.asarray(self._prefix, dtype=np.int64) + 1
        obs[-1] = len(self._prefix)
        return obs

    def action_masks(self) -> np.ndarray:
        """Options allowed at the current step (int8, length ``action_space.n``); all ones once done."""
        mask = np.zeros(self.n_actions, dtype=np.int8)
        if len(self._prefix) >= self.n_decisions:
            mask[:] = 1
            return mask
        allowed = self.space.allowed(self._prefix)
        mask[: len(allowed)] = allowed
        return mask

    def _info(self) -> dict[str, Any]:
        return {"action_mask": self.action_masks(), "step": len(self._prefix)}

    def _score(self, arch: Architecture) -> tuple[float, Evaluation | None, str | None]:
        try:
            ev = self.oracle.evaluate([arch])[0]
        except Exception as exc:  # a failing oracle is a failed evaluation, as in the search loop
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            _log.warning("oracle failed on %s: %s", arch.string, text)
            return self.failure_reward, None, text
        if not ev.ok or ev.objective is None:
            return self.failure_reward, ev, ev.error
        return float(ev.objective), ev, None

    # -- the gymnasium API ----------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new, empty architecture (the environment itself draws nothing at random)."""
        super().reset(seed=seed)
        self._prefix = []
        self._arch = None
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Take the next decision.

        Raises:
            RuntimeError: if the episode is over (call :meth:`reset`).
        """
        if self._arch is not None or len(self._prefix) >= self.n_decisions:
            raise RuntimeError("the architecture is complete: call reset() before step()")
        mask = self.action_masks()
        a = int(action)
        invalid = not (0 <= a < self.n_actions and mask[a])
        reward = 0.0
        if invalid:
            a = int(np.flatnonzero(mask)[0])
            reward += self.invalid_action_penalty
        self._prefix.append(a)
        terminated = len(self._prefix) == self.n_decisions
        info = self._info()
        info["invalid_action"] = invalid
        if terminated:
            self._arch = self.space.architecture(self._prefix)
            info["architecture"] = self._arch
            if self.oracle is not None:
                score, ev, error = self._score(self._arch)
                reward += score
                info["evaluation"] = ev
                if error is not None:
                    info["error"] = error
        return self._observation(), reward, terminated, False, info

    def render(self) -> str | None:  # type: ignore[override]
        """The decisions so far as ``name=value`` text (``render_mode="ansi"``)."""
        if self.render_mode != "ansi":
            return None
        parts = [f"{d.name}={d.options[o]}" for d, o in zip(self.space.decisions, self._prefix)]
        return " ".join(parts) + ("" if self._arch is None else f"\n{self._arch.string}")
