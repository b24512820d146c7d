"""Trained weights: shipped files (used when their key matches), the cache, training."""

from __future__ import annotations

import io
import lzma
import os
from pathlib import Path
from typing import Any

import pytest
import torch

import quant_models.cache as cache
import quant_models.catalog as catalog
import quant_models.techniques as techniques
import quant_models.zoo as zoo
from codesign.errors import CodesignError
from quant_models.catalog import Example
from quant_models.data import load_digits_split
from quant_models.models import BinarizedMLP
from quant_models.train import TrainReport, evaluate

# -- the shipped weights of every built-in example ----------------------------------------


def forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a stored model was retrained")

    monkeypatch.setattr(cache, "train_classifier", fail)
    monkeypatch.setattr(techniques, "train_classifier", fail)   # a recipe's training


@pytest.fixture(scope="module")
def split() -> Any:
    return load_digits_split(**catalog.SPLIT_PARAMS)


@pytest.mark.parametrize("name", catalog.example_names())
def test_every_example_loads_its_shipped_weights_without_training(
    name: str, empty_cache: Path, monkeypatch: pytest.MonkeyPatch, split: Any
) -> None:
    forbid_training(monkeypatch)
    model, report = zoo.builtin_example(name)
    shipped = cache.read_weights(cache.shipped_path(name))
    assert (shipped.name, shipped.key) == (name, zoo.example_key(catalog.example(name)))
    assert report == shipped.report
    assert evaluate(model, split.x_test, split.y_test) == shipped.report.test_accuracy
    for key, value in model.state_dict().items():
        assert torch.equal(value, shipped.state_dict[key]), key
    assert not (empty_cache / "models").exists()  # nothing was written to the cache


def test_shipped_weights_are_all_there_and_small() -> None:
    files = sorted(f for f in cache.SHIPPED_DIR.iterdir() if f.name.endswith(cache.WEIGHTS_SUFFIX))
    assert [f.name for f in files] == sorted(
        f"{name}{cache.WEIGHTS_SUFFIX}" for name in catalog.example_names()
    )
    assert sum(f.stat().st_size for f in files) < 2_500_000


# -- precedence: shipped (matching key), cache, training, with tiny models ------------------


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch, empty_cache: Path) -> Example[BinarizedMLP]:
    """The binarized MLP shrunk to one hidden layer of 32 and one epoch."""
    monkeypatch.setattr(
        catalog, "BINARIZED_MLP_CONFIG", {**catalog.BINARIZED_MLP_CONFIG, "hidden": [32]}
    )
    monkeypatch.setattr(
        catalog, "BINARIZED_MLP_TRAINING", {**catalog.BINARIZED_MLP_TRAINING, "epochs": 1}
    )
    return catalog.binarized_mlp()


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every training run, by the seed-built model's class name."""
    calls: list[str] = []
    real = cache.train_classifier

    def recording(model: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(type(model).__name__)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(cache, "train_classifier", recording)
    return calls


@pytest.fixture
def shipped_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory in place of the package's shipped weights."""
    directory = tmp_path / "shipped"
    directory.mkdir()
    monkeypatch.setattr(cache, "SHIPPED_DIR", directory)
    return directory


REPORT = TrainReport(epochs=7, final_loss=0.5, train_accuracy=0.25, test_accuracy=0.125,
                     seconds=1.0)


def ship(example: Example[Any], key: str, seed: int) -> dict[str, torch.Tensor]:
    """A shipped file for ``example`` under ``key`` with random weights; returns them."""
    torch.manual_seed(seed)
    model = example.build()
    cache.save_weights(cache.shipped_path(example.name), example.name, key, model, REPORT)
    return model.state_dict()


def same_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(value, state[key]) for key, value in model.state_dict().items())


def test_a_matching_shipped_file_wins_over_the_cache(
    tiny: Example[BinarizedMLP], shipped_dir: Path, trainings: list[str]
) -> None:
    trained, trained_report = zoo.load(tiny)  # nothing shipped yet: trains and caches
    assert trainings == ["BinarizedMLP"]
    assert cache.cache_path(tiny.name, zoo.example_key(tiny)).is_file()
    state = ship(tiny, zoo.example_key(tiny), seed=1)
    model, report = zoo.load(tiny)
    assert trainings == ["BinarizedMLP"] and report == REPORT
    assert same_state(model, state) and not same_state(model, trained.state_dict())


def test_a_shipped_file_with_another_key_is_ignored(
    tiny: Example[BinarizedMLP], shipped_dir: Path, trainings: list[str]
) -> None:
    state = ship(tiny, "0123456789abcdef", seed=1)
    model, report = zoo.load(tiny)
    assert trainings == ["BinarizedMLP"] and report != REPORT
    assert not same_state(model, state)
    again, again_report = zoo.load(tiny)  # from the cache now
    assert trainings == ["BinarizedMLP"] and again_report == report
    assert same_state(again, model.state_dict())


