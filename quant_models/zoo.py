"""Built-in example models, loaded from the package's trained weights (or trained once).

Every example of :mod:`quant_models.catalog` ships with its trained weights and training
report; :mod:`quant_models.cache` decides between the shipped file, the user's cache and
training. An example whose record carries a Deep Compression recipe is trained by that
pipeline (:mod:`quant_models.deep_compression`: prune, share, fine-tune), and its report
keeps the accuracy after each stage. The MLP loaders live here, the CNN loaders in
:mod:`quant_models.cnn_zoo`; :func:`builtin_example` loads any example by name.

``python -m quant_models.zoo --train-all`` loads (or trains) every MLP example and prints a
summary; ``--cnn`` adds the convolutional examples (listing or training); ``--retrain``
ignores shipped and cached weights; ``--export-weights DIR`` writes each example's weights
file to ``DIR`` (``quant_models/weights`` regenerates the shipped ones).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from codesign.errors import CodesignError
from quant_models import catalog
from quant_models.cache import WEIGHTS_SUFFIX, cache_key, load_or_train, save_weights
from quant_models.catalog import SPLIT_PARAMS, Example
from quant_models.compress import builtin_recipe, load_compressed, recipe_key
from quant_models.deep_compression import recipe_trainer
from quant_models.models import BinarizedMLP, FixedPointMLP, FloatMLP, MixedMLP, TernaryMLP
from quant_models.pruning import PruningSchedule
from quant_models.train import EpochCallback, ProgressFn, TrainReport

__all__ = [
    "builtin_binarized_mlp",
    "builtin_example",
    "builtin_example_names",
    "builtin_fixed_point_mlp",
    "builtin_float_mlp",
    "builtin_mixed_mlp",
    "builtin_pruned_mlp",
    "builtin_ternary_mlp",
    "example_key",
    "load",
    "main",
    "train_all",
]

M = TypeVar("M", bound=nn.Module)


def example_key(example: Example[Any]) -> str:
    """The weights key of ``example``: its configuration, training run (with the pruning
    schedule, which shapes the weights too), the data split and the torch version; for a
    compressed example, its recipe and the keys of its base and teacher."""
    if example.recipe is not None:
        recipe = builtin_recipe(example)
        teacher = None if recipe.teacher is None else example_key(catalog.example(
            recipe.teacher))
        return recipe_key(recipe, example_key(catalog.example(recipe.base)), teacher)
    training = example.training
    if example.pruning is not None:
        training = {**training, "pruning": example.pruning}
    if example.compression is not None:
        training = {**training, "deep_compression": example.compression}
    return cache_key(example.config, training, SPLIT_PARAMS)


def load(
    example: Example[M], *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[M, TrainReport]:
    """``example``'s trained network (eval mode) and its training report."""
    if example.recipe is not None:
        result = load_compressed(builtin_recipe(example), example_key(example), _by_name,
                                 retrain=retrain, progress=progress)
        return result.model, result.report  # type: ignore[return-value]
    pruning = example.pruning

    def make_schedule(model: nn.Module) -> EpochCallback:
        return PruningSchedule(model, **pruning)

    return load_or_train(
        example.name,
        example_key(example),
        example.build,
        example.training,
        SPLIT_PARAMS,
        retrain=retrain,
        progress=progress,
        epoch_callback=None if pruning is None else make_schedule,
        trainer=(None if example.compression is None
                 else recipe_trainer(example.compression)),
    )


def _by_name(name: str) -> tuple[nn.Module, TrainReport]:
    return load(catalog.example(name))


