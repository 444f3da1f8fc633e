"""Datasets for the torch oracles: fixed train/val/test splits as tensors, validated at load time.

API (what the supernet, stand-alone and proxy oracles rely on):

- :class:`Dataset`: ``train``, ``val``, ``test`` as ``(X float32, y int64)`` tensor pairs,
  ``num_classes``, ``input_shape`` (``(C, H, W)`` for images, ``(C, L)`` for 1-D signals),
  ``name`` and ``fingerprint`` (sha256 of the arrays; supernet checkpoints store it so a
  checkpoint trained on other data is refused).
- :func:`load_dataset` ``(name, **options) -> Dataset`` for the built-in sources:
  ``digits`` (scikit-learn's 8x8 digits), ``mnist1d`` (generated offline by the ``mnist1d``
  package), ``synthetic`` (generated, for tests), ``npz`` (a user's arrays) and ``cifar10``
  (a local copy in the standard python-pickle format; never downloaded).
- :func:`dataset_from_config`: the same from a config mapping ``{name: ..., **options}``
  (what ``conf/dataset/*.yaml`` holds), a name, or an already built :class:`Dataset`.

Splits are fixed by ``split_seed`` and independent of any training seed, so two training
seeds of one architecture see the same data and differ only in their own randomness.
Every problem with the data (missing file, wrong shapes, labels out of range, NaNs)
raises a one-line :class:`ValueError` naming it, before any training starts.
Loaded datasets are cached per process (keyed by the options), which lets each worker of
a process pool load its data once.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

Split = tuple[torch.Tensor, torch.Tensor]

__all__ = ["DATASETS", "Dataset", "dataset_from_config", "load_dataset"]


@dataclass(frozen=True)
class Dataset:
    """A classification dataset with fixed splits, checked on construction.

    Attributes:
        name: Source name (``digits``, ``mnist1d``...).
        train: ``(X, y)`` used for training (and BN recalibration).
        val: ``(X, y)`` whose accuracy is the objective a search sees.
        test: ``(X, y)`` for report-only accuracy; never shown to a strategy.
        num_classes: Labels are ``0 .. num_classes - 1``.
        input_shape: Shape of one example: ``(C, H, W)`` or ``(C, L)``.
        fingerprint: sha256 over the arrays and shapes (computed, not passed).

    Raises:
        ValueError: naming the split and the problem (shape, dtype, label range,
            non-finite values, empty split).
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    fingerprint: str = field(init=False, default="")

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.input_shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(f"dataset {self.name!r}: input_shape must be (C, L) or (C, H, W), got {shape}")
        object.__setattr__(self, "input_shape", shape)
        if isinstance(self.num_classes, bool) or int(self.num_classes) < 2:
            raise ValueError(f"dataset {self.name!r}: num_classes must be >= 2, got {self.num_classes!r}")
        digest = hashlib.sha256(json.dumps([self.num_classes, list(shape)]).encode())
        for split in ("train", "val", "test"):
            x, y = _check_split(self.name, split, getattr(self, split), shape, int(self.num_classes))
            object.__setattr__(self, split, (x, y))
            digest.update(x.numpy().tobytes())
            digest.update(y.numpy().tobytes())
        object.__setattr__(self, "fingerprint", digest.hexdigest())

    @property
    def dim(self) -> int:
        """Spatial dimensions of one example: 1 for signals, 2 for images."""
        return len(self.input_shape) - 1

    @property
    def in_channels(self) -> int:
        """Channels of one example."""
        return self.input_shape[0]

    def describe(self) -> str:
        """One line: name, shapes and split sizes."""
        return (
            f"{self.name}: input {self.input_shape}, {self.num_classes} classes,"
            f" train/val/test {len(self.train[1])}/{len(self.val[1])}/{len(self.test[1])}"
        )


