"""Brevitas versions of FINN's example networks, sized for the digits data set.

They are built only to be trained and exported (``brevitas.export.export_qonnx``): the
exported QONNX file is what ``codesign`` imports and ships, so running the examples needs
no Brevitas. Every quantizer has a power-of-two scale (Brevitas's fixed-point quantizers,
constant scales of 1/8 for binary and ternary weights, 1 for binary and ternary activations),
as FINN's networks use, so the model's float32 arithmetic on quantized values is exact.
The networks take the raw digits pixels (0..16): their first quantizer, an unsigned 5-bit
one of constant scale 1, turns them into integer codes (16 is the top pixel value, 31 the
top code).

- ``tfc``: FINN's TFC topology (fully connected, 3 hidden layers of 64) on 64 pixels;
  ``w1a1`` binary weights and activations, ``w2a2`` ternary weights and 2-bit signed
  activations; batch norm before every activation; the last layer's accumulator is the
  score.
- ``cnv``: a small CNV-style network: 3x3 convolutions 16, 16 (padded), max-pool, 32, then a
  linear classifier; ternary weights, 2-bit ReLU quantizers, batch norm.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def _quantizers() -> dict[str, Any]:
    import brevitas.quant as q

    return {"binary_weight": q.SignedBinaryWeightPerTensorConst,
            "ternary_weight": q.SignedTernaryWeightPerTensorConst,
            "binary_act": q.SignedBinaryActPerTensorConst,
            "ternary_act": q.SignedTernaryActPerTensorConst,
            "int_weight": q.Int8WeightPerTensorFixedPoint,
            "uint_act": q.Uint8ActPerTensorFixedPoint,
            "int_act": q.Int8ActPerTensorFixedPoint}


def _weight_quant(bits: int) -> dict[str, Any]:
    qs = _quantizers()
    if bits == 1:
        return {"weight_quant": qs["binary_weight"], "weight_scaling_const": 0.125}
    if bits == 2:
        return {"weight_quant": qs["ternary_weight"], "weight_scaling_const": 0.125}
    return {"weight_quant": qs["int_weight"], "weight_bit_width": bits}


def _act(bits: int, relu: bool = False) -> nn.Module:
    import brevitas.nn as qnn

    qs = _quantizers()
    if relu:
        return qnn.QuantReLU(act_quant=qs["uint_act"], bit_width=bits, max_val=2.0)
    if bits == 1:
        return qnn.QuantIdentity(act_quant=qs["binary_act"])
    if bits == 2:
        return qnn.QuantIdentity(act_quant=qs["ternary_act"])
    return qnn.QuantIdentity(act_quant=qs["int_act"], bit_width=bits)


def _input_quant() -> nn.Module:
    """Unsigned 5-bit codes of scale 1: the digits pixels 0..16 exactly."""
    import brevitas.nn as qnn
    from brevitas.inject.enum import ScalingImplType

    qs = _quantizers()
    return qnn.QuantIdentity(act_quant=qs["uint_act"], bit_width=5,
                             scaling_impl_type=ScalingImplType.CONST, scaling_init=31.0,
                             return_quant_tensor=False)


class BrevitasTFC(nn.Module):
    """64 -> 64 -> 64 -> 64 -> 10 with ``weight_bits``/``act_bits`` (1: binary, 2: ternary
    weights and signed 2-bit activations)."""

    def __init__(self, weight_bits: int = 1, act_bits: int = 1, hidden: int = 64,
                 in_features: int = 64, num_classes: int = 10) -> None:
        import brevitas.nn as qnn

        super().__init__()
        layers: list[nn.Module] = [_input_quant()]
        width = in_features
        for _ in range(3):
            layers += [qnn.QuantLinear(width, hidden, bias=False, **_weight_quant(weight_bits)),
                       nn.BatchNorm1d(hidden), _act(act_bits)]
            width = hidden
        layers.append(qnn.QuantLinear(width, num_classes, bias=False,
                                      **_weight_quant(weight_bits)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class BrevitasCNV(nn.Module):
    """CNV-style: conv 3x3 16 (pad 1), conv 3x3 16 (pad 1), max-pool 2, conv 3x3 32, fc 10
    on 8x8 digits; ``weight_bits``-bit weights, ``act_bits``-bit ReLU quantizers."""

    def __init__(self, weight_bits: int = 2, act_bits: int = 2, channels: tuple = (16, 16, 32),
                 num_classes: int = 10) -> None:
        import brevitas.nn as qnn

        super().__init__()
        c1, c2, c3 = channels
        self.input = _input_quant()
        self.features = nn.Sequential(
            qnn.QuantConv2d(1, c1, 3, padding=1, bias=False, **_weight_quant(weight_bits)),
            nn.BatchNorm2d(c1), _act(act_bits, relu=True),
            qnn.QuantConv2d(c1, c2, 3, padding=1, bias=False, **_weight_quant(weight_bits)),
            nn.BatchNorm2d(c2), _act(act_bits, relu=True),
            nn.MaxPool2d(2),
            qnn.QuantConv2d(c2, c3, 3, bias=False, **_weight_quant(weight_bits)),
            nn.BatchNorm2d(c3), _act(act_bits, relu=True),
            nn.Flatten(),
            qnn.QuantLinear(c3 * 2 * 2, num_classes, bias=False, **_weight_quant(weight_bits)))

    def forward(self, x):
        return self.features(self.input(x.reshape(-1, 1, 8, 8)))
