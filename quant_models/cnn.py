"""Convolutional example networks: digits CNNs of every compression kind, and FINN's CNV.

Every model keeps the fixed pattern of the MLPs in :mod:`quant_models.models`, now on 4-D
tensors: ``self.layers`` is an ``nn.Sequential`` of

* ``IntegerInput`` (fixed-point pixels, NCHW),
* convolution (:class:`~quant_models.conv.BinaryConv2d`, ``TernaryConv2d``, ``QuantConv2d``)
  producing an exact integer accumulator (times positive float scales),
* ``BatchNorm2d`` and an activation quantizer producing integer codes again
  (``SignActivation``: bipolar; ``QuantAct``: ``uintN``), folded into per-channel thresholds,
* optionally ``MaxPool2d``, always *after* the activation quantizer so it is an integer max
  of codes (OR of bits for bipolar codes),
* ``Flatten`` (NCHW channel-major order, see :mod:`quant_models.conv`), then the fully
  connected part of the MLPs, ending in a layer with a per-tensor scale and ``LogitScale``,
  so the argmax of the last integer accumulator is the prediction.

The digits models take ``[N, 1, 8, 8]`` images of ``uint5`` pixels (0..16); ``forward`` also
accepts the data loader's ``[N, 64]`` rows (row-major 8x8 images) and reshapes them, so the
MLP training code is reused unchanged. The digits topology (``channels = (c1, c2, c3)``)::

    conv3x3(1->c1, pad 1)  BN  act                 8x8
    conv3x3(c1->c2, pad 1) BN  act  maxpool 2      8x8 -> 4x4
    conv3x3(c2->c3, pad 0) BN  act                 2x2
    flatten (c3*4)  [linear BN act]*  linear  LogitScale
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from quant_models.conv import BinaryConv2d, QuantConv2d, TernaryConv2d, conv_output_size
from quant_models.fixed_point import QuantAct, QuantLinear, link_input_scales
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.ternary import TernaryLinear, TernaryMethod

__all__ = [
    "CNN_INPUT_SHAPE",
    "CNV_INPUT_SHAPE",
    "BinaryCNN",
    "CNVW1A1",
    "DepthwiseSeparableCNN",
    "FixedPointCNN",
    "FloatCNN",
    "LayerShape",
    "SharedCNN",
    "TernaryCNN",
    "cnv_w1a1",
    "layer_shapes",
    "random_cnv_w1a1",
]

CNN_INPUT_SHAPE: tuple[int, int, int] = (1, 8, 8)
"""``(C, H, W)`` of a digits image."""

CNV_INPUT_SHAPE: tuple[int, int, int] = (3, 32, 32)
"""``(C, H, W)`` of a CIFAR-10 sized image, the input of FINN's CNV."""

ConvFactory = Callable[[int, int, int, int, bool], nn.Module]
"""``conv(in, out, kernel, padding, first)``; ``first`` is the layer reading the pixels."""
ActFactory = Callable[[], nn.Module]
LinearFactory = Callable[[int, int, bool], nn.Module]
"""``linear(in, out, last)``; ``last`` is the classifier layer."""


class _ImageModel(nn.Module):
    """Shared ``forward``: reshape flat rows to images, then run ``self.layers``."""

    input_shape: tuple[int, int, int]
    layers: nn.Sequential

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            # Digits rows are the 8x8 images flattened row-major, which view() undoes.
            x = x.reshape(x.shape[0], *self.input_shape)
        return self.layers(x)


def _check_channels(channels: Sequence[int], hidden: Sequence[int], num_classes: int) -> None:
    if len(channels) != 3 or any(int(c) < 1 for c in channels):
        raise ValueError(f"channels must be three positive widths, got {list(channels)}")
    if any(int(h) < 1 for h in hidden) or num_classes < 2:
        raise ValueError("hidden widths must be positive and num_classes at least 2")


