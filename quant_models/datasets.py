"""Real data sets from a directory the user names: MNIST (IDX files) and CIFAR-10 (the Python
pickle batches). Nothing is downloaded.

Frames are the data set's raw pixels as stored (uint8 0..255), channels first:
MNIST [N, 1, 28, 28], CIFAR-10 [N, 3, 32, 32]; labels int64. A model's own first quantizer
(or the float nodes before it) turns pixels into its integer input codes.

MNIST: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; dots instead of the last dash, as some
mirrors name them, are accepted), in DIR or DIR/MNIST/raw. CIFAR-10: ``data_batch_1`` ..
``data_batch_5`` and ``test_batch`` in DIR or DIR/cifar-10-batches-py.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codesign.errors import DataError

__all__ = ["Dataset", "load_cifar10", "load_dataset", "load_mnist", "read_idx"]

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass(frozen=True)
class Dataset:
    """A train/test split of labelled frames (raw pixels, channels first)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return tuple(self.x_test.shape[1:])


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format: magic 0, 0, type, ndim; big-endian dims; data)."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (expected magic bytes 0, 0, type, "
                        "dimensions)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 1
    if len(raw) - header != count * dtype.itemsize:
        raise DataError(f"{path}: IDX header says {dims} x {dtype.itemsize} bytes, the file "
                        f"holds {len(raw) - header} bytes of data")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find(directory: Path, names: list[str]) -> Path | None:
    for name in names:
        for candidate in (name, name + ".gz"):
            if (directory / candidate).is_file():
                return directory / candidate
    return None


def _mnist_dir(directory: Path) -> Path | None:
    for folder in (directory, directory / "MNIST" / "raw", directory / "raw"):
        if _find(folder, ["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"]):
            return folder
    return None


def load_mnist(directory: str | Path) -> Dataset:
    """MNIST from its four IDX files in ``directory``: frames [N, 1, 28, 28] uint8."""
    root = Path(directory)
    folder = _mnist_dir(root) or root
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _find(folder, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"])
        labels = _find(folder, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte"])
        if images is None or labels is None:
            raise DataError(f"{root}: no MNIST {split} split (expected {prefix}-images-idx3-"
                            f"ubyte and {prefix}-labels-idx1-ubyte, optionally .gz)")
        x, y = read_idx(images), read_idx(labels)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{images}: expected [N, H, W] images and [N] labels, got "
                            f"{x.shape} and {y.shape}")
        arrays[split] = (x[:, None, :, :].astype(np.uint8), y.astype(np.int64))
    return Dataset("mnist", *arrays["train"], *arrays["test"])


def _cifar_dir(directory: Path) -> Path | None:
    for folder in (directory, directory / "cifar-10-batches-py"):
        if (folder / "test_batch").is_file():
            return folder
    return None


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
    except Exception as exc:   # noqa: BLE001 - any unpickling failure is the file's fault
        raise DataError(f"cannot read CIFAR-10 batch {path}: {type(exc).__name__}: "
                        f"{exc}") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: a CIFAR-10 batch is a pickled dict with data and labels")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise DataError(f"{path}: no 'data' and 'labels' entries (a CIFAR-10 python batch)")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataError(f"{path}: expected data [N, 3072] and N labels, got {data.shape} and "
                        f"{len(labels)}")
    return data.reshape(-1, 3, 32, 32).astype(np.uint8), np.asarray(labels, dtype=np.int64)


def load_cifar10(directory: str | Path) -> Dataset:
    """CIFAR-10 from its Python batches in ``directory``: frames [N, 3, 32, 32] uint8."""
    root = Path(directory)
    folder = _cifar_dir(root)
    if folder is None:
        raise DataError(f"{root}: no CIFAR-10 test_batch (expected the python batches "
                        "data_batch_1..5 and test_batch, or a cifar-10-batches-py folder)")
    train = [_cifar_batch(path) for path in sorted(folder.glob("data_batch_*"))]
    x_test, y_test = _cifar_batch(folder / "test_batch")
    if train:
        x_train = np.concatenate([x for x, _ in train])
        y_train = np.concatenate([y for _, y in train])
    else:
        x_train, y_train = x_test[:0], y_test[:0]
    return Dataset("cifar10", x_train, y_train, x_test, y_test)


def load_dataset(directory: str | Path) -> Dataset:
    """MNIST or CIFAR-10, whichever ``directory`` holds."""
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"data directory {str(root)!r} does not exist (expected MNIST's IDX "
                        "files or CIFAR-10's python batches)")
    if _mnist_dir(root) is not None:
        return load_mnist(root)
    if _cifar_dir(root) is not None:
        return load_cifar10(root)
    raise DataError(f"{root} holds neither MNIST (t10k-images-idx3-ubyte ...) nor CIFAR-10 "
                    "(test_batch ...)")
