"""Built-in compressed examples: cache round trips, distinct cache files, the --train-all CLI."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import quant_models.cache as cache
import quant_models.catalog as catalog
import quant_models.zoo as zoo
from quant_models.catalog import UnknownExampleError
from quant_models.data import load_digits_split
from quant_models.models import FixedPointMLP, MixedMLP, TernaryMLP
from quant_models.pruning import sparsity_report
from quant_models.train import predict


@pytest.fixture
def quick_training(monkeypatch: pytest.MonkeyPatch, empty_cache: Path) -> list[dict[str, Any]]:
    """Tiny architectures, one or two epochs, and a record of every training call."""
    small = {"hidden": [16]}
    for name, changes in (
        ("TERNARY_MLP_CONFIG", small),
        ("TERNARY_MLP_TRAINING", {"epochs": 1}),
        ("FIXED_POINT_MLP_CONFIG", small),
        ("FIXED_POINT_MLP_TRAINING", {"epochs": 1}),
        ("PRUNED_MLP_CONFIG", small),
        ("PRUNED_MLP_TRAINING", {"epochs": 3}),
    ):
        monkeypatch.setattr(catalog, name, {**getattr(catalog, name), **changes})
    monkeypatch.setattr(
        catalog,
        "PRUNED_MLP_SCHEDULE",
        {**catalog.PRUNED_MLP_SCHEDULE, "start_epoch": 1, "num_steps": 2, "frequency": 1},
    )
    monkeypatch.setattr(
        catalog,
        "MIXED_MLP_CONFIG",
        {
            **catalog.MIXED_MLP_CONFIG,
            "input_width": 16,
            "binary_widths": [16],
            "ternary_width": 16,
            "fixed_width": 16,
        },
    )
    monkeypatch.setattr(catalog, "MIXED_MLP_TRAINING", {**catalog.MIXED_MLP_TRAINING, "epochs": 1})
    monkeypatch.setattr(catalog, "COMPRESSED_MLPS", ())   # recipes have tests of their own
    calls: list[dict[str, Any]] = []
    real = cache.train_classifier

    def recording(*args: Any, **kwargs: Any):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "train_classifier", recording)
    return calls


def _forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any):
        raise AssertionError("cached model was retrained")

    monkeypatch.setattr(cache, "train_classifier", fail)


LOADERS = {
    "ternary-twn": (lambda **kw: zoo.builtin_ternary_mlp("twn", **kw), TernaryMLP),
    "ternary-ttq": (lambda **kw: zoo.builtin_ternary_mlp("ttq", **kw), TernaryMLP),
    "fixed-w4a4": (lambda **kw: zoo.builtin_fixed_point_mlp(4, 4, **kw), FixedPointMLP),
    "fixed-w8a8": (lambda **kw: zoo.builtin_fixed_point_mlp(8, 8, **kw), FixedPointMLP),
    "pruned-0.75": (lambda **kw: zoo.builtin_pruned_mlp(0.75, **kw), FixedPointMLP),
    "mixed": (lambda **kw: zoo.builtin_mixed_mlp(**kw), MixedMLP),
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_cache_round_trip(
    name: str, quick_training: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    load, cls = LOADERS[name]
    progress: list[tuple[int, int, float]] = []
    model, report = load(progress=lambda *a: progress.append(a))
    assert isinstance(model, cls) and not model.training
    assert len(quick_training) == 1 and len(progress) == report.epochs
    _forbid_training(monkeypatch)
    again, again_report = load()
    assert again_report == report
    x = load_digits_split().x_test
    assert np.array_equal(predict(model, x), predict(again, x))
    with torch.no_grad():
        xt = torch.tensor(x).float()
        assert torch.equal(model(xt), again(xt))


def test_pruned_cache_keeps_masks_and_sparsities_get_distinct_files(
    quick_training: list[dict[str, Any]], empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = zoo.builtin_pruned_mlp(0.5)
    assert quick_training[0]["step_callback"] is not None
    assert set(sparsity_report(model, "mask").values()) == {0.5}
    zoo.builtin_pruned_mlp(0.9)
    files = sorted(p.name for p in (empty_cache / "models").iterdir())
    assert [f.rsplit("-", 1)[0] for f in files] == ["pruned-mlp-0.5", "pruned-mlp-0.9"]
    _forbid_training(monkeypatch)
    again, _ = zoo.builtin_pruned_mlp(0.5)
    for (name, a), (_, b) in zip(model.named_buffers(), again.named_buffers(), strict=True):
        assert torch.equal(a, b), name


def test_argument_validation() -> None:
    with pytest.raises(ValueError):
        zoo.builtin_ternary_mlp("bwn")
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError):
            zoo.builtin_pruned_mlp(bad)
    with pytest.raises(UnknownExampleError, match="unknown example 'no-such-model'; "
                       "available: float-mlp, binarized-mlp, "):
        zoo.builtin_example("no-such-model")


def test_example_names_and_cli_listing(capsys: pytest.CaptureFixture[str]) -> None:
    names = zoo.builtin_example_names()
    assert names[:2] == ["float-mlp", "binarized-mlp"]
    assert {
        "ternary-mlp-twn",
        "ternary-mlp-ttq",
        "fixed-point-mlp-w4a4",
        "fixed-point-mlp-w8a8",
        "pruned-mlp-0.5",
        "pruned-mlp-0.75",
        "pruned-mlp-0.9",
        "mixed-mlp",
    } <= set(names)
    assert zoo.main([]) == 0
    assert capsys.readouterr().out.split() == names


def test_train_all_reports_every_example(
    quick_training: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for config, training in (
        ("BINARIZED_MLP_CONFIG", "BINARIZED_MLP_TRAINING"),
        ("FLOAT_MLP_CONFIG", "FLOAT_MLP_TRAINING"),
    ):
        monkeypatch.setattr(catalog, config, {**getattr(catalog, config), "hidden": [16]})
        monkeypatch.setattr(catalog, training, {**getattr(catalog, training), "epochs": 1})
    out = io.StringIO()
    reports = zoo.train_all(stream=out)
    assert list(reports) == zoo.builtin_example_names()
    text = out.getvalue()
    assert "epoch   1/" in text and "mixed-mlp" in text
    _forbid_training(monkeypatch)
    quiet = io.StringIO()
    assert zoo.train_all(verbose=False, stream=quiet) == reports
    assert quiet.getvalue() == ""
    cached = io.StringIO()
    zoo.train_all(stream=cached)
    lines = cached.getvalue().splitlines()
    assert len(lines) == len(reports) and all(line.endswith("(loaded)") for line in lines)
