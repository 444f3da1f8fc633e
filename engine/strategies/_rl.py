"""REINFORCE with a moving-average baseline, acting in the engine's gymnasium environment."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.envs import ArchitectureEnv
from engine.spaces import Architecture, SearchSpace
from engine.strategies._base import Strategy
from engine.strategies._registry import register
from engine.types import Evaluation, Status


@dataclass
class Args:
    """Options of the ``rl`` strategy (``conf/strategy/rl.yaml``)."""

    lr: float = 0.2
    """Adam learning rate of the policy (NAS-Bench-201's REINFORCE: 0.01, no better than random at 100 queries)."""
    ema_momentum: float = 0.9
    """Momentum of the exponential-moving-average reward baseline (NAS-Bench-201: 0.9)."""
    init_std: float = 1e-3
    """Standard deviation of the initial logits (NAS-Bench-201: 1e-3, a near-uniform start)."""
    failure_reward: float | None = None
    """Reward of a failed evaluation; None leaves the policy untouched by failures."""
    unique_tries: int = 100
    """Episodes rolled out to find an architecture not asked before, then a random new one."""

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"strategy.lr must be positive, got {self.lr!r}")
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ValueError(f"strategy.ema_momentum must be in [0, 1), got {self.ema_momentum!r}")
        if not self.init_std >= 0:
            raise ValueError(f"strategy.init_std must be >= 0, got {self.init_std!r}")
        if isinstance(self.unique_tries, bool) or not isinstance(self.unique_tries, int) or self.unique_tries < 1:
            raise ValueError(f"strategy.unique_tries must be a positive integer, got {self.unique_tries!r}")


class Policy(nn.Module):
    """One vector of logits per decision, masked to the options the environment allows.

    The NAS-Bench-201 REINFORCE policy (``arch_parameters``, edges x operations),
    generalised with action masks so that decisions made irrelevant by earlier
    ones (chain-space layers beyond a stage's depth) get probability one on
    their single allowed option.
    """

    def __init__(self, n_decisions: int, n_actions: int, init_std: float, generator: torch.Generator) -> None:
        super().__init__()
        self.logits = nn.Parameter(init_std * torch.randn(n_decisions, n_actions, generator=generator))

    def step_probabilities(self, step: int, mask: torch.Tensor) -> torch.Tensor:
        """The distribution over options at one step (what a rollout samples from)."""
        return torch.softmax(self.logits[step].masked_fill(~mask, float("-inf")), dim=-1)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every option at every step, ``-inf`` where masked."""
        return torch.log_softmax(self.logits.masked_fill(~masks, float("-inf")), dim=-1)


class EMABaseline:
    """Exponential moving average of rewards, bias-corrected (NAS-Bench-201's ``ExponentialMovingAverage``)."""

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        self.numerator = 0.0
        self.denominator = 0.0

    def update(self, value: float) -> None:
        self.numerator = self.momentum * self.numerator + (1 - self.momentum) * value
        self.denominator = self.momentum * self.denominator + (1 - self.momentum)

    def value(self) -> float:
        return self.numerator / self.denominator if self.denominator else 0.0


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the caller's setting.

    The policy's tensors hold a few dozen numbers: on a busy machine each op
    otherwise waits for torch's intra-op thread pool (measured 1.7 ms instead
    of 2 us per ``log_softmax`` at load 10 on 2 cores). Restoring the setting
    leaves oracles that train networks in the same process unaffected.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _to_numpy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


def _to_torch(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_torch(v) for v in obj)
    return obj


