"""Quantized PyTorch models whose forward pass matches the integer hardware exactly.

The package provides the compression primitives (binarization, ternary weights, k-bit fixed
point, magnitude pruning, k-means weight sharing and Huffman coding: Deep Compression,
:mod:`quant_models.deep_compression`), the layers and models the compiler lowers, the digits
data split, deterministic training, and the built-in examples (:mod:`quant_models.catalog`)
with their trained weights.
"""

from typing import Any

from quant_models.binarize import SignSTE, sign_ste
from quant_models.cnn import (
    CNVW1A1,
    BinaryCNN,
    DepthwiseSeparableCNN,
    FixedPointCNN,
    FloatCNN,
    SharedCNN,
    TernaryCNN,
    cnv_w1a1,
    layer_shapes,
    random_cnv_w1a1,
)
from quant_models.conv import BinaryConv2d, IntegerConv2d, QuantConv2d, TernaryConv2d
from quant_models.data import DigitsSplit, load_digits_split
from quant_models.fixed_point import (
    IntegerLinear,
    QuantAct,
    QuantLinear,
    Requant,
    fake_quant,
    integer_range,
    link_input_scales,
    quantize,
    requant_params,
)
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.models import (
    BinarizedMLP,
    FixedPointMLP,
    FloatMLP,
    LayerSignature,
    MixedMLP,
    SharedMLP,
    TernaryMLP,
    integer_signature,
)
from quant_models.pruning import (
    PruningSchedule,
    attach_mask_,
    cubic_sparsity,
    magnitude_prune_,
    sparsity_report,
)
from quant_models.sharing import SharedConv2d, SharedLinear, WeightSharingError, share_weights_
from quant_models.ternary import TernaryLinear, ternarize_twn
from quant_models.train import (
    EpochCallback,
    ProgressFn,
    TrainReport,
    evaluate,
    predict,
    train_classifier,
)

_ZOO_NAMES = (
    "builtin_binarized_mlp",
    "builtin_fixed_point_mlp",
    "builtin_float_mlp",
    "builtin_mixed_mlp",
    "builtin_pruned_mlp",
    "builtin_ternary_mlp",
)
_CNN_ZOO_NAMES = (
    "builtin_binary_cnn",
    "builtin_depthwise_separable_cnn",
    "builtin_fixed_point_cnn",
    "builtin_float_cnn",
    "builtin_ternary_cnn",
)


def __getattr__(name: str) -> Any:
    # The zoo is imported on first use so that ``python -m quant_models.zoo`` does not find
    # the module already imported by the package (runpy warns about that).
    if name in _ZOO_NAMES:
        from quant_models import zoo

        return getattr(zoo, name)
    if name in _CNN_ZOO_NAMES:
        from quant_models import cnn_zoo

        return getattr(cnn_zoo, name)
    raise AttributeError(f"module 'quant_models' has no attribute {name!r}")


__all__ = [
    "CNVW1A1",
    "BinarizedMLP",
    "BinaryCNN",
    "BinaryConv2d",
    "BinaryLinear",
    "DepthwiseSeparableCNN",
    "DigitsSplit",
    "EpochCallback",
    "FixedPointCNN",
    "FixedPointMLP",
    "FloatCNN",
    "FloatMLP",
    "IntegerConv2d",
    "IntegerInput",
    "IntegerLinear",
    "LayerSignature",
    "LogitScale",
    "MixedMLP",
    "ProgressFn",
    "PruningSchedule",
    "QuantAct",
    "QuantConv2d",
    "QuantLinear",
    "Requant",
    "SignActivation",
    "SharedCNN",
    "SharedConv2d",
    "SharedLinear",
    "SharedMLP",
    "SignSTE",
    "TernaryCNN",
    "TernaryConv2d",
    "TernaryLinear",
    "TernaryMLP",
    "TrainReport",
    "WeightSharingError",
    "attach_mask_",
    "builtin_binarized_mlp",
    "builtin_binary_cnn",
    "builtin_depthwise_separable_cnn",
    "builtin_fixed_point_cnn",
    "builtin_fixed_point_mlp",
    "builtin_float_cnn",
    "builtin_float_mlp",
    "builtin_mixed_mlp",
    "builtin_pruned_mlp",
    "builtin_ternary_cnn",
    "builtin_ternary_mlp",
    "cnv_w1a1",
    "cubic_sparsity",
    "evaluate",
    "fake_quant",
    "integer_range",
    "integer_signature",
    "layer_shapes",
    "link_input_scales",
    "load_digits_split",
    "magnitude_prune_",
    "predict",
    "quantize",
    "random_cnv_w1a1",
    "requant_params",
    "share_weights_",
    "sign_ste",
    "sparsity_report",
    "ternarize_twn",
    "train_classifier",
]
