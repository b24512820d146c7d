"""Ternary weights: TWN (Li et al. 2016) and TTQ (Zhu et al. 2017) with exact integer semantics.

Both methods pick, per tensor, which weights are ``+1``, ``0`` or ``-1`` with the TWN
threshold ``Delta = 0.7 * mean|W|``; they differ in the values those codes stand for.

* TWN: one scale ``alpha`` (the mean magnitude of the kept weights), so the layer is
  ``alpha * (x @ codes^T)`` and the hardware multiplies by ``{-1, 0, +1}`` only.
* TTQ: learned positive magnitudes ``Wp`` and ``Wn`` for the two signs. To stay exact in
  integers the ratio ``Wn / Wp`` is quantized to ``R / 2^f`` (``R = round(Wn / Wp * 2^f)``),
  so the integer levels are ``{+2^f, 0, -R}`` and the layer is ``(Wp / 2^f) * (x @ L^T)``.

Statistics (``Delta``, ``alpha``) are computed in float64 from the float32 latent weights and
the final scale is rounded once to float32, so they do not depend on the summation order
and the exported scale is exactly the one the forward pass multiplies by.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from quant_models.fixed_point import IntegerLinear

__all__ = [
    "TernaryLinear",
    "TernaryMethod",
    "ternarize_twn",
    "ternary_weight",
    "ttq_ratio_code",
    "twn_threshold",
]

TernaryMethod = Literal["twn", "ttq"]

TWN_THRESHOLD_FACTOR = 0.7
"""Li et al.'s approximation of the optimal threshold for Gaussian-like weights."""


def twn_threshold(w: Tensor, mask: Tensor | None = None, factor: float = 0.7) -> Tensor:
    """``Delta = factor * mean|w|`` over the unmasked entries, as a float64 0-dim tensor.

    Pruned (masked) weights are excluded from the mean so pruning does not lower the
    threshold of the weights that remain. No unmasked entry gives ``Delta = 0``.
    """
    mag = w.detach().to(torch.float64).abs()
    if mask is not None:
        keep = mask.detach().to(torch.bool)
        mag = mag[keep]
    if mag.numel() == 0:
        return torch.zeros((), dtype=torch.float64, device=w.device)
    return factor * mag.mean()


def ternarize_twn(
    w: Tensor, mask: Tensor | None = None, factor: float = TWN_THRESHOLD_FACTOR
) -> tuple[Tensor, Tensor]:
    """TWN ternarization: ``(codes, alpha)`` with ``codes`` in ``{-1, 0, +1}`` (``w``'s dtype).

    ``codes = +1`` where ``w > Delta``, ``-1`` where ``w < -Delta``, else ``0``, with
    ``Delta = 0.7 * mean|w|`` (comparisons in float64, masked entries forced to 0) and
    ``alpha = mean(|w|)`` over the non-zero codes, rounded once to ``w``'s dtype (0-dim).

    When no code is non-zero (an all-zero or fully masked tensor) ``alpha`` is 1: the layer
    output is zero whatever the scale, and a positive scale keeps the documented invariant
    ``scale > 0`` and the straight-through gradient (divided by ``alpha``) finite.
    """
    with torch.no_grad():
        delta = twn_threshold(w, mask, factor)
        w64 = w.detach().to(torch.float64)
        pos = w64 > delta
        neg = w64 < -delta
        if mask is not None:
            keep = mask.detach().to(torch.bool)
            pos &= keep
            neg &= keep
        codes = pos.to(w.dtype) - neg.to(w.dtype)
        nonzero = pos | neg
        if bool(nonzero.any()):
            alpha = w64.abs()[nonzero].mean().to(w.dtype)
        else:
            alpha = torch.ones((), dtype=w.dtype, device=w.device)
    return codes, alpha


class _TwnSTE(torch.autograd.Function):
    """Returns the precomputed codes; the gradient reaching ``w`` is that of ``alpha*codes``.

    The layer multiplies ``codes`` by ``alpha`` after the matmul, so the incoming gradient is
    ``alpha`` times the gradient of the effective weight; dividing by ``alpha`` gives TWN's
    straight-through update ``dL/dW = dL/dW_t``.
    """

    @staticmethod
    def forward(ctx: Any, w: Tensor, codes: Tensor, alpha: Tensor) -> Tensor:
        ctx.alpha = float(alpha)
        return codes.clone()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        return grad_output / ctx.alpha, None, None


