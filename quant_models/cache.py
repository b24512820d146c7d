"""Trained weights: the copies shipped with the package, the user's cache, and training.

A weights file holds one trained model: its name, the key of everything that determined the
weights (:func:`cache_key`), the state dict and the :class:`TrainReport` of the run, as an
xz-compressed torch archive; a compressed model adds what rebuilds it (its architecture)
and the history of its compression (``extra``). The same format serves two places:

- the shipped files, ``quant_models/weights/<name>.pt.xz``, installed with the package so
  every machine gets the very weights (and accuracies) the documentation reports;
- the user's cache, ``cache_root() / "models" / f"{name}-{key}.pt.xz"``, for models whose
  configuration no longer matches a shipped file, and for ``retrain=True``.

:func:`load_or_train` prefers a shipped file whose recorded key equals the current one,
then the cache, then trains and caches. A shipped file that cannot be read is a broken
installation and raises :class:`ShippedWeightsError` rather than quietly training weights
that would differ from the documented ones; a cache file that cannot be read is treated as
missing and retrained.

Training runs on one torch thread: these networks are so small that one thread is also the
fastest (thread start-up dominates), and a fixed thread count keeps the float reduction
order, and so the trained weights, the same from run to run.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from codesign.errors import CodesignError
from codesign.paths import atomic_write_bytes, cache_root
from quant_models.data import DigitsSplit, load_digits_split
from quant_models.train import EpochCallback, ProgressFn, TrainReport, train_classifier

__all__ = [
    "CACHE_FORMAT",
    "SHIPPED_DIR",
    "TRAINING_THREADS",
    "WEIGHTS_SUFFIX",
    "ShippedWeightsError",
    "WeightsFile",
    "build_seeded",
    "cache_key",
    "cache_path",
    "find_weights",
    "load_or_train",
    "read_weights",
    "save_weights",
    "shipped_path",
    "training_threads",
]

CACHE_FORMAT = 2
"""Bumped whenever the layout of a weights file changes, so old files are never misread
(it is part of every key). 2: xz-compressed, the file records its name and key."""

WEIGHTS_SUFFIX = ".pt.xz"

SHIPPED_DIR: Path = Path(__file__).resolve().parent / "weights"
"""Where the package's trained weights are installed (package data)."""

TRAINING_THREADS = 1
"""torch threads while an example trains (see the module docstring)."""

M = TypeVar("M", bound=nn.Module)

Trainer = Callable[[Any, DigitsSplit, ProgressFn | None], TrainReport]
"""A multi-stage training pipeline: ``trainer(model, split, progress)`` trains in place."""


class ShippedWeightsError(CodesignError):
    """A weights file installed with the package cannot be read."""


@dataclass(frozen=True)
class WeightsFile:
    """The decoded content of a weights file."""

    name: str
    key: str
    """The :func:`cache_key` of the configuration the weights were trained with."""
    state_dict: dict[str, Any]
    report: TrainReport
    extra: dict[str, Any] | None = None
    """Plain data beside the weights (a compressed model's architecture and history)."""


