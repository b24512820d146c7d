"""Built-in convolutional examples on digits, shipped and loaded like the MLP examples.

Their records are in :mod:`quant_models.catalog` (kind "cnn") and
:func:`quant_models.zoo.builtin_example` loads them by name; they are listed separately
(:func:`builtin_cnn_names`, ``python -m quant_models.zoo --cnn``) so tools that only handle
fully connected networks keep seeing the MLP list they always saw.
"""

from __future__ import annotations

from quant_models import catalog
from quant_models.cnn import BinaryCNN, DepthwiseSeparableCNN, FixedPointCNN, FloatCNN, TernaryCNN
from quant_models.train import ProgressFn, TrainReport
from quant_models.zoo import load

__all__ = [
    "builtin_binary_cnn",
    "builtin_cnn_names",
    "builtin_depthwise_separable_cnn",
    "builtin_fixed_point_cnn",
    "builtin_float_cnn",
    "builtin_ternary_cnn",
]


def builtin_float_cnn(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[FloatCNN, TrainReport]:
    """The float CNN baseline (eval mode) of the binary/ternary/fixed-point CNNs' topology."""
    return load(catalog.float_cnn(), retrain=retrain, progress=progress)


def builtin_binary_cnn(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[BinaryCNN, TrainReport]:
    """The built-in binarized digits CNN (eval mode) and its training report."""
    return load(catalog.binary_cnn(), retrain=retrain, progress=progress)


def builtin_ternary_cnn(
    method: str = "twn", *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[TernaryCNN, TrainReport]:
    """The built-in ternary digits CNN (``method`` "twn" or "ttq") and its training report."""
    return load(catalog.ternary_cnn(method), retrain=retrain, progress=progress)


def builtin_fixed_point_cnn(
    weight_bits: int = 4,
    act_bits: int = 4,
    *,
    retrain: bool = False,
    progress: ProgressFn | None = None,
) -> tuple[FixedPointCNN, TrainReport]:
    """The built-in fixed-point digits CNN with ``weight_bits`` weights, ``act_bits`` codes."""
    example = catalog.fixed_point_cnn(weight_bits, act_bits)
    return load(example, retrain=retrain, progress=progress)


def builtin_depthwise_separable_cnn(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[DepthwiseSeparableCNN, TrainReport]:
    """The built-in depthwise-separable 4-bit digits CNN and its training report."""
    return load(catalog.depthwise_separable_cnn(), retrain=retrain, progress=progress)


def builtin_cnn_names() -> list[str]:
    """Names of the built-in CNN examples (``builtin_example`` loads them by name)."""
    return catalog.example_names("cnn")
