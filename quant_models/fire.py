"""SqueezeNet's fire module on integer codes: squeeze 1x1, then 1x1 and 3x3 expands whose
codes are concatenated along the channels.

The squeezed map feeds both expands (a fork); the expands' codes are joined by
``torch.cat`` (exact on integers). A layer reading the concatenation multiplies its
accumulator by one input scale, so the 3x3 expand's quantizer shares the 1x1 expand's scale
(:class:`~quant_models.residual.SharedQuantAct`) and :attr:`FireModule.out_act` is the
scale source of the next layer. The binary variant needs no shared scale: every code is
+-1.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from quant_models.conv import BinaryConv2d, QuantConv2d
from quant_models.fixed_point import QuantAct
from quant_models.layers import SignActivation
from quant_models.protocol import ScaledCodes
from quant_models.residual import SharedQuantAct

__all__ = ["FireModule"]

FireKind = Literal["quant", "binary"]


class FireModule(nn.Module):
    """``squeeze`` 1x1 -> (``expand`` 1x1 | ``expand`` 3x3, padding 1) -> concatenation.

    ``kind="quant"``: ``weight_bits`` weights, ``act_bits`` unsigned codes after every
    batch norm (the 3x3 expand's scale shared with the 1x1 expand's); ``source`` is the
    quantizer of the codes entering the module (its scale is the squeeze's input scale;
    ``None`` for unscaled integers). ``kind="binary"``: binary convolutions and sign
    activations (the module's input must be +-1 codes; the 3x3 expand pads with +1).
    Output: ``2 * expand`` channels, the 1x1 expand's first.
    """

    def __init__(self, in_channels: int, squeeze: int, expand: int, *,
                 kind: FireKind = "quant", source: ScaledCodes | None = None,
                 weight_bits: int = 4, act_bits: int = 4) -> None:
        super().__init__()
        if kind not in ("quant", "binary"):
            raise ValueError(f"kind must be 'quant' or 'binary', got {kind!r}")
        c, s, e = int(in_channels), int(squeeze), int(expand)
        self.kind = kind
        if kind == "quant":
            self.squeeze = QuantConv2d(c, s, 1, weight_bits=weight_bits)
            self.expand1 = QuantConv2d(s, e, 1, weight_bits=weight_bits)
            self.expand3 = QuantConv2d(s, e, 3, padding=1, weight_bits=weight_bits)
            self.squeeze_act: nn.Module = QuantAct(act_bits, signed=False)
            self.out_act: nn.Module = QuantAct(act_bits, signed=False)
            self.expand3_act: nn.Module = SharedQuantAct(self.out_act, act_bits)
            self.squeeze.link_input(source)
            self.expand1.link_input(self.squeeze_act)
            self.expand3.link_input(self.squeeze_act)
        else:
            self.squeeze = BinaryConv2d(c, s, 1)
            self.expand1 = BinaryConv2d(s, e, 1)
            self.expand3 = BinaryConv2d(s, e, 3, padding=1, pad_value=1)
            self.squeeze_act = SignActivation()
            self.out_act = SignActivation()
            self.expand3_act = SignActivation()
        self.squeeze_bn = nn.BatchNorm2d(s)
        self.expand1_bn = nn.BatchNorm2d(e)
        self.expand3_bn = nn.BatchNorm2d(e)

    @property
    def out_channels(self) -> int:
        return 2 * self.expand1.out_channels

    def forward(self, x: Tensor) -> Tensor:
        squeezed = self.squeeze_act(self.squeeze_bn(self.squeeze(x)))
        one = self.out_act(self.expand1_bn(self.expand1(squeezed)))
        three = self.expand3_act(self.expand3_bn(self.expand3(squeezed)))
        return torch.cat([one, three], 1)
