"""The scikit-learn digits data set as a fixed, stratified, seeded train/test split.

The digits images are 8x8 with integer intensities 0..16, so they are a natural fixed-point
input (5 bits unsigned) and ship with scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

__all__ = ["DigitsSplit", "load_digits_split"]


@dataclass(frozen=True)
class DigitsSplit:
    """Train and test arrays; ``x_*`` are int64 ``[N, 64]`` pixels in 0..16, ``y_*`` int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_fraction: float = 0.25
    seed: int = 0


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """Split digits into train/test with ``train_test_split(random_state=seed, stratify=y)``.

    Stratification keeps every class equally represented in both halves, so test accuracy
    is comparable across seeds and models.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bunch = load_digits()
    x_float = np.asarray(bunch.data)
    x = x_float.astype(np.int64)
    if not np.array_equal(x, x_float):
        raise ValueError("digits pixels are expected to be integers")
    y = np.asarray(bunch.target).astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    arrays = [np.ascontiguousarray(a, dtype=np.int64) for a in (x_train, y_train, x_test, y_test)]
    return DigitsSplit(*arrays, test_fraction=float(test_fraction), seed=int(seed))
