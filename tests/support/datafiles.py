"""Small data set files in MNIST's IDX and CIFAR-10's pickle formats, written by tests."""

import gzip
import pickle
import struct

import numpy as np


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    """IDX: 0, 0, type 0x08 (uint8), ndim, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


def write_mnist(folder, n_train=5, n_test=7, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28))
        y = rng.integers(0, 10, n)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", x, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", y, compress)
        data[prefix] = (x, y)
    return data


def write_cifar(folder, batches=2, per_batch=4, seed=0):
    rng = np.random.default_rng(seed)
    out = folder / "cifar-10-batches-py"
    out.mkdir()
    data = []
    for name in [f"data_batch_{i + 1}" for i in range(batches)] + ["test_batch"]:
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, per_batch).tolist()
        with (out / name).open("wb") as handle:
            pickle.dump({b"data": x, b"labels": y, b"batch_label": name.encode()}, handle)
        data.append((x, y))
    return data
