"""The built-in examples, one record each: what to build, how to train it, how to run it.

:func:`examples` is the one table every tool reads: :mod:`quant_models.zoo` trains and loads
the models, ``codesign`` runs the records that carry hardware defaults (``target_cycles``,
``sparse``), and each compressed example names the float baseline of its topology. The
configuration constants below are the examples' architectures and training runs; the table
is built from them on every call, so it always reflects their current values.

Test accuracies on the fixed split (seed 0) are those of the shipped weights
(``python -m quant_models.zoo --train-all --cnn`` prints them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import yaml
from torch import nn

from codesign.errors import CodesignError
from quant_models.architecture import SequentialNet
from quant_models.cnn import (
    BinaryCNN,
    DepthwiseSeparableCNN,
    FixedPointCNN,
    FloatCNN,
    SharedCNN,
    TernaryCNN,
)
from quant_models.dag_cnn import BinaryResNet, NiN, QuantResNet, SqueezeNet
from quant_models.models import (
    BinarizedMLP,
    FixedPointMLP,
    FloatMLP,
    MixedMLP,
    SharedMLP,
    TernaryMLP,
)

__all__ = [
    "BINARIZED_MLP_CONFIG",
    "COMPRESSED_CNNS",
    "COMPRESSED_MLPS",
    "RECIPES_DIR",
    "BINARIZED_MLP_TRAINING",
    "BINARY_CNN_CONFIG",
    "DEEP_COMPRESSION_CNN_CONFIG",
    "DEEP_COMPRESSION_CNN_RECIPE",
    "DEEP_COMPRESSION_MLP_CONFIG",
    "DEEP_COMPRESSION_MLP_RECIPE",
    "BINARY_CNN_TRAINING",
    "BINARY_RESNET_CONFIG",
    "BINARY_RESNET_TRAINING",
    "DEPTHWISE_CNN_CONFIG",
    "DEPTHWISE_CNN_TRAINING",
    "FIXED_POINT_CNN_CONFIG",
    "FIXED_POINT_CNN_TRAINING",
    "FIXED_POINT_MLP_CONFIG",
    "FIXED_POINT_MLP_TRAINING",
    "FIXED_POINT_VARIANTS",
    "FLOAT_CNN_CONFIG",
    "FLOAT_CNN_TRAINING",
    "FLOAT_MLP_CONFIG",
    "FLOAT_MLP_TRAINING",
    "MIXED_MLP_CONFIG",
    "MIXED_MLP_TRAINING",
    "NIN_CONFIG",
    "NIN_TRAINING",
    "PRUNED_MLP_CONFIG",
    "PRUNED_MLP_SCHEDULE",
    "PRUNED_MLP_SPARSITIES",
    "PRUNED_MLP_TRAINING",
    "RESNET_CONFIG",
    "RESNET_TRAINING",
    "SPLIT_PARAMS",
    "SQUEEZENET_CONFIG",
    "SQUEEZENET_TRAINING",
    "TERNARY_CNN_CONFIG",
    "TERNARY_CNN_TRAINING",
    "TERNARY_MLP_CONFIG",
    "TERNARY_MLP_TRAINING",
    "Example",
    "UnknownExampleError",
    "binarized_mlp",
    "binary_cnn",
    "deep_compression_cnn",
    "deep_compression_mlp",
    "compressed",
    "binary_resnet",
    "depthwise_separable_cnn",
    "example",
    "example_names",
    "examples",
    "fixed_point_cnn",
    "fixed_point_mlp",
    "float_cnn",
    "float_mlp",
    "mixed_mlp",
    "nin",
    "pruned_mlp",
    "resnet",
    "squeezenet",
    "ternary_cnn",
    "ternary_mlp",
]

M = TypeVar("M", bound=nn.Module)

Kind = Literal["mlp", "cnn"]


@dataclass(frozen=True)
class Example(Generic[M]):
    """One built-in example: a model class, its configuration and training run, metadata."""

    name: str
    description: str
    kind: Kind
    model: Callable[..., M]
    """Called with ``**config`` to build the untrained network."""
    config: dict[str, Any]
    training: dict[str, Any]
    """Keyword arguments of :func:`quant_models.train.train_classifier`."""
    baseline: str | None = None
    """Name of the float example of the same topology (``None`` for the baselines)."""
    target_cycles: int | None = None
    """Cycles per frame ``codesign run`` folds the network for by default; ``None``: not one
    of the examples codesign runs (the float baselines, and ``ternary-cnn-ttq``)."""
    sparse: float | None = None
    """Weight sparsity from which ``codesign run`` puts a layer on the zero-skipping engine."""
    pruning: dict[str, Any] | None = None
    """Keyword arguments of :class:`quant_models.pruning.PruningSchedule`, if pruned."""
    compression: dict[str, Any] | None = None
    """Settings of a :class:`quant_models.deep_compression.DeepCompressionRecipe`: the
    example is trained by that pipeline (prune, share, fine-tune) instead of ``training``."""
    recipe: dict[str, Any] | None = None
    """The compression recipe that makes this example (:mod:`quant_models.recipe`) from a
    trained example; its ``model`` is then :class:`~quant_models.architecture.SequentialNet`,
    whose shape the recipe decides, and ``config``/``training`` are empty."""

    def build(self) -> M:
        """The untrained network (call under the training seed for reproducible weights)."""
        if self.recipe is not None:
            raise CodesignError(f"example {self.name!r} is made by its recipe from "
                                f"{self.recipe.get('base')!r}; it has no untrained network")
        return self.model(**self.config)


class UnknownExampleError(CodesignError):
    """A built-in example name that does not exist."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(f"unknown example {name!r}; available: {', '.join(available)}")


