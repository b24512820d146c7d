"""Layers of a binarized network whose forward pass is exactly the integer computation.

Every layer here computes, in the forward pass, values that lie on the grid the hardware
uses (integer inputs, ``+1/-1`` weights and activations, integer scores), so a downstream
integer reference can reproduce the torch prediction bit for bit. Floating point appears only
in batch normalization (folded into per-channel thresholds downstream) and in the final
:class:`LogitScale`, which is a positive factor and therefore never changes the argmax.
Batch normalization itself is the plain :class:`torch.nn.BatchNorm1d`, whose
``running_mean``, ``running_var``, ``weight``, ``bias`` and ``eps`` the compiler reads.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from quant_models.binarize import sign_ste

__all__ = ["BinaryLinear", "IntegerInput", "LogitScale", "SignActivation"]


class _RoundClampSTE(torch.autograd.Function):
    """Round half-to-even and clamp in the forward pass, identity gradient in the backward.

    A custom function (rather than ``x + (q - x).detach()``) keeps the forward value exactly
    ``q``: the detach trick adds two rounded float operations and is not exact in general.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, lo: int, hi: int) -> Tensor:
        return torch.clamp(torch.round(x), lo, hi)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        return grad_output, None, None


class IntegerInput(nn.Module):
    """Marks the network input as ``bits``-bit fixed-point integers and snaps it to that grid.

    The forward pass returns ``clamp(round(x), min_value, max_value)`` (``torch.round`` rounds
    half to even) in both training and evaluation, so the model is trained on exactly the
    values the hardware input port can carry. The gradient is the identity (straight-through).
    """

    def __init__(self, bits: int, signed: bool) -> None:
        super().__init__()
        if bits < 1 or (signed and bits < 2):
            raise ValueError(f"need at least {2 if signed else 1} bits, got {bits}")
        self.bits: int = int(bits)
        self.signed: bool = bool(signed)
        if self.signed:
            self.min_value: int = -(1 << (self.bits - 1))
            self.max_value: int = (1 << (self.bits - 1)) - 1
        else:
            self.min_value = 0
            self.max_value = (1 << self.bits) - 1

    def forward(self, x: Tensor) -> Tensor:
        return _RoundClampSTE.apply(x, self.min_value, self.max_value)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, signed={self.signed}, range=[{self.min_value}, {self.max_value}]"


class BinaryLinear(nn.Linear):
    """Fully connected layer with ``+1/-1`` weights and no bias.

    The float ``weight`` parameter is the latent weight of BinaryConnect/BNN training: the
    optimizer updates it, the forward pass only sees its sign. There is no bias because the
    following batch normalization (or, for the last layer, the argmax) absorbs any offset,
    and an integer-only datapath has no place for a float bias.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=False, device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        # Small latent weights (the usual fan-in scaled uniform) let early updates flip
        # signs quickly; a uniform [-1, 1] start leaves most weights far from zero and
        # slows training down considerably.
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, sign_ste(self.weight))

    def binary_weight(self) -> Tensor:
        """The ``+1/-1`` weight used in the forward pass (detached, same dtype as latent)."""
        with torch.no_grad():
            return sign_ste(self.weight.detach()).clone()

    # -- the IntegerLayer protocol (quant_models.protocol) -------------------------------

    @torch.no_grad()
    def integer_weight(self) -> tuple[Tensor, float]:
        """``(W_bin, 1.0)``: int64 ``[out, in]`` in ``{-1, +1}``, unit scale."""
        return self.binary_weight().to(torch.int64), 1.0

    def weight_kind(self) -> str:
        return "bipolar"

    def scale_accumulator(self, acc: Tensor) -> Tensor:
        """The identity: a binary layer's output is its integer accumulator."""
        return acc

    def input_scale(self) -> Tensor | None:
        return None

    @torch.no_grad()
    def clip_latent_(self) -> None:
        """Clamp latent weights to ``[-1, 1]`` in place; call after every optimizer step.

        Outside that range the straight-through gradient is zero, so an unclipped weight
        could grow without bound and never change sign again.
        """
        self.weight.clamp_(-1.0, 1.0)


class SignActivation(nn.Module):
    """Binary activation: ``+1`` where the input is ``>= 0``, ``-1`` elsewhere."""

    def forward(self, x: Tensor) -> Tensor:
        return sign_ste(x)


class LogitScale(nn.Module):
    """Multiplies by a learnable strictly positive scalar ``exp(log_scale)``.

    A final binary layer produces integer scores of magnitude up to its fan-in; feeding those
    straight into softmax cross-entropy gives a saturated, badly conditioned loss. A learned
    temperature fixes that while, being positive, leaving the argmax (and thus every
    prediction of the integer hardware, which omits it) unchanged.
    """

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        if not init > 0 or not math.isfinite(init):
            raise ValueError(f"initial scale must be positive and finite, got {init}")
        self.log_scale = nn.Parameter(torch.tensor(math.log(init)))

    @property
    def scale(self) -> float:
        """The current scale factor (always ``> 0``)."""
        return float(self.log_scale.detach().exp())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.log_scale.exp().to(x.dtype)

    def extra_repr(self) -> str:
        return f"scale={self.scale:.6g}"
