"""The digits split: integer pixels, deterministic, stratified, a partition of the data set."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.datasets import load_digits

from quant_models.data import DigitsSplit, load_digits_split


def test_split_shapes_dtypes_and_pixel_range() -> None:
    split = load_digits_split()
    assert split.x_train.shape == (1347, 64)
    assert split.x_test.shape == (450, 64)
    for a in (split.x_train, split.y_train, split.x_test, split.y_test):
        assert a.dtype == np.int64
    for x in (split.x_train, split.x_test):
        assert x.min() >= 0 and x.max() <= 16
    assert split.x_train.max() == 16
    assert set(np.unique(split.y_train)) == set(range(10))


def test_split_is_deterministic_and_seed_dependent() -> None:
    a, b = load_digits_split(seed=3), load_digits_split(seed=3)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    c = load_digits_split(seed=4)
    assert not np.array_equal(a.y_test, c.y_test)


def test_split_is_stratified() -> None:
    split = load_digits_split(test_fraction=0.25)
    full = np.bincount(load_digits().target, minlength=10)
    test = np.bincount(split.y_test, minlength=10)
    assert np.all(np.abs(test - full * 0.25) <= 1)


def test_split_partitions_the_data_set() -> None:
    split = load_digits_split(test_fraction=0.3, seed=7)
    rows = np.concatenate([split.x_train, split.x_test])
    labels = np.concatenate([split.y_train, split.y_test])
    bunch = load_digits()
    ours = sorted(map(tuple, np.column_stack([rows, labels]).tolist()))
    theirs = sorted(map(tuple, np.column_stack([bunch.data, bunch.target]).astype(int).tolist()))
    assert ours == theirs


def test_split_is_frozen_and_validates_fraction() -> None:
    split = load_digits_split()
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.seed = 1  # type: ignore[misc]
    assert isinstance(split, DigitsSplit)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            load_digits_split(test_fraction=bad)