SPLIT_PARAMS: dict[str, Any] = {"test_fraction": 0.25, "seed": 0}
"""Arguments to :func:`quant_models.data.load_digits_split` shared by all built-in models."""

# -- MLPs ----------------------------------------------------------------------------------

BINARIZED_MLP_CONFIG: dict[str, Any] = {
    "in_features": 64,
    "hidden": [128, 128],
    "num_classes": 10,
    "input_bits": 5,
    "input_signed": False,
}
"""Two hidden layers of 128 (multiples of 16 for hardware folding): about 95% test accuracy,
and little gained from 256."""
BINARIZED_MLP_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 64, "seed": 0}

FLOAT_MLP_CONFIG: dict[str, Any] = {"in_features": 64, "hidden": [128, 128], "num_classes": 10}
FLOAT_MLP_TRAINING: dict[str, Any] = {"epochs": 30, "lr": 1e-3, "batch_size": 64, "seed": 0}

TERNARY_MLP_CONFIG: dict[str, Any] = {
    "in_features": 64,
    "hidden": [128, 64],
    "num_classes": 10,
    "input_bits": 5,
    "input_signed": False,
    "act_bits": 2,
    "ratio_frac_bits": 4,
}
"""Ternary weights with 2-bit unsigned activations; ``method`` ("twn"/"ttq") is added by
:func:`ternary_mlp`. About 97% test accuracy either way."""
TERNARY_MLP_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 64, "seed": 0}

FIXED_POINT_MLP_CONFIG: dict[str, Any] = {
    "in_features": 64,
    "hidden": [128, 64],
    "num_classes": 10,
    "input_bits": 5,
    "input_signed": False,
}
"""Architecture of the fixed-point examples; ``weight_bits``/``act_bits`` are added by
:func:`fixed_point_mlp`."""
FIXED_POINT_MLP_TRAINING: dict[str, Any] = {
    "epochs": 40,
    "lr": 3e-3,
    "batch_size": 64,
    "seed": 0,
}
FIXED_POINT_VARIANTS: tuple[tuple[int, int], ...] = ((4, 4), (8, 8))
"""``(weight_bits, act_bits)`` of the fixed-point examples in the table."""

