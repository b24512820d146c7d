"""Binarization with a straight-through estimator.

The forward pass must produce exactly the values the hardware sees: ``+1`` for ``x >= 0`` and
``-1`` for ``x < 0``. ``torch.sign`` is not usable because it maps ``0`` to ``0``, a third
value a single bit cannot encode, and a zero latent weight or a zero pre-activation would make
the torch model disagree with the integer reference.

The gradient of a step function is zero almost everywhere, so training uses the
straight-through estimator of Hubara et al. (BNN, 2016): the incoming gradient is passed
through unchanged where ``|x| <= 1`` and cancelled where ``|x| > 1``. Cancelling outside the
window stops latent weights and pre-activations that are already saturated from drifting
further, which would make them impossible to flip back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["SignSTE", "sign_ste"]


class SignSTE(torch.autograd.Function):
    """``+1/-1`` sign in the forward pass, clipped identity in the backward pass."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        return torch.where(x >= 0, one, -one)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() <= 1).to(grad_output.dtype)


def sign_ste(x: Tensor) -> Tensor:
    """Binarize ``x`` to ``+1`` (``x >= 0``) or ``-1`` (``x < 0``), keeping its dtype.

    Gradients flow straight through where ``|x| <= 1`` and are zero elsewhere.
    """
    if not x.is_floating_point():
        raise TypeError(f"sign_ste needs a floating-point tensor, got {x.dtype}")
    return SignSTE.apply(x)
