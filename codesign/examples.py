"""Built-in examples ``codesign run`` knows by name: a trained model, its data, its folding.

The examples are the records of :mod:`quant_models.catalog` that carry hardware defaults
(``target_cycles``; ``sparse`` names the weight sparsity from which a layer goes on the
zero-skipping engine). Every one is trained on scikit-learn's digits and ships with its
weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from quant_models.catalog import SPLIT_PARAMS, UnknownExampleError
from quant_models.catalog import example as catalog_example
from quant_models.catalog import examples as catalog_examples

TrainProgress = Callable[[int, int, float], None]


@dataclass
class LoadedExample:
    """A ready-to-compile example: compressed model, its float baseline, test data."""

    name: str
    description: str
    model: nn.Module
    float_accuracy: float
    x_test: np.ndarray
    y_test: np.ndarray
    target_cycles: int | None = None
    folding: dict[str, tuple[int, int]] = field(default_factory=dict)
    sparse: float | None = None
    baseline_name: str = ""
    """The float baseline of the example's topology (``float-mlp``, ``float-cnn``)."""
    baseline_model: nn.Module | None = None


EXAMPLES: dict[str, str] = {
    entry.name: entry.description
    for entry in catalog_examples()
    if entry.target_cycles is not None
}
"""Name -> description of every example codesign runs, in the catalog's order."""
DEFAULT_EXAMPLE = "binarized-mlp"


def load_example(name: str, *, retrain: bool = False,
                 progress: TrainProgress | None = None) -> LoadedExample:
    """The example ``name`` with its float baseline's accuracy and the digits test split."""
    from quant_models.data import load_digits_split
    from quant_models.zoo import builtin_example

    if name not in EXAMPLES:
        raise UnknownExampleError(name, list(EXAMPLES))
    entry = catalog_example(name)
    assert entry.baseline is not None and entry.target_cycles is not None
    split = load_digits_split(**SPLIT_PARAMS)
    float_model, float_report = builtin_example(entry.baseline, retrain=retrain,
                                                progress=progress)
    model, _ = builtin_example(name, retrain=retrain, progress=progress)
    return LoadedExample(name=name, description=entry.description, model=model,
                         float_accuracy=float_report.test_accuracy, x_test=split.x_test,
                         y_test=split.y_test, target_cycles=entry.target_cycles,
                         sparse=entry.sparse, baseline_name=entry.baseline,
                         baseline_model=float_model)


def load_recipe_example(path: str | Path, *, retrain: bool = False,
                        say: Callable[[str], None] | None = None) -> LoadedExample:
    """The network a recipe file makes (:mod:`quant_models.recipe`), ready for a run.

    The recipe is read, validated and planned on its base network first, so a bad file,
    technique, option, layer or target fails before anything trains; its result is cached
    like every trained model (``retrain``: run it again).
    """
    from quant_models.compress import load_compressed, recipe_key
    from quant_models.data import load_digits_split
    from quant_models.recipe import load_recipe
    from quant_models.zoo import builtin_example, example_key

    kinds = {entry.name: entry.kind for entry in catalog_examples()}
    recipe = load_recipe(path, kinds)
    base = catalog_example(recipe.base)
    teacher = None if recipe.teacher is None else example_key(catalog_example(recipe.teacher))
    key = recipe_key(recipe, example_key(base), teacher)
    result = load_compressed(recipe, key, lambda name: builtin_example(name), retrain=retrain,
                             say=say or (lambda message: None))
    assert base.baseline is not None
    float_model, float_report = builtin_example(base.baseline)
    split = load_digits_split(**SPLIT_PARAMS)
    return LoadedExample(name=recipe.name, description=recipe.description,
                         model=result.model, float_accuracy=float_report.test_accuracy,
                         x_test=split.x_test, y_test=split.y_test,
                         target_cycles=recipe.hardware.get("target_cycles",
                                                           base.target_cycles),
                         sparse=recipe.hardware.get("sparse", base.sparse),
                         baseline_name=base.baseline, baseline_model=float_model)