PRUNED_MLP_CONFIG: dict[str, Any] = {**FIXED_POINT_MLP_CONFIG, "weight_bits": 8, "act_bits": 8}
PRUNED_MLP_TRAINING: dict[str, Any] = {"epochs": 60, "lr": 3e-3, "batch_size": 64, "seed": 0}
PRUNED_MLP_SCHEDULE: dict[str, Any] = {
    "initial_sparsity": 0.0,
    "start_epoch": 11,
    "num_steps": 10,
    "frequency": 2,
    "scope": "layer",
}
"""10 dense epochs, the cubic schedule over epochs 11..31 (a step every 2 epochs), then 29
epochs of fine-tuning at the final sparsity; every layer gets exactly the same sparsity."""
PRUNED_MLP_SPARSITIES: tuple[float, ...] = (0.5, 0.75, 0.9)

MIXED_MLP_CONFIG: dict[str, Any] = {
    "in_features": 64,
    "num_classes": 10,
    "input_width": 256,
    "binary_widths": [256],
    "ternary_width": 64,
    "fixed_width": 64,
    "fixed_bits": 4,
    "act_bits": 4,
    "input_weight_bits": 8,
    "output_weight_bits": 8,
    "input_bits": 5,
    "input_signed": False,
}
MIXED_MLP_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 1e-3, "batch_size": 64, "seed": 0}
"""The binary layer needs width (256: about 97% test accuracy, 128: about 95%) and a gentler
learning rate than the all-fixed-point models."""

DEEP_COMPRESSION_MLP_CONFIG: dict[str, Any] = {
    "in_features": 64,
    "hidden": [128, 128],
    "num_classes": 10,
    "index_bits": [4, 4, 4],
    "act_bits": 4,
    "input_bits": 5,
    "input_signed": False,
}
"""The float MLP's topology (64-128-128-10) with shared layers: 4-bit codebook indices
(15 centroids and the zero weight per layer), 4-bit activations."""
DEEP_COMPRESSION_MLP_RECIPE: dict[str, Any] = {
    "sparsity": [0.91, 0.94, 0.8],
    "prune_epochs": 60,
    "start_epoch": 6,
    "num_steps": 10,
    "frequency": 2,
    "lr": 3e-3,
    "finetune_epochs": 20,
    "finetune_lr": 2e-4,
    "batch_size": 64,
    "seed": 0,
}
"""AGP over epochs 6..26 to 91 % (fc0), 94 % (fc1) and 80 % (the classifier, whose 1280
weights carry every class), 34 more epochs at the final masks, then 20 epochs of centroid
fine-tuning at a fifteenth of the rate. Recipes pruning harder (92/95 %) or fine-tuning
shorter lost 1.1 points; this one loses none (0.9822 against the float MLP's 0.9800)."""

# -- CNNs ----------------------------------------------------------------------------------

_DIGITS_CNN: dict[str, Any] = {"channels": [16, 32, 32], "hidden": [], "num_classes": 10}
"""Topology shared by the float, binary, ternary and fixed-point digits CNNs: three 3x3
convolutions (16, 32, 32 channels; 8x8 -> 8x8 -> 4x4 after pooling -> 2x2) and the
classifier on the 128 flattened features. A hidden linear layer of 64 made the binary
network worse (about 89% against 97%), so there is none."""

FLOAT_CNN_CONFIG: dict[str, Any] = dict(_DIGITS_CNN)
FLOAT_CNN_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 64, "seed": 0}

BINARY_CNN_CONFIG: dict[str, Any] = {**_DIGITS_CNN, "input_bits": 5, "input_signed": False}
BINARY_CNN_TRAINING: dict[str, Any] = {"epochs": 60, "lr": 1e-2, "batch_size": 64, "seed": 0}
"""Binary layers like a larger learning rate (97.1% here against 96.9% with 40 epochs at
3e-3): sign flips of the latent weights need larger steps."""

TERNARY_CNN_CONFIG: dict[str, Any] = {
    **_DIGITS_CNN,
    "input_bits": 5,
    "input_signed": False,
    "act_bits": 2,
    "ratio_frac_bits": 4,
}
"""``method`` ("twn"/"ttq") is added by :func:`ternary_cnn`."""
TERNARY_CNN_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 64, "seed": 0}

