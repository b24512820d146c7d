"""Convolutional layers with the same integer-exactness contract as the linear layers.

Every convolution here computes its accumulator on integer-valued float tensors and only then
applies float scales, exactly like :class:`~quant_models.fixed_point.IntegerLinear`::

    x_pad = F.pad(x, (pw, pw, ph, ph), value=pad_value)          # integers stay integers
    acc   = conv2d(x_pad, W_int, stride=stride, padding=0, groups=groups)
    out   = acc * weight_scale[C, 1, 1] [* input_scale]          # scale_accumulator(acc)

``acc`` is exact in float32 while every partial sum stays below ``2^24`` (checked before each
convolution). That holds for direct and im2col convolution, which is what PyTorch's CPU
backend runs; Winograd or FFT algorithms (which cuDNN may pick on a GPU) transform the
operands and are not exact, so on CUDA cuDNN must be disabled for bit-exact results.

Padding rule
    ``padding`` (the geometry, as in :class:`torch.nn.Conv2d`) says how many rows/columns
    are added on each side; ``pad_value`` says what they hold. The layers pad explicitly
    with ``F.pad(..., value=pad_value)`` and convolve with ``padding=0``, so the border is a
    real input value that the hardware reproduces by filling its line buffers with the same
    constant. Bipolar (``+1/-1``) activations have no zero: zero padding would make the
    border a third input value, so a binary layer reading bipolar codes pads with ``+1``
    (the default of :class:`BinaryConv2d`, the bit ``1`` of the XNOR-popcount encoding, as
    in Larq's ``pad_values=1``), and every output position keeps the same number of bipolar
    products. Layers reading integer codes whose zero means the real value 0 (fixed-point
    pixels, unsigned :class:`~quant_models.fixed_point.QuantAct` codes) pad with ``0``,
    which is also the default of :class:`TernaryConv2d` and :class:`QuantConv2d`; a binary
    first layer reading pixels must be built with ``pad_value=0``.

Pooling, batch norm and flattening
    * Max-pooling is plain :class:`torch.nn.MaxPool2d` (kernel, stride, no padding). In the
      example models it always comes *after* the activation quantizer, on integer codes:
      max commutes with the monotone non-decreasing quantizer, so the compiler treats it as
      an integer max of codes (for bipolar codes: the OR of the bits) with the scale
      unchanged.
    * Batch norm after a convolution is :class:`torch.nn.BatchNorm2d`; with the following
      ``SignActivation`` or ``QuantAct`` (both elementwise, any tensor rank) it is a
      monotone staircase of the integer accumulator per output channel, folded into
      per-channel thresholds downstream.
    * :class:`torch.nn.Flatten` joins the convolutional and the fully connected parts. It
      flattens NCHW channel-major: feature ``c * H * W + h * W + w`` is channel ``c``, row
      ``h``, column ``w``, which is the order the first linear layer's weight columns use.

Only dilation 1 is supported; depthwise convolution is ``groups == in_channels ==
out_channels``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from quant_models.binarize import sign_ste
from quant_models.fixed_point import (
    IntegerWeights,
    UnscaledAccumulator,
    _check_exact,
    integer_range,
    max_abs_weight_quant,
    type_name,
)
from quant_models.ternary import TernaryMethod, TernaryWeights

__all__ = [
    "BinaryConv2d",
    "FactorConv2d",
    "IntegerConv2d",
    "QuantConv2d",
    "TernaryConv2d",
    "conv_output_size",
    "pad_integer",
]

IntPair = int | tuple[int, int]


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    if isinstance(value, str):
        raise ValueError(f"{name} must be integers, not {value!r}: padding is explicit here")
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(int(v) != v for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_geometry(
    kernel_size: IntPair, stride: IntPair, padding: IntPair, dilation: IntPair
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Validated ``(kernel, stride, padding)`` pairs; refuses dilation other than 1."""
    if _pair(dilation, "dilation") != (1, 1):
        raise ValueError(f"only dilation 1 is supported, got {dilation!r}")
    k, s, p = _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), _pair(padding, "padding")
    if min(k) < 1 or min(s) < 1 or min(p) < 0:
        raise ValueError(f"need kernel >= 1, stride >= 1, padding >= 0; got {k}, {s}, {p}")
    return k, s, p


def _check_pad_value(value: float | int) -> int:
    v = float(value)
    if not math.isfinite(v) or v != round(v):
        raise ValueError(f"pad_value must be an integer (the padded border is data), got {value}")
    return int(v)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """``floor((size + 2 padding - kernel) / stride) + 1``, the spatial size after a conv/pool."""
    out = (int(size) + 2 * int(padding) - int(kernel)) // int(stride) + 1
    if out < 1:
        raise ValueError(f"kernel {kernel} does not fit an input of {size} padded by {padding}")
    return out