def _tensors(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> tuple[Split, Split, Split]:
    """The loaders' NumPy splits as tensor pairs, the type :class:`Dataset` declares for its fields.

    ``torch.as_tensor`` is the conversion :func:`_check_split` applies to arrays itself, so the
    tensors (and the checks run on them) are the same as passing the arrays directly.
    """
    return (
        (torch.as_tensor(train[0]), torch.as_tensor(train[1])),
        (torch.as_tensor(val[0]), torch.as_tensor(val[1])),
        (torch.as_tensor(test[0]), torch.as_tensor(test[1])),
    )


def _check_split(name: str, split: str, pair: Any, shape: tuple[int, ...], num_classes: int) -> Split:
    where = f"dataset {name!r}, split {split!r}"
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{where}: expected an (X, y) pair")
    x = torch.as_tensor(np.asarray(pair[0]) if not isinstance(pair[0], torch.Tensor) else pair[0])
    y = torch.as_tensor(np.asarray(pair[1]) if not isinstance(pair[1], torch.Tensor) else pair[1])
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"{where}: X has shape {tuple(x.shape)}, expected (N, {', '.join(map(str, shape))})")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{where}: y has shape {tuple(y.shape)}, expected ({len(x)},) to match X")
    if len(y) == 0:
        raise ValueError(f"{where}: split is empty")
    if y.is_floating_point():
        if not torch.all(y == torch.round(y)):
            raise ValueError(f"{where}: labels must be integers")
    elif y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"{where}: labels must be integers, got {y.dtype}")
    y = y.to(torch.int64)
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"{where}: labels must lie in [0, {num_classes - 1}], found {lo}..{hi}")
    if x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{where}: X must be real numbers, got {x.dtype}")
    x = x.to(torch.float32).contiguous()
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{where}: X has {bad} NaN or infinite value(s)")
    return x, y.contiguous()


