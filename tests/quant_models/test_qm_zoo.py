"""Built-in models: cache location and key, cache hits, retraining, corrupt-file recovery."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import quant_models.zoo as zoo
from quant_models.data import load_digits_split
from quant_models.layers import BinaryLinear
from quant_models.models import BinarizedMLP, FloatMLP
from quant_models.train import evaluate, predict


@pytest.fixture
def quick_training(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Make the built-in entries train for one epoch and record every training call."""
    monkeypatch.setattr(zoo, "BINARIZED_MLP_CONFIG", {**zoo.BINARIZED_MLP_CONFIG, "hidden": [32]})
    monkeypatch.setattr(zoo, "BINARIZED_MLP_TRAINING", {**zoo.BINARIZED_MLP_TRAINING, "epochs": 1})
    monkeypatch.setattr(zoo, "FLOAT_MLP_CONFIG", {**zoo.FLOAT_MLP_CONFIG, "hidden": [32]})
    monkeypatch.setattr(zoo, "FLOAT_MLP_TRAINING", {**zoo.FLOAT_MLP_TRAINING, "epochs": 1})
    calls: list[dict[str, Any]] = []
    real = zoo.train_classifier

    def recording(*args: Any, **kwargs: Any):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(zoo, "train_classifier", recording)
    return calls


def _forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any):
        raise AssertionError("cached model was retrained")

    monkeypatch.setattr(zoo, "train_classifier", fail)


def _cached_file(config: dict[str, Any], training: dict[str, Any], name: str) -> Path:
    return zoo.cache_path(name, zoo.cache_key(config, training, zoo.SPLIT_PARAMS))


def test_cache_round_trip(
    quick_training: list[dict[str, Any]], isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress: list[tuple[int, int, float]] = []
    model, report = zoo.builtin_binarized_mlp(progress=lambda *a: progress.append(a))
    assert isinstance(model, BinarizedMLP) and not model.training
    assert len(quick_training) == 1 and len(progress) == 1
    path = _cached_file(zoo.BINARIZED_MLP_CONFIG, zoo.BINARIZED_MLP_TRAINING, "binarized-mlp")
    assert path.is_file()
    assert path.parent == isolated_cache / "models"
    assert len(path.stem.rsplit("-", 1)[1]) == 16

    _forbid_training(monkeypatch)
    again, again_report = zoo.builtin_binarized_mlp()
    assert not again.training
    assert again_report == report
    x = load_digits_split().x_test
    assert np.array_equal(predict(model, x), predict(again, x))
    with torch.no_grad():
        assert torch.equal(model(torch.tensor(x).float()), again(torch.tensor(x).float()))


def test_float_cache_round_trip(
    quick_training: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, report = zoo.builtin_float_mlp()
    assert isinstance(model, FloatMLP) and not model.training
    _forbid_training(monkeypatch)
    again, again_report = zoo.builtin_float_mlp()
    assert again_report == report
    split = load_digits_split()
    assert np.array_equal(predict(model, split.x_test), predict(again, split.x_test))


def test_retrain_flag_forces_training(quick_training: list[dict[str, Any]]) -> None:
    zoo.builtin_binarized_mlp()
    zoo.builtin_binarized_mlp(retrain=True)
    assert len(quick_training) == 2


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong-shapes"])
def test_corrupt_cache_is_retrained(quick_training: list[dict[str, Any]], damage: str) -> None:
    model, _ = zoo.builtin_binarized_mlp()
    path = _cached_file(zoo.BINARIZED_MLP_CONFIG, zoo.BINARIZED_MLP_TRAINING, "binarized-mlp")
    if damage == "garbage":
        path.write_bytes(b"this is not a torch file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        other = BinarizedMLP(hidden=(16,))
        buffer = io.BytesIO()
        torch.save({"state_dict": other.state_dict(), "report": {}}, buffer)
        path.write_bytes(buffer.getvalue())
    again, _ = zoo.builtin_binarized_mlp()
    assert len(quick_training) == 2
    x = load_digits_split().x_test
    # Training is deterministic, so the retrained model predicts exactly as the first one.
    assert np.array_equal(predict(model, x), predict(again, x))
    zoo.builtin_binarized_mlp()  # the repaired file is a cache hit
    assert len(quick_training) == 2


def test_cache_key_covers_everything_that_shapes_the_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, training = zoo.BINARIZED_MLP_CONFIG, zoo.BINARIZED_MLP_TRAINING
    base = zoo.cache_key(config, training, zoo.SPLIT_PARAMS)
    assert base == zoo.cache_key(dict(config), dict(training), dict(zoo.SPLIT_PARAMS))
    variants = {
        zoo.cache_key({**config, "hidden": [64, 64]}, training, zoo.SPLIT_PARAMS),
        zoo.cache_key(config, {**training, "lr": 1e-2}, zoo.SPLIT_PARAMS),
        zoo.cache_key(config, {**training, "seed": 1}, zoo.SPLIT_PARAMS),
        zoo.cache_key(config, training, {**zoo.SPLIT_PARAMS, "seed": 1}),
    }
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    variants.add(zoo.cache_key(config, training, zoo.SPLIT_PARAMS))
    assert base not in variants and len(variants) == 5


@pytest.mark.slow
def test_builtin_models_reach_accuracy_targets() -> None:
    split = load_digits_split(**zoo.SPLIT_PARAMS)
    float_model, float_report = zoo.builtin_float_mlp()
    bin_model, bin_report = zoo.builtin_binarized_mlp()
    assert float_report.test_accuracy >= 0.95
    assert bin_report.test_accuracy >= 0.85
    assert evaluate(float_model, split.x_test, split.y_test) == float_report.test_accuracy
    assert evaluate(bin_model, split.x_test, split.y_test) == bin_report.test_accuracy
    hidden = [m.out_features for m in bin_model.layers if isinstance(m, BinaryLinear)][:-1]
    assert hidden and all(width % 16 == 0 for width in hidden)