def _digits_layers(
    channels: Sequence[int],
    hidden: Sequence[int],
    num_classes: int,
    first: nn.Module | None,
    conv: ConvFactory,
    bn2d: Callable[[int], nn.Module],
    act: ActFactory,
    linear: LinearFactory,
    bn1d: Callable[[int], nn.Module],
    head: nn.Module | None,
    image: tuple[int, int, int] = CNN_INPUT_SHAPE,
) -> list[nn.Module]:
    """The digits topology of the module docstring with the given layer kinds."""
    c1, c2, c3 = (int(c) for c in channels)
    in_ch, size, _ = image
    modules: list[nn.Module] = [] if first is None else [first]
    modules += [conv(in_ch, c1, 3, 1, True), bn2d(c1), act()]
    modules += [conv(c1, c2, 3, 1, False), bn2d(c2), act(), nn.MaxPool2d(2)]
    size = conv_output_size(size, 2, 2)
    modules += [conv(c2, c3, 3, 0, False), bn2d(c3), act()]
    size = conv_output_size(size, 3)
    modules.append(nn.Flatten())
    prev = c3 * size * size
    for width in hidden:
        modules += [linear(prev, int(width), False), bn1d(int(width)), act()]
        prev = int(width)
    modules.append(linear(prev, num_classes, True))
    if head is not None:
        modules.append(head)
    return modules