def test_a_shipped_file_recorded_under_another_name_is_ignored(
    tiny: Example[BinarizedMLP], shipped_dir: Path, trainings: list[str]
) -> None:
    torch.manual_seed(1)
    cache.save_weights(cache.shipped_path(tiny.name), "float-mlp", zoo.example_key(tiny),
                       tiny.build(), REPORT)
    _, report = zoo.load(tiny)
    assert trainings == ["BinarizedMLP"] and report != REPORT


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-shapes"])
def test_an_unreadable_shipped_file_is_a_named_error(
    damage: str, tiny: Example[BinarizedMLP], shipped_dir: Path, trainings: list[str]
) -> None:
    path = cache.shipped_path(tiny.name)
    if damage == "garbage":
        path.write_bytes(b"this is not a weights file")
    elif damage == "truncated":
        ship(tiny, zoo.example_key(tiny), seed=1)
        path.write_bytes(path.read_bytes()[:200])
    else:
        other = BinarizedMLP(hidden=(16,))
        cache.save_weights(path, tiny.name, zoo.example_key(tiny), other, REPORT)
    with pytest.raises(cache.ShippedWeightsError) as info:
        zoo.load(tiny)
    assert isinstance(info.value, CodesignError)
    message = str(info.value)
    assert message.startswith(f"shipped weights {path} cannot be read (")
    assert message.endswith("reinstall the package, or retrain the model (--retrain, "
                            "retrain=True) to use freshly trained weights")
    assert "\n" not in message and trainings == []
    model, _ = zoo.load(tiny, retrain=True)  # the way out the message names
    assert trainings == ["BinarizedMLP"] and isinstance(model, BinarizedMLP)


def test_retrain_skips_shipped_and_cached_weights_and_caches(
    tiny: Example[BinarizedMLP], shipped_dir: Path, trainings: list[str]
) -> None:
    state = ship(tiny, zoo.example_key(tiny), seed=1)
    model, report = zoo.load(tiny, retrain=True)
    assert trainings == ["BinarizedMLP"] and report != REPORT
    cached = cache.read_weights(cache.cache_path(tiny.name, zoo.example_key(tiny)))
    assert cached.report == report and same_state(model, cached.state_dict)
    zoo.load(tiny, retrain=True)
    assert trainings == ["BinarizedMLP"] * 2
    shipped, _ = zoo.load(tiny)  # without --retrain the shipped file still wins
    assert same_state(shipped, state)


# -- the cache ------------------------------------------------------------------------------


def test_training_runs_on_one_thread_and_restores_the_callers(
    tiny: Example[BinarizedMLP], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = cache.train_classifier

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "train_classifier", recording)
    torch.set_num_threads(2)
    try:
        zoo.load(tiny)
        assert seen == [cache.TRAINING_THREADS] == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_weights_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = BinarizedMLP(hidden=(16,))
    path = cache.save_weights(tmp_path / "m.pt.xz", "m", "k", model, REPORT)
    assert path.read_bytes().startswith(b"\xfd7zXZ\x00")  # xz
    weights = cache.read_weights(path)
    assert (weights.name, weights.key, weights.report) == ("m", "k", REPORT)
    assert same_state(model, weights.state_dict)
    blob = torch.load(io.BytesIO(lzma.decompress(path.read_bytes())), weights_only=True)
    assert sorted(blob) == ["key", "name", "report", "state_dict"]


def test_cache_writes_atomically(
    tiny: Example[BinarizedMLP], trainings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zoo.load(tiny)
    path = cache.cache_path(tiny.name, zoo.example_key(tiny))
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        zoo.load(tiny, retrain=True)  # trains, then fails half-way through writing
    assert trainings == ["BinarizedMLP"] * 2
    assert path.read_bytes() == before  # readers still see the whole old file
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong-shapes", "other-key"])
def test_corrupt_cache_is_retrained(
    damage: str, tiny: Example[BinarizedMLP], trainings: list[str]
) -> None:
    model, report = zoo.load(tiny)
    key = zoo.example_key(tiny)
    path = cache.cache_path(tiny.name, key)
    if damage == "garbage":
        path.write_bytes(b"this is not a torch file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong-shapes":
        cache.save_weights(path, tiny.name, key, BinarizedMLP(hidden=(16,)), REPORT)
    else:
        cache.save_weights(path, tiny.name, "0123456789abcdef", model, REPORT)
    again, again_report = zoo.load(tiny)
    assert trainings == ["BinarizedMLP"] * 2
    # Training is deterministic, so the retrained model is exactly the first one.
    assert again_report.test_accuracy == report.test_accuracy
    assert same_state(again, model.state_dict())
    assert cache.read_weights(path).key == key
    zoo.load(tiny)  # the repaired file is a cache hit
    assert len(trainings) == 2


def test_cache_key_covers_everything_that_shapes_the_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, training = catalog.BINARIZED_MLP_CONFIG, catalog.BINARIZED_MLP_TRAINING
    split = catalog.SPLIT_PARAMS
    base = cache.cache_key(config, training, split)
    assert base == cache.cache_key(dict(config), dict(training), dict(split))
    variants = {
        cache.cache_key({**config, "hidden": [64, 64]}, training, split),
        cache.cache_key(config, {**training, "lr": 1e-2}, split),
        cache.cache_key(config, {**training, "seed": 1}, split),
        cache.cache_key(config, training, {**split, "seed": 1}),
    }
    release = torch.__version__.split("+")[0]
    for build in (release, f"{release}+cpu", f"{release}+cu126"):  # one release, other wheels
        monkeypatch.setattr(torch, "__version__", build)
        assert cache.cache_key(config, training, split) == base
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    variants.add(cache.cache_key(config, training, split))
    monkeypatch.undo()
    monkeypatch.setattr(cache, "CACHE_FORMAT", cache.CACHE_FORMAT + 1)
    variants.add(cache.cache_key(config, training, split))
    assert base not in variants and len(variants) == 6


def test_pruning_schedule_is_part_of_the_key() -> None:
    keys = {zoo.example_key(catalog.pruned_mlp(s)) for s in catalog.PRUNED_MLP_SPARSITIES}
    assert len(keys) == 3
    example = catalog.pruned_mlp(0.5)
    assert zoo.example_key(example) != cache.cache_key(
        example.config, example.training, catalog.SPLIT_PARAMS
    )
