"""A small MLP ensemble in numpy, shared by the model-based strategies (smbo, pnas, gap_aware).

Why numpy and not torch or scikit-learn: the engine must not import torch for
these strategies, and fitting five scikit-learn ``MLPRegressor`` one after the
other costs tens of milliseconds each, per ask. Here the members are stacked
into 3-D weight tensors and trained together with full-vectorised Adam on
minibatches of bounded size for a fixed number of steps, so one refit costs
the same at 50 and at 5,000 evaluations (the history is subsampled, never
iterated over in full). Every random draw (initialisation, minibatches) comes
from the caller's generator, so a refit is deterministic given the strategy's
RNG state, which is what makes resumed searches identical to uninterrupted ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from engine.spaces import Architecture, SearchSpace


class MLPEnsemble:
    """An ensemble of ReLU MLP regressors trained jointly.

    Members differ by their initialisation and minibatch order (as in BANANAS,
    White et al. 2021); their spread is the uncertainty used by acquisitions.

    Args:
        members: Number of networks.
        hidden: Widths of the hidden layers.
        steps: Adam steps per fit (the refit cost does not grow with the data).
        batch_size: Minibatch size (the whole set when it is smaller).
        lr: Adam learning rate.
        weight_decay: L2 penalty on the weights.
    """

    def __init__(
        self,
        members: int = 5,
        hidden: Sequence[int] = (32, 32),
        steps: int = 200,
        batch_size: int = 128,
        lr: float = 0.01,
        weight_decay: float = 1e-4,
    ) -> None:
        if members < 1 or steps < 1 or batch_size < 1 or not hidden or min(hidden) < 1 or lr <= 0:
            raise ValueError(
                "MLPEnsemble needs members, steps, batch_size and hidden widths >= 1 and lr > 0, got"
                f" members={members}, steps={steps}, batch_size={batch_size}, hidden={list(hidden)}, lr={lr}"
            )
        self.members = int(members)
        self.hidden = tuple(int(h) for h in hidden)
        self.steps = int(steps)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.params: list[np.ndarray] = []
        self._x_mu = np.zeros(0)
        self._x_sd = np.ones(0)
        self._y_mu = 0.0
        self._y_sd = 1.0

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> MLPEnsemble:
        """Fit all members to ``(x, y)`` from a fresh initialisation drawn from ``rng``.

        Raises:
            ValueError: if ``x`` and ``y`` do not match or are empty.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).ravel()
        if x.ndim != 2 or len(x) != len(y) or len(y) == 0:
            raise ValueError(f"fit needs x of shape (n, d) and y of shape (n,), n >= 1; got {x.shape}, {y.shape}")
        self._x_mu = x.mean(0)
        self._x_sd = x.std(0) + 1e-6
        self._y_mu = float(y.mean())
        self._y_sd = float(y.std()) + 1e-6
        # float32 halves the cost of every matmul and Adam update; targets are standardised
        # ranks or accuracies, far from float32's precision limits.
        xs = ((x - self._x_mu) / self._x_sd).astype(np.float32)
        ys = ((y - self._y_mu) / self._y_sd).astype(np.float32)
        m = self.members
        sizes = [x.shape[1], *self.hidden, 1]
        params: list[np.ndarray] = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            params.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(m, fan_in, fan_out)).astype(np.float32))
            params.append(np.zeros((m, 1, fan_out), dtype=np.float32))
        first = [np.zeros_like(p) for p in params]
        second = [np.zeros_like(p) for p in params]
        n = len(ys)
        b = min(self.batch_size, n)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        for t in range(1, self.steps + 1):
            idx = rng.integers(0, n, size=(m, b)) if b < n else np.broadcast_to(np.arange(n), (m, n))
            xb = xs[idx]  # (m, b, d)
            yb = ys[idx][..., None]  # (m, b, 1)
            acts = [xb]
            h = xb
            for layer in range(len(sizes) - 2):
                h = np.maximum(h @ params[2 * layer] + params[2 * layer + 1], 0.0)
                acts.append(h)
            out = h @ params[-2] + params[-1]
            grad = 2.0 * (out - yb) / b
            grads: list[np.ndarray] = [np.empty(0)] * len(params)
            for layer in range(len(sizes) - 2, -1, -1):
                a = acts[layer]
                grads[2 * layer] = a.transpose(0, 2, 1) @ grad + self.weight_decay * params[2 * layer]
                grads[2 * layer + 1] = grad.sum(1, keepdims=True)
                if layer > 0:
                    grad = (grad @ params[2 * layer].transpose(0, 2, 1)) * (acts[layer] > 0)
            c1 = 1.0 - beta1**t
            c2 = 1.0 - beta2**t
            for p, g, m1, m2 in zip(params, grads, first, second):
                m1 *= beta1
                m1 += (1 - beta1) * g
                m2 *= beta2
                m2 += (1 - beta2) * g * g
                p -= self.lr * (m1 / c1) / (np.sqrt(m2 / c2) + eps)
        self.params = params
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Member predictions, shape ``(members, n)``, in the units of ``y``.

        Raises:
            RuntimeError: before :meth:`fit`.
        """
        if not self.params:
            raise RuntimeError("MLPEnsemble.predict called before fit")
        h = ((np.asarray(x, dtype=np.float64) - self._x_mu) / self._x_sd).astype(np.float32)
        h = np.broadcast_to(h, (self.members, *h.shape))
        n_layers = len(self.params) // 2
        for layer in range(n_layers):
            h = h @ self.params[2 * layer] + self.params[2 * layer + 1]
            if layer < n_layers - 1:
                h = np.maximum(h, 0.0)
        return h[..., 0].astype(np.float64) * self._y_sd + self._y_mu


def acquisition(preds: np.ndarray, kind: str, rng: np.random.Generator, beta: float = 1.0) -> np.ndarray:
    """Score candidates from ensemble predictions ``(members, n)``; higher is better.

    ``its`` is independent Thompson sampling (BANANAS): each candidate draws from a
    normal with the ensemble's mean and spread. ``ucb`` is mean + beta * std, and
    ``mean`` is pure exploitation.

    Raises:
        ValueError: for an unknown ``kind``.
    """
    mu = preds.mean(0)
    sd = preds.std(0)
    if kind == "its":
        return mu + sd * rng.standard_normal(mu.shape)
    if kind == "ucb":
        return mu + beta * sd
    if kind == "mean":
        return mu
    raise ValueError(f"unknown acquisition {kind!r}; choose 'its', 'ucb' or 'mean'")


class Encoder:
    """Encodings of architectures for a surrogate, each computed once.

    A surrogate refit on every ask re-encodes the whole history; caching per
    architecture keeps that cost flat as the history grows.

    Args:
        space: The space whose ``encode`` is used.
        encoding: One of ``space.encodings``.
    """

    def __init__(self, space: SearchSpace, encoding: str) -> None:
        self.space = space
        self.encoding = encoding
        self._codes: dict[Architecture, np.ndarray] = {}

    def __call__(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The stacked encodings of ``archs``, one row each."""
        out = []
        for a in archs:
            code = self._codes.get(a)
            if code is None:
                code = self._codes[a] = self.space.encode(a, self.encoding)
            out.append(code)
        return np.stack(out)


ACQUISITIONS = ("its", "ucb", "mean")
TARGETS = ("raw", "rank")


def check_options(acquisition: str, target: str) -> None:
    """Validate the surrogate options every surrogate-driven strategy takes, at construction.

    Raises:
        ValueError: naming the option and the allowed values.
    """
    if acquisition not in ACQUISITIONS:
        raise ValueError(f"acquisition must be one of {list(ACQUISITIONS)}, got {acquisition!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}")


def transform_targets(y: np.ndarray, kind: str) -> np.ndarray:
    """Targets as the surrogate sees them.

    ``rank`` maps objectives to normal scores of their ranks: accuracies of a
    cell space are skewed (a long tail of broken cells), and with raw values the
    squared loss spends the network on that tail instead of on the few tenths of
    a percent that separate the good architectures.

    Raises:
        ValueError: for an unknown ``kind``.
    """
    y = np.asarray(y, dtype=np.float64)
    if kind == "raw":
        return y
    if kind == "rank":
        from scipy.stats import norm, rankdata

        return norm.ppf(rankdata(y) / (len(y) + 1))
    raise ValueError(f"unknown target transform {kind!r}; choose one of {list(TARGETS)}")
