"""Built-in models: cache round trips, retraining, accuracy targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import quant_models.cache as cache
import quant_models.catalog as catalog
import quant_models.zoo as zoo
from quant_models.data import load_digits_split
from quant_models.layers import BinaryLinear
from quant_models.models import BinarizedMLP, FloatMLP
from quant_models.train import evaluate, predict


@pytest.fixture
def quick_training(monkeypatch: pytest.MonkeyPatch, empty_cache: Path) -> list[dict[str, Any]]:
    """Make the built-in entries train for one epoch and record every training call."""
    monkeypatch.setattr(
        catalog, "BINARIZED_MLP_CONFIG", {**catalog.BINARIZED_MLP_CONFIG, "hidden": [32]}
    )
    monkeypatch.setattr(
        catalog, "BINARIZED_MLP_TRAINING", {**catalog.BINARIZED_MLP_TRAINING, "epochs": 1}
    )
    monkeypatch.setattr(catalog, "FLOAT_MLP_CONFIG", {**catalog.FLOAT_MLP_CONFIG, "hidden": [32]})
    monkeypatch.setattr(
        catalog, "FLOAT_MLP_TRAINING", {**catalog.FLOAT_MLP_TRAINING, "epochs": 1}
    )
    calls: list[dict[str, Any]] = []
    real = cache.train_classifier

    def recording(*args: Any, **kwargs: Any):
        calls.append({**kwargs, "threads": torch.get_num_threads()})
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "train_classifier", recording)
    return calls


def forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any):
        raise AssertionError("a stored model was retrained")

    monkeypatch.setattr(cache, "train_classifier", fail)


def test_cache_round_trip(
    quick_training: list[dict[str, Any]], empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress: list[tuple[int, int, float]] = []
    model, report = zoo.builtin_binarized_mlp(progress=lambda *a: progress.append(a))
    assert isinstance(model, BinarizedMLP) and not model.training
    assert len(quick_training) == 1 and len(progress) == 1
    assert quick_training[0]["threads"] == cache.TRAINING_THREADS
    key = zoo.example_key(catalog.binarized_mlp())
    path = cache.cache_path("binarized-mlp", key)
    assert path.is_file()
    assert path.parent == empty_cache / "models"
    assert path.name == f"binarized-mlp-{key}.pt.xz" and len(key) == 16

    forbid_training(monkeypatch)
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
    forbid_training(monkeypatch)
    again, again_report = zoo.builtin_float_mlp()
    assert again_report == report
    split = load_digits_split()
    assert np.array_equal(predict(model, split.x_test), predict(again, split.x_test))


def test_retrain_flag_forces_training(quick_training: list[dict[str, Any]]) -> None:
    zoo.builtin_binarized_mlp()
    zoo.builtin_binarized_mlp(retrain=True)
    assert len(quick_training) == 2


@pytest.mark.slow
def test_builtin_models_reach_accuracy_targets() -> None:
    split = load_digits_split(**catalog.SPLIT_PARAMS)
    float_model, float_report = zoo.builtin_float_mlp()
    bin_model, bin_report = zoo.builtin_binarized_mlp()
    assert float_report.test_accuracy >= 0.95
    assert bin_report.test_accuracy >= 0.85
    assert evaluate(float_model, split.x_test, split.y_test) == float_report.test_accuracy
    assert evaluate(bin_model, split.x_test, split.y_test) == bin_report.test_accuracy
    hidden = [m.out_features for m in bin_model.layers if isinstance(m, BinaryLinear)][:-1]
    assert hidden and all(width % 16 == 0 for width in hidden)
