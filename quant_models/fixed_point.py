"""k-bit fixed-point quantization with exact integer semantics.

Contract shared by every quantized layer of this package: tensors that travel between layers
are *integer-valued* (float dtype, integer values) and each quantity carries a float scale
that is applied only after the integer work is done. A linear layer therefore computes

    acc = x_int @ W_int^T        (float32 on integers: exact while every |partial sum| < 2^24)
    out = acc * weight_scale * input_scale

(evaluated left to right, each product rounded once by IEEE float32 arithmetic) and never
multiplies already-scaled floats, so an integer interpreter reproduces ``acc`` bit for bit
and only the final float scaling, which is monotone, remains.

Activations are re-quantized by :class:`QuantAct` (a learned scale, output the integer code)
or, where a fixed-point pipeline is wanted instead of thresholds, by :class:`Requant`
(``acc * M / 2^s`` with round-half-to-even and saturation, all in int64).

Every rounding uses ``torch.round`` (round half to even), matching
:class:`quant_models.layers.IntegerInput`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from quant_models.layers import IntegerInput, SignActivation, _RoundClampSTE
from quant_models.protocol import ScaledCodes

__all__ = [
    "FactorLinear",
    "IntegerLinear",
    "QuantAct",
    "QuantLinear",
    "Requant",
    "fake_quant",
    "integer_range",
    "link_input_scales",
    "max_abs_weight_quant",
    "quantize",
    "requant_params",
    "set_weight_bits_",
    "type_name",
    "UnscaledAccumulator",
]

EXACT_LIMIT = 1 << 24
"""float32 represents every integer of magnitude up to 2^24, so an integer matmul whose
partial sums stay strictly below it is exact in any summation order."""


def integer_range(bits: int, signed: bool, narrow_range: bool = False) -> tuple[int, int]:
    """The ``(min, max)`` integer codes of a ``bits``-bit type.

    Signed: ``[-2^(b-1), 2^(b-1) - 1]``, or ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` with
    ``narrow_range`` (symmetric, so a per-channel max scale maps ``+-max|W|`` to ``+-qmax``
    and negation never overflows). Unsigned: ``[0, 2^b - 1]``; a narrow unsigned range has
    no meaning and is refused.
    """
    bits = int(bits)
    if signed:
        if bits < 2:
            raise ValueError(f"a signed type needs at least 2 bits, got {bits}")
        hi = (1 << (bits - 1)) - 1
        return (-hi if narrow_range else -hi - 1), hi
    if narrow_range:
        raise ValueError("narrow_range only applies to signed types")
    if bits < 1:
        raise ValueError(f"an unsigned type needs at least 1 bit, got {bits}")
    return 0, (1 << bits) - 1


def type_name(bits: int, signed: bool) -> str:
    """``"int4"``/``"uint5"`` style name of an integer type."""
    return f"{'int' if signed else 'uint'}{int(bits)}"


class _RoundClampMaskSTE(torch.autograd.Function):
    """``clamp(round(v), lo, hi)`` forward; gradient passed where ``lo <= v <= hi``, else 0.

    Zeroing the gradient outside the range is what lets a learned scale see the clipping
    error (LSQ): a clipped value does not move when the scale changes.
    """

    @staticmethod
    def forward(ctx: Any, v: Tensor, lo: int, hi: int) -> Tensor:
        ctx.save_for_backward((v >= lo) & (v <= hi))
        return torch.clamp(torch.round(v), lo, hi)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        (inside,) = ctx.saved_tensors
        return grad_output * inside.to(grad_output.dtype), None, None


def quantize(
    x: Tensor,
    scale: Tensor | float,
    bits: int,
    signed: bool,
    narrow_range: bool = False,
) -> Tensor:
    """Integer codes ``clamp(round(x / scale), min, max)`` of the type ``(bits, signed)``.

    The division is one correctly rounded float operation and ``torch.round`` rounds half
    to even, so the result is a deterministic, monotone non-decreasing function of ``x`` for
    a positive ``scale``. The result keeps ``x``'s float dtype and holds integer values.
    Gradients (to ``x`` and to a tensor ``scale``) follow the straight-through estimator:
    passed where ``x / scale`` lies inside ``[min, max]``, zero outside.
    """
    if not x.is_floating_point():
        raise TypeError(f"quantize needs a floating-point tensor, got {x.dtype}")
    lo, hi = integer_range(bits, signed, narrow_range)
    return _RoundClampMaskSTE.apply(x / scale, lo, hi)


def fake_quant(
    x: Tensor,
    scale: Tensor | float,
    bits: int,
    signed: bool,
    narrow_range: bool = False,
) -> Tensor:
    """``quantize(x, ...) * scale``: the real value the integer code stands for."""
    return quantize(x, scale, bits, signed, narrow_range) * scale


def _check_exact(x: Tensor, w_int: Tensor, where: str) -> None:
    """Refuse a matmul/convolution whose worst-case partial sum could leave float32's exact range.

    ``w_int`` is ``[out, ...]``: each output channel's accumulator sums at most its own row
    (for a convolution, its ``in/groups * kh * kw`` weights) of products with ``|x| <= max|x|``.
    """
    if x.numel() == 0 or w_int.numel() == 0:
        return
    row_sums = w_int.detach().abs().flatten(1).sum(dim=1)
    bound = float(x.detach().abs().amax()) * float(row_sums.amax())
    if bound >= EXACT_LIMIT:
        raise ValueError(
            f"{where}: |accumulator| may reach {bound:.0f} >= 2^24, where float32 integer "
            "arithmetic stops being exact; use narrower inputs or weights"
        )


def max_abs_weight_quant(
    w: Tensor, mask: Tensor, lo: int, hi: int, signed: bool, per_channel: bool
) -> tuple[Tensor, Tensor]:
    """``(W_int, scale)`` with ``scale = max|W| / hi`` per output channel or per tensor.

    ``w`` is the masked latent weight ``[out, ...]`` (a linear ``[out, in]`` or a convolution
    ``[out, in/groups, kh, kw]``); the per-channel peak is taken over everything but dim 0,
    so linear and convolutional layers share one definition. An all-zero channel gets scale
    1 so the scale stays positive; unsigned weights take their peak over ``max(W, 0)``.
    ``W_int = clamp(round(W / scale), lo, hi) * mask`` with the identity straight-through
    gradient; ``scale`` is detached (0-dim, or ``[out]`` per channel).
    """
    with torch.no_grad():
        mag = w.detach().abs() if signed else w.detach().clamp(min=0)
        peak = mag.flatten(1).amax(dim=1) if per_channel else mag.amax()
        scale = torch.where(peak > 0, peak / hi, torch.ones_like(peak))
    divisor = scale.view(-1, *([1] * (w.dim() - 1))) if per_channel else scale
    # Identity straight-through gradient, not quantize()'s range mask: the scale comes
    # from max|W|, so nothing is really clipped, yet the largest weight divided by its
    # own scale can land a rounding error above qmax and must not lose its gradient.
    w_int = _RoundClampSTE.apply(w / divisor, lo, hi)
    return w_int * mask.to(w_int.dtype), scale


class IntegerWeights:
    """What every integer-weight layer (linear or convolution) shares: the weight mask, the
    linked input scale and the forward ``scale_accumulator(accumulate(x))``.

    A host class calls :meth:`_init_integer_state` after its ``nn.Module`` init, defines
    :meth:`_quantized_weight` and :meth:`accumulate`, and sets ``_channel_dims`` to the
    number of trailing spatial axes after the channel axis (0 linear, 2 convolution).
    """

    weight: Tensor
    weight_mask: Tensor
    _input_source: ScaledCodes | None
    _channel_dims = 0

    def _init_integer_state(self) -> None:
        self.register_buffer(  # type: ignore[attr-defined]
            "weight_mask", torch.ones_like(self.weight, dtype=torch.float32))
        # A plain attribute, not a submodule: the source module already belongs to the
        # enclosing model, and registering it twice would duplicate it in the state dict.
        object.__setattr__(self, "_input_source", None)

    # -- input scale -------------------------------------------------------------------------

    def link_input(self, source: ScaledCodes | None) -> None:
        """Use ``source.scale`` as the input scale (``None``: inputs are unscaled integers).

        ``source`` is a module whose integer output codes stand for ``codes * scale``: a
        :class:`QuantAct`, or one that shares or derives such a scale (see
        :class:`quant_models.protocol.ScaledCodes`).
        """
        if source is not None and not (isinstance(source, ScaledCodes)
                                       and isinstance(source.scale, Tensor)):
            raise TypeError(f"an input scale comes from a module with a scale (a QuantAct), "
                            f"got {type(source).__name__}")
        object.__setattr__(self, "_input_source", source)

    @property
    def input_quant(self) -> ScaledCodes | None:
        """The module (a :class:`QuantAct`) whose integer output this layer consumes, if any."""
        return self._input_source

    def input_scale(self) -> Tensor | None:
        """The live input scale tensor (with gradient), or ``None`` for unscaled inputs."""
        source = self._input_source
        return None if source is None else source.scale

    # -- integer semantics -------------------------------------------------------------------

    def _quantized_weight(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def accumulate(self, x: Tensor, w_int: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def _masked_latent(self) -> Tensor:
        return self.weight * self.weight_mask.to(self.weight.dtype)

    def scale_accumulator(self, acc: Tensor, weight_scale: Tensor | None = None) -> Tensor:
        """``acc * weight_scale [* input_scale]``: exactly the float ops of the forward pass.

        A per-channel scale is viewed along the channel axis (``[C]`` for a linear layer,
        ``[C, 1, 1]`` for a convolution), one rounding per product. A compiler evaluates the
        layer's output on candidate integer accumulators with this (followed by the model's
        batch norm and activation quantizer) to derive thresholds.
        """
        if weight_scale is None:
            weight_scale = self._quantized_weight()[1]
        scale = weight_scale.to(acc.dtype)
        if scale.dim() == 1 and self._channel_dims:
            scale = scale.view(-1, *([1] * self._channel_dims))
        out = acc * scale
        in_scale = self.input_scale()
        if in_scale is not None:
            out = out * in_scale.to(acc.dtype)
        return out

    def forward(self, x: Tensor) -> Tensor:
        w_int, weight_scale = self._quantized_weight()
        return self.scale_accumulator(self.accumulate(x, w_int), weight_scale)

    @torch.no_grad()
    def integer_weight(self) -> tuple[Tensor, Any]:
        """``(W_int, weight_scale)``: int64 weights and the float scale of the forward.

        For integer-valued ``x`` and no input scale, ``forward(x)`` equals the integer
        accumulation with ``W_int`` times ``weight_scale`` in float32, bit for bit.
        """
        w_int, scale = self._quantized_weight()
        return w_int.detach().to(torch.int64), scale.detach().clone()

    def weight_kind(self) -> str:
        """k-bit integers (the IntegerLayer protocol, quant_models.protocol)."""
        return "int"

    def weight_range(self) -> tuple[int, int] | None:
        """The quantizer's integer range (:class:`quant_models.protocol.DeclaredWeightRange`):
        ``[min_weight, max_weight]`` of a k-bit layer; ``None`` for a host that sets none."""
        lo, hi = getattr(self, "min_weight", None), getattr(self, "max_weight", None)
        return None if lo is None or hi is None else (int(lo), int(hi))

    def clip_latent_(self) -> None:
        """Post-step hook of :func:`quant_models.train.train_classifier`; no-op by default."""


class IntegerLinear(IntegerWeights, nn.Linear):
    """Base of linear layers with integer weights, a float weight scale and no bias.

    Subclasses define :meth:`_quantized_weight`, which returns the integer weight matrix (a
    float tensor on integer values whose autograd graph leads back to the latent weights)
    and the detached float32 weight scale (0-dim, or ``[out_features]`` per channel).

    The forward pass is ``scale_accumulator(accumulate(x))``::

        acc = x @ W_int^T                       # exact integer arithmetic in float32
        out = acc * weight_scale [* input_scale]

    ``input_scale`` is the ``scale`` of the :class:`QuantAct` that produced ``x`` (linked by
    :func:`link_input_scales`); layers fed by :class:`~quant_models.layers.IntegerInput` or
    :class:`~quant_models.layers.SignActivation` have none (their inputs are the values
    themselves) and skip that product. Both factors are positive, so ``out`` is a monotone
    non-decreasing function of ``acc`` per channel.

    ``weight_mask`` (a buffer of 0/1, all ones until pruned) multiplies the latent weights
    before quantization, so a pruned weight is an exact zero in :meth:`integer_weight`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=False, device=device, dtype=dtype)
        self._init_integer_state()

    def accumulate(self, x: Tensor, w_int: Tensor | None = None) -> Tensor:
        """The exact integer accumulator ``x @ W_int^T`` for integer-valued ``x``."""
        if w_int is None:
            w_int = self._quantized_weight()[0]
        _check_exact(x, w_int, type(self).__name__)
        return F.linear(x, w_int.to(x.dtype))


class QuantLinear(IntegerLinear):
    """Linear layer with ``weight_bits``-bit integer weights and a max-abs weight scale.

    Every forward pass (training and evaluation) recomputes, from the detached masked latent
    weights ``W``, ``weight_scale = max|W| / qmax`` per output channel (``per_channel``) or
    per tensor, and ``W_int = clamp(round(W / weight_scale), min, max)``. An all-zero row
    (e.g. fully pruned) gets scale 1 so the scale stays positive. Gradients reach ``W``
    through the straight-through estimator (identity, also for the rounding error at the
    range ends), i.e. as the gradient of the effective weight ``W_int * weight_scale``.

    Signed weights (the usual case) may use a narrow (symmetric) range; unsigned weights
    clip every negative latent weight to 0 and are only allowed without ``narrow_range``.
    A classifier's last layer should use ``per_channel=False`` so the scale is one positive
    scalar and the argmax of the integer accumulator is the prediction.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        weight_bits: int = 8,
        weight_signed: bool = True,
        narrow_range: bool = True,
        per_channel: bool = True,
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if bias:
            raise ValueError(
                "QuantLinear has no bias: an integer datapath has no place for a float bias, "
                "and the following batch norm (or the argmax) absorbs any offset"
            )
        if not 2 <= int(weight_bits) <= 8:
            raise ValueError(f"weight_bits must be in 2..8, got {weight_bits}")
        if not weight_signed and narrow_range:
            raise ValueError(
                "unsigned weights with narrow_range=True are not supported: a narrow range "
                "is a signed-type notion; pass narrow_range=False"
            )
        super().__init__(in_features, out_features, device=device, dtype=dtype)
        self.weight_bits: int = int(weight_bits)
        self.weight_signed: bool = bool(weight_signed)
        self.narrow_range: bool = bool(narrow_range)
        self.per_channel: bool = bool(per_channel)
        self.min_weight, self.max_weight = integer_range(
            self.weight_bits, self.weight_signed, self.narrow_range
        )

    def _quantized_weight(self) -> tuple[Tensor, Tensor]:
        return max_abs_weight_quant(
            self._masked_latent(),
            self.weight_mask,
            self.min_weight,
            self.max_weight,
            self.weight_signed,
            self.per_channel,
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"weights={type_name(self.weight_bits, self.weight_signed)}"
            f"[{self.min_weight}, {self.max_weight}], per_channel={self.per_channel}"
            f"{', input_scale=linked' if self.input_quant is not None else ''}"
        )


def set_weight_bits_(layer: nn.Module, bits: int) -> None:
    """Quantize ``layer`` (a :class:`QuantLinear` or ``QuantConv2d``) to ``bits``-bit weights
    from now on: its latent weights are kept, its integer range changes (same signedness and
    narrow range)."""
    if not hasattr(layer, "weight_bits") or not hasattr(layer, "min_weight"):
        raise TypeError(f"{type(layer).__name__} has no k-bit weights to requantize")
    if not 2 <= int(bits) <= 8:
        raise ValueError(f"weight_bits must be in 2..8, got {bits}")
    layer.weight_bits = int(bits)
    layer.min_weight, layer.max_weight = integer_range(
        layer.weight_bits, layer.weight_signed, layer.narrow_range)


class UnscaledAccumulator:
    """Mixin for an integer-weight layer whose output is its integer accumulator, unscaled.

    The inner factor of a low-rank pair (:mod:`quant_models.lowrank`) ends in a
    :class:`Requant`, which reads the raw accumulator: the layer applies neither its weight
    scale nor the scale of the codes it reads (it keeps no link to a :class:`QuantAct`), so
    ``forward(x) == accumulate(x)`` exactly and ``integer_weight()`` reports scale 1.

    The weight scale only decides the integer grid of the weights: the per-tensor max-abs
    scale, until :meth:`fix_weight_step_` freezes it (the ``weight_step`` buffer, 0 while
    not fixed). The requantization after the layer is calibrated for one grid, so a factor
    is fine-tuned on a fixed step: its integer weights then move with its latent weights
    alone (``clamp(round(W / step))``, gradient inside the range), instead of every one of
    them shifting whenever the largest does.
    """

    weight_step: Tensor

    def _init_weight_step(self) -> None:
        self.register_buffer("weight_step", torch.zeros(()))  # type: ignore[attr-defined]

    @torch.no_grad()
    def fix_weight_step_(self) -> None:
        """Freeze the current max-abs weight scale as the weight grid's step."""
        self.weight_step.fill_(0.0)
        _, scale = self._quantized_weight()
        self.weight_step.fill_(float(scale))

    def _quantized_weight(self) -> tuple[Tensor, Tensor]:
        step = self.weight_step
        if float(step) <= 0.0:
            return super()._quantized_weight()  # type: ignore[misc]
        mask = self.weight_mask  # type: ignore[attr-defined]
        w_int = quantize(self._masked_latent(), step, self.weight_bits,  # type: ignore
                         True, self.narrow_range)  # type: ignore[attr-defined]
        return w_int * mask.to(w_int.dtype), step.detach().clone()

    def scale_accumulator(self, acc: Tensor, weight_scale: Tensor | None = None) -> Tensor:
        return acc

    def link_input(self, source: QuantAct | None) -> None:
        """Inputs are read as the integer codes they are: no input scale is linked."""

    def input_scale(self) -> Tensor | None:
        return None

    @torch.no_grad()
    def integer_weight(self) -> tuple[Tensor, float]:
        w_int, _ = self._quantized_weight()  # type: ignore[attr-defined]
        return w_int.detach().to(torch.int64), 1.0


class FactorLinear(UnscaledAccumulator, QuantLinear):
    """A :class:`QuantLinear` (per-tensor scale) whose output is its integer accumulator.

    The first of the two thinner layers of a truncated SVD; a :class:`Requant` follows it.
    """

    def __init__(self, in_features: int, out_features: int, weight_bits: int = 8,
                 narrow_range: bool = True) -> None:
        super().__init__(in_features, out_features, weight_bits=weight_bits,
                         narrow_range=narrow_range, per_channel=False)
        self._init_weight_step()


class QuantAct(nn.Module):
    """Activation quantizer that outputs the integer code and exposes its scale.

    ``forward(x) = clamp(round(x / scale), min, max)`` with ``torch.round`` (half to even),
    returned as a float tensor on integer values of type ``(bits, signed)``. The consumer of
    that tensor multiplies its integer accumulator by :attr:`scale` (see
    :class:`IntegerLinear`), so every matmul stays exact.

    ``scale`` is a learned positive parameter (LSQ, Esser et al. 2020): gradients reach it
    through the straight-through quantizer here and through the consumer's multiplication,
    which together give LSQ's ``round(v) - v`` / clipping gradient. Adam's per-parameter
    normalisation makes LSQ's gradient-scale factor unnecessary. With ``init_scale=None``
    the scale is initialised from the first training batch as ``2 mean|x| / sqrt(qmax)``
    (LSQ's rule); :meth:`clip_latent_` keeps it at least ``min_scale`` after each step.

    For a positive ``scale`` the output is a monotone non-decreasing, deterministic function
    of ``x``; after an affine batch norm with positive scale it is a monotone staircase of
    the preceding integer accumulator that ``2^bits - 1`` integer thresholds reproduce.
    An unsigned quantizer also acts as the ReLU (it clamps at 0).
    """

    def __init__(
        self,
        bits: int = 4,
        signed: bool = False,
        narrow_range: bool = False,
        init_scale: float | None = None,
        min_scale: float = 1e-4,
    ) -> None:
        super().__init__()
        if not 1 <= int(bits) <= 8:
            raise ValueError(f"activation bits must be in 1..8, got {bits}")
        self.bits: int = int(bits)
        self.signed: bool = bool(signed)
        self.narrow_range: bool = bool(narrow_range)
        self.min_value, self.max_value = integer_range(self.bits, self.signed, self.narrow_range)
        if init_scale is not None and not (init_scale > 0 and math.isfinite(init_scale)):
            raise ValueError(f"init_scale must be positive and finite, got {init_scale}")
        if not min_scale > 0:
            raise ValueError(f"min_scale must be positive, got {min_scale}")
        self.min_scale = float(min_scale)
        self.scale = nn.Parameter(torch.tensor(1.0 if init_scale is None else float(init_scale)))
        self.register_buffer("initialized", torch.tensor(init_scale is not None))

    @property
    def qmax(self) -> int:
        """Largest positive code (the LSQ ``Q_p``)."""
        return self.max_value

    def forward(self, x: Tensor) -> Tensor:
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                init = 2.0 * x.detach().abs().mean() / math.sqrt(self.qmax)
                self.scale.fill_(max(float(init), self.min_scale))
                self.initialized.fill_(True)
        return quantize(x, self.scale.to(x.dtype), self.bits, self.signed, self.narrow_range)

    @torch.no_grad()
    def clip_latent_(self) -> None:
        """Keep the scale positive; called after every optimizer step."""
        self.scale.clamp_(min=self.min_scale)

    def extra_repr(self) -> str:
        return (
            f"{type_name(self.bits, self.signed)}[{self.min_value}, {self.max_value}], "
            f"scale={float(self.scale.detach()):.6g}"
        )


def _links_input(module: nn.Module) -> bool:
    """Whether ``module`` multiplies its accumulator by the scale of the codes it reads.

    :class:`IntegerLinear` and the convolutional layers of :mod:`quant_models.conv` (which
    cannot be named here without an import cycle) share the ``link_input`` method.
    """
    return isinstance(module, IntegerLinear) or callable(getattr(module, "link_input", None))


def link_input_scales(layers: nn.Sequential | list[nn.Module]) -> None:
    """Link each integer layer (linear or convolution) to the :class:`QuantAct` feeding it.

    The most recent integer source before a layer with integer weights (an
    :class:`IntegerLinear`, or a ``TernaryConv2d``/``QuantConv2d``) decides its input
    scale: a :class:`QuantAct` provides its ``scale``; anything else that produces integers
    without a scale (``IntegerInput``, ``SignActivation``, another linear or convolutional
    layer's accumulator, e.g. a binary one) clears it. Modules in between that are neither
    (batch norm, identity, max-pooling and flattening, which move integer codes without
    changing their scale) do not change it.
    """
    source: QuantAct | None = None
    for module in layers:
        if isinstance(module, QuantAct):
            source = module
        elif isinstance(module, (IntegerInput, SignActivation)):
            source = None
        elif _links_input(module):
            module.link_input(source)  # type: ignore[operator]
            source = None
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            source = None


class _RequantSTE(torch.autograd.Function):
    """Exact int64 requantization forward; gradient ``M / 2^s`` inside the range."""

    @staticmethod
    def forward(ctx: Any, acc: Tensor, multiplier: int, shift: int, lo: int, hi: int) -> Tensor:
        a = acc.detach()
        a_int = a.to(torch.int64)
        if not torch.equal(a_int.to(a.dtype), a):
            raise ValueError("Requant needs integer-valued accumulators")
        if a_int.numel() and int(a_int.abs().max()) >= 1 << (63 - multiplier.bit_length()):
            raise ValueError("Requant: acc * multiplier would overflow int64")
        value = a_int * multiplier
        if shift > 0:
            q = torch.div(value, 1 << shift, rounding_mode="floor")
            rem = value - q * (1 << shift)  # in [0, 2^shift)
            half = 1 << (shift - 1)
            up = (rem > half) | ((rem == half) & (torch.remainder(q, 2) == 1))
            q = q + up.to(torch.int64)
        else:
            q = value
        ctx.save_for_backward((q >= lo) & (q <= hi))
        ctx.factor = multiplier / float(1 << shift)
        return torch.clamp(q, lo, hi).to(acc.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        (inside,) = ctx.saved_tensors
        return grad_output * inside.to(grad_output.dtype) * ctx.factor, None, None, None, None


class Requant(nn.Module):
    """Fixed-point requantization ``saturate(round_half_even(acc * M / 2^s))``.

    Computed in int64 (``acc * M`` exactly, then an exact floor division by ``2^s`` and the
    remainder compared with ``2^(s-1)`` for the half-to-even decision), so it is the integer
    computation itself rather than a float approximation of it. Inputs must be
    integer-valued with ``|acc * M| < 2^63``; the output keeps the input's float dtype and
    holds integers of type ``(bits, signed)``. The gradient is ``M / 2^s`` inside the range
    and 0 where the output saturates.
    """

    def __init__(
        self,
        multiplier: int,
        shift: int,
        bits: int = 8,
        signed: bool = True,
        narrow_range: bool = False,
    ) -> None:
        super().__init__()
        if int(multiplier) != multiplier or not 0 < int(multiplier) < (1 << 32):
            raise ValueError(f"multiplier must be an integer in [1, 2^32), got {multiplier}")
        if int(shift) != shift or not 0 <= int(shift) <= 62:
            raise ValueError(f"shift must be an integer in [0, 62], got {shift}")
        self.multiplier: int = int(multiplier)
        self.shift: int = int(shift)
        self.bits: int = int(bits)
        self.signed: bool = bool(signed)
        self.narrow_range: bool = bool(narrow_range)
        self.min_value, self.max_value = integer_range(self.bits, self.signed, self.narrow_range)

    @property
    def real_scale(self) -> float:
        """``M / 2^s`` (exact in float64)."""
        return self.multiplier / float(1 << self.shift)

    def forward(self, acc: Tensor) -> Tensor:
        if not acc.is_floating_point():
            acc = acc.to(torch.float64)
        return _RequantSTE.apply(acc, self.multiplier, self.shift, self.min_value, self.max_value)

    def extra_repr(self) -> str:
        return (
            f"multiplier={self.multiplier}, shift={self.shift}, "
            f"{type_name(self.bits, self.signed)}[{self.min_value}, {self.max_value}]"
        )


def requant_params(real_scale: float, multiplier_bits: int = 16) -> tuple[int, int]:
    """``(M, s)`` with ``M / 2^s`` closest to ``real_scale`` and ``M`` a full-width integer.

    ``s`` is chosen so that ``2^(b-1) <= M < 2^b`` (``b = multiplier_bits``), i.e. ``M`` uses
    every bit it has, and ``M = round(real_scale * 2^s)``. Then
    ``|M / 2^s - real_scale| <= 2^-(s+1) <= real_scale * 2^-b``: the relative error is at
    most ``2^-multiplier_bits``. Raises ``ValueError`` for scales that would need a negative
    shift (``real_scale`` of ``2^b`` or more) or a shift above 62.
    """
    b = int(multiplier_bits)
    if not 2 <= b <= 31:
        raise ValueError(f"multiplier_bits must be in 2..31, got {multiplier_bits}")
    r = float(real_scale)
    if not (r > 0 and math.isfinite(r)):
        raise ValueError(f"real_scale must be positive and finite, got {real_scale}")
    mantissa, exponent = math.frexp(r)  # r = mantissa * 2^exponent, mantissa in [0.5, 1)
    shift = b - exponent
    multiplier = round(mantissa * (1 << b))  # exact product; round half to even
    if multiplier == 1 << b:  # mantissa rounded up to 1.0
        multiplier >>= 1
        shift -= 1
    if shift < 0:
        raise ValueError(
            f"real_scale {r} is too large for a {b}-bit multiplier with a non-negative shift"
        )
    if shift > 62:
        raise ValueError(f"real_scale {r} is too small: it would need a shift of {shift} > 62")
    return int(multiplier), int(shift)