FIXED_POINT_CNN_CONFIG: dict[str, Any] = {**_DIGITS_CNN, "input_bits": 5, "input_signed": False}
"""``weight_bits``/``act_bits`` are added by :func:`fixed_point_cnn`."""
FIXED_POINT_CNN_TRAINING: dict[str, Any] = {
    "epochs": 40,
    "lr": 3e-3,
    "batch_size": 64,
    "seed": 0,
}

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

DEEP_COMPRESSION_CNN_CONFIG: dict[str, Any] = {
    "channels": [16, 32, 32],
    "num_classes": 10,
    "index_bits": [4, 4, 4, 4],
    "act_bits": 4,
    "input_bits": 5,
    "input_signed": False,
}
"""The float CNN's topology with shared layers (4-bit indices) and 4-bit activations."""
DEEP_COMPRESSION_CNN_RECIPE: dict[str, Any] = {
    "sparsity": [0.5, 0.85, 0.9, 0.75],
    "prune_epochs": 40,
    "start_epoch": 6,
    "num_steps": 10,
    "frequency": 2,
    "lr": 3e-3,
    "finetune_epochs": 20,
    "finetune_lr": 2e-4,
    "batch_size": 64,
    "seed": 0,
}
"""The 144-weight first convolution keeps half its weights, the others 10-25 %: AGP over
epochs 6..26, 14 more epochs at the final masks, 20 epochs of centroid fine-tuning."""

# -- networks that are not chains (forks, residual joins, concatenation, average pooling) --

RESNET_CONFIG: dict[str, Any] = {"channels": 16, "blocks": 2, "num_classes": 10,
                                 "weight_bits": 4, "act_bits": 4, "branch_bits": 5,
                                 "input_bits": 5, "input_signed": False}
"""Stem 3x3 conv (16), two residual blocks of two 3x3 convs (8x8, max-pool, 4x4), global
average pooling and a 16 -> 10 classifier: about the chain CNNs' size."""
RESNET_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 64, "seed": 0}

BINARY_RESNET_CONFIG: dict[str, Any] = {"channels": 32, "blocks": 2, "num_classes": 10,
                                        "shortcut_weight": None, "input_bits": 5,
                                        "input_signed": False}
"""The ResNet's topology binarized, twice as wide (16 channels gave 93.8 % against 97.6 %);
``shortcut_weight`` None weights the +-1 shortcut by round(sqrt(9 C)) = 17, about one
standard deviation of the branch's accumulator."""
BINARY_RESNET_TRAINING: dict[str, Any] = {"epochs": 60, "lr": 1e-2, "batch_size": 64,
                                          "seed": 0}

SQUEEZENET_CONFIG: dict[str, Any] = {"stem": 16, "squeeze": [16, 16], "expand": [32, 32],
                                     "num_classes": 10, "weight_bits": 4, "act_bits": 4,
                                     "class_bits": 6, "input_bits": 5, "input_signed": False}
"""Stem 3x3 conv (16), two fire modules (squeeze 16, expands 32 + 32), a 1x1 conv to the
classes with 6-bit codes and global average pooling: no fully connected layer (squeezing
to 8 with expands of 16 gave 96.0 % against 98.4 %)."""
SQUEEZENET_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 64, "seed": 0}

NIN_CONFIG: dict[str, Any] = {"channels": [16, 32], "num_classes": 10, "weight_bits": 4,
                              "act_bits": 4, "class_bits": 6, "input_bits": 5,
                              "input_signed": False}
"""Two mlpconv blocks (3x3 then two 1x1 convs; 16 and 32 channels) with a requantized 2x2
average pool between them, the last 1x1 conv to the classes, global average pooling."""
NIN_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 64, "seed": 0}

# -- records -------------------------------------------------------------------------------


def _check_method(method: str) -> None:
    if method not in ("twn", "ttq"):
        raise ValueError(f"method must be 'twn' or 'ttq', got {method!r}")


def float_mlp() -> Example[FloatMLP]:
    """The float baseline of the MLP examples."""
    return Example(
        "float-mlp",
        "float MLP 64-128-128-10, the baseline of the MLP examples",
        "mlp",
        FloatMLP,
        dict(FLOAT_MLP_CONFIG),
        dict(FLOAT_MLP_TRAINING),
    )


