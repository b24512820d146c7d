"""Quantized (binarized) PyTorch models whose forward pass matches the integer hardware exactly.

The package provides the binarization primitive, the layers and models the compiler lowers,
the digits data split, deterministic training, and cached built-in examples.
"""

from quant_models.binarize import SignSTE, sign_ste
from quant_models.data import DigitsSplit, load_digits_split
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.models import BinarizedMLP, FloatMLP
from quant_models.train import ProgressFn, TrainReport, evaluate, predict, train_classifier
from quant_models.zoo import builtin_binarized_mlp, builtin_float_mlp

__all__ = [
    "BinarizedMLP",
    "BinaryLinear",
    "DigitsSplit",
    "FloatMLP",
    "IntegerInput",
    "LogitScale",
    "ProgressFn",
    "SignActivation",
    "SignSTE",
    "TrainReport",
    "builtin_binarized_mlp",
    "builtin_float_mlp",
    "evaluate",
    "load_digits_split",
    "predict",
    "sign_ste",
    "train_classifier",
]