class BinaryCNN(_ImageModel):
    """Binarized digits CNN: ``uint5`` pixels x binary weights, bipolar activations.

    ``self.layers`` (defaults: ``channels=(16, 32, 32)``, no hidden linear layer)::

        IntegerInput(uint5)                                        [N, 1, 8, 8]
        BinaryConv2d(1->16, 3x3, pad 1, pad_value 0) BN2d Sign     [N, 16, 8, 8] bipolar
        BinaryConv2d(16->32, 3x3, pad 1, pad_value +1) BN2d Sign   [N, 32, 8, 8] bipolar
        MaxPool2d(2)                                               [N, 32, 4, 4] bipolar
        BinaryConv2d(32->32, 3x3, no pad) BN2d Sign                [N, 32, 2, 2] bipolar
        Flatten                                                    [N, 128] bipolar
        (BinaryLinear BN1d Sign) per hidden width                  bipolar
        BinaryLinear LogitScale                                    [N, 10] integer scores

    A hidden linear layer (e.g. ``hidden=(64,)``) costs accuracy here: the 128 bipolar
    features classify better directly than through a 64-wide bipolar bottleneck.

    The first convolution reads pixels, whose zero is a real value, so it pads with 0;
    the second reads bipolar codes and pads with +1 (see :mod:`quant_models.conv`).
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 32),
        hidden: Sequence[int] = (),
        num_classes: int = 10,
        input_bits: int = 5,
        input_signed: bool = False,
    ) -> None:
        super().__init__()
        _check_channels(channels, hidden, num_classes)
        self.input_shape = CNN_INPUT_SHAPE
        self.config: dict[str, Any] = {
            "channels": [int(c) for c in channels],
            "hidden": [int(h) for h in hidden],
            "num_classes": int(num_classes),
            "input_bits": int(input_bits),
            "input_signed": bool(input_signed),
        }
        last_in = int(hidden[-1]) if hidden else int(channels[2]) * 4

        def conv(i: int, o: int, k: int, p: int, first: bool) -> nn.Module:
            return BinaryConv2d(i, o, k, padding=p, pad_value=0 if first else 1)

        self.layers = nn.Sequential(
            *_digits_layers(
                channels,
                hidden,
                num_classes,
                IntegerInput(input_bits, input_signed),
                conv,
                nn.BatchNorm2d,
                SignActivation,
                lambda i, o, last: BinaryLinear(i, o),
                nn.BatchNorm1d,
                LogitScale(1.0 / math.sqrt(last_in)),
            )
        )


class FloatCNN(_ImageModel):
    """Float baseline with :class:`BinaryCNN`'s topology (Conv2d/Linear, BN, ReLU).

    Pixels are divided by 16 inside the model, as in :class:`~quant_models.models.FloatMLP`,
    so both take the same integer inputs. Convolutions zero-pad and have no bias (the batch
    norm after them has one); the classifier has a bias.
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 32),
        hidden: Sequence[int] = (),
        num_classes: int = 10,
        input_scale: float = 1.0 / 16.0,
    ) -> None:
        super().__init__()
        _check_channels(channels, hidden, num_classes)
        self.input_shape = CNN_INPUT_SHAPE
        self.input_scale = float(input_scale)
        self.config: dict[str, Any] = {
            "channels": [int(c) for c in channels],
            "hidden": [int(h) for h in hidden],
            "num_classes": int(num_classes),
            "input_scale": float(input_scale),
        }

        def conv(i: int, o: int, k: int, p: int, first: bool) -> nn.Module:
            return nn.Conv2d(i, o, k, padding=p, bias=False)

        def linear(i: int, o: int, last: bool) -> nn.Module:
            return nn.Linear(i, o, bias=last)

        self.layers = nn.Sequential(
            *_digits_layers(
                channels,
                hidden,
                num_classes,
                None,
                conv,
                nn.BatchNorm2d,
                nn.ReLU,
                linear,
                nn.BatchNorm1d,
                None,
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x * self.input_scale)


class TernaryCNN(_ImageModel):
    """Ternary-weight digits CNN with ``act_bits``-bit unsigned activations.

    :class:`BinaryCNN`'s topology with ``TernaryConv2d``/``TernaryLinear`` (TWN or TTQ,
    per-tensor scale), ``BatchNorm`` and ``QuantAct(uint<act_bits>)`` (also the ReLU).
    Every padded border is 0, the zero code of the pixels and of the unsigned activations;
    max-pooling runs on ``uint<act_bits>`` codes.
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 32),
        hidden: Sequence[int] = (),
        num_classes: int = 10,
        input_bits: int = 5,
        input_signed: bool = False,
        act_bits: int = 2,
        method: TernaryMethod = "twn",
        ratio_frac_bits: int = 4,
    ) -> None:
        super().__init__()
        _check_channels(channels, hidden, num_classes)
        self.input_shape = CNN_INPUT_SHAPE
        self.config: dict[str, Any] = {
            "channels": [int(c) for c in channels],
            "hidden": [int(h) for h in hidden],
            "num_classes": int(num_classes),
            "input_bits": int(input_bits),
            "input_signed": bool(input_signed),
            "act_bits": int(act_bits),
            "method": str(method),
            "ratio_frac_bits": int(ratio_frac_bits),
        }

        def conv(i: int, o: int, k: int, p: int, first: bool) -> nn.Module:
            return TernaryConv2d(i, o, k, padding=p, method=method, ratio_frac_bits=ratio_frac_bits)

        def linear(i: int, o: int, last: bool) -> nn.Module:
            return TernaryLinear(i, o, method=method, ratio_frac_bits=ratio_frac_bits)

        self.layers = nn.Sequential(
            *_digits_layers(
                channels,
                hidden,
                num_classes,
                IntegerInput(input_bits, input_signed),
                conv,
                nn.BatchNorm2d,
                lambda: QuantAct(act_bits, signed=False),
                linear,
                nn.BatchNorm1d,
                LogitScale(1.0),
            )
        )
        link_input_scales(self.layers)


class FixedPointCNN(_ImageModel):
    """Digits CNN with ``weight_bits``-bit weights and ``act_bits``-bit unsigned activations.

    :class:`BinaryCNN`'s topology with ``QuantConv2d``/``QuantLinear`` (narrow signed range,
    per-channel scale; per-tensor in the classifier), ``BatchNorm`` and
    ``QuantAct(uint<act_bits>)``; zero padding (the zero code) and max-pooling on codes.
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 32),
        hidden: Sequence[int] = (),
        num_classes: int = 10,
        weight_bits: int = 4,
        act_bits: int = 4,
        input_bits: int = 5,
        input_signed: bool = False,
    ) -> None:
        super().__init__()
        _check_channels(channels, hidden, num_classes)
        self.input_shape = CNN_INPUT_SHAPE
        self.config: dict[str, Any] = {
            "channels": [int(c) for c in channels],
            "hidden": [int(h) for h in hidden],
            "num_classes": int(num_classes),
            "weight_bits": int(weight_bits),
            "act_bits": int(act_bits),
            "input_bits": int(input_bits),
            "input_signed": bool(input_signed),
        }

        def conv(i: int, o: int, k: int, p: int, first: bool) -> nn.Module:
            return QuantConv2d(i, o, k, padding=p, weight_bits=weight_bits, per_channel=True)

        def linear(i: int, o: int, last: bool) -> nn.Module:
            return QuantLinear(i, o, weight_bits=weight_bits, per_channel=not last)

        self.layers = nn.Sequential(
            *_digits_layers(
                channels,
                hidden,
                num_classes,
                IntegerInput(input_bits, input_signed),
                conv,
                nn.BatchNorm2d,
                lambda: QuantAct(act_bits, signed=False),
                linear,
                nn.BatchNorm1d,
                LogitScale(1.0),
            )
        )
        link_input_scales(self.layers)