def _split3(
    x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, split_seed: int, name: str
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Stratified train/val/test split fixed by ``split_seed`` (scikit-learn's splitter)."""
    for key, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < v < 1:
            raise ValueError(f"dataset {name!r}: {key} must lie in (0, 1), got {v!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"dataset {name!r}: val_fraction + test_fraction must be < 1")
    counts = np.bincount(y) if y.size and y.min() >= 0 else np.array([0])
    stratify = y if counts[counts > 0].min() >= 3 else None
    try:
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=test_fraction, random_state=split_seed, stratify=stratify
        )
        rel = val_fraction / (1 - test_fraction)
        x_tr, x_val, y_tr, y_val = train_test_split(
            x_rest, y_rest, test_size=rel, random_state=split_seed, stratify=y_rest if stratify is not None else None
        )
    except ValueError as exc:
        raise ValueError(f"dataset {name!r}: cannot split {len(y)} examples: {exc}") from None
    return (x_tr, y_tr), (x_val, y_val), (x_test, y_test)


def _subsample(x: np.ndarray, y: np.ndarray, size: int | None, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The first ``size`` examples of a seeded permutation (``None``: all)."""
    if size is None:
        return x, y
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"dataset {name!r}: train_size must be a positive integer or null, got {size!r}")
    if size >= len(y):
        return x, y
    idx = np.random.default_rng(seed).permutation(len(y))[:size]
    return x[idx], y[idx]


def _add_noise(
    splits: tuple[tuple[np.ndarray, np.ndarray], ...], noise: float, seed: int, name: str
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Fixed Gaussian input noise (seeded once, the same for every training run)."""
    if noise < 0:
        raise ValueError(f"dataset {name!r}: noise must be >= 0, got {noise!r}")
    if noise == 0:
        return splits
    rng = np.random.default_rng([seed, 7919])
    return tuple((x + rng.normal(0.0, noise, size=x.shape).astype(x.dtype), y) for x, y in splits)


# -- sources ---------------------------------------------------------------------------------


def load_digits(
    split_seed: int = 0,
    val_fraction: float = 0.4,
    test_fraction: float = 0.2,
    train_size: int | None = None,
    noise: float = 0.0,
) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), scaled to [0, 1].

    The default split (718 / 719 / 360) gives validation the largest share: good
    cells differ by about 1 % on digits, and a smaller validation set's sampling
    noise alone is that large, so architectures could not be ranked by it
    (docs/standalone_recipe.md: seed-to-seed Kendall tau 0.11 with 449 validation
    images, 0.56 with 719, same model).

    Args:
        split_seed: Seed of the stratified train/val/test split.
        val_fraction: Share of the examples held out for validation (the search objective).
        test_fraction: Share held out for the report-only test accuracy.
        train_size: Keep only this many training examples (``None``: all); a harder task.
        noise: Standard deviation of fixed Gaussian noise added to every image; a harder task.
    """
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    x = (bunch.data.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    tr, va, te = _split3(x, y, val_fraction, test_fraction, split_seed, "digits")
    tr = _subsample(*tr, train_size, split_seed, "digits")
    tr, va, te = _add_noise((tr, va, te), noise, split_seed, "digits")
    return Dataset("digits", *_tensors(tr, va, te), 10, (1, 8, 8))


def load_mnist1d(
    num_samples: int = 6000,
    generator_seed: int = 42,
    split_seed: int = 0,
    val_fraction: float = 1 / 6,
    test_fraction: float = 1 / 6,
    train_size: int | None = None,
) -> Dataset:
    """MNIST-1D (Greydanus 2020): 10 classes of length-40 signals, generated offline.

    The ``mnist1d`` package seeds numpy's and Python's global generators while it
    generates; their states are saved and restored around the call, so loading this
    dataset changes no global random state.

    Args:
        num_samples: Examples generated (the package's default is 5,000; 6,000 gives a
            4,000 / 1,000 / 1,000 split with the default fractions).
        generator_seed: Seed the package generates the signals with.
        split_seed: Seed of the stratified train/val/test split.
        val_fraction: Share held out for validation.
        test_fraction: Share held out for the report-only test accuracy.
        train_size: Keep only this many training examples (``None``: all).
    """
    import random

    from mnist1d.data import get_dataset_args, make_dataset

    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 100:
        raise ValueError(f"dataset 'mnist1d': num_samples must be an integer >= 100, got {num_samples!r}")
    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = int(generator_seed)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = np.concatenate([raw["x"], raw["x_test"]]).astype(np.float32)[:, None, :]
    y = np.concatenate([raw["y"], raw["y_test"]]).astype(np.int64)
    tr, va, te = _split3(x, y, val_fraction, test_fraction, split_seed, "mnist1d")
    tr = _subsample(*tr, train_size, split_seed, "mnist1d")
    return Dataset("mnist1d", *_tensors(tr, va, te), 10, (1, x.shape[-1]))


def load_synthetic(
    num_samples: int = 512,
    num_classes: int = 4,
    shape: tuple[int, ...] | list[int] = (1, 8, 8),
    noise: float = 1.0,
    seed: int = 0,
    val_fraction: float = 0.25,
    test_fraction: float = 0.25,
) -> Dataset:
    """Generated data for fast tests: one random template per class plus Gaussian noise.

    Learnable (the class is the nearest template) and as small as a test needs;
    ``shape`` of length 2 gives 1-D signals, of length 3 images.

    Args:
        num_samples: Total examples.
        num_classes: Number of classes (templates).
        shape: One example's shape, ``(C, L)`` or ``(C, H, W)``.
        noise: Noise standard deviation relative to the unit-variance templates.
        seed: Seed of the templates, the noise and the split.
        val_fraction: Share held out for validation.
        test_fraction: Share held out for testing.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"dataset 'synthetic': shape must be (C, L) or (C, H, W), got {list(shape)}")
    if num_classes < 2 or num_samples < 4 * num_classes:
        raise ValueError(
            f"dataset 'synthetic': need num_classes >= 2 and num_samples >= 4 * num_classes,"
            f" got {num_classes} and {num_samples}"
        )
    rng = np.random.default_rng(seed)
    templates = rng.normal(size=(num_classes, *shape)).astype(np.float32)
    y = np.arange(num_samples) % num_classes
    y = y[rng.permutation(num_samples)].astype(np.int64)
    x = (templates[y] + noise * rng.normal(size=(num_samples, *shape))).astype(np.float32)
    tr, va, te = _split3(x, y, val_fraction, test_fraction, seed, "synthetic")
    return Dataset("synthetic", *_tensors(tr, va, te), num_classes, shape)


_LAYOUTS = ("auto", "nchw", "nhwc", "nhw", "ncl", "flat")


def _to_layout(x: np.ndarray, layout: str, path: Path, key: str) -> np.ndarray:
    """Arrange a user's array as (N, C, H, W) or (N, C, L)."""
    where = f"dataset 'npz' ({path}, array {key!r})"
    if layout not in _LAYOUTS:
        raise ValueError(f"dataset 'npz': layout must be one of {list(_LAYOUTS)}, got {layout!r}")
    if layout == "auto":
        if x.ndim == 4:
            layout = "nhwc" if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4) else "nchw"
        else:
            layout = {3: "nhw", 2: "flat"}.get(x.ndim, "?")
    need = {"nchw": 4, "nhwc": 4, "nhw": 3, "ncl": 3, "flat": 2}.get(layout)
    if need is None or x.ndim != need:
        raise ValueError(
            f"{where}: shape {x.shape} does not fit layout {layout!r}; expected images N,C,H,W or N,H,W,C,"
            " N,H,W, signals N,C,L, or flat vectors N,D"
        )
    if layout == "nhwc":
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if layout in ("nhw", "flat"):
        return x[:, None]
    return x


