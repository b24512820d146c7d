"""Built-in examples ``codesign run`` knows by name: a trained model, its data, its folding."""

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


def _binarized_mlp(retrain: bool, progress: TrainProgress | None) -> LoadedExample:
    from quant_models.data import load_digits_split
    from quant_models.zoo import SPLIT_PARAMS, builtin_binarized_mlp, builtin_float_mlp

    split = load_digits_split(**SPLIT_PARAMS)
    float_model, float_report = builtin_float_mlp(retrain=retrain, progress=progress)
    del float_model
    model, _ = builtin_binarized_mlp(retrain=retrain, progress=progress)
    return LoadedExample(
        name="binarized-mlp",
        description="binarized MLP on scikit-learn digits: uint5 pixels x binary weights, "
                    "binary hidden layers, integer scores",
        model=model, float_accuracy=float_report.test_accuracy,
        x_test=split.x_test, y_test=split.y_test, target_cycles=128)


EXAMPLES: dict[str, tuple[str, Callable[[bool, TrainProgress | None], LoadedExample]]] = {
    "binarized-mlp": ("binarized MLP on digits (default)", _binarized_mlp),
}
DEFAULT_EXAMPLE = "binarized-mlp"


def load_example(name: str, *, retrain: bool = False,
                 progress: TrainProgress | None = None) -> LoadedExample:
    if name not in EXAMPLES:
        raise CodesignError(f"unknown example {name!r}; available: {', '.join(EXAMPLES)}")
    return EXAMPLES[name][1](retrain, progress)