def cache_key(config: dict[str, Any], training: dict[str, Any], split: dict[str, Any]) -> str:
    """Short sha256 over everything that determines a trained model's weights.

    The torch release counts, its local build label does not: the CPU and the CUDA wheels of
    one release (``2.13.0+cpu``, ``2.13.0``) train the same CPU code and share the weights.
    """
    payload = {
        "format": CACHE_FORMAT,
        "config": config,
        "training": training,
        "split": split,
        "torch": torch.__version__.split("+")[0],
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def cache_path(name: str, key: str) -> Path:
    """Where the user's cache keeps the weights of model ``name`` with key ``key``."""
    return cache_root() / "models" / f"{name}-{key}{WEIGHTS_SUFFIX}"


def shipped_path(name: str) -> Path:
    """Where the package ships the weights of model ``name`` (the file may not exist)."""
    return SHIPPED_DIR / f"{name}{WEIGHTS_SUFFIX}"


def save_weights(path: Path, name: str, key: str, model: nn.Module, report: TrainReport,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights, training report and ``extra`` data to ``path`` atomically."""
    buffer = io.BytesIO()
    blob = {
        "name": name,
        "key": key,
        "state_dict": model.state_dict(),
        "report": asdict(report),
    }
    if extra is not None:
        blob["extra"] = extra
    torch.save(blob, buffer)
    return atomic_write_bytes(path, lzma.compress(buffer.getvalue(), preset=9))


def read_weights(path: Path) -> WeightsFile:
    """Decode a weights file; any damage raises (``OSError``, ``lzma.LZMAError``, ...)."""
    raw = lzma.decompress(path.read_bytes())
    blob = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    report = dict(blob["report"])
    report["stages"] = tuple(report.get("stages", ()))
    return WeightsFile(
        name=str(blob["name"]),
        key=str(blob["key"]),
        state_dict=blob["state_dict"],
        report=TrainReport(**report),
        extra=blob.get("extra"),
    )


def _damaged(path: Path, exc: Exception) -> ShippedWeightsError:
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
    if len(reason) > 200:
        reason = reason[:197] + "..."
    return ShippedWeightsError(
        f"shipped weights {path} cannot be read ({reason}); reinstall the package, or "
        f"retrain the model (--retrain, retrain=True) to use freshly trained weights"
    )


def _shipped_file(name: str, key: str) -> WeightsFile | None:
    """The shipped file of model ``name`` if it records ``key``; ``None`` if there is none
    (or one for another configuration). A file that cannot be read is an error."""
    path = shipped_path(name)
    if not path.is_file():
        return None
    try:
        weights = read_weights(path)
    except Exception as exc:
        raise _damaged(path, exc) from exc
    return weights if (weights.name, weights.key) == (name, key) else None


def _cached_file(name: str, key: str) -> WeightsFile | None:
    try:
        weights = read_weights(cache_path(name, key))
    except Exception:
        # Missing, truncated or corrupt files all mean the same thing: retrain.
        return None
    return weights if (weights.name, weights.key) == (name, key) else None


def find_weights(name: str, key: str, load: Callable[[WeightsFile], M]
                 ) -> tuple[M, WeightsFile] | None:
    """``load(file)`` of the shipped file of ``name`` with ``key``, else of the cached one,
    else ``None``. ``load`` builds the model and loads the state; if it fails on the
    shipped file that is a broken installation (:class:`ShippedWeightsError`), on a cached
    file the file is treated as missing."""
    shipped = _shipped_file(name, key)
    if shipped is not None:
        try:
            return load(shipped), shipped
        except Exception as exc:
            raise _damaged(shipped_path(name), exc) from exc
    cached = _cached_file(name, key)
    if cached is not None:
        try:
            return load(cached), cached
        except Exception:
            return None
    return None


@contextmanager
def training_threads(threads: int = TRAINING_THREADS) -> Iterator[None]:
    """torch on ``threads`` threads inside the block (see the module docstring)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def build_seeded(build: Callable[[], M], seed: int) -> M:
    """``build()`` under the training seed, so initial weights are reproducible, without
    disturbing the caller's random stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def load_or_train(
    name: str,
    key: str,
    build: Callable[[], M],
    training: dict[str, Any],
    split_params: dict[str, Any],
    *,
    retrain: bool,
    progress: ProgressFn | None,
    epoch_callback: Callable[[M], EpochCallback] | None = None,
    trainer: Trainer | None = None,
) -> tuple[M, TrainReport]:
    """Model ``name`` (eval mode) and its report: shipped, cached, or trained and cached.

    ``key`` is the :func:`cache_key` of the model's configuration; a shipped or cached file
    is used only if it records the same key. Training runs
    ``train_classifier(**training)`` on ``load_digits_split(**split_params)``;
    ``epoch_callback(model)`` builds its ``step_callback`` (e.g. a pruning schedule), and
    whatever shapes that callback must be part of ``key``. ``trainer(model, split,
    progress)`` replaces that single run by a pipeline of its own (its settings belong in
    ``key`` too). ``retrain`` skips both files.
    """
    seed = int(training["seed"])

    def load_into(weights: WeightsFile) -> M:
        model = build_seeded(build, seed)
        model.load_state_dict(weights.state_dict, strict=True)
        return model

    if not retrain:
        found = find_weights(name, key, load_into)
        if found is not None:
            return found[0].eval(), found[1].report
    model = build_seeded(build, seed)
    split = load_digits_split(**split_params)
    step_callback = None if epoch_callback is None else epoch_callback(model)
    with training_threads(TRAINING_THREADS):
        if trainer is not None:
            report = trainer(model, split, progress)
        else:
            report = train_classifier(
                model, split, progress=progress, step_callback=step_callback, **training
            )
    save_weights(cache_path(name, key), name, key, model, report)
    return model.eval(), report
