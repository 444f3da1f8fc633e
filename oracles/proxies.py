"""Zero-cost proxies: training-free scores of an architecture at initialisation, and their oracle.

API:

- :data:`PROXIES`: ``synflow``, ``naswot``, ``jacob_cov``, ``snip``, ``grad_norm``, ``params``,
  ``flops`` and ``nn_degree`` (nb201 only; the topology score of :mod:`engine.features`).
- :func:`compute_proxies` ``(model, batch, names) -> {name: score}``: the network-based
  scores on one mini-batch (``model`` freshly initialised; it is not modified).
- :func:`rank_ensemble` ``({proxy: {arch: score}}) -> {arch: score}``: several proxies' scores of
  the same architectures combined by log-rank aggregation (AZ-NAS), for ``nas-gap``.
- :class:`ProxyOracle` (``oracle=proxy``): ``objective`` is the chosen proxy (higher is
  better for every one of them except ``params``/``flops``, which are returned as they are);
  ``metrics`` hold every requested proxy plus ``params``, ``flops`` and ``latency_ms``.

Every score is a deterministic function of (oracle seed, architecture): the network is
initialised from :func:`oracles.standalone.job_seed` and the mini-batch is the same fixed,
seeded sample of the training split for every architecture, so scores are comparable.

References: synflow (Tanaka et al. 2020), NASWOT (Mellor et al. 2021, the log-determinant of
the ReLU-code kernel) and its first version jacob_cov, snip (Lee et al. 2019) and grad_norm
as used for NAS by Abdelfattah et al. 2021; NN-Degree (Li et al. 2021, FLASH).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.features import topology_features
from engine.spaces import Architecture, NB201Space, SearchSpace
from engine.types import DEFAULT_FIDELITY, Evaluation
from oracles.data import Dataset, dataset_from_config
from oracles.hardware import HardwareCost
from oracles.models import build_model, model_options_for, resolve_device
from oracles.standalone import job_seed

__all__ = ["NETWORK_PROXIES", "PROXIES", "ProxyOracle", "compute_proxies", "rank_ensemble"]

NETWORK_PROXIES: tuple[str, ...] = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm")
PROXIES: tuple[str, ...] = (*NETWORK_PROXIES, "params", "flops", "nn_degree")
# NASWOT's log-determinant of a singular kernel (a network whose ReLUs see identical codes
# for all inputs, e.g. a disconnected cell) is -inf; it is reported as this floor instead,
# so such a network is the worst score rather than a failed evaluation.
NASWOT_FLOOR = -1.0e6


def _weighted_layers(model: nn.Module) -> list[nn.Conv1d | nn.Conv2d | nn.Linear]:
    # typed as the layer classes (not nn.Module) so ``m.weight`` is a Tensor to the type checker
    return [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]


def _synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    """sum |theta * dR/dtheta| with R the output sum of the all-positive network on an all-ones input."""
    net = copy.deepcopy(model).double().eval()  # eval: BN uses its initial (identity) statistics
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad()
    dev = next(net.parameters()).device
    net(torch.ones(1, *input_shape, dtype=torch.float64, device=dev)).sum().backward()
    total = 0.0
    for m in _weighted_layers(net):
        if m.weight.grad is not None:
            total += float((m.weight.detach() * m.weight.grad).abs().sum())
    return total


def _naswot(model: nn.Module, x: torch.Tensor) -> float:
    """log|K| of the Hamming kernel of the binary ReLU codes of the batch."""
    codes: list[torch.Tensor] = []

    def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        codes.append((inputs[0].detach().reshape(len(inputs[0]), -1) > 0).double())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not codes:
        return NASWOT_FLOOR
    c = torch.cat(codes, dim=1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = torch.linalg.slogdet(k)
    return float(logdet) if float(sign) > 0 and math.isfinite(float(logdet)) else NASWOT_FLOOR


def _jacob_cov(model: nn.Module, x: torch.Tensor) -> float:
    """-sum(log(v + k) + 1/(v + k)) over eigenvalues v of the correlation of input Jacobians."""
    xg = x.clone().requires_grad_(True)
    model.zero_grad()
    model(xg).sum().backward()
    jac = xg.grad.reshape(len(x), -1).double()  # type: ignore[union-attr]
    model.zero_grad()
    cov = torch.corrcoef(jac)
    if not torch.isfinite(cov).all():  # a constant Jacobian (dead network) has no correlation
        return NASWOT_FLOOR
    v = torch.linalg.eigvalsh(cov)
    k = 1e-5
    return float(-torch.sum(torch.log(v.clamp_min(0) + k) + 1.0 / (v.clamp_min(0) + k)))


def _loss_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(snip, grad_norm)`` from one cross-entropy gradient on the batch."""
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    snip, norm = 0.0, 0.0
    for m in _weighted_layers(model):
        if m.weight.grad is not None:
            snip += float((m.weight.grad * m.weight.detach()).abs().sum())
            norm += float(m.weight.grad.norm())
    model.zero_grad()
    return snip, norm


def compute_proxies(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], names: Sequence[str] = NETWORK_PROXIES
) -> dict[str, float]:
    """The network-based proxies in ``names`` on one mini-batch (train mode, as at the start of training).

    The model's weights are not changed (synflow works on a copy); gradients are cleared.

    Raises:
        ValueError: for a name that is not a network proxy.
    """
    unknown = sorted(set(names) - set(NETWORK_PROXIES))
    if unknown:
        raise ValueError(f"unknown network proxy {unknown}; network proxies are {list(NETWORK_PROXIES)}")
    x, y = batch
    out: dict[str, float] = {}
    model.train()
    if "naswot" in names:
        out["naswot"] = _naswot(copy.deepcopy(model), x)  # copy: the forward pass updates BN statistics
    if "jacob_cov" in names:
        out["jacob_cov"] = _jacob_cov(copy.deepcopy(model), x)
    if "snip" in names or "grad_norm" in names:
        snip, norm = _loss_grads(copy.deepcopy(model), x, y)
        out.update({k: v for k, v in (("snip", snip), ("grad_norm", norm)) if k in names})
    if "synflow" in names:
        out["synflow"] = _synflow(model, tuple(x.shape[1:]))
    return out