class _TtqSTE(torch.autograd.Function):
    """Integer TTQ levels forward; the paper's gradients backward.

    With ``G = dL/dW_t`` (the gradient of the effective weight, i.e. the incoming gradient
    divided by the scale ``Wp / 2^f``): ``dL/dWp = sum of G over the positive positions``,
    ``dL/dWn = -sum of G over the negative positions`` (the negative level is ``-Wn``; the
    minus sign is the chain rule), passed straight through the ratio rounding and zeroed when
    ``R`` is clamped, and the latent weights get ``Wp*G``, ``G``, ``Wn*G`` on the positive,
    zero and negative positions.
    """

    @staticmethod
    def forward(
        ctx: Any,
        w: Tensor,
        wp: Tensor,
        wn: Tensor,
        pos: Tensor,
        neg: Tensor,
        frac_bits: int,
        r_max: int,
    ) -> Tensor:
        one = 1 << frac_bits
        r_scaled = (wn.detach() / wp.detach()) * one
        r_code = torch.clamp(torch.round(r_scaled), 1, r_max)
        levels = pos.to(w.dtype) * one - neg.to(w.dtype) * r_code.to(w.dtype)
        ctx.save_for_backward(pos, neg, wp.detach(), wn.detach())
        ctx.scale = float(wp.detach()) / one
        # round() sends 0.5 to 0 and r_max + 0.5 to r_max (half to even, r_max is even)
        ctx.ratio_in_range = bool((r_scaled > 0.5) & (r_scaled <= r_max + 0.5))
        return levels

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        pos, neg, wp, wn = ctx.saved_tensors
        g = grad_output / ctx.scale
        factor = torch.where(pos, wp, torch.where(neg, wn, torch.ones_like(wp)))
        grad_w = g * factor.to(g.dtype)
        grad_wp = (g * pos.to(g.dtype)).sum().reshape(wp.shape)
        grad_wn = -(g * neg.to(g.dtype)).sum().reshape(wn.shape)
        if not ctx.ratio_in_range:
            grad_wn = torch.zeros_like(grad_wn)
        return grad_w, grad_wp, grad_wn, None, None, None, None


def ternary_weight(
    weight: Tensor,
    mask: Tensor,
    method: TernaryMethod,
    wp: Tensor | None,
    wn: Tensor | None,
    ratio_frac_bits: int,
    ratio_max: int,
) -> tuple[Tensor, Tensor]:
    """``(W_int, scale)`` of a ternary layer of any weight shape (linear or convolution).

    Shared by :class:`TernaryLinear` and ``quant_models.conv.TernaryConv2d`` so both use one
    definition: TWN gives the codes and ``alpha``; TTQ gives the levels ``{2^f, 0, -R}``
    and ``Wp / 2^f`` (``wp``/``wn`` must then be the learned magnitudes). ``W_int`` carries
    the straight-through gradient to ``weight`` (and to ``wp``/``wn``); ``scale`` is a
    detached 0-dim tensor.
    """
    w = weight * mask.to(weight.dtype)
    codes, alpha = ternarize_twn(weight, mask)
    if method == "twn":
        return _TwnSTE.apply(w, codes, alpha), alpha
    if wp is None or wn is None:
        raise ValueError("TTQ needs the learned magnitudes wp and wn")
    levels = _TtqSTE.apply(w, wp, wn, codes > 0, codes < 0, ratio_frac_bits, ratio_max)
    return levels, wp.detach() / (1 << ratio_frac_bits)


def ttq_ratio_code(wp: Tensor, wn: Tensor, ratio_frac_bits: int, ratio_max: int) -> int:
    """TTQ's ``R = clamp(round(Wn / Wp * 2^f), 1, ratio_max)`` as a Python int."""
    with torch.no_grad():
        r_scaled = (wn / wp) * (1 << ratio_frac_bits)
        return int(torch.clamp(torch.round(r_scaled), 1, ratio_max))


