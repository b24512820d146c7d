"""Built-in example models, trained once and cached on disk.

The weights live at ``cache_root() / "models" / f"{name}-{key}.pt"``, where ``key`` hashes
everything that determines them (architecture, training hyperparameters, data split and the
torch version). Changing any of those yields a new file instead of silently reusing stale
weights. A cache file that cannot be read back is treated as missing and retrained.

``python -m quant_models.zoo --train-all`` trains (or loads) every example and prints a
summary; ``--retrain`` ignores the cache; ``--cnn`` adds the convolutional examples of
:mod:`quant_models.cnn_zoo` (listing or training).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from codesign.paths import atomic_write_bytes, cache_root
from quant_models.data import load_digits_split
from quant_models.models import BinarizedMLP, FixedPointMLP, FloatMLP, MixedMLP, TernaryMLP
from quant_models.pruning import PruningSchedule
from quant_models.train import EpochCallback, ProgressFn, TrainReport, train_classifier

__all__ = [
    "BINARIZED_MLP_CONFIG",
    "BINARIZED_MLP_NAME",
    "BINARIZED_MLP_TRAINING",
    "FLOAT_MLP_CONFIG",
    "FLOAT_MLP_NAME",
    "FLOAT_MLP_TRAINING",
    "FIXED_POINT_MLP_CONFIG",
    "FIXED_POINT_MLP_TRAINING",
    "FIXED_POINT_VARIANTS",
    "MIXED_MLP_CONFIG",
    "MIXED_MLP_NAME",
    "MIXED_MLP_TRAINING",
    "PRUNED_MLP_CONFIG",
    "PRUNED_MLP_SCHEDULE",
    "PRUNED_MLP_SPARSITIES",
    "PRUNED_MLP_TRAINING",
    "SPLIT_PARAMS",
    "TERNARY_MLP_CONFIG",
    "TERNARY_MLP_TRAINING",
    "builtin_binarized_mlp",
    "builtin_example",
    "builtin_example_names",
    "builtin_fixed_point_mlp",
    "builtin_float_mlp",
    "builtin_mixed_mlp",
    "builtin_pruned_mlp",
    "builtin_ternary_mlp",
    "cache_key",
    "cache_path",
    "main",
    "train_all",
]

CACHE_FORMAT = 1
"""Bumped whenever the layout of a cache file changes, so old files are never misread."""

SPLIT_PARAMS: dict[str, Any] = {"test_fraction": 0.25, "seed": 0}
"""Arguments to :func:`load_digits_split` shared by all built-in models."""

BINARIZED_MLP_NAME = "binarized-mlp"
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

FLOAT_MLP_NAME = "float-mlp"
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
:func:`builtin_ternary_mlp`. About 97% test accuracy either way."""
TERNARY_MLP_TRAINING: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 64, "seed": 0}

FIXED_POINT_MLP_CONFIG: dict[str, Any] = {
    "in_features": 64,
    "hidden": [128, 64],
    "num_classes": 10,
    "input_bits": 5,
    "input_signed": False,
}
"""Architecture of the fixed-point examples; ``weight_bits``/``act_bits`` are added by
:func:`builtin_fixed_point_mlp`."""
FIXED_POINT_MLP_TRAINING: dict[str, Any] = {
    "epochs": 40,
    "lr": 3e-3,
    "batch_size": 64,
    "seed": 0,
}
FIXED_POINT_VARIANTS: tuple[tuple[int, int], ...] = ((4, 4), (8, 8))
"""``(weight_bits, act_bits)`` of the fixed-point examples ``--train-all`` trains."""

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

MIXED_MLP_NAME = "mixed-mlp"
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

M = TypeVar("M", bound=nn.Module)


