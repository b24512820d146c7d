"""Model definitions: the networks the compiler lowers, and a float baseline.

Every compressed model is an ``nn.Sequential`` named ``layers`` of a few module kinds in a
fixed pattern, with the integer type of every tensor between layers explicit:

* ``IntegerInput`` first (fixed-point pixels),
* a linear layer (``BinaryLinear``, ``TernaryLinear``, ``QuantLinear``) producing an exact
  integer accumulator (times positive float scales),
* ``BatchNorm1d`` followed by an activation that produces integers again (``SignActivation``:
  bipolar; ``QuantAct``: ``uintN``), which the compiler folds into integer thresholds,
* the last linear layer with a *per-tensor* positive scale and ``LogitScale``, so the argmax
  of the integer accumulator is the prediction.

:func:`integer_signature` lists those types for any such model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor, nn

from codesign.bits import range_bits
from quant_models.conv import BinaryConv2d, IntegerConv2d, QuantConv2d, TernaryConv2d
from quant_models.fixed_point import (
    IntegerLinear,
    QuantAct,
    QuantLinear,
    link_input_scales,
    type_name,
)
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.ternary import TernaryLinear, TernaryMethod

__all__ = [
    "BinarizedMLP",
    "FixedPointMLP",
    "FloatMLP",
    "LayerSignature",
    "MixedMLP",
    "SharedMLP",
    "TernaryMLP",
    "integer_signature",
]


class BinarizedMLP(nn.Module):
    """Binarized multilayer perceptron on fixed-point integer inputs.

    ``self.layers`` is an ``nn.Sequential`` in a fixed order that the compiler pattern-matches::

        IntegerInput,
        (BinaryLinear, BatchNorm1d, SignActivation) for each hidden width,
        BinaryLinear, LogitScale

    The first layer multiplies integer inputs by ``+1/-1`` weights, hidden activations are
    ``+1/-1``, and the last layer yields integer class scores; ``LogitScale`` only rescales
    them for training and never changes the predicted class.
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] = (256, 256),
        num_classes: int = 10,
        input_bits: int = 5,
        input_signed: bool = False,
    ) -> None:
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if in_features < 1 or num_classes < 2 or any(h < 1 for h in hidden):
            raise ValueError("layer widths must be positive and num_classes at least 2")
        self.config: dict[str, Any] = {
            "in_features": int(in_features),
            "hidden": list(hidden),
            "num_classes": int(num_classes),
            "input_bits": int(input_bits),
            "input_signed": bool(input_signed),
        }
        modules: list[nn.Module] = [IntegerInput(input_bits, input_signed)]
        prev = int(in_features)
        for width in hidden:
            modules += [BinaryLinear(prev, width), nn.BatchNorm1d(width), SignActivation()]
            prev = width
        modules += [BinaryLinear(prev, num_classes), LogitScale(1.0 / math.sqrt(prev))]
        self.layers = nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class FloatMLP(nn.Module):
    """Ordinary float MLP (Linear, BatchNorm1d, ReLU) used as an accuracy baseline.

    The raw pixels (0..16) are divided by 16 inside the model so both models take the same
    integer input arrays.
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] = (256, 256),
        num_classes: int = 10,
        input_scale: float = 1.0 / 16.0,
    ) -> None:
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        self.config: dict[str, Any] = {
            "in_features": int(in_features),
            "hidden": list(hidden),
            "num_classes": int(num_classes),
            "input_scale": float(input_scale),
        }
        self.input_scale = float(input_scale)
        modules: list[nn.Module] = []
        prev = int(in_features)
        for width in hidden:
            modules += [nn.Linear(prev, width), nn.BatchNorm1d(width), nn.ReLU()]
            prev = width
        modules.append(nn.Linear(prev, num_classes))
        self.layers = nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x * self.input_scale)


def _check_widths(in_features: int, hidden: Sequence[int], num_classes: int) -> tuple[int, ...]:
    widths = tuple(int(h) for h in hidden)
    if in_features < 1 or num_classes < 2 or any(h < 1 for h in widths):
        raise ValueError("layer widths must be positive and num_classes at least 2")
    return widths


class TernaryMLP(nn.Module):
    """Ternary-weight MLP with low-bit unsigned activations.

    ``self.layers``::

        IntegerInput(uint<input_bits>),
        (TernaryLinear, BatchNorm1d, QuantAct(uint<act_bits>)) for each hidden width,
        TernaryLinear, LogitScale

    Every ternary layer multiplies integers by ``{-1, 0, +1}`` (TWN) or ``{2^f, 0, -R}``
    (TTQ) and scales the accumulator by one positive scalar (times the previous QuantAct's
    scale), so the last layer's integer argmax is the prediction. The unsigned QuantAct is
    also the ReLU.
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] = (128, 64),
        num_classes: int = 10,
        input_bits: int = 5,
        input_signed: bool = False,
        act_bits: int = 2,
        method: TernaryMethod = "twn",
        ratio_frac_bits: int = 4,
    ) -> None:
        super().__init__()
        widths = _check_widths(in_features, hidden, num_classes)
        self.config: dict[str, Any] = {
            "in_features": int(in_features),
            "hidden": list(widths),
            "num_classes": int(num_classes),
            "input_bits": int(input_bits),
            "input_signed": bool(input_signed),
            "act_bits": int(act_bits),
            "method": str(method),
            "ratio_frac_bits": int(ratio_frac_bits),
        }
        modules: list[nn.Module] = [IntegerInput(input_bits, input_signed)]
        prev = int(in_features)
        for width in widths:
            modules += [
                TernaryLinear(prev, width, method=method, ratio_frac_bits=ratio_frac_bits),
                nn.BatchNorm1d(width),
                QuantAct(act_bits, signed=False),
            ]
            prev = width
        modules += [
            TernaryLinear(prev, num_classes, method=method, ratio_frac_bits=ratio_frac_bits),
            LogitScale(1.0),
        ]
        self.layers = nn.Sequential(*modules)
        link_input_scales(self.layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class FixedPointMLP(nn.Module):
    """MLP with ``weight_bits``-bit weights and ``act_bits``-bit unsigned activations.

    ``self.layers``::

        IntegerInput(uint<input_bits>),
        (QuantLinear(int<weight_bits>, per-channel scale), BatchNorm1d, QuantAct(uint<act_bits>))
            for each hidden width,
        QuantLinear(int<weight_bits>, per-tensor scale), LogitScale

    Weights use the narrow signed range ``[-(2^(b-1) - 1), 2^(b-1) - 1]``. Hidden layers use
    a per-channel weight scale (the following batch norm absorbs it exactly as it absorbs
    any positive per-channel factor); the output layer uses a per-tensor scale so the
    integer argmax is the prediction. Every weight matrix has a ``weight_mask``, which is
    how the pruned variants are expressed.
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] = (128, 64),
        num_classes: int = 10,
        weight_bits: int = 4,
        act_bits: int = 4,
        input_bits: int = 5,
        input_signed: bool = False,
    ) -> None:
        super().__init__()
        widths = _check_widths(in_features, hidden, num_classes)
        self.config: dict[str, Any] = {
            "in_features": int(in_features),
            "hidden": list(widths),
            "num_classes": int(num_classes),
            "weight_bits": int(weight_bits),
            "act_bits": int(act_bits),
            "input_bits": int(input_bits),
            "input_signed": bool(input_signed),
        }
        modules: list[nn.Module] = [IntegerInput(input_bits, input_signed)]
        prev = int(in_features)
        for width in widths:
            modules += [
                QuantLinear(prev, width, weight_bits=weight_bits, per_channel=True),
                nn.BatchNorm1d(width),
                QuantAct(act_bits, signed=False),
            ]
            prev = width
        modules += [
            QuantLinear(prev, num_classes, weight_bits=weight_bits, per_channel=False),
            LogitScale(1.0),
        ]
        self.layers = nn.Sequential(*modules)
        link_input_scales(self.layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class MixedMLP(nn.Module):
    """A network mixing every weight and activation type of the package.

    ``self.layers``::

        IntegerInput(uint5)
        QuantLinear(int8 weights)   BatchNorm1d  SignActivation      -> bipolar
        (BinaryLinear               BatchNorm1d  SignActivation      -> bipolar) per binary width
        TernaryLinear(TWN)          BatchNorm1d  QuantAct(uint<act>) -> uint<act_bits>
        QuantLinear(int<fixed_bits>) BatchNorm1d QuantAct(uint<act>) -> uint<act_bits>
        QuantLinear(int8 weights, per-tensor scale)  LogitScale       -> integer scores

    Each layer's input type is explicit: the binary layers only ever see bipolar values
    (the 8-bit input layer ends in a sign), the ternary layer reads bipolar values as
    2-bit signed integers, and the fixed-point layers read QuantAct codes.
    """

    def __init__(
        self,
        in_features: int = 64,
        num_classes: int = 10,
        input_width: int = 256,
        binary_widths: Sequence[int] = (256,),
        ternary_width: int = 64,
        fixed_width: int = 64,
        fixed_bits: int = 4,
        act_bits: int = 4,
        input_weight_bits: int = 8,
        output_weight_bits: int = 8,
        input_bits: int = 5,
        input_signed: bool = False,
    ) -> None:
        super().__init__()
        binary = _check_widths(
            in_features, (input_width, *binary_widths, ternary_width, fixed_width), num_classes
        )[1:-2]
        self.config: dict[str, Any] = {
            "in_features": int(in_features),
            "num_classes": int(num_classes),
            "input_width": int(input_width),
            "binary_widths": list(binary),
            "ternary_width": int(ternary_width),
            "fixed_width": int(fixed_width),
            "fixed_bits": int(fixed_bits),
            "act_bits": int(act_bits),
            "input_weight_bits": int(input_weight_bits),
            "output_weight_bits": int(output_weight_bits),
            "input_bits": int(input_bits),
            "input_signed": bool(input_signed),
        }
        modules: list[nn.Module] = [
            IntegerInput(input_bits, input_signed),
            QuantLinear(in_features, input_width, weight_bits=input_weight_bits),
            nn.BatchNorm1d(input_width),
            SignActivation(),
        ]
        prev = int(input_width)
        for width in binary:
            modules += [BinaryLinear(prev, width), nn.BatchNorm1d(width), SignActivation()]
            prev = width
        modules += [
            TernaryLinear(prev, ternary_width, method="twn"),
            nn.BatchNorm1d(ternary_width),
            QuantAct(act_bits, signed=False),
            QuantLinear(ternary_width, fixed_width, weight_bits=fixed_bits),
            nn.BatchNorm1d(fixed_width),
            QuantAct(act_bits, signed=False),
            QuantLinear(
                fixed_width, num_classes, weight_bits=output_weight_bits, per_channel=False
            ),
            LogitScale(1.0),
        ]
        self.layers = nn.Sequential(*modules)
        link_input_scales(self.layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


@dataclass(frozen=True)
class LayerSignature:
    """One module of ``model.layers``: what it is and the integer type it outputs.

    ``lo``/``hi`` bound the integer values of the output (for a linear layer: the exact
    accumulator range over all inputs of the input type); ``None`` for float outputs.
    """

    name: str
    kind: str
    detail: str
    output: str
    lo: int | None
    hi: int | None


def _int_type_for(lo: int, hi: int) -> str:
    return type_name(*range_bits(lo, hi))


def _linear_weights(m: nn.Module) -> tuple[np.ndarray, str]:
    """Integer weights as ``[out, fan_in]`` (a convolution's filters flattened) and a detail."""
    if isinstance(m, (BinaryConv2d, TernaryConv2d, QuantConv2d)):
        w, detail = _linear_weights_of(m)
        return w.reshape(w.shape[0], -1), detail
    return _linear_weights_of(m)


def _linear_weights_of(m: nn.Module) -> tuple[np.ndarray, str]:
    if isinstance(m, (BinaryLinear, BinaryConv2d)):
        w = np.where(m.binary_weight().numpy() >= 0, 1, -1).astype(np.int64)
        return w, "bipolar weights {-1,+1}"
    if isinstance(m, (TernaryLinear, TernaryConv2d)):
        w_int, scale = m.integer_weight()
        levels = sorted({int(v) for v in w_int.unique().tolist()})
        detail = f"ternary ({m.method}) levels {levels}, scale {scale:.4g}"
        return w_int.numpy(), detail
    if isinstance(m, (QuantLinear, QuantConv2d)):
        w_int, _ = m.integer_weight()
        per = "per-channel" if m.per_channel else "per-tensor"
        detail = f"{type_name(m.weight_bits, m.weight_signed)} weights, {per} scale"
        return w_int.numpy(), detail
    raise TypeError(f"not an integer linear layer: {type(m).__name__}")


def integer_signature(model: nn.Module) -> list[LayerSignature]:
    """The integer type at every layer boundary of ``model.layers`` (eval-time view).

    Linear layers report the exact accumulator range for the current integer weights and
    the input range (sum over each row of the extreme products); convolutions do the same
    per filter, with a padded border's ``pad_value`` counted as a possible input; max-pooling
    and flattening pass the type through; batch norm outputs are floats (folded into the
    next activation's thresholds); ``LogitScale`` keeps the scores.
    """
    layers = getattr(model, "layers", model)
    out: list[LayerSignature] = []
    lo: int | None = None
    hi: int | None = None
    for name, m in layers.named_children():
        kind = type(m).__name__
        if isinstance(m, IntegerInput):
            lo, hi = m.min_value, m.max_value
            sig = LayerSignature(name, kind, "", type_name(m.bits, m.signed), lo, hi)
        elif isinstance(m, (BinaryLinear, IntegerLinear)):
            if lo is None or hi is None:
                raise ValueError(f"layer {name} ({kind}) reads a non-integer input")
            w, detail = _linear_weights(m)
            lo_row = np.minimum(w * lo, w * hi).sum(axis=1)
            hi_row = np.maximum(w * lo, w * hi).sum(axis=1)
            lo, hi = int(lo_row.min()), int(hi_row.max())
            scale = "x input scale" if isinstance(m, IntegerLinear) and m.input_quant else ""
            detail = f"{m.in_features}->{m.out_features}, {detail} {scale}".strip()
            sig = LayerSignature(name, kind, detail, f"acc {_int_type_for(lo, hi)}", lo, hi)
        elif isinstance(m, (BinaryConv2d, IntegerConv2d)):
            if lo is None or hi is None:
                raise ValueError(f"layer {name} ({kind}) reads a non-integer input")
            if any(int(p) > 0 for p in m.padding):
                # The padded border is an input value too.
                lo, hi = min(lo, m.pad_value), max(hi, m.pad_value)
            w, detail = _linear_weights(m)
            lo_row = np.minimum(w * lo, w * hi).sum(axis=1)
            hi_row = np.maximum(w * lo, w * hi).sum(axis=1)
            lo, hi = int(lo_row.min()), int(hi_row.max())
            scale = "x input scale" if isinstance(m, IntegerConv2d) and m.input_quant else ""
            kh, kw = m.kernel_size
            geometry = (
                f"{m.in_channels}->{m.out_channels}, {kh}x{kw}, stride {m.stride[0]}, "
                f"pad {m.padding[0]} (value {m.pad_value})"
                f"{f', groups {m.groups}' if m.groups != 1 else ''}"
            )
            detail = f"{geometry}, {detail} {scale}".strip()
            sig = LayerSignature(name, kind, detail, f"acc {_int_type_for(lo, hi)}", lo, hi)
        elif isinstance(m, (nn.MaxPool2d, nn.Flatten)):
            # Both move integer codes without changing them: the type passes through.
            detail = (
                f"{m.kernel_size}, stride {m.stride}, on codes"
                if isinstance(m, nn.MaxPool2d)
                else "NCHW channel-major"
            )
            sig = LayerSignature(name, kind, detail, out[-1].output if out else "?", lo, hi)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            sig = LayerSignature(name, kind, "folded into thresholds", "float", None, None)
        elif isinstance(m, SignActivation):
            lo, hi = -1, 1
            sig = LayerSignature(name, kind, "", "bipolar {-1,+1}", lo, hi)
        elif isinstance(m, QuantAct):
            lo, hi = m.min_value, m.max_value
            detail = f"scale {float(m.scale.detach()):.4g}"
            sig = LayerSignature(name, kind, detail, type_name(m.bits, m.signed), lo, hi)
        elif isinstance(m, LogitScale):
            sig = LayerSignature(
                name, kind, f"x {m.scale:.4g} (argmax unchanged)", "scores", lo, hi
            )
        else:
            sig = LayerSignature(name, kind, "", "?", None, None)
        out.append(sig)
    return out


class SharedMLP(nn.Module):
    """The Deep Compression MLP: weights pruned, then shared through per-layer codebooks.

    ``self.layers``::

        IntegerInput(uint<input_bits>),
        (SharedLinear(index_bits[i]), BatchNorm1d, QuantAct(uint<act_bits>)) per hidden width,
        SharedLinear(index_bits[-1]), LogitScale

    Every :class:`~quant_models.sharing.SharedLinear` has one per-tensor grid step, so the
    last layer's integer argmax is the prediction. Before clustering the layers compute with
    their (masked) float weights; :mod:`quant_models.deep_compression` runs the pipeline.
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] = (128, 128),
        num_classes: int = 10,
        index_bits: Sequence[int] = (5, 5, 5),
        act_bits: int = 4,
        input_bits: int = 5,
        input_signed: bool = False,
    ) -> None:
        from quant_models.sharing import SharedLinear

        super().__init__()
        widths = _check_widths(in_features, hidden, num_classes)
        bits = [int(b) for b in index_bits]
        if len(bits) != len(widths) + 1:
            raise ValueError(f"index_bits needs one width per layer ({len(widths) + 1}), got "
                             f"{len(bits)}")
        self.config: dict[str, Any] = {
            "in_features": int(in_features),
            "hidden": list(widths),
            "num_classes": int(num_classes),
            "index_bits": bits,
            "act_bits": int(act_bits),
            "input_bits": int(input_bits),
            "input_signed": bool(input_signed),
        }
        modules: list[nn.Module] = [IntegerInput(input_bits, input_signed)]
        prev = int(in_features)
        for width, b in zip(widths, bits, strict=False):
            modules += [SharedLinear(prev, width, index_bits=b), nn.BatchNorm1d(width),
                        QuantAct(act_bits, signed=False)]
            prev = width
        modules += [SharedLinear(prev, num_classes, index_bits=bits[-1]), LogitScale(1.0)]
        self.layers = nn.Sequential(*modules)
        link_input_scales(self.layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
