"""Residual joins defined on integer codes, and the residual blocks built from them.

Adding two quantized tensors as floats (``qa * sa + qb * sb``) is not a function of any one
integer in general, so no integer hardware can reproduce it bit for bit. Here the join is
defined on codes: :class:`ResidualAdd` computes ``(wa * qa + wb * qb) * scale`` with integer
multipliers ``wa``, ``wb`` and one shared ``scale``. The integer sum is exact in float32
and the single multiplication by the scale is all the float arithmetic; whatever follows
(a quantizer, batch norm and sign) is a function of the integer sum, which a compiler folds
into thresholds. The two operands share a scale because the quantizer producing the branch
shares the parameter of the quantizer producing the shortcut (:class:`SharedQuantAct`, as
Brevitas shares a quantizer between the inputs of a residual add), or because one operand
is an unscaled integer (a binary layer's accumulator, a sign's +-1 codes) weighted by an
integer.

Blocks:

* :class:`QuantResidualBlock`: ``x -> conv BN QuantAct -> conv BN SharedQuantAct(x's scale)``,
  joined with ``x`` at ``x``'s scale, then the block's ``QuantAct`` (unsigned: also the
  ReLU);
* :class:`BinaryResidualBlock`: ``x (+-1) -> binary conv BN sign -> binary conv`` (integer
  accumulator), joined as ``acc + shortcut_weight * x``, then batch norm and sign.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from quant_models.conv import BinaryConv2d, QuantConv2d
from quant_models.fixed_point import EXACT_LIMIT, QuantAct, integer_range, quantize, type_name
from quant_models.layers import SignActivation
from quant_models.protocol import ScaledCodes

__all__ = ["BinaryResidualBlock", "QuantResidualBlock", "ResidualAdd", "SharedQuantAct"]


class SharedQuantAct(nn.Module):
    """An activation quantizer that uses another quantizer's scale: codes
    ``clamp(round(x / source.scale), min, max)`` of its own type.

    Its codes and the source's stand on the same scale, so they add (or concatenate) as
    integers. The scale is a plain reference, not a submodule (the source belongs to the
    enclosing model already); gradients from both quantizers reach the one parameter.
    """

    def __init__(self, source: QuantAct, bits: int, signed: bool = False,
                 narrow_range: bool = False) -> None:
        super().__init__()
        if not isinstance(source, QuantAct):
            raise TypeError(f"SharedQuantAct shares the scale of a QuantAct, got "
                            f"{type(source).__name__}")
        if not 1 <= int(bits) <= 8:
            raise ValueError(f"activation bits must be in 1..8, got {bits}")
        object.__setattr__(self, "source", source)
        self.bits = int(bits)
        self.signed = bool(signed)
        self.narrow_range = bool(narrow_range)
        self.min_value, self.max_value = integer_range(self.bits, self.signed, self.narrow_range)

    @property
    def scale(self) -> Tensor:
        return self.source.scale

    def forward(self, x: Tensor) -> Tensor:
        return quantize(x, self.scale.to(x.dtype), self.bits, self.signed, self.narrow_range)

    def extra_repr(self) -> str:
        return (f"{type_name(self.bits, self.signed)}[{self.min_value}, {self.max_value}], "
                "scale shared")


class ResidualAdd(nn.Module):
    """``forward(shortcut, branch) = (wa * shortcut + wb * branch) * scale`` on integer codes.

    ``weights = (wa, wb)`` are integers; ``scale_source`` (a module with a ``scale``, e.g.
    the quantizer of the shortcut, whose scale the branch's quantizer shares) gives the
    scale, or ``None`` for unscaled integers (scale 1: the result is the integer sum
    itself). Both inputs must be integer-valued; the sum must stay below 2^24.
    """

    def __init__(self, scale_source: ScaledCodes | None = None,
                 weights: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        if scale_source is not None and not isinstance(scale_source, ScaledCodes):
            raise TypeError(f"the scale comes from a module with a scale, got "
                            f"{type(scale_source).__name__}")
        if len(weights) != 2 or any(int(w) != w or int(w) == 0 for w in weights):
            raise ValueError(f"weights must be two non-zero integers, got {weights}")
        object.__setattr__(self, "scale_source", scale_source)
        self.weights = (int(weights[0]), int(weights[1]))

    @property
    def scale(self) -> Tensor:
        source = self.scale_source
        return torch.tensor(1.0) if source is None else source.scale

    def scale_sum(self, total: Tensor) -> Tensor:
        """The float operation applied to the integer sum (none without a scale source)."""
        if self.scale_source is None:
            return total
        return total * self.scale_source.scale.to(total.dtype)

    def forward(self, shortcut: Tensor, branch: Tensor) -> Tensor:
        wa, wb = self.weights
        total = wa * shortcut + wb * branch
        if total.numel() and float(total.detach().abs().amax()) >= EXACT_LIMIT:
            raise ValueError("ResidualAdd: the integer sum reaches 2^24, where float32 "
                             "integer arithmetic stops being exact")
        return self.scale_sum(total)

    def extra_repr(self) -> str:
        wa, wb = self.weights
        return f"{wa}*shortcut + {wb}*branch, {'shared scale' if self.scale_source else 'unscaled'}"


class QuantResidualBlock(nn.Module):
    """A residual block on ``act_bits``-bit unsigned codes with an identity shortcut.

    ``source`` is the quantizer whose codes enter the block (its scale is the shortcut's);
    the block's own output quantizer is :attr:`out_act`, the source of the next block::

        x ---------------------------------------------------------------+
        |                                                                |
        +- conv3x3 BN QuantAct(uint<act_bits>) conv3x3 BN                |
             SharedQuantAct(int<branch_bits>, source's scale) -- ResidualAdd(source) --
             QuantAct(uint<act_bits>)  -> out

    Both convolutions keep the map size (padding 1 with 0, the zero code).
    """

    def __init__(self, channels: int, source: ScaledCodes, weight_bits: int = 4,
                 act_bits: int = 4, branch_bits: int = 5) -> None:
        super().__init__()
        c = int(channels)
        self.conv1 = QuantConv2d(c, c, 3, padding=1, weight_bits=weight_bits)
        self.bn1 = nn.BatchNorm2d(c)
        self.act1 = QuantAct(act_bits, signed=False)
        self.conv2 = QuantConv2d(c, c, 3, padding=1, weight_bits=weight_bits)
        self.bn2 = nn.BatchNorm2d(c)
        if not isinstance(source, QuantAct):
            raise TypeError(f"the block's input codes come from a QuantAct, got "
                            f"{type(source).__name__}")
        self.branch_act = SharedQuantAct(source, branch_bits, signed=True)
        self.add = ResidualAdd(source)
        self.out_act = QuantAct(act_bits, signed=False)
        self.conv1.link_input(source)
        self.conv2.link_input(self.act1)

    def forward(self, x: Tensor) -> Tensor:
        branch = self.act1(self.bn1(self.conv1(x)))
        branch = self.branch_act(self.bn2(self.conv2(branch)))
        return self.out_act(self.add(x, branch))


class BinaryResidualBlock(nn.Module):
    """A binary residual block on +-1 codes with an identity shortcut::

        x (+-1) -------------------------------------------------------+
        |                                                              |
        +- BinaryConv3x3 BN Sign BinaryConv3x3 (integer accumulator) --
           ResidualAdd(weights (shortcut_weight, 1)) BN Sign -> out (+-1)

    The second convolution's accumulator (a +-1 dot product over 9 C inputs) and the
    shortcut's +-1 codes are both unscaled integers, so the join is the integer
    ``acc + shortcut_weight * x``; batch norm and sign after it fold into one threshold per
    channel. The binary maps pad with +1.
    """

    def __init__(self, channels: int, shortcut_weight: int | None = None) -> None:
        super().__init__()
        c = int(channels)
        if shortcut_weight is None:   # about one standard deviation of the accumulator
            shortcut_weight = max(1, round(math.sqrt(9 * c)))
        self.conv1 = BinaryConv2d(c, c, 3, padding=1, pad_value=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.act1 = SignActivation()
        self.conv2 = BinaryConv2d(c, c, 3, padding=1, pad_value=1)
        self.add = ResidualAdd(None, weights=(int(shortcut_weight), 1))
        self.bn_out = nn.BatchNorm2d(c)
        self.out_act = SignActivation()

    def forward(self, x: Tensor) -> Tensor:
        branch = self.conv2(self.act1(self.bn1(self.conv1(x))))
        return self.out_act(self.bn_out(self.add(x, branch)))
