"""Convolutional layers: exact integer accumulators, padding rule, scales, links, 4-D quantizers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from quant_models.conv import (
    BinaryConv2d,
    IntegerConv2d,
    QuantConv2d,
    TernaryConv2d,
    conv_output_size,
    pad_integer,
)
from quant_models.fixed_point import QuantAct, QuantLinear, link_input_scales
from quant_models.layers import BinaryLinear, IntegerInput, SignActivation
from quant_models.ternary import TernaryLinear


def reference_conv(
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int],
    padding: tuple[int, int],
    pad_value: int,
    groups: int,
) -> np.ndarray:
    """int64 convolution by explicit sliding windows: independent of torch's conv2d."""
    ph, pw = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    kh, kw = w.shape[2:]
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    out_per_group = w.shape[0] // groups
    in_per_group = x.shape[1] // groups
    parts = []
    for g in range(groups):
        xs = win[:, g * in_per_group : (g + 1) * in_per_group]
        ws = w[g * out_per_group : (g + 1) * out_per_group]
        parts.append(np.einsum("nchwij,ocij->nohw", xs, ws))
    return np.concatenate(parts, axis=1)


LAYER_KINDS = ("binary", "twn", "ttq", "int4", "int8-per-tensor", "uint3")


def make_layer(kind: str, c_in: int, c_out: int, kernel: Any, **geometry: Any) -> nn.Module:
    if kind == "binary":
        return BinaryConv2d(c_in, c_out, kernel, **geometry)
    if kind in ("twn", "ttq"):
        return TernaryConv2d(c_in, c_out, kernel, method=kind, **geometry)
    if kind == "int4":
        return QuantConv2d(c_in, c_out, kernel, weight_bits=4, **geometry)
    if kind == "int8-per-tensor":
        return QuantConv2d(c_in, c_out, kernel, weight_bits=8, per_channel=False, **geometry)
    if kind == "uint3":
        return QuantConv2d(
            c_in, c_out, kernel, weight_bits=3, weight_signed=False, narrow_range=False, **geometry
        )
    raise AssertionError(kind)


