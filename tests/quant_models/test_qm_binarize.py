"""sign_ste: exact +1/-1 forward (sign(0) = +1) and the |x| <= 1 straight-through gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quant_models.binarize import sign_ste


def test_zero_maps_to_plus_one() -> None:
    out = sign_ste(torch.tensor([0.0, -0.0, 1e-45, -1e-45]))
    assert out.tolist() == [1.0, 1.0, 1.0, -1.0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_keeps_dtype(dtype: torch.dtype) -> None:
    x = torch.tensor([-2.0, -0.25, 0.0, 3.0], dtype=dtype)
    out = sign_ste(x)
    assert out.dtype == dtype
    assert out.tolist() == [-1.0, -1.0, 1.0, 1.0]


def test_rejects_integer_tensor() -> None:
    with pytest.raises(TypeError):
        sign_ste(torch.tensor([1, -1]))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.integers(1, 40), elements=st.floats(-4, 4, width=32)))
def test_forward_is_exact_sign(values: np.ndarray) -> None:
    out = sign_ste(torch.from_numpy(values.copy())).numpy()
    assert np.array_equal(out, np.where(values >= 0, 1.0, -1.0).astype(np.float32))


def test_gradient_mask_boundaries() -> None:
    one = torch.tensor(1.0)
    above = torch.nextafter(one, torch.tensor(2.0)).item()
    below = torch.nextafter(one, torch.tensor(0.0)).item()
    x = torch.tensor(
        [-3.0, -above, -1.0, -below, -0.5, 0.0, 0.5, below, 1.0, above, 3.0], requires_grad=True
    )
    upstream = torch.arange(1.0, 12.0)
    sign_ste(x).backward(upstream)
    expected_mask = torch.tensor([0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=torch.float32)
    assert torch.equal(x.grad, upstream * expected_mask)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=st.floats(-3, 3)))
def test_gradient_is_straight_through_inside_window(values: np.ndarray) -> None:
    x = torch.from_numpy(values.copy()).requires_grad_(True)
    sign_ste(x).sum().backward()
    assert np.array_equal(x.grad.numpy(), (np.abs(values) <= 1).astype(np.float64))