class TernaryWeights:
    """TWN / TTQ weight quantization shared by :class:`TernaryLinear` and
    ``TernaryConv2d``: the latent weight is ternarized over all its axes with one
    per-tensor scale (see :func:`ternary_weight`)."""

    weight: Tensor
    weight_mask: Tensor
    method: TernaryMethod
    ratio_frac_bits: int
    ratio_max: int

    @staticmethod
    def _check_ternary_args(method: str, ratio_frac_bits: int) -> None:
        if method not in ("twn", "ttq"):
            raise ValueError(f"method must be 'twn' or 'ttq', got {method!r}")
        if not 0 <= int(ratio_frac_bits) <= 8:
            raise ValueError(f"ratio_frac_bits must be in 0..8, got {ratio_frac_bits}")

    def _init_ternary(self, method: TernaryMethod, ratio_frac_bits: int) -> None:
        self.method = method
        self.ratio_frac_bits = int(ratio_frac_bits)
        self.ratio_max = 1 << (self.ratio_frac_bits + 2)
        if method == "ttq":
            _, alpha = ternarize_twn(self.weight)
            self.wp = nn.Parameter(alpha.detach().clone())
            self.wn = nn.Parameter(alpha.detach().clone())

    def _quantized_weight(self) -> tuple[Tensor, Tensor]:
        return ternary_weight(
            self.weight,
            self.weight_mask,
            self.method,
            getattr(self, "wp", None),
            getattr(self, "wn", None),
            self.ratio_frac_bits,
            self.ratio_max,
        )

    @torch.no_grad()
    def ternary_codes(self) -> Tensor:
        """The ``{-1, 0, +1}`` codes (int64, the weight's shape); pruned weights are 0."""
        return ternarize_twn(self.weight, self.weight_mask)[0].to(torch.int64)

    @torch.no_grad()
    def ratio_code(self) -> int:
        """TTQ's ``R`` (the magnitude of the negative integer level)."""
        if self.method != "ttq":
            raise ValueError("ratio_code() only exists for method='ttq'")
        return ttq_ratio_code(self.wp, self.wn, self.ratio_frac_bits, self.ratio_max)

    @torch.no_grad()
    def integer_weight(self) -> tuple[Tensor, float]:
        """``(W_int, scale)``: int64 weights and the per-tensor float scale.

        TWN: codes in ``{-1, 0, 1}`` and ``alpha``; TTQ: levels in ``{2^f, 0, -R}`` and
        ``Wp / 2^f``. For integer-valued ``x`` and no input scale, ``forward(x)`` equals
        ``float32(scale)`` times the integer accumulation with ``W_int``, bit for bit.
        """
        w_int, scale = self._quantized_weight()
        return w_int.detach().to(torch.int64), float(scale)

    def weight_kind(self) -> str:
        """Ternary (the IntegerLayer protocol): TWN codes, or TTQ's levels {2^f, 0, -R}."""
        return "ternary"

    def weight_range(self) -> tuple[int, int]:
        """TWN's codes ``[-1, 1]``; TTQ's levels ``[-ratio_max, 2^f]`` (``R`` is clamped to
        ``ratio_max``), the range any training of the layer stays in."""
        if self.method == "ttq":
            return -self.ratio_max, 1 << self.ratio_frac_bits
        return -1, 1

    @torch.no_grad()
    def clip_latent_(self) -> None:
        """TTQ: keep ``Wp`` and ``Wn`` positive after each optimizer step."""
        if self.method == "ttq":
            self.wp.clamp_(min=1e-6)
            self.wn.clamp_(min=1e-6)


class TernaryLinear(TernaryWeights, IntegerLinear):
    """Fully connected layer with ternary weights (TWN or TTQ) and no bias.

    ``weight`` is the latent float weight; every forward pass (training and evaluation)
    ternarizes its masked copy with the TWN threshold and uses the integer weights with the
    straight-through estimator. Integer semantics, for integer-valued ``x``::

        twn: acc = x @ codes^T,  codes in {-1, 0, +1};  out = alpha * acc
        ttq: acc = x @ L^T,      L in {2^f, 0, -R};     out = (Wp / 2^f) * acc

    (then times the input scale when fed by a :class:`~quant_models.fixed_point.QuantAct`).
    :meth:`integer_weight` returns exactly ``(codes or L, alpha or Wp / 2^f)``.

    TTQ: ``Wp`` and ``Wn`` are positive learned scalars (parameters ``wp``, ``wn``,
    initialised to TWN's ``alpha`` so training starts as TWN, and kept at least ``1e-6`` by
    :meth:`clip_latent_`). ``R = clamp(round(Wn / Wp * 2^f), 1, 2^(f+2))``, so the integer
    weights fit a signed ``f + 3``-bit type; ``f`` is ``ratio_frac_bits``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        method: TernaryMethod = "twn",
        ratio_frac_bits: int = 4,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self._check_ternary_args(method, ratio_frac_bits)
        super().__init__(in_features, out_features, device=device, dtype=dtype)
        self._init_ternary(method, ratio_frac_bits)

    def extra_repr(self) -> str:
        extra = f", ratio_frac_bits={self.ratio_frac_bits}" if self.method == "ttq" else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"method={self.method}{extra}"
            f"{', input_scale=linked' if self.input_quant is not None else ''}"
        )