def binarized_mlp() -> Example[BinarizedMLP]:
    """The default example: binarized MLP on digits."""
    return Example(
        "binarized-mlp",
        "binarized MLP: uint5 pixels x binary weights, binary hidden layers, integer scores "
        "(default)",
        "mlp",
        BinarizedMLP,
        dict(BINARIZED_MLP_CONFIG),
        dict(BINARIZED_MLP_TRAINING),
        baseline="float-mlp",
        target_cycles=128,
    )


_TERNARY_MLP_DESCRIPTIONS = {
    "twn": "ternary-weight (TWN) MLP with 2-bit activations",
    "ttq": "trained-ternary (TTQ) MLP: asymmetric levels {+2^f, 0, -R} on MAC engines",
}


def ternary_mlp(method: str = "twn") -> Example[TernaryMLP]:
    """Ternary-weight MLP, ``method`` "twn" (threshold) or "ttq" (trained levels)."""
    _check_method(method)
    return Example(
        f"ternary-mlp-{method}",
        _TERNARY_MLP_DESCRIPTIONS[method],
        "mlp",
        TernaryMLP,
        {**TERNARY_MLP_CONFIG, "method": method},
        dict(TERNARY_MLP_TRAINING),
        baseline="float-mlp",
        target_cycles=128,
    )


def fixed_point_mlp(weight_bits: int = 4, act_bits: int = 4) -> Example[FixedPointMLP]:
    """Fixed-point MLP with ``weight_bits`` weights and ``act_bits`` activations (2..8 bits
    work; ``FIXED_POINT_VARIANTS`` are the ones in the table)."""
    weight_bits, act_bits = int(weight_bits), int(act_bits)
    return Example(
        f"fixed-point-mlp-w{weight_bits}a{act_bits}",
        f"{weight_bits}-bit weights, {act_bits}-bit activations",
        "mlp",
        FixedPointMLP,
        {**FIXED_POINT_MLP_CONFIG, "weight_bits": weight_bits, "act_bits": act_bits},
        dict(FIXED_POINT_MLP_TRAINING),
        baseline="float-mlp",
        target_cycles=128,
    )


def pruned_mlp(sparsity: float = 0.75) -> Example[FixedPointMLP]:
    """The 8-bit fixed-point MLP pruned to ``sparsity`` in every layer.

    Trained from scratch in one run: dense epochs, then :class:`PruningSchedule` (cubic,
    Zhu & Gupta 2017) up to ``sparsity``, then fine-tuning with the final masks. The masks
    are the layers' ``weight_mask`` buffers, so pruned weights are exact integer zeros.
    """
    if not 0.0 < float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in (0, 1), got {sparsity}")
    sparsity = float(sparsity)
    return Example(
        f"pruned-mlp-{sparsity:g}",
        f"w8a8 MLP, {sparsity:.0%} unstructured sparsity, zero-skipping engines",
        "mlp",
        FixedPointMLP,
        dict(PRUNED_MLP_CONFIG),
        dict(PRUNED_MLP_TRAINING),
        baseline="float-mlp",
        target_cycles=512,
        sparse=0.4,
        pruning={**PRUNED_MLP_SCHEDULE, "final_sparsity": sparsity},
    )


def mixed_mlp() -> Example[MixedMLP]:
    """Mixed precision: int8 input layer, binary, ternary and 4-bit layers, int8 output."""
    return Example(
        "mixed-mlp",
        "mixed precision: int8 input layer, binary, ternary, 4-bit layers, integer scores",
        "mlp",
        MixedMLP,
        dict(MIXED_MLP_CONFIG),
        dict(MIXED_MLP_TRAINING),
        baseline="float-mlp",
        target_cycles=256,
    )


