"""Built-in examples ``codesign run`` knows by name: a trained model, its data, its folding.

The examples are the records of :mod:`quant_models.catalog` that carry hardware defaults
(``target_cycles``; ``sparse`` names the weight sparsity from which a layer goes on the
zero-skipping engine), and its imported examples (Brevitas networks shipped as their QONNX
export, run through the QONNX frontend; they need the ``onnx`` extra). Every one is trained
on scikit-learn's digits and ships with its weights. A data set directory (MNIST, CIFAR-10)
can replace the digits test split when the model's input fits its frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from codesign.errors import DataError, OptionError
from quant_models.catalog import SPLIT_PARAMS, UnknownExampleError, imported_examples
from quant_models.catalog import example as catalog_example
from quant_models.catalog import examples as catalog_examples
from quant_models.catalog import imported_example as catalog_imported_example

if TYPE_CHECKING:
    from codesign.frontends.imported import ImportedNetwork

TrainProgress = Callable[[int, int, float], None]


@dataclass
class LoadedExample:
    """A ready-to-compile example: compressed model (a quant_models network, or an imported
    one), its float baseline (accuracy; the model, for the speedup measured against it, only
    for quant_models networks), test data."""

    name: str
    description: str
    model: nn.Module | None
    float_accuracy: float | None
    x_test: np.ndarray
    y_test: np.ndarray
    target_cycles: int | None = None
    folding: dict[str, tuple[int, int]] = field(default_factory=dict)
    sparse: float | None = None
    baseline_name: str = ""
    """The float baseline of the example's topology (``float-mlp``, ``float-cnn``)."""
    baseline_model: nn.Module | None = None
    imported: ImportedNetwork | None = None
    data: str = "digits"
    """The test data: ``digits`` or the data set read from ``--data``."""


EXAMPLES: dict[str, str] = {
    entry.name: entry.description
    for entry in catalog_examples()
    if entry.target_cycles is not None
}
"""Name -> description of every built-in (quant_models) example codesign runs, in the
catalog's order."""
IMPORTED_EXAMPLES: dict[str, str] = {entry.name: entry.description
                                     for entry in imported_examples()}
"""Name -> description of the imported examples (QONNX files shipped with the package)."""
RUNNABLE: dict[str, str] = {**EXAMPLES, **IMPORTED_EXAMPLES}
DEFAULT_EXAMPLE = "binarized-mlp"


def load_example(name: str, *, retrain: bool = False,
                 progress: TrainProgress | None = None,
                 data: str | Path | None = None) -> LoadedExample:
    """The example ``name`` with its float baseline's accuracy and the digits test split (or
    the test split of the data set in ``data``)."""
    from quant_models.data import load_digits_split
    from quant_models.zoo import builtin_example

    if name in IMPORTED_EXAMPLES:
        if retrain:
            raise OptionError(f"{name} ships as a QONNX file; train and export it again with "
                              "python -m quant_models.brevitas_zoo --export-dir DIR")
        example = load_imported_example(name)
    elif name in EXAMPLES:
        entry = catalog_example(name)
        assert entry.baseline is not None and entry.target_cycles is not None
        split = load_digits_split(**SPLIT_PARAMS)
        float_model, float_report = builtin_example(entry.baseline, retrain=retrain,
                                                    progress=progress)
        model, _ = builtin_example(name, retrain=retrain, progress=progress)
        example = LoadedExample(name=name, description=entry.description, model=model,
                                float_accuracy=float_report.test_accuracy,
                                x_test=split.x_test, y_test=split.y_test,
                                target_cycles=entry.target_cycles, sparse=entry.sparse,
                                baseline_name=entry.baseline, baseline_model=float_model)
    else:
        raise UnknownExampleError(name, list(RUNNABLE))
    return example if data is None else with_dataset(example, data)


def load_imported_example(name: str) -> LoadedExample:
    """An imported example: its shipped QONNX file through the QONNX frontend."""
    from codesign.frontends.qonnx import import_qonnx
    from quant_models.cache import SHIPPED_DIR
    from quant_models.data import load_digits_split
    from quant_models.zoo import builtin_example

    entry = catalog_imported_example(name)
    net = import_qonnx(SHIPPED_DIR / entry.onnx_file, name=name)
    split = load_digits_split(**SPLIT_PARAMS)
    _, float_report = builtin_example(entry.baseline)
    return LoadedExample(name=name, description=entry.description, model=None,
                         float_accuracy=float_report.test_accuracy,
                         x_test=split.x_test.astype(np.float32), y_test=split.y_test,
                         target_cycles=entry.target_cycles, imported=net)


def load_onnx_model(path: str | Path, *, data: str | Path | None = None) -> LoadedExample:
    """Any QONNX model file as an example: tested on ``data`` (MNIST, CIFAR-10), or on the
    digits test split when the model takes 64 values (8x8 digits pixels 0..16)."""
    from codesign.frontends.qonnx import import_qonnx
    from quant_models.data import load_digits_split

    net = import_qonnx(path)
    example = LoadedExample(name=net.name, description=f"imported from {path}", model=None,
                            float_accuracy=None, x_test=np.zeros((0, 64), np.float32),
                            y_test=np.zeros(0, np.int64), imported=net)
    if data is not None:
        return with_dataset(example, data)
    if int(np.prod(net.input_shape)) != 64:
        raise DataError(f"{path} takes frames of shape {net.input_shape}, not 8x8 digits: give "
                        "--data DIR with MNIST or CIFAR-10 files")
    split = load_digits_split(**SPLIT_PARAMS)
    example.x_test, example.y_test = split.x_test.astype(np.float32), split.y_test
    return example


def with_dataset(example: LoadedExample, data: str | Path) -> LoadedExample:
    """``example`` tested on the test split of the data set in ``data`` (raw pixels)."""
    from quant_models.datasets import load_dataset

    dataset = load_dataset(data)
    frame = dataset.frame_shape
    if example.imported is not None:
        wanted: tuple[int, ...] = example.imported.input_shape
    else:
        wanted = (int(np.prod(example.x_test.shape[1:])),)
    if int(np.prod(frame)) != int(np.prod(wanted)):
        raise DataError(f"{example.name} takes frames of shape {wanted} but {data} holds "
                        f"{dataset.name} frames of shape {frame}; use a model trained on "
                        f"{dataset.name} (codesign import MODEL.onnx --data {data})")
    x = dataset.x_test.reshape(len(dataset.x_test), *wanted)
    example.x_test = (x.astype(np.float32) if example.imported is not None
                      else x.astype(np.int64))
    example.y_test = dataset.y_test
    example.data = f"{dataset.name} ({data})"
    return example


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