def pad_integer(x: Tensor, padding: tuple[int, int], pad_value: int) -> Tensor:
    """``x`` ([..., H, W]) with ``padding = (ph, pw)`` rows/columns of ``pad_value`` per side."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (pw, pw, ph, ph), mode="constant", value=float(pad_value))


class _PaddedConv2d(nn.Conv2d):
    """``nn.Conv2d`` without bias whose padding is an explicit constant ``pad_value``.

    The inherited ``kernel_size``, ``stride``, ``padding`` and ``groups`` attributes are the
    geometry the compiler reads; the forward pass never hands ``padding`` to ``conv2d`` but
    pads with :func:`pad_integer` first.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair,
        padding: IntPair,
        groups: int,
        pad_value: int,
        dilation: IntPair,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        k, s, p = _check_geometry(kernel_size, stride, padding, dilation)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        super().__init__(
            in_channels,
            out_channels,
            k,
            stride=s,
            padding=p,
            dilation=1,
            groups=groups,
            bias=False,
            device=device,
            dtype=dtype,
        )
        self._pad_value = _check_pad_value(pad_value)

    @property
    def pad_value(self) -> int:
        """The integer the padded border holds (see the module docstring's padding rule)."""
        return self._pad_value

    @pad_value.setter
    def pad_value(self, value: float | int) -> None:
        self._pad_value = _check_pad_value(value)

    @property
    def is_depthwise(self) -> bool:
        """One filter per channel: ``groups == in_channels == out_channels``."""
        return self.groups == self.in_channels == self.out_channels

    def pad(self, x: Tensor) -> Tensor:
        """The input with its explicit border: what the convolution (``padding=0``) reads."""
        return pad_integer(x, (int(self.padding[0]), int(self.padding[1])), self._pad_value)

    def _conv(self, x_padded: Tensor, w: Tensor) -> Tensor:
        return F.conv2d(x_padded, w.to(x_padded.dtype), None, self.stride, 0, 1, self.groups)

    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """``(C, H_out, W_out)`` for an input of ``height x width``."""
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph, pw = int(self.padding[0]), int(self.padding[1])
        return (
            self.out_channels,
            conv_output_size(height, kh, sh, ph),
            conv_output_size(width, kw, sw, pw),
        )

    def _geometry_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={tuple(self.kernel_size)}, "
            f"stride={tuple(self.stride)}, padding={tuple(self.padding)}, "
            f"pad_value={self._pad_value}"
            f"{f', groups={self.groups}' if self.groups != 1 else ''}"
        )


class BinaryConv2d(_PaddedConv2d):
    """2-D convolution with ``+1/-1`` weights (``sign`` with ``sign(0) = +1``) and no bias.

    The counterpart of :class:`~quant_models.layers.BinaryLinear`: the float ``weight`` is
    the latent weight, the forward pass uses ``sign_ste(weight)``. ``pad_value`` defaults
    to ``+1`` because a hidden binary layer reads bipolar codes, which have no zero (see the
    module docstring); a first layer reading integer pixels must pass ``pad_value=0``.

    Integer semantics: ``forward(x) = conv2d(pad(x, pad_value), W_bin)`` exactly, with no
    scale (``scale_accumulator`` is the identity and ``integer_weight`` returns scale 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        groups: int = 1,
        pad_value: int = 1,
        dilation: IntPair = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            groups,
            pad_value,
            dilation,
            device,
            dtype,
        )

    def reset_parameters(self) -> None:
        # Fan-in scaled uniform latent weights, as BinaryLinear: small magnitudes let early
        # updates flip signs quickly.
        fan_in = (self.in_channels // self.groups) * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)

    def accumulate(self, x: Tensor, w_bin: Tensor | None = None) -> Tensor:
        """The exact integer accumulator ``conv2d(pad(x), W_bin)`` for integer-valued ``x``."""
        if w_bin is None:
            w_bin = sign_ste(self.weight)
        x_padded = self.pad(x)
        _check_exact(x_padded, w_bin, type(self).__name__)
        return self._conv(x_padded, w_bin)

    def scale_accumulator(self, acc: Tensor) -> Tensor:
        """The identity: a binary layer's output is its integer accumulator."""
        return acc

    def forward(self, x: Tensor) -> Tensor:
        return self.accumulate(x)

    def binary_weight(self) -> Tensor:
        """The ``+1/-1`` weight used in the forward pass (detached, same dtype as latent)."""
        with torch.no_grad():
            return sign_ste(self.weight.detach()).clone()

    @torch.no_grad()
    def integer_weight(self) -> tuple[Tensor, float]:
        """``(W_bin, 1.0)``: int64 ``[out, in/groups, kh, kw]`` in ``{-1, +1}``, unit scale."""
        return self.binary_weight().to(torch.int64), 1.0

    def weight_kind(self) -> str:
        return "bipolar"

    def input_scale(self) -> Tensor | None:
        return None

    @torch.no_grad()
    def clip_latent_(self) -> None:
        """Clamp latent weights to ``[-1, 1]`` (the straight-through window) after a step."""
        self.weight.clamp_(-1.0, 1.0)

    def extra_repr(self) -> str:
        return f"{self._geometry_repr()}, weights=bipolar"