def deep_compression_mlp() -> Example[SharedMLP]:
    """Deep Compression of the float MLP's topology: pruned, shared, Huffman-coded."""
    return Example(
        "deep-compression-mlp",
        "Deep Compression MLP: AGP pruning, 4-bit k-means codebooks, Huffman-coded storage; "
        "zero-skipping codebook engines",
        "mlp",
        SharedMLP,
        dict(DEEP_COMPRESSION_MLP_CONFIG),
        {"epochs": DEEP_COMPRESSION_MLP_RECIPE["prune_epochs"]
         + DEEP_COMPRESSION_MLP_RECIPE["finetune_epochs"], "seed": 0},
        baseline="float-mlp",
        target_cycles=512,
        sparse=0.5,
        compression=dict(DEEP_COMPRESSION_MLP_RECIPE),
    )


def deep_compression_cnn() -> Example[SharedCNN]:
    """Deep Compression of the float CNN's topology."""
    return Example(
        "deep-compression-cnn",
        "Deep Compression CNN: AGP pruning, 4-bit k-means codebooks, Huffman-coded storage; "
        "codebook engines",
        "cnn",
        SharedCNN,
        dict(DEEP_COMPRESSION_CNN_CONFIG),
        {"epochs": DEEP_COMPRESSION_CNN_RECIPE["prune_epochs"]
         + DEEP_COMPRESSION_CNN_RECIPE["finetune_epochs"], "seed": 0},
        baseline="float-cnn",
        target_cycles=2048,
        sparse=0.5,
        compression=dict(DEEP_COMPRESSION_CNN_RECIPE),
    )


def float_cnn() -> Example[FloatCNN]:
    """The float baseline of the binary, ternary and fixed-point CNNs' topology."""
    return Example(
        "float-cnn",
        "float CNN (3x3 convs 16-32-32, max-pool), the baseline of the CNN examples",
        "cnn",
        FloatCNN,
        dict(FLOAT_CNN_CONFIG),
        dict(FLOAT_CNN_TRAINING),
    )


def binary_cnn() -> Example[BinaryCNN]:
    """Binarized digits CNN."""
    return Example(
        "binary-cnn",
        "binarized CNN (3x3 convs, max-pool, padding with +1 on binary maps)",
        "cnn",
        BinaryCNN,
        dict(BINARY_CNN_CONFIG),
        dict(BINARY_CNN_TRAINING),
        baseline="float-cnn",
        target_cycles=2048,
    )


def ternary_cnn(method: str = "twn") -> Example[TernaryCNN]:
    """Ternary-weight digits CNN, ``method`` "twn" or "ttq"; codesign runs the TWN one."""
    _check_method(method)
    return Example(
        f"ternary-cnn-{method}",
        "ternary-weight CNN" if method == "twn" else "trained-ternary (TTQ) CNN",
        "cnn",
        TernaryCNN,
        {**TERNARY_CNN_CONFIG, "method": method},
        dict(TERNARY_CNN_TRAINING),
        baseline="float-cnn",
        target_cycles=2048 if method == "twn" else None,
    )


def fixed_point_cnn(weight_bits: int = 4, act_bits: int = 4) -> Example[FixedPointCNN]:
    """Fixed-point digits CNN with ``weight_bits`` weights and ``act_bits`` activations."""
    weight_bits, act_bits = int(weight_bits), int(act_bits)
    return Example(
        f"fixed-point-cnn-w{weight_bits}a{act_bits}",
        f"{weight_bits}-bit CNN" if weight_bits == act_bits
        else f"CNN with {weight_bits}-bit weights, {act_bits}-bit activations",
        "cnn",
        FixedPointCNN,
        {**FIXED_POINT_CNN_CONFIG, "weight_bits": weight_bits, "act_bits": act_bits},
        dict(FIXED_POINT_CNN_TRAINING),
        baseline="float-cnn",
        target_cycles=2048,
    )


def depthwise_separable_cnn() -> Example[DepthwiseSeparableCNN]:
    """Compact 4-bit CNN of depthwise-separable blocks."""
    return Example(
        "depthwise-separable-cnn",
        "compact CNN: 3x3 depthwise + 1x1 pointwise convolutions, 4-bit; depthwise layers "
        "on the zero-skipping engine",
        "cnn",
        DepthwiseSeparableCNN,
        dict(DEPTHWISE_CNN_CONFIG),
        dict(DEPTHWISE_CNN_TRAINING),
        baseline="float-cnn",
        target_cycles=2048,
        sparse=0.8,
    )


