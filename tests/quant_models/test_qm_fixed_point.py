"""Fixed point: quantize rounding/clamping/STE, exact QuantLinear, QuantAct, Requant, params."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_models.fixed_point import (
    QuantAct,
    QuantLinear,
    Requant,
    fake_quant,
    integer_range,
    link_input_scales,
    quantize,
    requant_params,
)
from quant_models.layers import IntegerInput, SignActivation


@pytest.mark.parametrize(
    ("bits", "signed", "narrow", "lo", "hi"),
    [
        (4, True, False, -8, 7),
        (4, True, True, -7, 7),
        (2, True, True, -1, 1),
        (8, True, True, -127, 127),
        (4, False, False, 0, 15),
        (1, False, False, 0, 1),
        (8, False, False, 0, 255),
    ],
)
def test_integer_range(bits: int, signed: bool, narrow: bool, lo: int, hi: int) -> None:
    assert integer_range(bits, signed, narrow) == (lo, hi)


@pytest.mark.parametrize(("bits", "signed", "narrow"), [(1, True, False), (4, False, True)])
def test_integer_range_rejects(bits: int, signed: bool, narrow: bool) -> None:
    with pytest.raises(ValueError):
        integer_range(bits, signed, narrow)


def test_quantize_ties_go_to_even() -> None:
    x = torch.tensor([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 0.49999997, 0.50000006])
    assert quantize(x, 1.0, 8, True).tolist() == [0, 2, 2, 4, 0, -2, -2, 0, 1]
    # ties created by the division itself: 0.375 / 0.25 = 1.5 and 0.625 / 0.25 = 2.5 exactly
    assert quantize(torch.tensor([0.375, 0.625, -0.375]), 0.25, 8, True).tolist() == [2, 2, -2]
    scale = torch.tensor(0.25)
    assert quantize(torch.tensor([0.375, 0.625]), scale, 8, True).tolist() == [2, 2]


def test_quantize_clamps_and_narrow_range() -> None:
    x = torch.tensor([-100.0, -8.0, -7.6, -7.4, 0.0, 7.4, 7.6, 100.0])
    assert quantize(x, 1.0, 4, True).tolist() == [-8, -8, -8, -7, 0, 7, 7, 7]
    assert quantize(x, 1.0, 4, True, narrow_range=True).tolist() == [-7, -7, -7, -7, 0, 7, 7, 7]
    assert quantize(x, 1.0, 4, False).tolist() == [0, 0, 0, 0, 0, 7, 8, 15]
    assert quantize(x, 1.0, 2, True, narrow_range=True).tolist() == [-1, -1, -1, -1, 0, 1, 1, 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-300, 300, width=32), min_size=1, max_size=30),
    st.sampled_from([0.25, 0.5, 1.0, 0.1, 3.0]),
    st.integers(2, 8),
    st.booleans(),
)
def test_quantize_matches_numpy(values: list[float], scale: float, bits: int, signed: bool) -> None:
    x = np.array(values, dtype=np.float32)
    lo, hi = integer_range(bits, signed)
    expected = np.clip(np.round(x / np.float32(scale)), lo, hi)
    out = quantize(torch.from_numpy(x), scale, bits, signed)
    assert out.dtype == torch.float32
    assert np.array_equal(out.numpy(), expected)
    fq = fake_quant(torch.from_numpy(x), scale, bits, signed)
    assert np.array_equal(fq.numpy(), (expected * np.float32(scale)).astype(np.float32))


def test_quantize_ste_gradient_inside_range_only() -> None:
    x = torch.tensor([-9.0, -8.0, -3.3, 0.0, 6.9, 7.0, 7.2, 20.0], requires_grad=True)
    quantize(x, 1.0, 4, True).sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 0, 0]
    x = torch.tensor([1.0, 3.0, 100.0], requires_grad=True)
    scale = torch.tensor(2.0, requires_grad=True)
    quantize(x, scale, 4, False).sum().backward()
    assert x.grad.tolist() == [0.5, 0.5, 0.0]
    # d(x / s)/ds = -x / s^2 inside the range, 0 where clamped
    assert scale.grad.item() == pytest.approx(-(1.0 + 3.0) / 4.0)


def test_quantize_rejects_integer_tensor() -> None:
    with pytest.raises(TypeError):
        quantize(torch.tensor([1, 2]), 1.0, 4, True)


def _reference_matmul(x: torch.Tensor, w_int: torch.Tensor) -> torch.Tensor:
    acc = x.to(torch.int64) @ w_int.T
    assert int(acc.abs().max()) < 2**24
    return acc.to(torch.float32)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 48),
    st.integers(1, 20),
    st.integers(2, 8),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_quant_linear_forward_is_scaled_integer_matmul(
    batch: int,
    fan_in: int,
    fan_out: int,
    bits: int,
    per_channel: bool,
    narrow: bool,
    seed: int,
) -> None:
    gen = torch.Generator().manual_seed(seed)
    layer = QuantLinear(
        fan_in, fan_out, weight_bits=bits, narrow_range=narrow, per_channel=per_channel
    )
    with torch.no_grad():
        layer.weight.copy_(torch.randn(fan_out, fan_in, generator=gen))
        layer.weight[0] = 0.0  # an all-zero row keeps a positive scale
    x = torch.randint(0, 32, (batch, fan_in), generator=gen).to(torch.float32)
    w_int, scale = layer.integer_weight()
    lo, hi = integer_range(bits, True, narrow)
    assert w_int.dtype == torch.int64 and int(w_int.min()) >= lo and int(w_int.max()) <= hi
    assert scale.shape == ((fan_out,) if per_channel else ())
    assert bool((scale > 0).all())
    assert not bool(w_int[0].any())
    expected = _reference_matmul(x, w_int) * scale
    for mode in (True, False):
        layer.train(mode)
        assert torch.equal(layer(x).detach(), expected)
    assert torch.equal(layer.accumulate(x).detach(), _reference_matmul(x, w_int))


def test_quant_linear_weight_grid_and_scale() -> None:
    layer = QuantLinear(4, 2, weight_bits=3, per_channel=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.3, -0.15, 0.05, 0.25], [-2.0, 1.1, 0.5, 0.2]]))
    w_int, scale = layer.integer_weight()
    # qmax = 3: row scales 0.1 and 2/3; 0.25/0.1 = 2.5 -> 2 (ties to even), -0.15/0.1 -> -2
    assert torch.allclose(scale, torch.tensor([0.1, 2.0 / 3.0]))
    assert w_int.tolist() == [[3, -2, 0, 2], [-3, 2, 1, 0]]
    tensor_layer = QuantLinear(4, 2, weight_bits=3, per_channel=False)
    tensor_layer.load_state_dict(layer.state_dict())
    w_int, scale = tensor_layer.integer_weight()
    assert scale.shape == () and float(scale) == pytest.approx(2.0 / 3.0)
    assert w_int.tolist() == [[0, 0, 0, 0], [-3, 2, 1, 0]]


def test_quant_linear_gradient_is_straight_through() -> None:
    layer = QuantLinear(3, 2, weight_bits=8)
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    c = torch.tensor([[1.0, -1.0], [2.0, 0.5]])
    (layer(x) * c).sum().backward()
    # the gradient of the effective weight W_int * scale: c^T x
    assert torch.allclose(layer.weight.grad, c.T @ x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weight_bits": 1},
        {"weight_bits": 9},
        {"weight_signed": False, "narrow_range": True},
        {"bias": True},
    ],
)
def test_quant_linear_rejects_unsupported(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        QuantLinear(4, 4, **kwargs)


def test_quant_linear_unsigned_weights() -> None:
    layer = QuantLinear(3, 1, weight_bits=4, weight_signed=False, narrow_range=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.5, -1.0, 0.5]]))
    w_int, scale = layer.integer_weight()
    assert w_int.tolist() == [[15, 0, 5]] and float(scale) == pytest.approx(0.1)


def test_quant_linear_refuses_inexact_accumulation() -> None:
    layer = QuantLinear(64, 4, weight_bits=8)
    with torch.no_grad():
        layer.weight.fill_(1.0)  # every integer weight is 127: sum per row 8128
    assert bool((layer(torch.full((1, 64), 2064.0)) > 0).all())  # 2064 * 8128 < 2^24
    with pytest.raises(ValueError, match="2\\^24"):
        layer(torch.full((1, 64), 2065.0))  # 2065 * 8128 > 2^24


def test_quant_act_outputs_integers_in_range_and_is_monotone() -> None:
    act = QuantAct(bits=3, signed=False, init_scale=0.5)
    x = torch.linspace(-3, 6, 2001)
    out = act(x).detach()
    assert torch.equal(out, out.round())
    assert out.min() == 0 and out.max() == 7
    assert bool((out[1:] >= out[:-1]).all())
    assert torch.equal(out, torch.clamp(torch.round(x / 0.5), 0, 7))
    signed = QuantAct(bits=4, signed=True, narrow_range=True, init_scale=1.0)
    assert signed(torch.tensor([-20.0, -7.5, 2.5, 20.0])).tolist() == [-7, -7, 2, 7]


def test_quant_act_data_init_and_scale_gradient() -> None:
    torch.manual_seed(0)
    act = QuantAct(bits=2)
    assert not bool(act.initialized)
    act.eval()
    act(torch.randn(8, 4))  # evaluation never initialises
    assert not bool(act.initialized) and act.scale.item() == 1.0
    act.train()
    x = torch.randn(64, 16)
    act(x)
    assert bool(act.initialized)
    expected = 2 * x.abs().mean() / np.sqrt(3)
    assert act.scale.item() == pytest.approx(float(expected), rel=1e-6)
    before = act.scale.item()
    act(10 * x)  # initialised once only
    assert act.scale.item() == before
    act(x).sum().backward()
    assert act.scale.grad is not None
    with torch.no_grad():
        act.scale.fill_(-1.0)
    act.clip_latent_()
    assert act.scale.item() == pytest.approx(act.min_scale, rel=1e-6)


def test_linked_input_scale_is_applied_after_the_matmul() -> None:
    torch.manual_seed(3)
    act = QuantAct(bits=4, init_scale=0.3)
    layer = QuantLinear(8, 5, weight_bits=4)
    layers = torch.nn.Sequential(act, layer)
    link_input_scales(layers)
    assert layer.input_quant is act
    x = torch.randn(6, 8) * 3
    q = act(x)
    w_int, scale = layer.integer_weight()
    expected = (_reference_matmul(q, w_int) * scale) * act.scale.detach()
    assert torch.equal(layers(x).detach(), expected)
    assert torch.equal(layer.scale_accumulator(layer.accumulate(q)).detach(), expected)
    # the scale gets gradient through the consumer's multiplication too (LSQ)
    layers(x).sum().backward()
    assert act.scale.grad is not None and float(act.scale.grad) != 0.0
    # sign / integer inputs clear the link
    relinked = torch.nn.Sequential(act, SignActivation(), layer)
    link_input_scales(relinked)
    assert layer.input_quant is None
    link_input_scales([IntegerInput(5, False), layer])
    assert layer.input_quant is None
    with pytest.raises(TypeError):
        layer.link_input(SignActivation())  # type: ignore[arg-type]


def test_linked_layer_state_dict_has_no_duplicates() -> None:
    layers = torch.nn.Sequential(QuantAct(4, init_scale=0.5), QuantLinear(4, 2))
    link_input_scales(layers)
    assert sorted(layers.state_dict()) == ["0.initialized", "0.scale", "1.weight", "1.weight_mask"]


def test_requant_hand_picked_ties_and_saturation() -> None:
    rq = Requant(multiplier=3, shift=2, bits=8, signed=True)  # x * 0.75
    acc = torch.tensor([2.0, 6.0, -2.0, -6.0, 1.0, -1.0, 3.0, 0.0, 10.0, -10.0])
    # 1.5 -> 2, 4.5 -> 4, -1.5 -> -2, -4.5 -> -4, 0.75 -> 1, -0.75 -> -1, 2.25 -> 2, 7.5 -> 8
    assert rq(acc).tolist() == [2, 4, -2, -4, 1, -1, 2, 0, 8, -8]
    sat = Requant(multiplier=3, shift=2, bits=4, signed=True)
    assert sat(torch.tensor([100.0, -100.0, 9.0, 10.0, -11.0])).tolist() == [7, -8, 7, 7, -8]
    unsigned = Requant(multiplier=1, shift=1, bits=3, signed=False)
    assert unsigned(torch.tensor([-5.0, 1.0, 3.0, 5.0, 7.0, 100.0])).tolist() == [0, 0, 2, 2, 4, 7]
    assert Requant(5, 0, 8, True)(torch.tensor([3.0, 30.0])).tolist() == [15, 127]
    assert rq.real_scale == 0.75


def test_requant_rejects_non_integers_and_bad_params() -> None:
    with pytest.raises(ValueError):
        Requant(3, 2)(torch.tensor([0.5]))
    with pytest.raises(ValueError):
        Requant(2**31, 2)(torch.tensor([2.0**40], dtype=torch.float64))
    for m, s in ((0, 1), (3, -1), (3, 63), (1.5, 2)):
        with pytest.raises(ValueError):
            Requant(m, s)  # type: ignore[arg-type]


def test_requant_gradient() -> None:
    acc = torch.tensor([4.0, 1000.0], requires_grad=True)
    Requant(3, 2, bits=8, signed=True)(acc).sum().backward()
    assert acc.grad.tolist() == [0.75, 0.0]


def _round_half_even(q: Fraction) -> int:
    return round(q)  # Python rounds Fractions half to even


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(-(2**24), 2**24), min_size=1, max_size=20),
    st.integers(1, 2**16 - 1),
    st.integers(0, 30),
    st.integers(2, 16),
    st.booleans(),
)
def test_requant_is_exact(acc: list[int], m: int, s: int, bits: int, signed: bool) -> None:
    lo, hi = integer_range(bits, signed)
    expected = [min(max(_round_half_even(Fraction(a * m, 2**s)), lo), hi) for a in acc]
    out = Requant(m, s, bits, signed)(torch.tensor(acc, dtype=torch.float64))
    assert out.to(torch.int64).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-9, 3e4), st.integers(2, 24))
def test_requant_params_error_bound(real: float, bits: int) -> None:
    if real >= 2**bits - 0.5:  # M would need more than `bits` bits even with shift 0
        with pytest.raises(ValueError):
            requant_params(real, bits)
        return
    m, s = requant_params(real, bits)
    assert 2 ** (bits - 1) <= m < 2**bits and 0 <= s <= 62
    err = abs(Fraction(m, 2**s) - Fraction(real))
    assert err <= Fraction(1, 2 ** (s + 1))
    assert err <= Fraction(real) / 2**bits


def test_requant_params_examples() -> None:
    assert requant_params(0.75, 16) == (49152, 16)
    assert requant_params(1.0, 8) == (128, 7)
    m, s = requant_params(1 / 3, 16)
    assert (m, s) == (43691, 17)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            requant_params(bad)
    with pytest.raises(ValueError):
        requant_params(1.0, 40)