@register("rl")
class REINFORCE(Strategy):
    """REINFORCE controller (Williams 1992; Zoph & Le, ICLR 2017) as in NAS-Bench-201's baseline.

    The policy acts in :class:`engine.envs.ArchitectureEnv` (the environment
    registered as ``nas_engine/Architecture-v0``), built without an oracle:
    ``ask`` rolls out episodes to complete architectures, the search loop
    evaluates them, and ``tell`` delivers the rewards (the objective) and
    makes one policy-gradient step per evaluation, as NAS-Bench-201's
    REINFORCE baseline (Dong & Yang, ICLR 2020): Adam on per-decision logits
    and a reward baseline that is an exponential moving average with momentum
    0.9. Its learning rate of 0.01 barely moves the policy within 100
    evaluations (on the NAS-Bench-201 table it matched random search: 93.75
    vs 93.74 mean test accuracy over 100 seeds), so the default is 0.2 (93.97
    over 50 seeds); ``lr=0.01`` gives the paper's setting.
    The log-probability of a told architecture is recomputed by replaying its
    decisions in the environment, so nothing but the policy, the optimizer
    and the baseline is stored. A rolled-out architecture that was already
    asked is re-rolled (``unique_tries``) because a repeat costs budget and
    teaches nothing new. All sampling uses a ``torch.Generator`` owned by the
    instance.

    Args:
        space: The search space.
        seed: Seed of the strategy's generators.
        **options: Fields of :class:`Args`.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, **options: Any) -> None:
        super().__init__(space, seed)
        self.args = Args(**options)
        self.env = ArchitectureEnv(space)
        self.torch_rng = torch.Generator().manual_seed(self.seed)
        self.policy = Policy(self.env.n_decisions, self.env.n_actions, self.args.init_std, self.torch_rng)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.args.lr)
        self.baseline = EMABaseline(self.args.ema_momentum)

    # -- acting in the environment --------------------------------------------
    @torch.no_grad()
    def _rollout(self) -> Architecture:
        """One episode: sample each decision from the masked policy."""
        obs, info = self.env.reset()
        terminated = False
        while not terminated:
            step = int(obs[-1])
            mask = torch.as_tensor(info["action_mask"], dtype=torch.bool)
            probs = self.policy.step_probabilities(step, mask)
            action = torch.multinomial(probs, 1, generator=self.torch_rng).item()
            obs, _, terminated, _, info = self.env.step(action)
        return info["architecture"]

    def _log_prob(self, arch: Architecture) -> torch.Tensor:
        """log pi(arch): the sum over steps of the chosen options' log-probabilities."""
        _, info = self.env.reset()
        masks = []
        for action in arch.decisions:
            masks.append(torch.as_tensor(info["action_mask"], dtype=torch.bool))
            _, _, _, _, info = self.env.step(action)
        log_probs = self.policy(torch.stack(masks))
        actions = torch.as_tensor(arch.decisions, dtype=torch.long)
        return log_probs.gather(1, actions.unsqueeze(1)).sum()

    @single_thread()
    def _ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        for _ in range(n):
            out.append(self.draw_new(self._rollout, self.args.unique_tries, out))
        return out

    # -- learning -------------------------------------------------------------
    @single_thread()
    def _tell(self, evaluations: Sequence[Evaluation]) -> None:
        for ev in evaluations:
            if ev.ok and ev.objective is not None:
                reward = float(ev.objective)
            elif self.args.failure_reward is not None and ev.status is Status.FAILED:
                reward = float(self.args.failure_reward)
            else:
                continue
            self.baseline.update(reward)
            advantage = reward - self.baseline.value()
            log_prob = self._log_prob(ev.arch)
            policy_loss = -log_prob * advantage
            self.optimizer.zero_grad()
            policy_loss.backward()
            self.optimizer.step()

    def probabilities(self) -> np.ndarray:
        """The policy's option probabilities per decision (unmasked), for inspection and reports."""
        with torch.no_grad():
            return torch.softmax(self.policy.logits, dim=-1).numpy().copy()

    # -- state ----------------------------------------------------------------
    def _state_dict(self) -> dict[str, Any]:
        return {
            "policy": _to_numpy(self.policy.state_dict()),
            "optimizer": _to_numpy(self.optimizer.state_dict()),
            "baseline": (self.baseline.numerator, self.baseline.denominator),
            "torch_rng": self.torch_rng.get_state().numpy().copy(),
        }

    def _load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.policy.load_state_dict(_to_torch(dict(state["policy"])))
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.args.lr)
        self.optimizer.load_state_dict(_to_torch(dict(state["optimizer"])))
        self.baseline = EMABaseline(self.args.ema_momentum)
        self.baseline.numerator, self.baseline.denominator = (float(x) for x in state["baseline"])
        self.torch_rng.set_state(torch.from_numpy(np.asarray(state["torch_rng"], dtype=np.uint8).copy()))
