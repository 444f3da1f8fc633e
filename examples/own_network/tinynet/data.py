"""The example's own data: 1-D signals of four classes, written as a ``.npz`` file.

Each class is a different pair of frequencies with a random phase and amplitude,
plus noise and a random shift, so the classes are separable by what a
convolution sees, and small networks differ in how well they do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

FREQUENCIES = ((8.0, 16.0), (12.0, 16.0), (8.0, 24.0), (12.0, 24.0))


def make_signals(n: int = 1200, length: int = 64, noise: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` signals of ``length`` samples (float32, shape ``(n, length)``) and their labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(len(FREQUENCIES), size=n)
    t = np.arange(length) / length
    x = np.empty((n, length), dtype=np.float32)
    for i, label in enumerate(y):
        f1, f2 = FREQUENCIES[label]
        phase = rng.uniform(0, 2 * np.pi, size=2)
        amp = rng.uniform(0.5, 1.5, size=2)
        signal = amp[0] * np.sin(2 * np.pi * f1 * t + phase[0]) + amp[1] * np.sin(2 * np.pi * f2 * t + phase[1])
        x[i] = np.roll(signal, int(rng.integers(length))) + noise * rng.normal(size=length)
    return x, y.astype(np.int64)


def main(argv: list[str] | None = None) -> None:
    """``tinynet-data OUT.npz [--n N] [--noise S] [--seed S]``: write the arrays ``x`` and ``y``."""
    parser = argparse.ArgumentParser(prog="tinynet-data", description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=1200)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    x, y = make_signals(args.n, noise=args.noise, seed=args.seed)
    np.savez(args.out, x=x, y=y)
    print(f"wrote {args.out}: x {x.shape}, y {y.shape} ({np.bincount(y).tolist()} per class)")


if __name__ == "__main__":
    main()