class DepthwiseSeparableCNN(_ImageModel):
    """Compact digits CNN: depthwise 3x3 + pointwise 1x1 blocks, fixed-point weights.

    ``self.layers`` (defaults: ``stem=16``, ``blocks=(32, 32)``, 4-bit weights and
    activations)::

        IntegerInput(uint5)                                           [N, 1, 8, 8]
        QuantConv2d(1->16, 3x3, pad 1) BN2d QuantAct                  [N, 16, 8, 8]
        QuantConv2d(16->16, 3x3, pad 1, groups 16) BN2d QuantAct      depthwise
        QuantConv2d(16->32, 1x1) BN2d QuantAct                        [N, 32, 8, 8]
        MaxPool2d(2)                                                  [N, 32, 4, 4]
        QuantConv2d(32->32, 3x3, groups 32) BN2d QuantAct             [N, 32, 2, 2]
        QuantConv2d(32->32, 1x1) BN2d QuantAct                        [N, 32, 2, 2]
        Flatten                                                       [N, 128]
        QuantLinear(128->10, per-tensor) LogitScale                   [N, 10] scores

    A 3x3 depthwise plus a 1x1 pointwise convolution has ``9 C + C C'`` weights instead of
    ``9 C C'``, the MobileNet trade of a little accuracy for far fewer multiply-accumulates.
    """

    def __init__(
        self,
        stem: int = 16,
        blocks: Sequence[int] = (32, 32),
        num_classes: int = 10,
        weight_bits: int = 4,
        act_bits: int = 4,
        input_bits: int = 5,
        input_signed: bool = False,
    ) -> None:
        super().__init__()
        if len(blocks) != 2 or int(stem) < 1 or any(int(b) < 1 for b in blocks):
            raise ValueError("need a positive stem width and two positive block widths")
        if num_classes < 2:
            raise ValueError("num_classes must be at least 2")
        self.input_shape = CNN_INPUT_SHAPE
        self.config: dict[str, Any] = {
            "stem": int(stem),
            "blocks": [int(b) for b in blocks],
            "num_classes": int(num_classes),
            "weight_bits": int(weight_bits),
            "act_bits": int(act_bits),
            "input_bits": int(input_bits),
            "input_signed": bool(input_signed),
        }

        def unit(conv: nn.Module, width: int) -> list[nn.Module]:
            return [conv, nn.BatchNorm2d(width), QuantAct(act_bits, signed=False)]

        def qconv(i: int, o: int, k: int, p: int = 0, groups: int = 1) -> QuantConv2d:
            return QuantConv2d(i, o, k, padding=p, groups=groups, weight_bits=weight_bits)

        c0, c1, c2 = int(stem), int(blocks[0]), int(blocks[1])
        modules: list[nn.Module] = [IntegerInput(input_bits, input_signed)]
        modules += unit(qconv(1, c0, 3, 1), c0)
        modules += unit(qconv(c0, c0, 3, 1, groups=c0), c0)
        modules += unit(qconv(c0, c1, 1), c1)
        modules.append(nn.MaxPool2d(2))
        modules += unit(qconv(c1, c1, 3, 0, groups=c1), c1)
        modules += unit(qconv(c1, c2, 1), c2)
        modules += [
            nn.Flatten(),
            QuantLinear(c2 * 4, num_classes, weight_bits=weight_bits, per_channel=False),
            LogitScale(1.0),
        ]
        self.layers = nn.Sequential(*modules)
        link_input_scales(self.layers)


