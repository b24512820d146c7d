"""Layers: integer input grid, exact binary matmul, latent clipping, positive logit scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation


@pytest.mark.parametrize(
    ("bits", "signed", "lo", "hi"),
    [(5, False, 0, 31), (1, False, 0, 1), (8, False, 0, 255), (4, True, -8, 7), (2, True, -2, 1)],
)
def test_integer_input_range(bits: int, signed: bool, lo: int, hi: int) -> None:
    layer = IntegerInput(bits, signed)
    assert (layer.bits, layer.signed, layer.min_value, layer.max_value) == (bits, signed, lo, hi)
    assert all(type(v) is int for v in (layer.bits, layer.min_value, layer.max_value))


@pytest.mark.parametrize(("bits", "signed"), [(0, False), (1, True)])
def test_integer_input_rejects_too_few_bits(bits: int, signed: bool) -> None:
    with pytest.raises(ValueError):
        IntegerInput(bits, signed)


def test_integer_input_rounds_half_to_even_and_clamps() -> None:
    layer = IntegerInput(5, signed=False)
    x = torch.tensor([-3.0, -0.5, 0.4, 0.5, 1.5, 2.5, 3.5, 16.0, 30.5, 31.4, 31.5, 40.0])
    expected = [0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 4.0, 16.0, 30.0, 31.0, 31.0, 31.0]
    for mode in (True, False):
        layer.train(mode)
        assert layer(x).tolist() == expected
    signed = IntegerInput(4, signed=True)
    assert signed(torch.tensor([-9.0, -8.5, -7.5, -0.5, 6.5, 7.5])).tolist() == [
        -8.0,
        -8.0,
        -8.0,
        0.0,
        6.0,
        7.0,
    ]


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.integers(1, 30), elements=st.floats(-50, 50, width=32)))
def test_integer_input_matches_numpy(values: np.ndarray) -> None:
    out = IntegerInput(5, signed=True)(torch.from_numpy(values.copy())).numpy()
    assert np.array_equal(out, np.clip(np.round(values), -16, 15))


def test_integer_input_gradient_is_identity() -> None:
    x = torch.tensor([-4.0, 0.3, 2.5, 99.0], requires_grad=True)
    IntegerInput(5, signed=False)(x).backward(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert x.grad.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_binary_linear_has_no_bias_and_latent_init_in_range() -> None:
    layer = BinaryLinear(64, 32)
    assert isinstance(layer, torch.nn.Linear)
    assert layer.bias is None
    assert float(layer.weight.detach().abs().max()) <= 1.0


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 8),
    st.integers(1, 70),
    st.integers(1, 20),
    st.integers(0, 2**32 - 1),
)
def test_binary_linear_forward_is_exact_integer_matmul(
    batch: int, fan_in: int, fan_out: int, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    layer = BinaryLinear(fan_in, fan_out)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(fan_out, fan_in, generator=gen))
        layer.weight[0, 0] = 0.0  # exact zero latent weight must act as +1
    x = torch.randint(-16, 17, (batch, fan_in), generator=gen)
    w = np.where(layer.weight.detach().numpy() >= 0, 1, -1).astype(np.int64)
    expected = x.numpy().astype(np.int64) @ w.T
    out = layer(x.to(torch.float32))
    assert np.array_equal(out.detach().numpy().astype(np.int64), expected)
    assert np.array_equal(out.detach().numpy(), expected.astype(np.float32))


def test_binary_weight_is_detached_plus_minus_one() -> None:
    layer = BinaryLinear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, -0.0, -1e-8], [0.7, -0.7, 1.0]]))
    bw = layer.binary_weight()
    assert not bw.requires_grad
    assert bw.dtype == layer.weight.dtype
    assert bw.tolist() == [[1.0, 1.0, -1.0], [1.0, -1.0, 1.0]]
    bw.fill_(5.0)  # mutating the copy must not touch the latent weight
    assert float(layer.weight.detach().abs().max()) == 1.0


def test_clip_latent_and_gradient_window() -> None:
    layer = BinaryLinear(4, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-2.0, -1.0, 0.5, 1.5]]))
    layer(torch.ones(1, 4)).sum().backward()
    assert layer.weight.grad.tolist() == [[0.0, 1.0, 1.0, 0.0]]
    layer.clip_latent_()
    assert layer.weight.detach().tolist() == [[-1.0, -1.0, 0.5, 1.0]]


def test_sign_activation() -> None:
    out = SignActivation()(torch.tensor([[-0.1, 0.0, 2.0]]))
    assert out.tolist() == [[-1.0, 1.0, 1.0]]


def test_logit_scale_positive_and_keeps_argmax() -> None:
    layer = LogitScale(0.125)
    assert math.isclose(layer.scale, 0.125, rel_tol=1e-6)
    with torch.no_grad():
        layer.log_scale.fill_(-30.0)
    assert layer.scale > 0
    scores = torch.tensor([[3.0, -7.0, 5.0, 5.0], [-1.0, -1.0, -4.0, -2.0]])
    assert torch.equal(layer(scores).argmax(1), scores.argmax(1))
    layer(scores).sum().backward()
    assert layer.log_scale.grad is not None


@pytest.mark.parametrize("init", [0.0, -1.0, math.inf, math.nan])
def test_logit_scale_rejects_bad_init(init: float) -> None:
    with pytest.raises(ValueError):
        LogitScale(init)
