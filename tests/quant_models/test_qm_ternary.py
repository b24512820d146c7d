"""Ternary weights: TWN threshold and scale, TTQ integer levels and gradients, exactness."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_models.fixed_point import QuantAct, link_input_scales
from quant_models.ternary import TernaryLinear, ternarize_twn, twn_threshold


def test_twn_threshold_and_alpha_by_hand() -> None:
    w = torch.tensor([[1.0, -0.2, 0.5], [-2.0, 0.1, 0.0]])
    # mean|w| = 3.8 / 6, Delta = 0.7 * 3.8 / 6 = 0.44333...
    assert twn_threshold(w).dtype == torch.float64
    assert float(twn_threshold(w)) == pytest.approx(0.7 * 3.8 / 6, rel=1e-7)
    codes, alpha = ternarize_twn(w)
    assert codes.dtype == w.dtype
    assert codes.tolist() == [[1, 0, 1], [-1, 0, 0]]
    assert alpha.shape == () and alpha.dtype == torch.float32
    assert float(alpha) == pytest.approx((1.0 + 0.5 + 2.0) / 3, rel=1e-7)


def test_twn_threshold_is_strict_and_masked() -> None:
    # mean|w| = 1, Delta = 0.7: |w| == 0.7 exactly stays 0 (strict comparison, in float64)
    w = torch.tensor([0.7, -0.7, 1.0, -1.6], dtype=torch.float64)
    codes, alpha = ternarize_twn(w)
    assert codes.tolist() == [0, 0, 1, -1]
    assert float(alpha) == pytest.approx(1.3)
    # masking the big weight out raises the threshold of the others: mean(0.7, 0.7, 1) * 0.7
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0])
    codes, alpha = ternarize_twn(w, mask)
    assert codes.tolist() == [1, -1, 1, 0]
    assert float(alpha) == pytest.approx(0.8)


def test_twn_degenerate_tensor_has_unit_alpha() -> None:
    codes, alpha = ternarize_twn(torch.zeros(3, 4))
    assert not codes.any() and float(alpha) == 1.0
    codes, alpha = ternarize_twn(torch.ones(2, 2), mask=torch.zeros(2, 2))
    assert not codes.any() and float(alpha) == 1.0


def _reference(x: torch.Tensor, w_int: torch.Tensor, scale: float) -> torch.Tensor:
    acc = x.to(torch.int64) @ w_int.T
    return acc.to(torch.float32) * torch.tensor(scale, dtype=torch.float32)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 64),
    st.integers(1, 24),
    st.sampled_from(["twn", "ttq"]),
    st.integers(0, 6),
    st.integers(0, 2**32 - 1),
)
def test_ternary_forward_is_scaled_integer_matmul(
    batch: int, fan_in: int, fan_out: int, method: str, frac_bits: int, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    layer = TernaryLinear(fan_in, fan_out, method=method, ratio_frac_bits=frac_bits)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(fan_out, fan_in, generator=gen))
        if method == "ttq":
            layer.wp.fill_(float(torch.rand((), generator=gen)) + 0.05)
            layer.wn.fill_(float(torch.rand((), generator=gen)) * 2 + 0.01)
    x = torch.randint(-16, 32, (batch, fan_in), generator=gen).to(torch.float32)
    w_int, scale = layer.integer_weight()
    assert isinstance(scale, float) and scale > 0
    codes = layer.ternary_codes()
    assert set(codes.unique().tolist()) <= {-1, 0, 1}
    if method == "twn":
        assert torch.equal(w_int, codes)
    else:
        r = layer.ratio_code()
        assert 1 <= r <= 2 ** (frac_bits + 2)
        assert torch.equal(w_int, torch.where(codes > 0, 2**frac_bits, 0) - (codes < 0) * r)
        assert scale == float(layer.wp.detach()) / 2**frac_bits
    for mode in (True, False):
        layer.train(mode)
        assert torch.equal(layer(x).detach(), _reference(x, w_int, scale))


def test_ttq_levels_and_ratio_rounding() -> None:
    layer = TernaryLinear(3, 1, method="ttq", ratio_frac_bits=4)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0, 0.1]]))
        layer.wp.fill_(0.5)
        layer.wn.fill_(0.3)  # ratio 0.6 -> 9.6 / 16 -> R = 10
    w_int, scale = layer.integer_weight()
    assert w_int.tolist() == [[16, -10, 0]] and scale == 0.5 / 16
    assert layer.ratio_code() == 10
    for wn, expected in ((8.5 / 16, 8), (9.5 / 16, 10), (0.0001, 1), (10.0, 64)):
        with torch.no_grad():
            layer.wp.fill_(1.0)
            layer.wn.fill_(wn)
        assert layer.ratio_code() == expected  # ties to even, clamped to [1, 2^(f+2)]
        assert layer.integer_weight()[0].tolist() == [[16, -expected, 0]]


def test_ttq_gradients_follow_the_paper() -> None:
    layer = TernaryLinear(4, 2, method="ttq", ratio_frac_bits=4)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0, 0.05, 0.8], [-0.9, 0.02, 1.2, -1.1]]))
        layer.wp.fill_(0.5)
        layer.wn.fill_(0.25)
    x = torch.tensor([[1.0, 2.0, 3.0, -1.0], [0.0, 1.0, -2.0, 4.0]])
    c = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    (layer(x) * c).sum().backward()
    g = c.T @ x  # gradient of the effective weight W_t
    codes = layer.ternary_codes()
    pos, neg = codes > 0, codes < 0
    assert torch.allclose(layer.wp.grad, g[pos].sum())
    assert torch.allclose(layer.wn.grad, -g[neg].sum())
    factor = torch.where(pos, 0.5, torch.where(neg, 0.25, 1.0))
    assert torch.allclose(layer.weight.grad, g * factor)


def test_ttq_clip_keeps_magnitudes_positive_and_init_matches_twn() -> None:
    torch.manual_seed(0)
    layer = TernaryLinear(16, 8, method="ttq")
    _, alpha = ternarize_twn(layer.weight)
    assert layer.wp.item() == alpha.item() == layer.wn.item()
    with torch.no_grad():
        layer.wp.fill_(-1.0)
        layer.wn.fill_(0.0)
    layer.clip_latent_()
    assert layer.wp.item() > 0 and layer.wn.item() > 0


def test_twn_gradient_is_that_of_the_effective_weight() -> None:
    layer = TernaryLinear(3, 2, method="twn")
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -0.1, -1.0], [0.5, 0.7, -0.02]]))
    x = torch.tensor([[2.0, 1.0, 0.0]])
    c = torch.tensor([[3.0, -1.0]])
    (layer(x) * c).sum().backward()
    assert torch.allclose(layer.weight.grad, c.T @ x)


def test_ternary_with_input_scale() -> None:
    torch.manual_seed(2)
    act = QuantAct(2, init_scale=0.7)
    layer = TernaryLinear(10, 4)
    seq = torch.nn.Sequential(act, layer)
    link_input_scales(seq)
    x = torch.randn(5, 10)
    q = act(x)
    w_int, scale = layer.integer_weight()
    expected = _reference(q, w_int, scale) * act.scale.detach()
    assert torch.equal(seq(x).detach(), expected)


def test_ternary_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TernaryLinear(4, 4, method="bwn")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TernaryLinear(4, 4, method="ttq", ratio_frac_bits=9)
    with pytest.raises(ValueError):
        TernaryLinear(4, 4).ratio_code()
    assert TernaryLinear(4, 4).bias is None
