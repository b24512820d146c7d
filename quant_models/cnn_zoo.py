"""Built-in convolutional examples on digits, trained once and cached like the MLP examples.

They share :mod:`quant_models.zoo`'s cache (same key scheme and file layout) and are reachable
through :func:`quant_models.zoo.builtin_example`; they are listed separately
(:func:`builtin_cnn_names`, ``python -m quant_models.zoo --cnn``) so tools that only handle
fully connected networks keep seeing the MLP list they always saw.

Training runs single-threaded: these networks are so small that one thread is the fastest
(thread start-up dominates), and a fixed thread count keeps the float reduction order, and so
the cached weights, the same on every machine.

Test accuracies on the fixed split (seed 0), with the float baseline of the same topology:
float 99.8%, binary 97.8%, ternary TWN 98.7%, TTQ 98.7%, fixed point w4a4 99.6%,
depthwise-separable w4a4 98.0%.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from quant_models.cnn import BinaryCNN, DepthwiseSeparableCNN, FixedPointCNN, FloatCNN, TernaryCNN
from quant_models.train import ProgressFn, TrainReport
from quant_models.zoo import _bind, _load_or_train

__all__ = [
    "BINARY_CNN_CONFIG",
    "BINARY_CNN_NAME",
    "BINARY_CNN_TRAINING",
    "DEPTHWISE_CNN_CONFIG",
    "DEPTHWISE_CNN_NAME",
    "DEPTHWISE_CNN_TRAINING",
    "FIXED_POINT_CNN_CONFIG",
    "FIXED_POINT_CNN_TRAINING",
    "FLOAT_CNN_CONFIG",
    "FLOAT_CNN_NAME",
    "FLOAT_CNN_TRAINING",
    "TERNARY_CNN_CONFIG",
    "TERNARY_CNN_TRAINING",
    "builtin_binary_cnn",
    "builtin_cnn_names",
    "builtin_depthwise_separable_cnn",
    "builtin_fixed_point_cnn",
    "builtin_float_cnn",
    "builtin_ternary_cnn",
    "cnn_examples",
]

TRAINING_THREADS = 1
"""torch threads while a CNN example trains (see the module docstring)."""

_DIGITS_CNN: dict[str, Any] = {"channels": [16, 32, 32], "hidden": [], "num_classes": 10}
"""Topology shared by the float, binary, ternary and fixed-point digits CNNs: three 3x3
convolutions (16, 32, 32 channels; 8x8 -> 8x8 -> 4x4 after pooling -> 2x2) and the
classifier on the 128 flattened features. A hidden linear layer of 64 made the binary
network worse (about 89% against 97%), so there is none."""

FLOAT_CNN_NAME = "float-cnn"
FLOAT_CNN_CONFIG: dict[str, Any] = dict(_DIGITS_CNN)
FLOAT_CNN_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 64, "seed": 0}

BINARY_CNN_NAME = "binary-cnn"
BINARY_CNN_CONFIG: dict[str, Any] = {**_DIGITS_CNN, "input_bits": 5, "input_signed": False}
BINARY_CNN_TRAINING: dict[str, Any] = {"epochs": 60, "lr": 1e-2, "batch_size": 64, "seed": 0}
"""Binary layers like a larger learning rate (97.8% here against 96.9% with 40 epochs at
3e-3): sign flips of the latent weights need larger steps."""

TERNARY_CNN_CONFIG: dict[str, Any] = {
    **_DIGITS_CNN,
    "input_bits": 5,
    "input_signed": False,
    "act_bits": 2,
    "ratio_frac_bits": 4,
}
"""``method`` ("twn"/"ttq") is added by :func:`builtin_ternary_cnn`."""
TERNARY_CNN_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 64, "seed": 0}

FIXED_POINT_CNN_CONFIG: dict[str, Any] = {**_DIGITS_CNN, "input_bits": 5, "input_signed": False}
"""``weight_bits``/``act_bits`` are added by :func:`builtin_fixed_point_cnn`."""
FIXED_POINT_CNN_TRAINING: dict[str, Any] = {
    "epochs": 40,
    "lr": 3e-3,
    "batch_size": 64,
    "seed": 0,
}

DEPTHWISE_CNN_NAME = "depthwise-separable-cnn"
DEPTHWISE_CNN_CONFIG: dict[str, Any] = {
    "stem": 16,
    "blocks": [32, 32],
    "num_classes": 10,
    "weight_bits": 4,
    "act_bits": 4,
    "input_bits": 5,
    "input_signed": False,
}
DEPTHWISE_CNN_TRAINING: dict[str, Any] = {"epochs": 60, "lr": 1e-2, "batch_size": 64, "seed": 0}


@contextmanager
def _training_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _cnn(
    name: str,
    build: Callable[[], nn.Module],
    config: dict[str, Any],
    training: dict[str, Any],
    retrain: bool,
    progress: ProgressFn | None,
) -> tuple[Any, TrainReport]:
    with _training_threads(TRAINING_THREADS):
        return _load_or_train(name, build, config, training, retrain=retrain, progress=progress)


def builtin_float_cnn(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[FloatCNN, TrainReport]:
    """The float CNN baseline (eval mode) of the binary/ternary/fixed-point CNNs' topology."""
    config = dict(FLOAT_CNN_CONFIG)
    return _cnn(
        FLOAT_CNN_NAME,
        lambda: FloatCNN(**config),
        config,
        dict(FLOAT_CNN_TRAINING),
        retrain,
        progress,
    )