def resnet() -> Example[QuantResNet]:
    """Small 4-bit ResNet: residual joins on a shared scale."""
    return Example(
        "resnet-w4a4",
        "4-bit ResNet: two residual blocks (forks, integer joins on a shared scale), global "
        "average pooling",
        "cnn",
        QuantResNet,
        dict(RESNET_CONFIG),
        dict(RESNET_TRAINING),
        baseline="float-cnn",
        target_cycles=2048,
    )


def binary_resnet() -> Example[BinaryResNet]:
    """Binarized ResNet: the +-1 shortcut weighted by an integer into the accumulator."""
    return Example(
        "binary-resnet",
        "binarized ResNet: two residual blocks joined as acc + w * shortcut, global average "
        "pooling",
        "cnn",
        BinaryResNet,
        dict(BINARY_RESNET_CONFIG),
        dict(BINARY_RESNET_TRAINING),
        baseline="float-cnn",
        target_cycles=2048,
    )


def squeezenet() -> Example[SqueezeNet]:
    """SqueezeNet-style 4-bit network of fire modules."""
    return Example(
        "squeezenet-w4a4",
        "4-bit SqueezeNet: two fire modules (forks, channel concatenation), 1x1 conv to the "
        "classes, global average pooling",
        "cnn",
        SqueezeNet,
        dict(SQUEEZENET_CONFIG),
        dict(SQUEEZENET_TRAINING),
        baseline="float-cnn",
        target_cycles=2048,
    )


def nin() -> Example[NiN]:
    """Network-in-Network: mlpconv blocks, an average pool, global average pooling."""
    return Example(
        "nin-w4a4",
        "4-bit Network-in-Network: mlpconv blocks, requantized average pool, global average "
        "pooling of class maps",
        "cnn",
        NiN,
        dict(NIN_CONFIG),
        dict(NIN_TRAINING),
        baseline="float-cnn",
        target_cycles=2048,
    )


RECIPES_DIR: Path = Path(__file__).resolve().parent / "recipes"
"""The recipes of the compressed examples, ``<name>.yaml`` (package data)."""

COMPRESSED_MLPS: tuple[str, ...] = ("svd-mlp", "distilled-binarized-mlp")
COMPRESSED_CNNS: tuple[str, ...] = (
    "filter-pruned-cnn-0.5",
    "filter-pruned-cnn-0.75",
    "slimmed-cnn",
    "thinet-cnn",
    "tucker-cnn",
    "compressed-cnn",
)
"""The compressed examples, each made by its recipe from a trained example of the table."""


def compressed(name: str) -> Example[SequentialNet]:
    """The compressed example of recipe ``RECIPES_DIR/<name>.yaml``: kind, float baseline
    and hardware defaults are its base example's, unless the recipe's ``hardware`` says."""
    path = RECIPES_DIR / f"{name}.yaml"
    recipe = yaml.safe_load(path.read_text())
    base = next((e for e in _trained_examples() if e.name == recipe.get("base")), None)
    if base is None or recipe.get("name") != name:
        raise CodesignError(f"recipe {path}: its name must be {name!r} and its base one of "
                            + ", ".join(e.name for e in _trained_examples()))
    hardware = recipe.get("hardware") or {}
    return Example(
        name,
        str(recipe["description"]).strip(),
        base.kind,
        SequentialNet,
        {},
        {},
        baseline=base.baseline,
        target_cycles=hardware.get("target_cycles", base.target_cycles),
        sparse=hardware.get("sparse", base.sparse),
        recipe=recipe,
    )


