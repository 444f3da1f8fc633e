"""The gymnasium environment (env checker, masks, rewards, SB3 PPO) and the REINFORCE strategy."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import engine.envs
from engine.spaces import Architecture, get_space
from engine.strategies import create_strategy
from engine.testing import ToyOracle
from engine.types import Evaluation
from oracles.tabular import TabularOracle


class RecordingOracle:
    """A tabular oracle that remembers what it evaluated (a real oracle, not a mock)."""

    def __init__(self, inner: TabularOracle) -> None:
        self.inner = inner
        self.seen: list[Evaluation] = []

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        evals = self.inner.evaluate(archs)
        self.seen.extend(evals)
        return evals


class FailingOracle:
    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        raise RuntimeError("the GPU caught fire")


@pytest.fixture(scope="module")
def table() -> TabularOracle:
    return TabularOracle(get_space("nb201"), metrics=["latency_ms_raspi4"])


@pytest.mark.parametrize("space", ["nb201", "chain"])
def test_env_checker_passes(space: str, table: TabularOracle) -> None:
    oracle = table if space == "nb201" else ToyOracle(get_space(space))
    for kwargs in ({}, {"oracle": oracle}):
        env = gymnasium.make(engine.envs.ENV_ID, space=space, **kwargs)
        check_env(env.unwrapped, skip_render_check=False)


def test_episode_builds_one_architecture_and_is_rewarded_by_the_oracle(table: TabularOracle) -> None:
    env = gymnasium.make(engine.envs.ENV_ID, space=table.space, oracle=table)
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [0] * 7 and info["action_mask"].tolist() == [1] * 5
    actions = [3, 1, 4, 0, 2, 3]
    for t, a in enumerate(actions):
        obs, reward, terminated, truncated, info = env.step(a)
        assert terminated == (t == 5) and not truncated
        assert obs[-1] == t + 1 and obs[t] == a + 1
        if not terminated:
            assert reward == 0.0
    arch = table.space.architecture(actions)
    assert info["architecture"] == arch
    assert reward == table.lookup(arch)["val_acc"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_masks_follow_the_space_and_invalid_actions_are_replaced() -> None:
    space = get_space("chain")
    env = gymnasium.make(engine.envs.ENV_ID, space=space, invalid_action_penalty=-1.0)
    env.reset()
    env.step(0)  # stage 0: the shallowest depth, so its last layers are irrelevant
    depth = space.depths[0]
    for _ in range(2 * depth):
        _, _, _, _, info = env.step(2)
    mask = info["action_mask"]
    assert mask.tolist() == [1, 0, 0]
    assert env.get_wrapper_attr("action_masks")().tolist() == mask.tolist()
    _, reward, _, _, info = env.step(2)
    assert info["invalid_action"] and reward == -1.0
    assert env.unwrapped.prefix[-1] == 0


def test_failed_evaluation_gives_the_failure_reward() -> None:
    env = gymnasium.make(engine.envs.ENV_ID, space="nb201", oracle=FailingOracle(), failure_reward=-5.0)
    env.reset()
    for _ in range(6):
        _, reward, terminated, _, info = env.step(3)
    assert terminated and reward == -5.0 and "GPU caught fire" in info["error"]


def test_bad_env_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="evaluate"):
        gymnasium.make(engine.envs.ENV_ID, space="nb201", oracle=object())
    with pytest.raises(ValueError, match="failure_reward"):
        gymnasium.make(engine.envs.ENV_ID, space="nb201", failure_reward=float("nan"))


def test_stable_baselines3_ppo_searches_with_the_environment(table: TabularOracle) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor

    oracle = RecordingOracle(table)
    env = Monitor(gymnasium.make(engine.envs.ENV_ID, space=table.space, oracle=oracle))
    model = PPO("MlpPolicy", env, n_steps=60, batch_size=30, n_epochs=2, seed=0, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: threads only add contention
    try:
        model.learn(total_timesteps=300)
    finally:
        torch.set_num_threads(threads)
    rewards = env.get_episode_rewards()
    assert len(rewards) == len(oracle.seen) >= 45  # 6 steps per episode
    assert rewards == pytest.approx([e.objective for e in oracle.seen])
    obs, _ = env.reset()
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, done, _, info = env.step(action)
    assert table.space.contains(info["architecture"]) and reward > 0


def test_reinforce_learns_the_rewarded_options() -> None:
    space = get_space("nb201")

    class Count:
        def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
            return [Evaluation(arch=a, objective=float(sum(d == 2 for d in a.decisions))) for a in archs]

    oracle = Count()
    s = create_strategy("rl", space, seed=0)
    rng_before = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    for _ in range(80):
        s.tell(oracle.evaluate([q.arch for q in s.ask(1)]))
    assert torch.equal(rng_before, torch.random.get_rng_state())  # only the instance's generator is used
    assert torch.get_num_threads() == threads
    probs = s.probabilities()  # type: ignore[attr-defined]
    assert (probs.argmax(axis=1) == 2).sum() >= 5 and probs[:, 2].mean() > 0.4


def test_state_holds_weights_and_optimizer_as_numpy() -> None:
    s = create_strategy("rl", get_space("chain"), seed=1)
    oracle = ToyOracle(get_space("chain"))
    for _ in range(3):
        s.tell(oracle.evaluate([q.arch for q in s.ask(2)]))
    own = s.state_dict()["own"]
    assert isinstance(own["policy"]["logits"], np.ndarray)
    assert isinstance(own["optimizer"]["state"][0]["exp_avg"], np.ndarray)
    assert own["torch_rng"].dtype == np.uint8


def test_bad_rl_options_are_named() -> None:
    with pytest.raises(ValueError, match=r"strategy\.lr"):
        create_strategy("rl", get_space("nb201"), lr=-1.0)
    with pytest.raises(ValueError, match="ema_momentum"):
        create_strategy("rl", get_space("nb201"), ema_momentum=1.0)
