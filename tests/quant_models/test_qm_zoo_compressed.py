"""Built-in compressed examples: cache round trips, distinct cache files, the --train-all CLI."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import quant_models.zoo as zoo
from quant_models.data import load_digits_split
from quant_models.models import FixedPointMLP, MixedMLP, TernaryMLP
from quant_models.pruning import sparsity_report
from quant_models.train import predict


@pytest.fixture
def quick_training(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Tiny architectures, one or two epochs, and a record of every training call."""
    small = {"hidden": [16]}
    monkeypatch.setattr(zoo, "TERNARY_MLP_CONFIG", {**zoo.TERNARY_MLP_CONFIG, **small})
    monkeypatch.setattr(zoo, "TERNARY_MLP_TRAINING", {**zoo.TERNARY_MLP_TRAINING, "epochs": 1})
    monkeypatch.setattr(zoo, "FIXED_POINT_MLP_CONFIG", {**zoo.FIXED_POINT_MLP_CONFIG, **small})
    monkeypatch.setattr(
        zoo, "FIXED_POINT_MLP_TRAINING", {**zoo.FIXED_POINT_MLP_TRAINING, "epochs": 1}
    )
    monkeypatch.setattr(zoo, "PRUNED_MLP_CONFIG", {**zoo.PRUNED_MLP_CONFIG, **small})
    monkeypatch.setattr(zoo, "PRUNED_MLP_TRAINING", {**zoo.PRUNED_MLP_TRAINING, "epochs": 3})
    monkeypatch.setattr(
        zoo,
        "PRUNED_MLP_SCHEDULE",
        {**zoo.PRUNED_MLP_SCHEDULE, "start_epoch": 1, "num_steps": 2, "frequency": 1},
    )
    monkeypatch.setattr(
        zoo,
        "MIXED_MLP_CONFIG",
        {
            **zoo.MIXED_MLP_CONFIG,
            "input_width": 16,
            "binary_widths": [16],
            "ternary_width": 16,
            "fixed_width": 16,
        },
    )
    monkeypatch.setattr(zoo, "MIXED_MLP_TRAINING", {**zoo.MIXED_MLP_TRAINING, "epochs": 1})
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
    quick_training: list[dict[str, Any]], isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = zoo.builtin_pruned_mlp(0.5)
    assert quick_training[0]["step_callback"] is not None
    assert set(sparsity_report(model, "mask").values()) == {0.5}
    zoo.builtin_pruned_mlp(0.9)
    files = sorted(p.name for p in (isolated_cache / "models").iterdir())
    assert [f.rsplit("-", 1)[0] for f in files] == ["pruned-mlp-0.5", "pruned-mlp-0.9"]
    _forbid_training(monkeypatch)
    again, _ = zoo.builtin_pruned_mlp(0.5)
    for (name, a), (_, b) in zip(model.named_buffers(), again.named_buffers(), strict=True):
        assert torch.equal(a, b), name


def test_corrupt_cache_is_retrained(quick_training: list[dict[str, Any]]) -> None:
    model, _ = zoo.builtin_ternary_mlp("ttq")
    config = {**zoo.TERNARY_MLP_CONFIG, "method": "ttq"}
    path = zoo.cache_path(
        "ternary-mlp-ttq", zoo.cache_key(config, zoo.TERNARY_MLP_TRAINING, zoo.SPLIT_PARAMS)
    )
    assert path.is_file()
    other = TernaryMLP(hidden=(8,))
    buffer = io.BytesIO()
    torch.save({"state_dict": other.state_dict(), "report": {}}, buffer)
    path.write_bytes(buffer.getvalue())
    again, _ = zoo.builtin_ternary_mlp("ttq")
    assert len(quick_training) == 2
    x = load_digits_split().x_test
    assert np.array_equal(predict(model, x), predict(again, x))


def test_argument_validation() -> None:
    with pytest.raises(ValueError):
        zoo.builtin_ternary_mlp("bwn")
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError):
            zoo.builtin_pruned_mlp(bad)
    with pytest.raises(KeyError):
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
    monkeypatch.setattr(zoo, "BINARIZED_MLP_CONFIG", {**zoo.BINARIZED_MLP_CONFIG, "hidden": [16]})
    monkeypatch.setattr(zoo, "BINARIZED_MLP_TRAINING", {**zoo.BINARIZED_MLP_TRAINING, "epochs": 1})
    monkeypatch.setattr(zoo, "FLOAT_MLP_CONFIG", {**zoo.FLOAT_MLP_CONFIG, "hidden": [16]})
    monkeypatch.setattr(zoo, "FLOAT_MLP_TRAINING", {**zoo.FLOAT_MLP_TRAINING, "epochs": 1})
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
    assert len(lines) == len(reports) and all(line.endswith("(cached)") for line in lines)
