"""MNIST (IDX) and CIFAR-10 (pickle batches) loaders on small files written here in those
formats; nothing is downloaded. Broken files get one-line errors naming them."""

import numpy as np
import pytest

from codesign.errors import DataError
from datafiles import write_cifar, write_mnist
from quant_models.datasets import load_cifar10, load_dataset, load_mnist, read_idx


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_idx_files(tmp_path, compress):
    data = write_mnist(tmp_path, compress=compress)
    ds = load_dataset(tmp_path)
    assert ds.name == "mnist" and ds.frame_shape == (1, 28, 28)
    assert np.array_equal(ds.x_test[:, 0], data["t10k"][0])
    assert np.array_equal(ds.y_test, data["t10k"][1]) and ds.y_test.dtype == np.int64
    assert np.array_equal(ds.x_train[:, 0], data["train"][0]) and len(ds.x_train) == 5


def test_cifar10_from_pickle_batches(tmp_path):
    data = write_cifar(tmp_path)
    ds = load_cifar10(tmp_path)
    assert ds.frame_shape == (3, 32, 32) and len(ds.x_train) == 8 and len(ds.x_test) == 4
    x, y = data[-1]
    # rows are 1024 red, then green, then blue values of a 32x32 image, row-major
    assert np.array_equal(ds.x_test[1, 2].reshape(-1), x[1, 2048:])
    assert ds.y_test.tolist() == y
    assert load_dataset(tmp_path).name == "cifar10"


def test_broken_files_are_named(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"junk")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: truncated IDX header"):
        read_idx(tmp_path / "t10k-images-idx3-ubyte")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte is not an IDX file"):
        read_idx(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match="no MNIST train split"):
        load_mnist(tmp_path)
    with pytest.raises(DataError, match="holds neither MNIST .* nor CIFAR-10"):
        load_dataset(tmp_path / "..")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "missing")
    cifar = tmp_path / "c"
    cifar.mkdir()
    (cifar / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="cannot read CIFAR-10 batch .*test_batch"):
        load_cifar10(cifar)