def cache_key(config: dict[str, Any], training: dict[str, Any], split: dict[str, Any]) -> str:
    """Short sha256 over everything that determines a trained model's weights."""
    payload = {
        "format": CACHE_FORMAT,
        "config": config,
        "training": training,
        "split": split,
        "torch": torch.__version__,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def cache_path(name: str, key: str) -> Path:
    """Where the weights of model ``name`` with cache key ``key`` are stored."""
    return cache_root() / "models" / f"{name}-{key}.pt"


def _load_cached(path: Path, model: nn.Module) -> TrainReport | None:
    """Load weights into ``model`` and return the stored report, or ``None`` if unusable."""
    try:
        blob = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
        model.load_state_dict(blob["state_dict"], strict=True)
        return TrainReport(**blob["report"])
    except Exception:
        # Missing, truncated, corrupt or mismatched files all mean the same thing: retrain.
        return None


def _load_or_train(
    name: str,
    build: Callable[[], M],
    config: dict[str, Any],
    training: dict[str, Any],
    *,
    retrain: bool,
    progress: ProgressFn | None,
    epoch_callback: Callable[[M], EpochCallback] | None = None,
    extra_key: dict[str, Any] | None = None,
) -> tuple[M, TrainReport]:
    """Load ``name`` from the cache or train it with ``train_classifier(**training)``.

    ``epoch_callback(model)`` builds the ``step_callback`` of the run (e.g. a pruning
    schedule); whatever shapes it must be in ``extra_key``, which joins the cache key.
    """
    split_params = dict(SPLIT_PARAMS)
    key_training = training if extra_key is None else {**training, **extra_key}
    path = cache_path(name, cache_key(config, key_training, split_params))
    # Build under the training seed so initial weights are reproducible without disturbing
    # the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(training["seed"]))
        model = build()
    if not retrain:
        report = _load_cached(path, model)
        if report is not None:
            return model.eval(), report
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(training["seed"]))
            model = build()  # a failed load may have left the model partly overwritten
    split = load_digits_split(**split_params)
    step_callback = None if epoch_callback is None else epoch_callback(model)
    report = train_classifier(
        model, split, progress=progress, step_callback=step_callback, **training
    )
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "report": asdict(report)}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return model.eval(), report


