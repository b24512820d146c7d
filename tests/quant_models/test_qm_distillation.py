"""Distillation's loss against a naive formula, and its limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from codesign.errors import CodesignError
from quant_models.distillation import DistillationError, distillation_loss, soft_target_loss


def _naive(student, teacher, labels, t, alpha):
    """alpha T^2 KL(p_teacher || p_student) + (1 - alpha) CE, one sample at a time."""
    total = 0.0
    for s, q, y in zip(student, teacher, labels, strict=True):
        p_s = np.exp(s / t) / np.exp(s / t).sum()
        p_t = np.exp(q / t) / np.exp(q / t).sum()
        kl = float(np.sum(p_t * (np.log(p_t) - np.log(p_s))))
        ce = -math.log(np.exp(s)[y] / np.exp(s).sum())
        total += alpha * t * t * kl + (1 - alpha) * ce
    return total / len(labels)


@pytest.mark.parametrize("t, alpha", [(1.0, 0.0), (4.0, 0.7), (2.5, 1.0)])
def test_the_mixed_loss_equals_the_naive_formula(t, alpha):
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    teacher = torch.randn(7, 5, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, 5, (7,), generator=gen)
    got = float(soft_target_loss(student, teacher, labels, t, alpha))
    assert got == pytest.approx(_naive(student.numpy(), teacher.numpy(), labels.numpy(), t,
                                       alpha), rel=1e-9)


def test_the_teacher_runs_without_gradients_and_extra_terms_add():
    teacher = torch.nn.Linear(3, 4)
    loss = distillation_loss(teacher, 2.0, 0.5, extra=lambda: torch.tensor(1.5))
    x = torch.randn(6, 3)
    logits = torch.randn(6, 4, requires_grad=True)
    y = torch.randint(0, 4, (6,))
    value = loss(logits, x, y)
    with torch.no_grad():
        expected = soft_target_loss(logits, teacher(x), y, 2.0, 0.5) + 1.5
    assert float(value.detach()) == pytest.approx(float(expected))
    value.backward()
    assert teacher.weight.grad is None and logits.grad is not None


def test_bad_settings_are_named_errors():
    for kwargs, message in (({"temperature": 0}, "temperature must be positive, got 0"),
                            ({"alpha": 1.5}, "alpha (the weight of the teacher's term) must "
                                             "be in [0, 1], got 1.5")):
        with pytest.raises(DistillationError) as info:
            distillation_loss(torch.nn.Identity(), **kwargs)
        assert isinstance(info.value, CodesignError) and str(info.value) == message
