"""Digits networks that are not chains: residual networks, a SqueezeNet of fire modules, and a
Network-in-Network ending in global average pooling.

Every tensor between layers is integer codes, as in :mod:`quant_models.cnn`; the joins are
defined on codes (:mod:`quant_models.residual`, :mod:`quant_models.fire`) and average
pooling outputs exact sums (:mod:`quant_models.pooling`). The residual and fire networks
are written as plain ``forward`` methods (forks and joins), which the compiler's frontend
traces with ``torch.fx``; the NIN is an ``nn.Sequential`` like the chain CNNs. All take
``[N, 1, 8, 8]`` images of ``uint5`` pixels or the data loader's ``[N, 64]`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from quant_models.cnn import CNN_INPUT_SHAPE, _ImageModel
from quant_models.conv import BinaryConv2d, QuantConv2d
from quant_models.fire import FireModule
from quant_models.fixed_point import QuantAct, QuantLinear, link_input_scales
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.pooling import Images, QuantAvgPool2d, QuantGlobalAvgPool2d
from quant_models.residual import BinaryResidualBlock, QuantResidualBlock

__all__ = ["BinaryResNet", "NiN", "QuantResNet", "SqueezeNet"]


def _check_blocks(blocks: int) -> int:
    if not 1 <= int(blocks) <= 4:
        raise ValueError(f"blocks must be in 1..4, got {blocks}")
    return int(blocks)


def _pool_after(index: int, blocks: int) -> bool:
    """The map halves (8x8 -> 4x4) after the first block when there are several."""
    return blocks > 1 and index == 0


class QuantResNet(nn.Module):
    """A small ResNet on ``act_bits``-bit codes with identity shortcuts::

        Images IntegerInput(uint5)                                    [N, 1, 8, 8]
        QuantConv2d(1->C, 3x3, pad 1) BN QuantAct                     [N, C, 8, 8]
        QuantResidualBlock(C), MaxPool2d(2), QuantResidualBlock(C)...  [N, C, 4, 4]
        QuantGlobalAvgPool2d (channel sums)                           [N, C]
        QuantLinear(C->classes, per-tensor) LogitScale                integer scores

    Every block's join adds the block input's codes and the branch's codes on the block
    input's scale (see :class:`~quant_models.residual.QuantResidualBlock`).
    """

    def __init__(self, channels: int = 16, blocks: int = 2, num_classes: int = 10,
                 weight_bits: int = 4, act_bits: int = 4, branch_bits: int = 5,
                 input_bits: int = 5, input_signed: bool = False) -> None:
        super().__init__()
        blocks = _check_blocks(blocks)
        c = int(channels)
        self.input_shape = CNN_INPUT_SHAPE
        self.config: dict[str, Any] = {
            "channels": c, "blocks": blocks, "num_classes": int(num_classes),
            "weight_bits": int(weight_bits), "act_bits": int(act_bits),
            "branch_bits": int(branch_bits), "input_bits": int(input_bits),
            "input_signed": bool(input_signed)}
        self.images = Images(CNN_INPUT_SHAPE)
        self.input_quant = IntegerInput(input_bits, input_signed)
        self.stem = QuantConv2d(CNN_INPUT_SHAPE[0], c, 3, padding=1, weight_bits=weight_bits)
        self.stem_bn = nn.BatchNorm2d(c)
        self.stem_act = QuantAct(act_bits, signed=False)
        source: QuantAct = self.stem_act
        body: list[nn.Module] = []
        size = CNN_INPUT_SHAPE[1]
        for index in range(blocks):
            block = QuantResidualBlock(c, source, weight_bits, act_bits, branch_bits)
            body.append(block)
            source = block.out_act
            if _pool_after(index, blocks):
                body.append(nn.MaxPool2d(2))
                size //= 2
        self.body = nn.Sequential(*body)
        self.pool = QuantGlobalAvgPool2d(size * size)
        self.pool.link_input(source)
        self.classifier = QuantLinear(c, num_classes, weight_bits=weight_bits,
                                      per_channel=False)
        self.classifier.link_input(self.pool)
        self.logits = LogitScale(1.0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_quant(self.images(x))
        x = self.stem_act(self.stem_bn(self.stem(x)))
        return self.logits(self.classifier(self.pool(self.body(x))))


class BinaryResNet(nn.Module):
    """A binarized ResNet: +-1 activations and weights, integer joins::

        Images IntegerInput(uint5)                                    [N, 1, 8, 8]
        BinaryConv2d(1->C, 3x3, pad 1 with 0) BN Sign                 [N, C, 8, 8] +-1
        BinaryResidualBlock(C), MaxPool2d(2), BinaryResidualBlock(C)  [N, C, 4, 4] +-1
        QuantGlobalAvgPool2d (sums of +-1)                            [N, C]
        BinaryLinear(C->classes) LogitScale                           integer scores

    Each join is ``acc + shortcut_weight * x`` on integers (see
    :class:`~quant_models.residual.BinaryResidualBlock`).
    """

    def __init__(self, channels: int = 16, blocks: int = 2, num_classes: int = 10,
                 shortcut_weight: int | None = None, input_bits: int = 5,
                 input_signed: bool = False) -> None:
        super().__init__()
        blocks = _check_blocks(blocks)
        c = int(channels)
        self.input_shape = CNN_INPUT_SHAPE
        self.config: dict[str, Any] = {
            "channels": c, "blocks": blocks, "num_classes": int(num_classes),
            "shortcut_weight": shortcut_weight, "input_bits": int(input_bits),
            "input_signed": bool(input_signed)}
        self.images = Images(CNN_INPUT_SHAPE)
        self.input_quant = IntegerInput(input_bits, input_signed)
        self.stem = BinaryConv2d(CNN_INPUT_SHAPE[0], c, 3, padding=1, pad_value=0)
        self.stem_bn = nn.BatchNorm2d(c)
        self.stem_act = SignActivation()
        body: list[nn.Module] = []
        size = CNN_INPUT_SHAPE[1]
        for index in range(blocks):
            body.append(BinaryResidualBlock(c, shortcut_weight))
            if _pool_after(index, blocks):
                body.append(nn.MaxPool2d(2))
                size //= 2
        self.body = nn.Sequential(*body)
        self.pool = QuantGlobalAvgPool2d(size * size)
        self.classifier = BinaryLinear(c, num_classes)
        self.logits = LogitScale(1.0 / math.sqrt(c * size * size))

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_quant(self.images(x))
        x = self.stem_act(self.stem_bn(self.stem(x)))
        return self.logits(self.classifier(self.pool(self.body(x))))


class SqueezeNet(nn.Module):
    """A SqueezeNet of fire modules ending, like the original, in a 1x1 convolution to the
    classes and global average pooling::

        Images IntegerInput(uint5)                                    [N, 1, 8, 8]
        QuantConv2d(1->C, 3x3, pad 1) BN QuantAct                     [N, C, 8, 8]
        FireModule(C -> squeeze -> 2 x expand)                        [N, 2E, 8, 8]
        MaxPool2d(2)                                                  [N, 2E, 4, 4]
        FireModule(2E -> squeeze -> 2 x expand)                       [N, 2E, 4, 4]
        QuantConv2d(2E->classes, 1x1) BN QuantAct                     [N, classes, 4, 4]
        QuantGlobalAvgPool2d (class-map sums) LogitScale              integer scores
    """

    def __init__(self, stem: int = 16, squeeze: Sequence[int] = (8, 8),
                 expand: Sequence[int] = (16, 16), num_classes: int = 10,
                 weight_bits: int = 4, act_bits: int = 4, class_bits: int = 6,
                 input_bits: int = 5, input_signed: bool = False) -> None:
        super().__init__()
        if len(squeeze) != 2 or len(expand) != 2:
            raise ValueError("need two squeeze and two expand widths (two fire modules)")
        self.input_shape = CNN_INPUT_SHAPE
        self.config: dict[str, Any] = {
            "stem": int(stem), "squeeze": [int(s) for s in squeeze],
            "expand": [int(e) for e in expand], "num_classes": int(num_classes),
            "weight_bits": int(weight_bits), "act_bits": int(act_bits),
            "class_bits": int(class_bits), "input_bits": int(input_bits),
            "input_signed": bool(input_signed)}
        self.images = Images(CNN_INPUT_SHAPE)
        self.input_quant = IntegerInput(input_bits, input_signed)
        self.stem = QuantConv2d(CNN_INPUT_SHAPE[0], int(stem), 3, padding=1,
                                weight_bits=weight_bits)
        self.stem_bn = nn.BatchNorm2d(int(stem))
        self.stem_act = QuantAct(act_bits, signed=False)
        self.fire1 = FireModule(int(stem), int(squeeze[0]), int(expand[0]),
                                source=self.stem_act, weight_bits=weight_bits,
                                act_bits=act_bits)
        self.pool1 = nn.MaxPool2d(2)
        self.fire2 = FireModule(self.fire1.out_channels, int(squeeze[1]), int(expand[1]),
                                source=self.fire1.out_act, weight_bits=weight_bits,
                                act_bits=act_bits)
        self.classes = QuantConv2d(self.fire2.out_channels, num_classes, 1,
                                   weight_bits=weight_bits)
        self.classes.link_input(self.fire2.out_act)
        self.classes_bn = nn.BatchNorm2d(num_classes)
        self.classes_act = QuantAct(class_bits, signed=False)
        self.pool = QuantGlobalAvgPool2d(16)
        self.logits = LogitScale(1.0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_quant(self.images(x))
        x = self.stem_act(self.stem_bn(self.stem(x)))
        x = self.fire2(self.pool1(self.fire1(x)))
        x = self.classes_act(self.classes_bn(self.classes(x)))
        return self.logits(self.pool(x))


class NiN(_ImageModel):
    """A Network-in-Network: mlpconv blocks (a 3x3 convolution and two 1x1 ones) and global
    average pooling of per-class maps instead of fully connected layers::

        IntegerInput(uint5)                                           [N, 1, 8, 8]
        QuantConv2d(1->C1, 3x3, pad 1) BN QuantAct, then twice
        QuantConv2d(C1->C1, 1x1) BN QuantAct                          [N, C1, 8, 8]
        QuantAvgPool2d(2) QuantAct (the average requantized)          [N, C1, 4, 4]
        QuantConv2d(C1->C2, 3x3, pad 1) BN QuantAct,
        QuantConv2d(C2->C2, 1x1) BN QuantAct,
        QuantConv2d(C2->classes, 1x1) BN QuantAct                     [N, classes, 4, 4]
        QuantGlobalAvgPool2d (class-map sums) LogitScale              integer scores

    A chain, so ``self.layers`` is an ``nn.Sequential`` (the frontend reads it in order).
    """

    def __init__(self, channels: Sequence[int] = (16, 32), num_classes: int = 10,
                 weight_bits: int = 4, act_bits: int = 4, class_bits: int = 6,
                 input_bits: int = 5, input_signed: bool = False) -> None:
        super().__init__()
        if len(channels) != 2 or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be two positive widths, got {list(channels)}")
        c1, c2 = (int(c) for c in channels)
        self.input_shape = CNN_INPUT_SHAPE
        self.config: dict[str, Any] = {
            "channels": [c1, c2], "num_classes": int(num_classes),
            "weight_bits": int(weight_bits), "act_bits": int(act_bits),
            "class_bits": int(class_bits), "input_bits": int(input_bits),
            "input_signed": bool(input_signed)}

        def unit(cin: int, cout: int, k: int, bits: int = act_bits) -> list[nn.Module]:
            return [QuantConv2d(cin, cout, k, padding=k // 2, weight_bits=weight_bits),
                    nn.BatchNorm2d(cout), QuantAct(bits, signed=False)]

        modules: list[nn.Module] = [IntegerInput(input_bits, input_signed)]
        modules += unit(CNN_INPUT_SHAPE[0], c1, 3) + unit(c1, c1, 1) + unit(c1, c1, 1)
        modules += [QuantAvgPool2d(2), QuantAct(act_bits, signed=False)]
        modules += unit(c1, c2, 3) + unit(c2, c2, 1) + unit(c2, num_classes, 1, class_bits)
        modules += [QuantGlobalAvgPool2d(16), LogitScale(1.0)]
        self.layers = nn.Sequential(*modules)
        link_input_scales(self.layers)