class IntegerConv2d(IntegerWeights, _PaddedConv2d):
    """Base of convolutions with integer weights, a float weight scale and no bias.

    The convolutional counterpart of :class:`~quant_models.fixed_point.IntegerLinear`, with
    the same methods and meaning. Subclasses define :meth:`_quantized_weight`, returning the
    integer weights ``[out, in/groups, kh, kw]`` (float tensor on integer values, gradient
    leading back to the latent weights) and the detached float32 weight scale (0-dim, or
    ``[out]`` per channel). The forward pass is ``scale_accumulator(accumulate(x))``::

        acc = conv2d(pad(x, pad_value), W_int)         # exact integers in float32
        out = acc * weight_scale.view(C, 1, 1) [* input_scale]

    ``input_scale`` is the ``scale`` of the :class:`QuantAct` producing ``x`` (linked by
    :func:`~quant_models.fixed_point.link_input_scales`). ``weight_mask`` (0/1, all ones)
    multiplies the latent weights before quantization, as in the linear layers.
    """

    _channel_dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        groups: int = 1,
        pad_value: int = 0,
        dilation: IntPair = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            groups,
            pad_value,
            dilation,
            device,
            dtype,
        )
        self._init_integer_state()

    def accumulate(self, x: Tensor, w_int: Tensor | None = None) -> Tensor:
        """The exact integer accumulator ``conv2d(pad(x), W_int)`` for integer-valued ``x``."""
        if w_int is None:
            w_int = self._quantized_weight()[0]
        x_padded = self.pad(x)
        _check_exact(x_padded, w_int, type(self).__name__)
        return self._conv(x_padded, w_int)

    def _input_repr(self) -> str:
        return ", input_scale=linked" if self.input_quant is not None else ""


class TernaryConv2d(TernaryWeights, IntegerConv2d):
    """Convolution with ternary weights (TWN or TTQ), per-tensor scale, no bias.

    Same quantizer as :class:`~quant_models.ternary.TernaryLinear` (one shared function,
    :func:`~quant_models.ternary.ternary_weight`), over the whole 4-D weight::

        twn: W_int in {-1, 0, +1},  out = alpha * acc
        ttq: W_int in {2^f, 0, -R}, out = (Wp / 2^f) * acc

    (times the input scale when fed by a :class:`QuantAct`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        groups: int = 1,
        method: TernaryMethod = "twn",
        ratio_frac_bits: int = 4,
        pad_value: int = 0,
        dilation: IntPair = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self._check_ternary_args(method, ratio_frac_bits)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            groups,
            pad_value,
            dilation,
            device,
            dtype,
        )
        self._init_ternary(method, ratio_frac_bits)

    def extra_repr(self) -> str:
        extra = f", ratio_frac_bits={self.ratio_frac_bits}" if self.method == "ttq" else ""
        return f"{self._geometry_repr()}, method={self.method}{extra}{self._input_repr()}"


class QuantConv2d(IntegerConv2d):
    """Convolution with ``weight_bits``-bit integer weights and a max-abs weight scale.

    Same quantizer as :class:`~quant_models.fixed_point.QuantLinear` (one shared function,
    :func:`~quant_models.fixed_point.max_abs_weight_quant`): ``scale = max|W| / qmax`` per
    output channel (over ``in/groups x kh x kw``) or per tensor, recomputed every forward
    pass, ``W_int = clamp(round(W / scale), min, max)`` with the straight-through gradient.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        groups: int = 1,
        weight_bits: int = 8,
        weight_signed: bool = True,
        narrow_range: bool = True,
        per_channel: bool = True,
        pad_value: int = 0,
        dilation: IntPair = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not 2 <= int(weight_bits) <= 8:
            raise ValueError(f"weight_bits must be in 2..8, got {weight_bits}")
        if not weight_signed and narrow_range:
            raise ValueError(
                "unsigned weights with narrow_range=True are not supported: a narrow range "
                "is a signed-type notion; pass narrow_range=False"
            )
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            groups,
            pad_value,
            dilation,
            device,
            dtype,
        )
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
            f"{self._geometry_repr()}, "
            f"weights={type_name(self.weight_bits, self.weight_signed)}"
            f"[{self.min_weight}, {self.max_weight}], per_channel={self.per_channel}"
            f"{self._input_repr()}"
        )


class FactorConv2d(UnscaledAccumulator, QuantConv2d):
    """A :class:`QuantConv2d` (per-tensor scale) whose output is its integer accumulator.

    An inner factor of a decomposed convolution (Tucker-2's 1x1 projection and k x k core,
    CP's 1x1 projection and depthwise core); a :class:`~quant_models.fixed_point.Requant`
    follows it. Its zero padding pads codes whose zero is the real zero.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, groups: int = 1,
                 weight_bits: int = 8, narrow_range: bool = True, pad_value: int = 0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=padding, groups=groups, weight_bits=weight_bits,
                         narrow_range=narrow_range, per_channel=False, pad_value=pad_value)
        self._init_weight_step()
