"""Built-in example models, trained once and cached on disk.

The weights live at ``cache_root() / "models" / f"{name}-{key}.pt"``, where ``key`` hashes
everything that determines them (architecture, training hyperparameters, data split and the
torch version). Changing any of those yields a new file instead of silently reusing stale
weights. A cache file that cannot be read back is treated as missing and retrained.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from codesign.paths import atomic_write_bytes, cache_root
from quant_models.data import load_digits_split
from quant_models.models import BinarizedMLP, FloatMLP
from quant_models.train import ProgressFn, TrainReport, train_classifier

__all__ = [
    "BINARIZED_MLP_CONFIG",
    "BINARIZED_MLP_NAME",
    "BINARIZED_MLP_TRAINING",
    "FLOAT_MLP_CONFIG",
    "FLOAT_MLP_NAME",
    "FLOAT_MLP_TRAINING",
    "SPLIT_PARAMS",
    "builtin_binarized_mlp",
    "builtin_float_mlp",
    "cache_key",
    "cache_path",
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
) -> tuple[M, TrainReport]:
    split_params = dict(SPLIT_PARAMS)
    path = cache_path(name, cache_key(config, training, split_params))
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
    report = train_classifier(model, split, progress=progress, **training)
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