class CNVW1A1(_ImageModel):
    """FINN's CNV-W1A1 topology for ``[N, 3, 32, 32]`` images of ``uint8`` pixels.

    ``self.layers``::

        IntegerInput(uint8)                                  [N, 3, 32, 32]
        BinaryConv2d(3->64)    BN2d Sign                     [N, 64, 30, 30]
        BinaryConv2d(64->64)   BN2d Sign  MaxPool2d(2)       [N, 64, 28, 28] -> 14x14
        BinaryConv2d(64->128)  BN2d Sign                     [N, 128, 12, 12]
        BinaryConv2d(128->128) BN2d Sign  MaxPool2d(2)       [N, 128, 10, 10] -> 5x5
        BinaryConv2d(128->256) BN2d Sign                     [N, 256, 3, 3]
        BinaryConv2d(256->256) BN2d Sign                     [N, 256, 1, 1]
        Flatten                                              [N, 256]
        BinaryLinear(256->512) BN1d Sign
        BinaryLinear(512->512) BN1d Sign
        BinaryLinear(512->num_classes) LogitScale            integer scores

    All convolutions are 3x3 without padding; the first multiplies ``uint8`` pixels by
    binary weights (accumulators up to ``27 * 255``), all others are XNOR-popcounts.
    """

    def __init__(self, num_classes: int = 10, input_bits: int = 8) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError("num_classes must be at least 2")
        self.input_shape = CNV_INPUT_SHAPE
        self.config: dict[str, Any] = {
            "num_classes": int(num_classes),
            "input_bits": int(input_bits),
        }
        modules: list[nn.Module] = [IntegerInput(input_bits, False)]
        prev = CNV_INPUT_SHAPE[0]
        for i, width in enumerate((64, 64, 128, 128, 256, 256)):
            modules += [
                BinaryConv2d(prev, width, 3, pad_value=0 if i == 0 else 1),
                nn.BatchNorm2d(width),
                SignActivation(),
            ]
            if i in (1, 3):
                modules.append(nn.MaxPool2d(2))
            prev = width
        modules.append(nn.Flatten())
        for width in (512, 512):
            modules += [BinaryLinear(prev, width), nn.BatchNorm1d(width), SignActivation()]
            prev = width
        modules += [BinaryLinear(prev, num_classes), LogitScale(1.0 / math.sqrt(prev))]
        self.layers = nn.Sequential(*modules)


def cnv_w1a1(num_classes: int = 10) -> CNVW1A1:
    """FINN's CNV-W1A1 (see :class:`CNVW1A1`), freshly initialised, in training mode."""
    return CNVW1A1(num_classes=num_classes)


@torch.no_grad()
def random_cnv_w1a1(
    seed: int = 0,
    num_classes: int = 10,
    calibration_images: int = 8,
    negative_gamma_fraction: float = 0.25,
) -> CNVW1A1:
    """An eval-mode :func:`cnv_w1a1` with deterministic random weights and batch norms.

    Meant for exercising the compiler on a full-size CNN without training. Latent weights
    are uniform in ``[-1, 1]`` (so binary weights are random signs). The batch norms are
    set layer by layer from ``calibration_images`` random ``uint8`` images drawn from the
    same seed: each channel's ``running_mean`` is the mean of its accumulator plus a
    random quarter of its standard deviation, ``running_var`` its variance times a factor
    in ``[0.5, 1.5)``, ``bias`` is small, and ``weight`` has magnitude in ``[0.5, 1.5)``,
    negative for about ``negative_gamma_fraction`` of the channels (a falling threshold
    staircase, which a trained network has too). Centering each channel on its own
    statistics is what keeps the signs of every layer mixed instead of collapsing to one
    value, however deep the random network. The result depends only on ``seed`` (all
    draws come from one CPU generator).
    """
    if not 0.0 <= negative_gamma_fraction <= 1.0:
        raise ValueError("negative_gamma_fraction must be in [0, 1]")
    if calibration_images < 2:
        raise ValueError("need at least two calibration images")
    gen = torch.Generator().manual_seed(int(seed))

    def uniform(shape: torch.Size | tuple[int, ...], lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=gen)

    model = CNVW1A1(num_classes=num_classes)
    for m in model.modules():
        if isinstance(m, (BinaryConv2d, BinaryLinear)):
            m.weight.copy_(uniform(m.weight.shape, -1.0, 1.0))
    model.eval()
    h = torch.randint(0, 256, (int(calibration_images), *CNV_INPUT_SHAPE), generator=gen)
    h = h.to(torch.float32)
    for m in model.layers:
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            dims = [0] if h.dim() == 2 else [0, 2, 3]
            c = m.num_features
            mean = h.mean(dim=dims)
            var = h.var(dim=dims, unbiased=False).clamp(min=1.0)
            m.running_mean.copy_(mean + 0.25 * var.sqrt() * torch.randn(c, generator=gen))
            m.running_var.copy_(var * uniform((c,), 0.5, 1.5))
            flip = torch.rand(c, generator=gen) < negative_gamma_fraction
            m.weight.copy_(uniform((c,), 0.5, 1.5) * torch.where(flip, -1.0, 1.0))
            m.bias.copy_(uniform((c,), -0.1, 0.1))
        h = m(h)
    return model