def builtin_binary_cnn(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[BinaryCNN, TrainReport]:
    """The built-in binarized digits CNN (eval mode) and its training report."""
    config = dict(BINARY_CNN_CONFIG)
    return _cnn(
        BINARY_CNN_NAME,
        lambda: BinaryCNN(**config),
        config,
        dict(BINARY_CNN_TRAINING),
        retrain,
        progress,
    )


def builtin_ternary_cnn(
    method: str = "twn", *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[TernaryCNN, TrainReport]:
    """The built-in ternary digits CNN (``method`` "twn" or "ttq") and its training report."""
    if method not in ("twn", "ttq"):
        raise ValueError(f"method must be 'twn' or 'ttq', got {method!r}")
    config = {**TERNARY_CNN_CONFIG, "method": method}
    return _cnn(
        f"ternary-cnn-{method}",
        lambda: TernaryCNN(**config),
        config,
        dict(TERNARY_CNN_TRAINING),
        retrain,
        progress,
    )


def builtin_fixed_point_cnn(
    weight_bits: int = 4,
    act_bits: int = 4,
    *,
    retrain: bool = False,
    progress: ProgressFn | None = None,
) -> tuple[FixedPointCNN, TrainReport]:
    """The built-in fixed-point digits CNN with ``weight_bits`` weights, ``act_bits`` codes."""
    config = {
        **FIXED_POINT_CNN_CONFIG,
        "weight_bits": int(weight_bits),
        "act_bits": int(act_bits),
    }
    return _cnn(
        f"fixed-point-cnn-w{int(weight_bits)}a{int(act_bits)}",
        lambda: FixedPointCNN(**config),
        config,
        dict(FIXED_POINT_CNN_TRAINING),
        retrain,
        progress,
    )


def builtin_depthwise_separable_cnn(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[DepthwiseSeparableCNN, TrainReport]:
    """The built-in depthwise-separable 4-bit digits CNN and its training report."""
    config = dict(DEPTHWISE_CNN_CONFIG)
    return _cnn(
        DEPTHWISE_CNN_NAME,
        lambda: DepthwiseSeparableCNN(**config),
        config,
        dict(DEPTHWISE_CNN_TRAINING),
        retrain,
        progress,
    )


def cnn_examples() -> list[tuple[str, Callable[..., tuple[nn.Module, TrainReport]]]]:
    """``(name, loader)`` of every built-in CNN; a loader takes ``retrain``/``progress``."""
    return [
        (FLOAT_CNN_NAME, builtin_float_cnn),
        (BINARY_CNN_NAME, builtin_binary_cnn),
        ("ternary-cnn-twn", _bind(builtin_ternary_cnn, "twn")),
        ("ternary-cnn-ttq", _bind(builtin_ternary_cnn, "ttq")),
        ("fixed-point-cnn-w4a4", _bind(builtin_fixed_point_cnn, 4, 4)),
        (DEPTHWISE_CNN_NAME, builtin_depthwise_separable_cnn),
    ]


def builtin_cnn_names() -> list[str]:
    """Names of the built-in CNN examples (``builtin_example`` loads them by name)."""
    return [name for name, _ in cnn_examples()]