def load_npz(
    path: str,
    layout: str = "auto",
    x_key: str = "x",
    y_key: str = "y",
    num_classes: int | None = None,
    normalize: bool = True,
    split_seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> Dataset:
    """A user's own arrays from a ``.npz`` file (read with ``allow_pickle=False``).

    The file holds either ``x`` and ``y`` (split here by ``split_seed``) or given splits
    ``x_train, y_train, x_val, y_val`` and optionally ``x_test, y_test`` (without a test
    split, half of the validation split becomes the test split). Images may be
    ``N,C,H,W``, ``N,H,W,C`` or ``N,H,W``; 1-D signals ``N,C,L`` (``layout: ncl``); flat
    vectors ``N,D`` become one-channel signals of length ``D``.

    Args:
        path: The ``.npz`` file.
        layout: ``auto`` (guess from the shape) or one of ``nchw, nhwc, nhw, ncl, flat``.
        x_key: Name of the inputs array (without given splits).
        y_key: Name of the labels array (without given splits).
        num_classes: Number of classes; ``None``: ``max(label) + 1``.
        normalize: Standardise each channel with the training split's mean and std.
        split_seed: Seed of the split when the file has no given splits.
        val_fraction: Validation share when splitting here.
        test_fraction: Test share when splitting here.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(f"dataset 'npz': file not found: {p} (set dataset.path)")
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"dataset 'npz': cannot read {p}: {exc}") from None
    given = "x_train" in arrays
    if given:
        for k in ("x_train", "y_train", "x_val", "y_val"):
            if k not in arrays:
                raise ValueError(f"dataset 'npz': {p} has x_train but no {k!r}; arrays are {sorted(arrays)}")
        if ("x_test" in arrays) != ("y_test" in arrays):
            raise ValueError(f"dataset 'npz': {p} must hold both x_test and y_test or neither")
        raw = [(arrays["x_train"], arrays["y_train"], "x_train"), (arrays["x_val"], arrays["y_val"], "x_val")]
        if "x_test" in arrays:
            raw.append((arrays["x_test"], arrays["y_test"], "x_test"))
    else:
        for k in (x_key, y_key):
            if k not in arrays:
                raise ValueError(f"dataset 'npz': {p} has no array {k!r}; arrays are {sorted(arrays)}")
        raw = [(arrays[x_key], arrays[y_key], x_key)]
    parts = []
    for x, y, key in raw:
        if x.ndim == 0 or y.ndim == 0 or len(x) == 0:
            raise ValueError(
                f"dataset 'npz' ({p}, array {key!r}): needs one example per row, got shapes {x.shape} and {y.shape}"
            )
        if x.dtype.kind not in "fiub":
            raise ValueError(f"dataset 'npz' ({p}, array {key!r}): inputs must be numeric, got dtype {x.dtype}")
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
            raise ValueError(f"dataset 'npz' ({p}): labels for {key!r} must be integers, got dtype {y.dtype}")
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(
                f"dataset 'npz' ({p}): labels for {key!r} have shape {y.shape}, expected ({len(x)},)"
            )
        parts.append((_to_layout(x.astype(np.float32), layout, p, key), y.astype(np.int64)))
    shapes = {tuple(x.shape[1:]) for x, _ in parts}
    if len(shapes) > 1:
        raise ValueError(f"dataset 'npz' ({p}): splits have different example shapes {sorted(shapes)}")
    if given:
        tr, va = parts[0], parts[1]
        if len(parts) == 3:
            te = parts[2]
        else:
            half = len(va[1]) // 2
            va, te = (va[0][:half], va[1][:half]), (va[0][half:], va[1][half:])
    else:
        x, y = parts[0]
        if np.any(y < 0):
            raise ValueError(f"dataset 'npz' ({p}): labels must be >= 0, found {int(y.min())}")
        tr, va, te = _split3(x, y, val_fraction, test_fraction, split_seed, "npz")
    if num_classes is None:
        num_classes = int(max(int(s[1].max()) for s in (tr, va, te) if len(s[1])) + 1)
    if normalize and np.isfinite(tr[0]).all():
        axes = (0, *range(2, tr[0].ndim))
        mean = tr[0].mean(axis=axes, keepdims=True)
        std = tr[0].std(axis=axes, keepdims=True)
        std[std == 0] = 1.0
        tr, va, te = tuple((((a - mean) / std).astype(np.float32), b) for a, b in (tr, va, te))
    return Dataset("npz", *_tensors(tr, va, te), num_classes, tuple(tr[0].shape[1:]))


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: no other class can be built.

    CIFAR-10's python batches are pickles of a dict of bytes, lists and one uint8
    array. Refusing every other global means a crafted file cannot run code.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as fh:
            batch = _ArrayOnlyUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"dataset 'cifar10': cannot read {path}: {exc}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"dataset 'cifar10': {path} is not a CIFAR-10 batch (expected a dict)")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"dataset 'cifar10': {path} has no 'data' or 'labels' entry")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"dataset 'cifar10': {path} data has shape {data.shape}, expected (N, 3072)")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),):
        raise ValueError(f"dataset 'cifar10': {path} has {labels.size} labels for {len(data)} images")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(
    root: str,
    train_size: int | None = None,
    val_size: int = 5000,
    test_size: int | None = None,
    split_seed: int = 0,
) -> Dataset:
    """CIFAR-10 from a local copy of the python version (``cifar-10-batches-py``); never downloaded.

    The pickled batches are read with an unpickler that builds numpy arrays only.
    Validation examples are held out of the five training batches; ``test_batch`` is the test split.

    Args:
        root: The ``cifar-10-batches-py`` directory, or a directory containing it.
        train_size: Keep this many training examples (``None``: all the rest); CPU runs want a few thousand.
        val_size: Examples held out from the training batches for validation.
        test_size: Keep this many test examples (``None``: all).
        split_seed: Seed of the hold-out and subsampling.
    """
    base = Path(root).expanduser()
    if (base / "cifar-10-batches-py").is_dir():
        base = base / "cifar-10-batches-py"
    if not base.is_dir():
        raise ValueError(f"dataset 'cifar10': directory not found: {base} (set dataset.root; nothing is downloaded)")
    names = [f"data_batch_{i}" for i in range(1, 6)]
    present = [n for n in names if (base / n).is_file()]
    if not present:
        raise ValueError(f"dataset 'cifar10': no data_batch_* files in {base}")
    if not (base / "test_batch").is_file():
        raise ValueError(f"dataset 'cifar10': {base / 'test_batch'} not found")
    xs, ys = zip(*(_read_cifar_batch(base / n) for n in present))
    x, y = np.concatenate(xs), np.concatenate(ys)
    x_te, y_te = _read_cifar_batch(base / "test_batch")
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 < val_size < len(y):
        raise ValueError(f"dataset 'cifar10': val_size must be an integer in [1, {len(y) - 1}], got {val_size!r}")
    perm = np.random.default_rng(split_seed).permutation(len(y))
    va_idx, tr_idx = perm[:val_size], perm[val_size:]
    tr = _subsample(x[tr_idx], y[tr_idx], train_size, split_seed, "cifar10")
    te = _subsample(x_te, y_te, test_size, split_seed + 1, "cifar10")
    mean = tr[0].mean(axis=(0, 2, 3), keepdims=True) / 255.0
    std = tr[0].std(axis=(0, 2, 3), keepdims=True) / 255.0
    std[std == 0] = 1.0

    def norm(a: np.ndarray) -> np.ndarray:
        return ((a.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)

    splits = _tensors((norm(tr[0]), tr[1]), (norm(x[va_idx]), y[va_idx]), (norm(te[0]), te[1]))
    return Dataset("cifar10", *splits, 10, (3, 32, 32))


DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "mnist1d": load_mnist1d,
    "synthetic": load_synthetic,
    "npz": load_npz,
    "cifar10": load_cifar10,
}


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, frozen: tuple[tuple[str, Any], ...]) -> Dataset:
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in frozen}
    return DATASETS[name](**options)


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load a built-in dataset by name (cached per process).

    Args:
        name: One of :data:`DATASETS` (``digits``, ``mnist1d``, ``synthetic``, ``npz``, ``cifar10``).
        **options: Keyword options of that loader (see ``load_<name>``).

    Raises:
        ValueError: for an unknown name or option, or bad data; the message names it.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {sorted(DATASETS)}")
    params = inspect.signature(DATASETS[name]).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(f"dataset {name!r} has no option(s) {unknown}; options are {sorted(params)}")
    try:
        return _load_cached(name, _freeze(options))
    except TypeError as exc:  # unhashable option values
        raise ValueError(f"dataset {name!r}: bad option value: {exc}") from None


def dataset_from_config(config: Dataset | Mapping[str, Any] | str) -> Dataset:
    """A :class:`Dataset` from a config mapping ``{name: ..., **options}``, a name, or a dataset.

    This is what oracles call with their ``dataset`` argument (Hydra passes the
    ``dataset`` config group as a plain dict).
    """
    if isinstance(config, Dataset):
        return config
    if isinstance(config, str):
        return load_dataset(config)
    if not isinstance(config, Mapping):
        raise ValueError(f"dataset must be a mapping with a 'name' key, got {type(config).__name__}")
    options = dict(config)
    name = options.pop("name", None)
    if not name:
        raise ValueError(f"dataset.name is missing; choose one of {sorted(DATASETS)}")
    return load_dataset(str(name), **options)