@st.composite
def conv_cases(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(LAYER_KINDS))
    shape = draw(st.sampled_from(("dense", "grouped", "depthwise")))
    if shape == "depthwise":
        c = draw(st.integers(1, 6))
        c_in, c_out, groups = c, c, c
    elif shape == "grouped":
        groups = draw(st.integers(2, 3))
        c_in = groups * draw(st.integers(1, 3))
        c_out = groups * draw(st.integers(1, 3))
    else:
        groups, c_in, c_out = 1, draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    height = draw(st.integers(max(1, kh - 2 * padding[0]), 7))
    width = draw(st.integers(max(1, kw - 2 * padding[1]), 7))
    bipolar = kind == "binary" and draw(st.booleans())
    pad_value = draw(st.sampled_from((1, -1, 0) if bipolar else (0, 0, 3, -2)))
    return {
        "kind": kind,
        "c_in": c_in,
        "c_out": c_out,
        "groups": groups,
        "kernel": (kh, kw),
        "stride": stride,
        "padding": padding,
        "size": (height, width),
        "batch": draw(st.integers(1, 2)),
        "bipolar": bipolar,
        "pad_value": pad_value,
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def build_case(case: dict[str, Any]) -> tuple[nn.Module, torch.Tensor]:
    gen = torch.Generator().manual_seed(case["seed"])
    torch.manual_seed(case["seed"])
    layer = make_layer(
        case["kind"],
        case["c_in"],
        case["c_out"],
        case["kernel"],
        stride=case["stride"],
        padding=case["padding"],
        groups=case["groups"],
        pad_value=case["pad_value"],
    )
    if case["kind"] == "ttq":
        with torch.no_grad():  # asymmetric magnitudes so the negative level is not 2^f
            layer.wn.mul_(1.0 + torch.rand((), generator=gen).item())
    shape = (case["batch"], case["c_in"], *case["size"])
    if case["bipolar"]:
        x = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
    else:
        x = torch.randint(-128, 128, shape, generator=gen).to(torch.float32)
    return layer, x


@settings(max_examples=150, deadline=None)
@given(conv_cases())
def test_conv_accumulator_is_the_exact_integer_convolution(case: dict[str, Any]) -> None:
    layer, x = build_case(case)
    w_int, scale = layer.integer_weight()
    assert w_int.dtype == torch.int64
    assert w_int.shape == (case["c_out"], case["c_in"] // case["groups"], *case["kernel"])
    expected = reference_conv(
        x.numpy().astype(np.int64),
        w_int.numpy(),
        case["stride"],
        case["padding"],
        case["pad_value"],
        case["groups"],
    )
    with torch.no_grad():
        acc = layer.accumulate(x)
        out = layer(x)
    assert acc.dtype == torch.float32
    assert np.array_equal(acc.numpy().astype(np.int64), expected)
    assert torch.equal(acc, torch.round(acc))
    assert tuple(out.shape[1:]) == layer.output_shape(*case["size"])
    # forward == scale * conv2d(x, W_int), bit for bit, per output channel
    scale_t = torch.as_tensor(scale, dtype=torch.float32)
    per_channel = scale_t.view(-1, 1, 1) if scale_t.dim() == 1 else scale_t
    assert torch.equal(out, acc * per_channel)
    assert torch.equal(out, layer.scale_accumulator(acc))


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_padded_conv_equals_conv_of_the_explicitly_padded_tensor(case: dict[str, Any]) -> None:
    layer, x = build_case(case)
    unpadded = make_layer(
        case["kind"],
        case["c_in"],
        case["c_out"],
        case["kernel"],
        stride=case["stride"],
        padding=0,
        groups=case["groups"],
    )
    unpadded.load_state_dict(layer.state_dict())
    ph, pw = case["padding"]
    x_padded = F.pad(x, (pw, pw, ph, ph), value=float(case["pad_value"]))
    assert torch.equal(layer.pad(x), x_padded)
    assert torch.equal(pad_integer(x, case["padding"], case["pad_value"]), x_padded)
    with torch.no_grad():
        assert torch.equal(layer(x), unpadded(x_padded))


def test_bipolar_padding_defaults_to_plus_one() -> None:
    torch.manual_seed(0)
    layer = BinaryConv2d(2, 3, 3, padding=1)
    assert layer.pad_value == 1
    x = torch.where(torch.rand(1, 2, 4, 4) < 0.5, -1.0, 1.0)
    w = layer.binary_weight()
    with torch.no_grad():
        acc = layer(x)
    assert torch.equal(acc, F.conv2d(F.pad(x, (1, 1, 1, 1), value=1.0), w))
    # not zero padding: the border positions differ by the border weights
    assert not torch.equal(acc, F.conv2d(x, w, padding=1))
    # every position multiplies 18 bipolar values: the accumulator has 18's parity
    assert bool((torch.remainder(acc, 2) == 0).all())
    assert int(acc.abs().max()) <= 18
    # the integer and ternary layers pad with the zero code by default
    assert TernaryConv2d(1, 1, 3, padding=1).pad_value == 0
    assert QuantConv2d(1, 1, 3, padding=1).pad_value == 0


def test_pad_value_is_settable_and_used() -> None:
    torch.manual_seed(1)
    layer = BinaryConv2d(1, 2, 3, padding=2)
    x = torch.zeros(1, 1, 3, 3)
    with torch.no_grad():
        plus = layer(x)
        layer.pad_value = -1
        assert layer.pad_value == -1
        minus = layer(x)
        layer.pad_value = 0.0
        assert layer.pad_value == 0 and isinstance(layer.pad_value, int)
        zero = layer(x)
    assert torch.equal(minus, -plus)
    assert torch.equal(zero, torch.zeros_like(zero))
    with pytest.raises(ValueError):
        layer.pad_value = 0.5
    with pytest.raises(ValueError):
        layer.pad_value = float("nan")
    assert "pad_value=0" in repr(layer)


def test_geometry_validation() -> None:
    with pytest.raises(ValueError, match="dilation"):
        QuantConv2d(2, 2, 3, dilation=2)
    with pytest.raises(ValueError, match="dilation"):
        BinaryConv2d(2, 2, 3, dilation=(1, 2))
    with pytest.raises(ValueError):
        TernaryConv2d(2, 2, 3, padding="same")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="groups"):
        QuantConv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError):
        QuantConv2d(2, 2, 3, stride=0)
    with pytest.raises(ValueError):
        BinaryConv2d(2, 2, 3, pad_value=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TernaryConv2d(2, 2, 3, method="bwn")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        QuantConv2d(2, 2, 3, weight_bits=9)
    with pytest.raises(ValueError):
        QuantConv2d(2, 2, 3, weight_signed=False, narrow_range=True)
    assert QuantConv2d(4, 4, 3, groups=4).is_depthwise
    assert not QuantConv2d(4, 8, 3, groups=4).is_depthwise
    assert conv_output_size(8, 3, 1, 1) == 8 and conv_output_size(32, 3) == 30
    assert conv_output_size(7, 2, 2) == 3
    with pytest.raises(ValueError):
        conv_output_size(2, 5)


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_exactness_guard(kind: str) -> None:
    torch.manual_seed(0)
    layer = make_layer(kind, 64, 4, 3, padding=1)
    fan_in = 64 * 9
    w_int, _ = layer.integer_weight()
    row = int(w_int.abs().flatten(1).sum(dim=1).max())
    assert row <= fan_in * 127
    big = float(2**24 // row + 1)
    with pytest.raises(ValueError, match="2\\^24"):
        layer(torch.full((1, 64, 4, 4), big))
    ok = float((2**24 - 1) // row)
    with torch.no_grad():
        acc = layer.accumulate(torch.full((1, 64, 4, 4), ok))
    assert float(acc.abs().max()) < 2**24
    # a padded border counts as input: a huge pad value is refused too
    layer.pad_value = int(big)
    with pytest.raises(ValueError, match="2\\^24"):
        layer(torch.zeros(1, 64, 4, 4))


def test_integer_weights_and_scales() -> None:
    torch.manual_seed(3)
    q = QuantConv2d(4, 6, 3, weight_bits=4)
    w, s = q.integer_weight()
    assert w.shape == (6, 4, 3, 3) and s.shape == (6,)
    assert int(w.min()) >= -7 and int(w.max()) <= 7
    assert bool((w.flatten(1).abs().amax(dim=1) == 7).all())  # max-abs per channel hits qmax
    qt = QuantConv2d(4, 6, 3, weight_bits=4, per_channel=False)
    assert qt.integer_weight()[1].dim() == 0
    u = QuantConv2d(4, 6, 3, weight_bits=3, weight_signed=False, narrow_range=False)
    wu, _ = u.integer_weight()
    assert int(wu.min()) >= 0 and int(wu.max()) <= 7
    t = TernaryConv2d(4, 6, 3)
    wt, st_ = t.integer_weight()
    assert set(wt.unique().tolist()) <= {-1, 0, 1} and isinstance(st_, float) and st_ > 0
    assert torch.equal(t.ternary_codes(), wt)
    with pytest.raises(ValueError):
        t.ratio_code()
    ttq = TernaryConv2d(4, 6, 3, method="ttq")
    with torch.no_grad():
        ttq.wn.mul_(1.5)
    wq, sq = ttq.integer_weight()
    r = ttq.ratio_code()
    assert r == 24 and set(wq.unique().tolist()) <= {16, 0, -r}
    assert sq == pytest.approx(float(ttq.wp.detach()) / 16)
    b = BinaryConv2d(4, 6, 3)
    wb, sb = b.integer_weight()
    assert set(wb.unique().tolist()) <= {-1, 1} and sb == 1.0
    with torch.no_grad():
        b.weight.zero_()
    assert bool((b.integer_weight()[0] == 1).all())  # sign(0) = +1


def test_conv_quantizers_match_the_linear_ones() -> None:
    """A 1x1 convolution on a 1x1 image is a linear layer: same integer weights, same output."""
    torch.manual_seed(5)
    x = torch.randint(0, 16, (3, 8)).to(torch.float32)
    pairs: list[tuple[nn.Module, nn.Module]] = [
        (QuantConv2d(8, 5, 1, weight_bits=4), QuantLinear(8, 5, weight_bits=4)),
        (
            QuantConv2d(8, 5, 1, weight_bits=6, per_channel=False),
            QuantLinear(8, 5, weight_bits=6, per_channel=False),
        ),
        (TernaryConv2d(8, 5, 1), TernaryLinear(8, 5)),
        (TernaryConv2d(8, 5, 1, method="ttq"), TernaryLinear(8, 5, method="ttq")),
        (BinaryConv2d(8, 5, 1), BinaryLinear(8, 5)),
    ]
    for conv, linear in pairs:
        with torch.no_grad():
            linear.weight.copy_(conv.weight.view(5, 8))
            if isinstance(conv, TernaryConv2d) and conv.method == "ttq":
                conv.wn.mul_(0.7)
                linear.wp.copy_(conv.wp)
                linear.wn.copy_(conv.wn)
            w_conv, s_conv = conv.integer_weight()
            out_conv = conv(x.view(3, 8, 1, 1)).view(3, 5)
            out_linear = linear(x)
        if isinstance(linear, BinaryLinear):
            assert torch.equal(w_conv.view(5, 8), linear.binary_weight().to(torch.int64))
        else:
            w_lin, s_lin = linear.integer_weight()
            assert torch.equal(w_conv.view(5, 8), w_lin)
            assert torch.equal(torch.as_tensor(s_conv), torch.as_tensor(s_lin))
        assert torch.equal(out_conv, out_linear)


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_gradients_reach_the_latent_weights(kind: str) -> None:
    torch.manual_seed(2)
    layer = make_layer(kind, 3, 4, 3, padding=1)
    act = QuantAct(4, init_scale=0.5)
    if isinstance(layer, IntegerConv2d):
        layer.link_input(act)
    x = act(torch.rand(2, 3, 5, 5) * 4)
    layer(x).square().sum().backward()
    assert layer.weight.grad is not None and bool(layer.weight.grad.abs().sum() > 0)
    if kind == "ttq":
        assert layer.wp.grad is not None and layer.wn.grad is not None
    if isinstance(layer, IntegerConv2d):
        assert act.scale.grad is not None and float(act.scale.grad) != 0.0


def test_clip_latent() -> None:
    b = BinaryConv2d(2, 2, 3)
    with torch.no_grad():
        b.weight.mul_(100)
    b.clip_latent_()
    assert float(b.weight.detach().abs().max()) <= 1.0
    t = TernaryConv2d(2, 2, 3, method="ttq")
    with torch.no_grad():
        t.wp.fill_(-1.0)
        t.wn.fill_(-1.0)
    t.clip_latent_()
    assert float(t.wp.detach()) > 0 and float(t.wn.detach()) > 0
    QuantConv2d(2, 2, 3).clip_latent_()  # a no-op, but present for the training loop


def test_input_scale_multiplies_after_the_integer_work() -> None:
    torch.manual_seed(4)
    act = QuantAct(4, init_scale=0.37)
    conv = QuantConv2d(3, 4, 3, padding=1, weight_bits=4)
    conv.link_input(act)
    assert conv.input_quant is act and "input_scale=linked" in repr(conv)
    codes = act(torch.rand(2, 3, 6, 6) * 5)
    with torch.no_grad():
        acc = conv.accumulate(codes)
        w, s = conv.integer_weight()
        out = conv(codes)
    assert torch.equal(out, acc * s.view(-1, 1, 1) * act.scale.detach())
    with pytest.raises(TypeError):
        conv.link_input(SignActivation())  # type: ignore[arg-type]
    conv.link_input(None)
    assert conv.input_scale() is None


def test_state_dict_round_trip() -> None:
    torch.manual_seed(6)
    for kind in LAYER_KINDS:
        a = make_layer(kind, 4, 4, 3, padding=1, groups=2)
        b = make_layer(kind, 4, 4, 3, padding=1, groups=2)
        b.load_state_dict(a.state_dict())
        x = torch.randint(-3, 4, (1, 4, 5, 5)).float()
        with torch.no_grad():
            assert torch.equal(a(x), b(x))
        if isinstance(a, IntegerConv2d):
            assert "weight_mask" in a.state_dict()


# -- activation quantizers, pooling and flattening on 4-D tensors ---------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 8), st.booleans())
def test_activation_quantizers_work_elementwise_on_4d(seed: int, bits: int, signed: bool) -> None:
    if signed and bits < 2:
        bits = 2
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 5, 4, generator=gen) * 3
    act = QuantAct(bits, signed=signed, init_scale=0.3)
    q4 = act(x)
    assert q4.shape == x.shape
    assert torch.equal(q4, act(x.flatten()).view_as(x))
    assert torch.equal(q4, torch.round(q4))
    assert int(q4.min()) >= act.min_value and int(q4.max()) <= act.max_value
    s4 = SignActivation()(x)
    assert torch.equal(s4, torch.where(x >= 0, 1.0, -1.0))
    # max-pooling commutes with both monotone quantizers: pooling codes is pooling values
    pool = nn.MaxPool2d(2)
    assert torch.equal(pool(q4), act(pool(x)))
    assert torch.equal(pool(s4), SignActivation()(pool(x)))
    # on bipolar codes the max is the OR of the bits (bit 1 = +1)
    bits4 = (s4 > 0).to(torch.int64)
    windows = bits4[:, :, :4, :4].reshape(2, 3, 2, 2, 2, 2).amax(dim=(3, 5))
    assert torch.equal((pool(s4) > 0).to(torch.int64), windows)


def test_quant_act_initialises_on_4d_batches() -> None:
    torch.manual_seed(0)
    act = QuantAct(4)
    act.train()
    x = torch.rand(8, 3, 4, 4) * 6
    act(x)
    assert bool(act.initialized)
    expected = float(2 * x.abs().mean() / np.sqrt(15))
    assert float(act.scale.detach()) == pytest.approx(expected, rel=1e-6)


def test_flatten_is_channel_major() -> None:
    x = torch.arange(2 * 3 * 4 * 5).view(2, 3, 4, 5)
    flat = nn.Flatten()(x)
    c, h, w = 2, 1, 3
    assert int(flat[1, c * 20 + h * 5 + w]) == int(x[1, c, h, w])


# -- link_input_scales ----------------------------------------------------------------------


def test_link_input_scales_with_convolutions() -> None:
    a, b, c, d = (QuantAct(4) for _ in range(4))
    first = QuantConv2d(1, 4, 3, padding=1)
    second = TernaryConv2d(4, 4, 3)
    pool = nn.MaxPool2d(2)
    binary = BinaryConv2d(4, 4, 1)
    after_binary = QuantConv2d(4, 4, 1)
    plain = nn.Conv2d(4, 4, 1)
    after_plain = QuantConv2d(4, 4, 1)
    after_sign = QuantConv2d(4, 4, 1)
    fc = QuantLinear(16, 10)
    layers = nn.Sequential(
        IntegerInput(5, False),
        first,  # unscaled pixels
        nn.BatchNorm2d(4),
        a,
        pool,  # passes a's codes (and scale) through
        second,  # -> a
        nn.BatchNorm2d(4),
        b,
        binary,  # an unscaled accumulator
        after_binary,  # -> None
        c,
        plain,
        after_plain,  # -> None (a float convolution's output has no scale)
        d,
        SignActivation(),
        after_sign,  # -> None
        d,
        nn.Flatten(),
        fc,  # -> d through the flatten
    )
    for layer in (second, after_binary, after_plain, after_sign, fc):
        layer.link_input(a)  # stale links must be overwritten
    link_input_scales(layers)
    assert first.input_quant is None
    assert second.input_quant is a
    assert after_binary.input_quant is None
    assert after_plain.input_quant is None
    assert after_sign.input_quant is None
    assert fc.input_quant is d