def _trained_examples() -> tuple[Example[Any], ...]:
    return (
        float_mlp(),
        binarized_mlp(),
        ternary_mlp("twn"),
        ternary_mlp("ttq"),
        *(fixed_point_mlp(w, a) for w, a in FIXED_POINT_VARIANTS),
        *(pruned_mlp(s) for s in PRUNED_MLP_SPARSITIES),
        mixed_mlp(),
        deep_compression_mlp(),
        float_cnn(),
        binary_cnn(),
        ternary_cnn("twn"),
        ternary_cnn("ttq"),
        fixed_point_cnn(4, 4),
        depthwise_separable_cnn(),
        deep_compression_cnn(),
        resnet(),
        binary_resnet(),
        squeezenet(),
        nin(),
    )


def examples() -> tuple[Example[Any], ...]:
    """Every built-in example once, in training order: the MLPs, then the CNNs, each group
    starting with its float baseline and ending with its compressed examples (made from the
    examples before them)."""
    trained = _trained_examples()
    return (
        *(e for e in trained if e.kind == "mlp"),
        *(compressed(name) for name in COMPRESSED_MLPS),
        *(e for e in trained if e.kind == "cnn"),
        *(compressed(name) for name in COMPRESSED_CNNS),
    )


def example_names(kind: Kind | None = None) -> list[str]:
    """Names in the table, in order; only those of ``kind`` ("mlp"/"cnn") if given."""
    return [entry.name for entry in examples() if kind is None or entry.kind == kind]


def example(name: str) -> Example[Any]:
    """The record called ``name``; an unknown name raises :class:`UnknownExampleError`."""
    table = examples()
    for entry in table:
        if entry.name == name:
            return entry
    raise UnknownExampleError(name, [entry.name for entry in table])


# -- imported examples ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedExample:
    """An example trained with Brevitas and shipped as its QONNX export (the ONNX file is
    what ``codesign`` imports; Brevitas is needed only to train and export it again)."""

    name: str
    description: str
    kind: Kind
    model: Callable[..., nn.Module]
    """Builds the Brevitas network (``**config``); only for training and export."""
    config: dict[str, Any]
    training: dict[str, Any]
    baseline: str
    target_cycles: int

    @property
    def onnx_file(self) -> str:
        """File name of the shipped export in ``quant_models/weights``."""
        return f"{self.name}.onnx"

    def build(self) -> nn.Module:
        return self.model(**self.config)


def _brevitas_tfc(**config: Any) -> nn.Module:
    from quant_models.brevitas_models import BrevitasTFC

    return BrevitasTFC(**config)


def _brevitas_cnv(**config: Any) -> nn.Module:
    from quant_models.brevitas_models import BrevitasCNV

    return BrevitasCNV(**config)


BREVITAS_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 1e-2, "batch_size": 64, "seed": 0}


def imported_examples() -> tuple[ImportedExample, ...]:
    """The Brevitas examples, each imported from its shipped QONNX file by ``codesign``."""
    return (
        ImportedExample("brevitas-tfc-w1a1",
                        "Brevitas TFC-W1A1 (64-64-64-64-10, binary weights and activations), "
                        "imported from its QONNX export", "mlp", _brevitas_tfc,
                        {"weight_bits": 1, "act_bits": 1}, dict(BREVITAS_TRAINING),
                        baseline="float-mlp", target_cycles=128),
        ImportedExample("brevitas-tfc-w2a2",
                        "Brevitas TFC-W2A2 (ternary weights, 2-bit activations), imported from "
                        "its QONNX export", "mlp", _brevitas_tfc,
                        {"weight_bits": 2, "act_bits": 2}, dict(BREVITAS_TRAINING),
                        baseline="float-mlp", target_cycles=128),
        ImportedExample("brevitas-cnv-w2a2",
                        "Brevitas CNV-style CNN (3x3 convs 16-16-32, max-pool; ternary weights, "
                        "2-bit ReLU), imported from its QONNX export", "cnn", _brevitas_cnv,
                        {"weight_bits": 2, "act_bits": 2}, dict(BREVITAS_TRAINING),
                        baseline="float-cnn", target_cycles=2048),
    )


def imported_example(name: str) -> ImportedExample:
    """The imported example called ``name``; unknown names raise UnknownExampleError."""
    table = imported_examples()
    for entry in table:
        if entry.name == name:
            return entry
    raise UnknownExampleError(name, [entry.name for entry in table])
