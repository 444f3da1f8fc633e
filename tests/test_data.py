"""Datasets: real small data loads with fixed splits; bad data fails at load time with a named problem."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from oracles.data import Dataset, dataset_from_config, load_dataset


def test_digits_splits_are_fixed_by_split_seed_and_disjoint() -> None:
    a = load_dataset("digits", split_seed=0)
    b = load_dataset("digits", split_seed=1)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    total = sum(len(s[1]) for s in (a.train, a.val, a.test))
    assert total == 1797
    assert a.fingerprint != b.fingerprint
    assert load_dataset("digits", split_seed=0).fingerprint == a.fingerprint
    # train and val share no image row (digits has a few duplicates, so compare counts loosely)
    tr = {bytes(r.numpy()) for r in a.train[0].reshape(len(a.train[0]), -1)}
    va = [bytes(r.numpy()) for r in a.val[0].reshape(len(a.val[0]), -1)]
    assert sum(v in tr for v in va) < 0.05 * len(va)
    assert float(a.train[0].max()) <= 1.0


def test_digits_harder_options_change_the_data() -> None:
    base = load_dataset("digits")
    small = load_dataset("digits", train_size=100, noise=0.1)
    assert len(small.train[1]) == 100
    assert torch.equal(base.val[1], small.val[1])
    assert not torch.equal(base.val[0], small.val[0])


def test_mnist1d_is_generated_offline_and_leaves_global_rng_alone() -> None:
    np.random.seed(123)
    random.seed(5)
    expect_np, expect_py = np.random.get_state()[1].copy(), random.getstate()
    d = load_dataset("mnist1d", num_samples=600, generator_seed=3)
    assert d.input_shape == (1, 40) and d.num_classes == 10 and d.dim == 1
    assert len(d.train[1]) + len(d.val[1]) + len(d.test[1]) == 600
    assert np.array_equal(np.random.get_state()[1], expect_np) and random.getstate() == expect_py


def test_synthetic_shapes_and_config_entry() -> None:
    d = dataset_from_config({"name": "synthetic", "shape": [2, 16], "num_classes": 3, "num_samples": 60})
    assert d.input_shape == (2, 16) and d.train[0].dtype == torch.float32 and d.train[1].dtype == torch.int64
    assert set(d.train[1].tolist()) == {0, 1, 2}


def test_unknown_dataset_and_option_are_named() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match=r"no option\(s\) \['epochs'\]"):
        load_dataset("digits", epochs=3)
    with pytest.raises(ValueError, match=r"dataset\.name is missing"):
        dataset_from_config({"split_seed": 0})


def _pair(n: int, shape: tuple[int, ...] = (1, 4, 4)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, *shape)).astype(np.float32), np.arange(n) % 3


def test_dataset_rejects_bad_arrays() -> None:
    x, y = _pair(12)
    ok = (x, y)
    with pytest.raises(ValueError, match=r"split 'val': labels must lie in \[0, 2\], found 3..5"):
        Dataset("t", ok, (x, y + 3), ok, 3, (1, 4, 4))
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="split 'train': X has 1 NaN"):
        Dataset("t", (bad, y), ok, ok, 3, (1, 4, 4))
    with pytest.raises(ValueError, match=r"X has shape \(12, 1, 4, 4\), expected \(N, 1, 5, 5\)"):
        Dataset("t", ok, ok, ok, 3, (1, 5, 5))
    with pytest.raises(ValueError, match="y has shape"):
        Dataset("t", ok, (x, y[:5]), ok, 3, (1, 4, 4))
    with pytest.raises(ValueError, match="split 'test': split is empty"):
        Dataset("t", ok, ok, (x[:0], y[:0]), 3, (1, 4, 4))


def test_npz_layouts_and_given_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y = np.arange(60) % 3
    nhwc = rng.normal(size=(60, 6, 6, 3)).astype(np.float32)
    np.savez(tmp_path / "img.npz", x=nhwc, y=y)
    d = load_dataset("npz", path=str(tmp_path / "img.npz"))
    assert d.input_shape == (3, 6, 6) and d.num_classes == 3
    np.savez(tmp_path / "flat.npz", x=rng.normal(size=(60, 10)), y=y)
    assert load_dataset("npz", path=str(tmp_path / "flat.npz")).input_shape == (1, 10)
    np.savez(tmp_path / "gray.npz", x=rng.normal(size=(60, 5, 5)), y=y)
    assert load_dataset("npz", path=str(tmp_path / "gray.npz")).input_shape == (1, 5, 5)
    np.savez(
        tmp_path / "given.npz",
        x_train=rng.normal(size=(30, 2, 12)), y_train=y[:30],
        x_val=rng.normal(size=(10, 2, 12)), y_val=y[:10],
    )
    g = load_dataset("npz", path=str(tmp_path / "given.npz"), layout="ncl")
    assert g.input_shape == (2, 12) and len(g.train[1]) == 30 and len(g.val[1]) + len(g.test[1]) == 10


def test_npz_bad_files_fail_with_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file not found"):
        load_dataset("npz", path=str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "nokey.npz", inputs=np.zeros((10, 4)), y=np.zeros(10))
    with pytest.raises(ValueError, match="has no array 'x'"):
        load_dataset("npz", path=str(tmp_path / "nokey.npz"))
    x = np.ones((30, 4))
    x[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.arange(30) % 2)
    with pytest.raises(ValueError, match="NaN"):
        load_dataset("npz", path=str(tmp_path / "nan.npz"))
    np.savez(tmp_path / "len.npz", x=np.ones((30, 4)), y=np.arange(29) % 2)
    with pytest.raises(ValueError, match=r"expected \(30,\)"):
        load_dataset("npz", path=str(tmp_path / "len.npz"))
    np.savez(tmp_path / "neg.npz", x=np.ones((30, 4)), y=np.arange(30) % 2 - 1)
    with pytest.raises(ValueError, match="labels must be >= 0"):
        load_dataset("npz", path=str(tmp_path / "neg.npz"))
    np.savez(tmp_path / "cls.npz", x=np.ones((30, 4)), y=np.arange(30) % 3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        load_dataset("npz", path=str(tmp_path / "cls.npz"), num_classes=2)
    np.savez(tmp_path / "dims.npz", x=np.ones((30, 2, 2, 2, 2)), y=np.arange(30) % 2)
    with pytest.raises(ValueError, match="does not fit layout"):
        load_dataset("npz", path=str(tmp_path / "dims.npz"))


def _write_cifar(root: Path, n: int = 20) -> Path:
    """A tiny copy of CIFAR-10's python format: pickled dicts of bytes keys (protocol 2, like the original)."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ["data_batch_1", "data_batch_2", "test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"{i}.png".encode() for i in range(n)],
        }
        with open(base / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    return base


def test_cifar10_reads_the_python_format(tmp_path: Path) -> None:
    _write_cifar(tmp_path)
    d = load_dataset("cifar10", root=str(tmp_path), val_size=8)
    assert d.input_shape == (3, 32, 32)
    assert (len(d.train[1]), len(d.val[1]), len(d.test[1])) == (32, 8, 20)
    assert abs(float(d.train[0].mean())) < 0.1


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_cifar10_refuses_pickles_that_build_other_objects(tmp_path: Path) -> None:
    base = _write_cifar(tmp_path)
    with open(base / "data_batch_2", "wb") as fh:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, fh, protocol=2)
    with pytest.raises(ValueError, match=r"refusing to load .*print"):
        load_dataset("cifar10", root=str(tmp_path), val_size=8)
    with pytest.raises(ValueError, match="directory not found"):
        load_dataset("cifar10", root=str(tmp_path / "nowhere"))