@dataclass(frozen=True)
class LayerShape:
    """One module of ``model.layers`` and the shape (without batch) of its output."""

    name: str
    kind: str
    shape: tuple[int, ...]


@torch.no_grad()
def layer_shapes(model: nn.Module) -> list[LayerShape]:
    """Output shape of every module of ``model.layers`` for one input of ``model.input_shape``.

    Runs a zero image through a copy-free eval pass and restores the training mode.
    """
    layers: nn.Sequential = model.layers  # type: ignore[assignment]
    shape: tuple[int, ...] = tuple(model.input_shape)  # type: ignore[arg-type]
    was_training = model.training
    model.eval()
    try:
        h = torch.zeros(1, *shape)
        out: list[LayerShape] = []
        for name, m in layers.named_children():
            h = m(h)
            out.append(LayerShape(name, type(m).__name__, tuple(h.shape[1:])))
    finally:
        model.train(was_training)
    return out


class SharedCNN(_ImageModel):
    """The Deep Compression digits CNN: :class:`FixedPointCNN`'s topology with every weight
    layer a shared one (:class:`~quant_models.sharing.SharedConv2d`,
    :class:`~quant_models.sharing.SharedLinear`), pruned and clustered by
    :mod:`quant_models.deep_compression`.

    ``index_bits`` gives each of the four weight layers (three convolutions, the classifier)
    its codebook index width; activations are ``uint<act_bits>`` codes, borders pad with 0.
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 32),
        num_classes: int = 10,
        index_bits: Sequence[int] = (5, 5, 5, 5),
        act_bits: int = 4,
        input_bits: int = 5,
        input_signed: bool = False,
    ) -> None:
        from quant_models.sharing import SharedConv2d, SharedLinear

        super().__init__()
        _check_channels(channels, (), num_classes)
        bits = [int(b) for b in index_bits]
        if len(bits) != 4:
            raise ValueError(f"index_bits needs four widths (three convolutions, the "
                             f"classifier), got {len(bits)}")
        self.input_shape = CNN_INPUT_SHAPE
        self.config: dict[str, Any] = {
            "channels": [int(c) for c in channels],
            "num_classes": int(num_classes),
            "index_bits": bits,
            "act_bits": int(act_bits),
            "input_bits": int(input_bits),
            "input_signed": bool(input_signed),
        }
        widths = iter(bits)

        def conv(i: int, o: int, k: int, p: int, first: bool) -> nn.Module:
            return SharedConv2d(i, o, k, padding=p, index_bits=next(widths))

        def linear(i: int, o: int, last: bool) -> nn.Module:
            return SharedLinear(i, o, index_bits=next(widths))

        self.layers = nn.Sequential(
            *_digits_layers(
                channels,
                (),
                num_classes,
                IntegerInput(input_bits, input_signed),
                conv,
                nn.BatchNorm2d,
                lambda: QuantAct(act_bits, signed=False),
                linear,
                nn.BatchNorm1d,
                LogitScale(1.0),
            )
        )
        link_input_scales(self.layers)