def builtin_binarized_mlp(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[BinarizedMLP, TrainReport]:
    """The built-in binarized digits MLP (eval mode) and its training report."""
    config = dict(BINARIZED_MLP_CONFIG)
    return _load_or_train(
        BINARIZED_MLP_NAME,
        lambda: BinarizedMLP(**config),
        config,
        dict(BINARIZED_MLP_TRAINING),
        retrain=retrain,
        progress=progress,
    )


def builtin_float_mlp(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[FloatMLP, TrainReport]:
    """The built-in float baseline MLP (eval mode) and its training report."""
    config = dict(FLOAT_MLP_CONFIG)
    return _load_or_train(
        FLOAT_MLP_NAME,
        lambda: FloatMLP(**config),
        config,
        dict(FLOAT_MLP_TRAINING),
        retrain=retrain,
        progress=progress,
    )


def builtin_ternary_mlp(
    method: str = "twn", *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[TernaryMLP, TrainReport]:
    """The built-in ternary digits MLP (``method`` "twn" or "ttq") and its training report."""
    if method not in ("twn", "ttq"):
        raise ValueError(f"method must be 'twn' or 'ttq', got {method!r}")
    config = {**TERNARY_MLP_CONFIG, "method": method}
    return _load_or_train(
        f"ternary-mlp-{method}",
        lambda: TernaryMLP(**config),
        config,
        dict(TERNARY_MLP_TRAINING),
        retrain=retrain,
        progress=progress,
    )


def builtin_fixed_point_mlp(
    weight_bits: int = 4,
    act_bits: int = 4,
    *,
    retrain: bool = False,
    progress: ProgressFn | None = None,
) -> tuple[FixedPointMLP, TrainReport]:
    """The built-in fixed-point MLP with ``weight_bits`` weights and ``act_bits`` activations.

    Any ``2..8`` bits work; ``FIXED_POINT_VARIANTS`` lists the ones ``--train-all`` trains.
    """
    config = {**FIXED_POINT_MLP_CONFIG, "weight_bits": int(weight_bits), "act_bits": int(act_bits)}
    return _load_or_train(
        f"fixed-point-mlp-w{int(weight_bits)}a{int(act_bits)}",
        lambda: FixedPointMLP(**config),
        config,
        dict(FIXED_POINT_MLP_TRAINING),
        retrain=retrain,
        progress=progress,
    )


def builtin_pruned_mlp(
    sparsity: float = 0.75, *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[FixedPointMLP, TrainReport]:
    """The 8-bit fixed-point MLP pruned to ``sparsity`` in every layer, and its report.

    Trained from scratch in one run: dense epochs, then :class:`PruningSchedule` (cubic,
    Zhu & Gupta 2017) up to ``sparsity``, then fine-tuning with the final masks. The masks
    are the layers' ``weight_mask`` buffers, so pruned weights are exact integer zeros.
    """
    if not 0.0 < float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in (0, 1), got {sparsity}")
    config = dict(PRUNED_MLP_CONFIG)
    schedule = {**PRUNED_MLP_SCHEDULE, "final_sparsity": float(sparsity)}

    def make_schedule(model: FixedPointMLP) -> EpochCallback:
        return PruningSchedule(model, **schedule)

    return _load_or_train(
        f"pruned-mlp-{float(sparsity):g}",
        lambda: FixedPointMLP(**config),
        config,
        dict(PRUNED_MLP_TRAINING),
        retrain=retrain,
        progress=progress,
        epoch_callback=make_schedule,
        extra_key={"pruning": schedule},
    )


def builtin_mixed_mlp(
    *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[MixedMLP, TrainReport]:
    """The built-in mixed-precision MLP (int8 / binary / ternary / 4-bit / int8 layers)."""
    config = dict(MIXED_MLP_CONFIG)
    return _load_or_train(
        MIXED_MLP_NAME,
        lambda: MixedMLP(**config),
        config,
        dict(MIXED_MLP_TRAINING),
        retrain=retrain,
        progress=progress,
    )


def _all_examples() -> list[tuple[str, Callable[..., tuple[nn.Module, TrainReport]]]]:
    """``(name, loader)`` of every built-in example; a loader takes ``retrain``/``progress``."""
    examples: list[tuple[str, Callable[..., tuple[nn.Module, TrainReport]]]] = [
        (FLOAT_MLP_NAME, builtin_float_mlp),
        (BINARIZED_MLP_NAME, builtin_binarized_mlp),
    ]
    for method in ("twn", "ttq"):
        examples.append((f"ternary-mlp-{method}", _bind(builtin_ternary_mlp, method)))
    for wb, ab in FIXED_POINT_VARIANTS:
        examples.append((f"fixed-point-mlp-w{wb}a{ab}", _bind(builtin_fixed_point_mlp, wb, ab)))
    for sparsity in PRUNED_MLP_SPARSITIES:
        examples.append((f"pruned-mlp-{sparsity:g}", _bind(builtin_pruned_mlp, sparsity)))
    examples.append((MIXED_MLP_NAME, builtin_mixed_mlp))
    return examples


def _bind(fn: Callable[..., Any], *args: Any) -> Callable[..., Any]:
    def call(**kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return call


def _cnn_examples() -> list[tuple[str, Callable[..., tuple[nn.Module, TrainReport]]]]:
    # Imported on use: quant_models.cnn_zoo builds on this module.
    from quant_models.cnn_zoo import cnn_examples

    return cnn_examples()


def builtin_example_names() -> list[str]:
    """Names of every built-in MLP example, in the order ``--train-all`` trains them.

    The convolutional examples are listed by :func:`quant_models.cnn_zoo.builtin_cnn_names`
    (``--train-all --cnn`` trains them too); :func:`builtin_example` loads either kind.
    """
    return [name for name, _ in _all_examples()]


def builtin_example(
    name: str, *, retrain: bool = False, progress: ProgressFn | None = None
) -> tuple[nn.Module, TrainReport]:
    """Load (or train) the built-in example called ``name`` (an MLP or a CNN example)."""
    loaders = dict(_all_examples())
    if name not in loaders:
        loaders.update(_cnn_examples())
    if name not in loaders:
        raise KeyError(f"unknown example {name!r}; available: {', '.join(loaders)}")
    return loaders[name](retrain=retrain, progress=progress)


def train_all(
    *, retrain: bool = False, verbose: bool = True, stream: Any = None, cnn: bool = False
) -> dict[str, TrainReport]:
    """Load or train every built-in example; returns each example's training report.

    With ``verbose`` every epoch of a model that is being trained prints its loss, and each
    example ends with one summary line (test accuracy and training time). ``cnn`` adds the
    convolutional examples after the MLPs.
    """
    out = sys.stdout if stream is None else stream
    reports: dict[str, TrainReport] = {}
    examples = _all_examples() + (_cnn_examples() if cnn else [])
    for name, loader in examples:
        epochs_run: list[int] = []

        def progress(
            epoch: int, epochs: int, loss: float, name: str = name, seen: list[int] = epochs_run
        ) -> None:
            seen.append(epoch)
            if verbose:
                print(f"  [{name}] epoch {epoch:3d}/{epochs} loss {loss:.4f}", file=out, flush=True)

        _, report = loader(retrain=retrain, progress=progress)
        reports[name] = report
        if verbose:
            origin = "trained" if epochs_run else "cached"
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
        prog="python -m quant_models.zoo", description="Built-in example models (cached)."
    )
    parser.add_argument("--train-all", action="store_true", help="load or train every example")
    parser.add_argument("--retrain", action="store_true", help="ignore cached weights")
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    parser.add_argument(
        "--cnn", action="store_true", help="include the convolutional examples (list or train)"
    )
    args = parser.parse_args(argv)
    if not args.train_all:
        names = builtin_example_names()
        if args.cnn:
            names += [name for name, _ in _cnn_examples()]
        for name in names:
            print(name)
        return 0
    if args.quiet:
        reports = train_all(retrain=args.retrain, verbose=False, cnn=args.cnn)
        for name, report in reports.items():
            print(f"{name:24s} test {report.test_accuracy:.4f}  {report.seconds:.1f} s")
    else:
        train_all(retrain=args.retrain, verbose=True, cnn=args.cnn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