def builtin_binarized_mlp(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[BinarizedMLP, TrainReport]:
    """The built-in binarized digits MLP (eval mode) and its training report."""
    return load(catalog.binarized_mlp(), retrain=retrain, progress=progress)


def builtin_float_mlp(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[FloatMLP, TrainReport]:
    """The built-in float baseline MLP (eval mode) and its training report."""
    return load(catalog.float_mlp(), retrain=retrain, progress=progress)


def builtin_ternary_mlp(
    method: str = "twn", *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[TernaryMLP, TrainReport]:
    """The built-in ternary digits MLP (``method`` "twn" or "ttq") and its training report."""
    return load(catalog.ternary_mlp(method), retrain=retrain, progress=progress)


def builtin_fixed_point_mlp(
    weight_bits: int = 4,
    act_bits: int = 4,
    *,
    retrain: bool = False,
    progress: ProgressFn | None = None,
) -> tuple[FixedPointMLP, TrainReport]:
    """The built-in fixed-point MLP with ``weight_bits`` weights and ``act_bits`` activations.

    Any ``2..8`` bits work; ``catalog.FIXED_POINT_VARIANTS`` lists the ones that ship.
    """
    example = catalog.fixed_point_mlp(weight_bits, act_bits)
    return load(example, retrain=retrain, progress=progress)


def builtin_pruned_mlp(
    sparsity: float = 0.75, *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[FixedPointMLP, TrainReport]:
    """The 8-bit fixed-point MLP pruned to ``sparsity`` in every layer (see
    :func:`quant_models.catalog.pruned_mlp`), and its report."""
    return load(catalog.pruned_mlp(sparsity), retrain=retrain, progress=progress)


def builtin_mixed_mlp(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[MixedMLP, TrainReport]:
    """The built-in mixed-precision MLP (int8 / binary / ternary / 4-bit / int8 layers)."""
    return load(catalog.mixed_mlp(), retrain=retrain, progress=progress)


def builtin_example_names() -> list[str]:
    """Names of every built-in MLP example, in the order ``--train-all`` trains them.

    The convolutional examples are listed by :func:`quant_models.cnn_zoo.builtin_cnn_names`
    (``--train-all --cnn`` trains them too); :func:`builtin_example` loads either kind.
    """
    return catalog.example_names("mlp")


def builtin_example(
    name: str, *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[nn.Module, TrainReport]:
    """Load (or train) the built-in example called ``name`` (an MLP or a CNN example).

    An unknown name raises :class:`quant_models.catalog.UnknownExampleError`.
    """
    return load(catalog.example(name), retrain=retrain, progress=progress)


def train_all(
    *,
    retrain: bool = False,
    verbose: bool = True,
    stream: Any = None,
    cnn: bool = False,
    export: Path | None = None,
) -> dict[str, TrainReport]:
    """Load or train every built-in example; returns each example's training report.

    With ``verbose`` every epoch of a model that is being trained prints its loss, and each
    example ends with one summary line (test accuracy and training time). ``cnn`` adds the
    convolutional examples after the MLPs. ``export`` is a directory that receives every
    example's weights file, ``<name>.pt.xz``, as the package ships them.
    """
    out = sys.stdout if stream is None else stream
    reports: dict[str, TrainReport] = {}
    for example in catalog.examples():
        if example.kind == "cnn" and not cnn:
            continue
        name = example.name
        epochs_run: list[int] = []

        def progress(
            epoch: int, epochs: int, loss: float, name: str = name, seen: list[int] = epochs_run
        ) -> None:
            seen.append(epoch)
            if verbose:
                print(f"  [{name}] epoch {epoch:3d}/{epochs} loss {loss:.4f}", file=out, flush=True)

        model, report = load(example, retrain=retrain, progress=progress)
        reports[name] = report
        if export is not None:
            history = getattr(model, "history", None)
            extra = (None if example.recipe is None else
                     {"architecture": model.architecture, "history": history})
            save_weights(export / f"{name}{WEIGHTS_SUFFIX}", name, example_key(example), model,
                         report, extra)
        if verbose:
            origin = "trained" if epochs_run else "loaded"
            print(
                f"{name:24s} test {report.test_accuracy:.4f}  train {report.train_accuracy:.4f}"
                f"  {report.epochs} epochs  {report.seconds:.1f} s ({origin})",
                file=out,
                flush=True,
            )
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m quant_models.zoo``: list or train the built-in examples."""
    parser = argparse.ArgumentParser(
        prog="python -m quant_models.zoo",
        description="Built-in example models (weights shipped with the package, else cached).",
    )
    parser.add_argument("--train-all", action="store_true", help="load or train every example")
    parser.add_argument(
        "--retrain", action="store_true", help="train even when shipped or cached weights exist"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    parser.add_argument(
        "--cnn", action="store_true", help="include the convolutional examples (list or train)"
    )
    parser.add_argument(
        "--export-weights",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --train-all: write every example's weights file to DIR "
        "(quant_models/weights holds the shipped ones)",
    )
    args = parser.parse_args(argv)
    if args.export_weights is not None and not args.train_all:
        parser.error("--export-weights needs --train-all")
    if not args.train_all:
        for name in catalog.example_names(None if args.cnn else "mlp"):
            print(name)
        return 0
    try:
        reports = train_all(retrain=args.retrain, verbose=not args.quiet, cnn=args.cnn,
                            export=args.export_weights)
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.quiet:
        for name, report in reports.items():
            print(f"{name:24s} test {report.test_accuracy:.4f}  {report.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
