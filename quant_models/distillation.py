"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a student learns from a teacher.

The loss mixes the teacher's softened class distribution with the labels::

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
        + (1 - alpha) * cross_entropy(student, labels)

``T^2`` keeps the soft term's gradients on the scale of the hard term's as ``T`` grows. The
teacher is any trained model (the float baseline, or another compressed one) and runs in
eval mode without gradients. :func:`distillation_loss` returns a
:data:`quant_models.train.LossFn`, so distillation is an option of every training run:
from scratch, or the fine-tuning after any compression step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codesign.errors import CodesignError
from quant_models.train import LossFn

__all__ = ["DistillationError", "distillation_loss", "soft_target_loss"]


class DistillationError(CodesignError):
    """A temperature or mixing weight out of range."""


def soft_target_loss(student: Tensor, teacher: Tensor, labels: Tensor, temperature: float,
                     alpha: float) -> Tensor:
    """The mixed loss of the module docstring for one batch of logits."""
    t = float(temperature)
    soft = F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
                    reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student, labels)
    return alpha * t * t * soft + (1.0 - alpha) * hard


def distillation_loss(teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.7,
                      extra: Callable[[], Tensor] | None = None) -> LossFn:
    """A training loss distilling ``teacher`` (plus ``extra()``, e.g. a slimming penalty)."""
    if not temperature > 0:
        raise DistillationError(f"temperature must be positive, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise DistillationError(f"alpha (the weight of the teacher's term) must be in "
                                f"[0, 1], got {alpha}")
    teacher.eval()

    def loss(logits: Tensor, x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            target = teacher(x)
        value = soft_target_loss(logits, target, y, temperature, alpha)
        return value if extra is None else value + extra()

    return loss