def rank_ensemble(scores: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Combine proxies by log-rank aggregation over the architectures that every proxy scored.

    Each proxy ranks the architectures (1 for the lowest score, ``n`` for the highest; ties
    share their mean rank) and an architecture's ensemble score is the sum of ``log(rank / n)``
    over the proxies, as AZ-NAS (Lee & Ham, CVPR 2024) aggregates its four proxies. The log
    makes a poor rank on one proxy cost more than a good rank on another earns, so the
    ensemble favours architectures that no proxy rates badly. Ranks are relative to the
    architectures given, which is why this is a measurement over a set, not a per-architecture
    oracle. Every proxy is taken as higher-is-better (``params`` and ``flops`` included).

    Raises:
        ValueError: with fewer than two proxies or fewer than two architectures in common.
    """
    from scipy.stats import rankdata

    if len(scores) < 2:
        raise ValueError(f"an ensemble needs at least two proxies, got {sorted(scores)}")
    common = sorted(set.intersection(*(set(v) for v in scores.values())))
    if len(common) < 2:
        raise ValueError("an ensemble needs at least two architectures scored by every proxy")
    n = len(common)
    total = np.zeros(n)
    for values in scores.values():
        total += np.log(rankdata([values[a] for a in common]) / n)
    return dict(zip(common, map(float, total)))


class ProxyOracle:
    """Scores architectures with zero-cost proxies at initialisation (seconds, not minutes).

    Args:
        space: The search space.
        dataset: Dataset config mapping, name or :class:`~oracles.data.Dataset` (the
            mini-batch comes from its training split).
        proxy: The proxy that is the objective, one of :data:`PROXIES`.
        metrics: Further proxies to report as metrics (``params``, ``flops`` and
            ``latency_ms`` are always there).
        batch_size: Examples in the mini-batch.
        seed: Seed of the network initialisations and of the mini-batch.
        model: Options of :func:`oracles.models.build_model`.
        device: ``auto``, ``cpu``, ``cuda``...
        hardware: Options of :class:`~oracles.hardware.HardwareCost`.
    """

    def __init__(
        self,
        space: SearchSpace,
        dataset: Dataset | Mapping[str, Any] | str = "digits",
        proxy: str = "synflow",
        metrics: Sequence[str] = ("naswot", "snip", "grad_norm", "nn_degree"),
        batch_size: int = 64,
        seed: int = 0,
        model: Mapping[str, Any] | None = None,
        device: str = "auto",
        hardware: Mapping[str, Any] | None = None,
    ) -> None:
        if proxy not in PROXIES:
            raise ValueError(f"oracle.proxy must be one of {list(PROXIES)}, got {proxy!r}")
        bad = sorted(set(metrics) - set(PROXIES))
        if bad:
            raise ValueError(f"oracle.metrics has unknown proxies {bad}; proxies are {list(PROXIES)}")
        wanted = list(dict.fromkeys([proxy, *metrics]))
        if "nn_degree" in wanted and not isinstance(space, NB201Space):
            if proxy == "nn_degree":
                raise ValueError(f"oracle.proxy=nn_degree is defined for the nb201 space only, not {space.name!r}")
            wanted.remove("nn_degree")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(f"oracle.batch_size must be an integer >= 2, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"oracle.seed must be a non-negative integer, got {seed!r}")
        self.space = space
        self.proxy = proxy
        self.names = wanted
        self.seed = seed
        self.dataset = dataset_from_config(dataset)
        self.model_options = model_options_for(space, model)
        self.device = resolve_device(device)
        self.hardware = HardwareCost(
            space, self.dataset.input_shape, self.dataset.num_classes, self.model_options,
            **{"device": device, **dict(hardware or {})},
        )
        x, y = self.dataset.train
        idx = np.random.default_rng(seed).permutation(len(y))[: min(batch_size, len(y))]
        self.batch = (x[idx].to(self.device), y[idx].to(self.device))

    def scores(self, arch: Architecture) -> dict[str, float]:
        """Every configured proxy, plus params, FLOPs and latency, for one architecture."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(job_seed(self.seed, arch.string))
            model = build_model(
                self.space, arch, self.dataset.input_shape, self.dataset.num_classes, **self.model_options
            ).to(self.device)
        out = compute_proxies(model, self.batch, [n for n in self.names if n in NETWORK_PROXIES])
        out.update(self.hardware(arch, model))
        if "nn_degree" in self.names:
            out["nn_degree"] = topology_features(arch)["nn_degree"]
        return out

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        """Score each architecture; one that raises becomes a failed evaluation."""
        out = []
        for arch in archs:
            start = time.perf_counter()
            try:
                if not self.space.contains(arch):
                    raise ValueError(f"{arch.string!r} is not an architecture of space {self.space.name!r}")
                scores = self.scores(arch)
            except Exception as exc:  # a proxy that breaks on one network must not stop the search
                out.append(Evaluation.failure(arch, DEFAULT_FIDELITY, f"{type(exc).__name__}: {exc}",
                                              time.perf_counter() - start))
                continue
            finite = {k: v for k, v in scores.items() if math.isfinite(v)}
            out.append(Evaluation(arch=arch, objective=scores[self.proxy], metrics=finite,
                                  cost=time.perf_counter() - start))
        return out
