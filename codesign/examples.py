"""Built-in examples ``codesign run`` knows by name: a trained model, its data, its folding.

Every compression technique of quant_models has one, trained on scikit-learn's digits and
cached; ``sparse`` names the weight sparsity from which a layer goes on the zero-skipping
engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from codesign.errors import CodesignError

TrainProgress = Callable[[int, int, float], None]


@dataclass
class LoadedExample:
    """A ready-to-compile example: compressed model, float baseline accuracy, test data."""

    name: str
    description: str
    model: nn.Module
    float_accuracy: float
    x_test: np.ndarray
    y_test: np.ndarray
    target_cycles: int | None = None
    folding: dict[str, tuple[int, int]] = field(default_factory=dict)
    sparse: float | None = None


def _zoo_example(zoo_name: str, description: str, target_cycles: int,
                 sparse: float | None = None, baseline: str = "float-mlp"
                 ) -> Callable[[bool, TrainProgress | None], LoadedExample]:
    def load(retrain: bool, progress: TrainProgress | None) -> LoadedExample:
        from quant_models.data import load_digits_split
        from quant_models.zoo import SPLIT_PARAMS, builtin_example

        split = load_digits_split(**SPLIT_PARAMS)
        _, float_report = builtin_example(baseline, retrain=retrain, progress=progress)
        model, _ = builtin_example(zoo_name, retrain=retrain, progress=progress)
        return LoadedExample(name=zoo_name, description=description, model=model,
                             float_accuracy=float_report.test_accuracy, x_test=split.x_test,
                             y_test=split.y_test, target_cycles=target_cycles, sparse=sparse)
    return load


EXAMPLES: dict[str, tuple[str, Callable[[bool, TrainProgress | None], LoadedExample]]] = {}
for _name, _description, _target, _sparse in [
    ("binarized-mlp", "binarized MLP: uint5 pixels x binary weights, binary hidden layers, "
     "integer scores (default)", 128, None),
    ("ternary-mlp-twn", "ternary-weight (TWN) MLP with 2-bit activations", 128, None),
    ("ternary-mlp-ttq", "trained-ternary (TTQ) MLP: asymmetric levels {+2^f, 0, -R} on MAC "
     "engines", 128, None),
    ("fixed-point-mlp-w4a4", "4-bit weights, 4-bit activations", 128, None),
    ("fixed-point-mlp-w8a8", "8-bit weights, 8-bit activations", 128, None),
    ("pruned-mlp-0.5", "w8a8 MLP, 50% unstructured sparsity, zero-skipping engines", 512, 0.4),
    ("pruned-mlp-0.75", "w8a8 MLP, 75% unstructured sparsity, zero-skipping engines", 512,
     0.4),
    ("pruned-mlp-0.9", "w8a8 MLP, 90% unstructured sparsity, zero-skipping engines", 512, 0.4),
    ("mixed-mlp", "mixed precision: int8 input layer, binary, ternary, 4-bit layers, integer "
     "scores", 256, None),
]:
    EXAMPLES[_name] = (_description, _zoo_example(_name, _description, _target, _sparse))
for _name, _description, _target, _sparse in [
    ("binary-cnn", "binarized CNN (3x3 convs, max-pool, padding with +1 on binary maps)",
     2048, None),
    ("ternary-cnn-twn", "ternary-weight CNN", 2048, None),
    ("fixed-point-cnn-w4a4", "4-bit CNN", 2048, None),
    ("depthwise-separable-cnn", "compact CNN: 3x3 depthwise + 1x1 pointwise convolutions, "
     "4-bit; depthwise layers on the zero-skipping engine", 2048, 0.8),
]:
    EXAMPLES[_name] = (_description, _zoo_example(_name, _description, _target, _sparse,
                                                  baseline="float-cnn"))
DEFAULT_EXAMPLE = "binarized-mlp"


def load_example(name: str, *, retrain: bool = False,
                 progress: TrainProgress | None = None) -> LoadedExample:
    if name not in EXAMPLES:
        raise CodesignError(f"unknown example {name!r}; available: {', '.join(EXAMPLES)}")
    return EXAMPLES[name][1](retrain, progress)
