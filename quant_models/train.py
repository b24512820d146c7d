"""Deterministic training and evaluation for the digits classifiers.

Training is seeded end to end (model-independent global seed plus a dedicated generator for
shuffling) so that the same configuration yields the same weights on the same machine, which
is what makes the weight cache in :mod:`quant_models.cache` trustworthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from quant_models.data import DigitsSplit

__all__ = [
    "EpochCallback",
    "LossFn",
    "ProgressFn",
    "TrainReport",
    "evaluate",
    "predict",
    "train_classifier",
]

ProgressFn = Callable[[int, int, float], None]
"""Called as ``progress(epoch, epochs, mean_loss)`` after each epoch (``epoch`` is 1-based)."""

EpochCallback = Callable[[int], None]
"""Called as ``callback(epoch)`` before each epoch's first batch (``epoch`` is 1-based)."""

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""Called as ``loss(logits, x, y)`` on every batch (``x`` the batch the logits came from);
the default is the cross-entropy of the logits with the labels. Distillation and penalties
on the model's parameters (network slimming) are such functions."""


@dataclass(frozen=True)
class TrainReport:
    """Summary of one training run; accuracies are fractions in ``[0, 1]``."""

    epochs: int
    final_loss: float
    train_accuracy: float
    test_accuracy: float
    seconds: float
    stages: tuple[dict[str, Any], ...] = ()
    """Accuracy after each stage of a multi-stage pipeline (e.g. Deep Compression's pruning,
    sharing and fine-tuning); empty for a single training run."""


def _as_input(x: np.ndarray | Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().to(torch.float32)
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def predict(model: nn.Module, x: np.ndarray | Tensor) -> np.ndarray:
    """Class predictions (int64) in eval mode; ties go to the lowest index, as ``torch.argmax``.

    The model's previous train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            scores = model(_as_input(x))
    finally:
        model.train(was_training)
    return scores.argmax(dim=1).cpu().numpy().astype(np.int64)


def evaluate(model: nn.Module, x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> float:
    """Accuracy of :func:`predict` against labels ``y``."""
    labels = np.asarray(y.cpu() if isinstance(y, Tensor) else y).astype(np.int64)
    if labels.shape[0] == 0:
        raise ValueError("cannot evaluate on an empty set")
    return float(np.mean(predict(model, x) == labels))


def _clip_latent(model: nn.Module) -> None:
    for module in model.modules():
        clip = getattr(module, "clip_latent_", None)
        if callable(clip):
            clip()


def _cross_entropy(logits: Tensor, x: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y)


def train_classifier(
    model: nn.Module,
    split: DigitsSplit,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    progress: ProgressFn | None = None,
    step_callback: EpochCallback | None = None,
    loss: LossFn | None = None,
) -> TrainReport:
    """Train ``model`` in place with Adam, cross-entropy (or ``loss``) and a per-step cosine
    learning rate.

    After every optimizer step, ``clip_latent_()`` is called on each module that defines it
    (binary layers keep their latent weights in ``[-1, 1]``). The global torch RNG is seeded
    inside a forked RNG state, so the caller's random stream is left untouched. The model is
    left in eval mode.

    ``step_callback(epoch)``, if given, runs before each epoch (in training mode, inside the
    seeded RNG context) so schedules such as gradual pruning can change the model between
    epochs; changing masks or buffers there is fine, but parameters must not be replaced
    because the optimizer holds references to them. ``final_loss`` reports ``loss``.
    """
    if epochs < 1 or batch_size < 2 or lr <= 0:
        raise ValueError("need epochs >= 1, batch_size >= 2 and lr > 0")
    start = time.perf_counter()
    x_train = _as_input(split.x_train)
    y_train = torch.as_tensor(np.asarray(split.y_train), dtype=torch.int64)
    n = x_train.shape[0]
    # A batch of one breaks BatchNorm1d in training mode; drop such a trailing batch.
    batches_per_epoch = n // batch_size + (1 if n % batch_size >= 2 else 0)
    if batches_per_epoch == 0:
        raise ValueError("training set is smaller than two samples")

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=epochs * batches_per_epoch
    )
    generator = torch.Generator().manual_seed(seed)
    objective = loss if loss is not None else _cross_entropy
    mean_loss = float("nan")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.train()
        for epoch in range(1, epochs + 1):
            if step_callback is not None:
                step_callback(epoch)
                model.train()
            order = torch.randperm(n, generator=generator)
            total, seen = 0.0, 0
            for b in range(batches_per_epoch):
                idx = order[b * batch_size : (b + 1) * batch_size]
                optimizer.zero_grad(set_to_none=True)
                batch = x_train[idx]
                value = objective(model(batch), batch, y_train[idx])
                value.backward()
                optimizer.step()
                scheduler.step()
                _clip_latent(model)
                total += float(value.detach()) * idx.numel()
                seen += idx.numel()
            mean_loss = total / seen
            if progress is not None:
                progress(epoch, epochs, mean_loss)
    model.eval()
    return TrainReport(
        epochs=int(epochs),
        final_loss=float(mean_loss),
        train_accuracy=evaluate(model, split.x_train, split.y_train),
        test_accuracy=evaluate(model, split.x_test, split.y_test),
        seconds=time.perf_counter() - start,
    )
