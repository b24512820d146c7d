"""Fitting an exact Requantize to a staircase of thresholds: whenever a fit is returned it
equals the staircase on every accumulator value (checked exhaustively), and a staircase that
is itself a requantization always gets one."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.ir import requantize
from codesign.passes.requantize import fit_requantization


def staircase_thresholds(values: np.ndarray, lo: int, bias: int, count: int) -> np.ndarray:
    """[C, count] thresholds of monotone staircases given by values[c, a - lo]."""
    a = np.arange(lo, lo + values.shape[1])
    levels = bias + np.arange(1, count + 1)
    reached = values[:, :, None] >= levels[None, None, :]               # [C, A, L]
    first = np.where(reached.any(axis=1), reached.argmax(axis=1), values.shape[1])
    return a[0] + first


def assert_exact(fit, thresholds, lo, hi, bias):
    a = np.arange(lo, hi + 1)
    for c in range(thresholds.shape[0]):
        expected = bias + (a[:, None] >= thresholds[c][None, :]).sum(axis=1)
        got = requantize(a, int(fit.multiplier[c]), fit.shift, *fit.saturate,
                         offset=int(fit.offset[c]))
        assert np.array_equal(got, expected), c


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(0, 12), st.integers(-1000, 0), st.integers(1, 1000),
       st.sampled_from([(0, 255), (-128, 127), (0, 15), (-8, 7)]), st.integers(0, 10**6))
def test_a_requantization_staircase_is_recovered(channels, shift, lo, span, out, seed):
    rng = np.random.default_rng(seed)
    hi = lo + span
    mult = rng.integers(1, 1 << 12, channels)
    offset = rng.integers(-(1 << 16), 1 << 16, channels)
    a = np.arange(lo, hi + 1)
    values = np.stack([requantize(a, int(m), shift, *out, offset=int(o))
                       for m, o in zip(mult, offset, strict=True)])
    bias, count = out[0], out[1] - out[0]
    thresholds = staircase_thresholds(values, lo, bias, count)
    fit = fit_requantization(thresholds, lo, hi, bias)
    assert fit is not None
    assert_exact(fit, thresholds, lo, hi, bias)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.floats(1e-4, 0.5), st.floats(-300, 300), st.integers(0, 40),
       st.integers(0, 10**6))
def test_float_kernels_fit_exactly_or_not_at_all(channels, m, bias_steps, zero, seed):
    """torch-like float32 requantization: any fit returned is exact everywhere."""
    rng = np.random.default_rng(seed)
    lo, hi = -5000, 5000
    a = np.arange(lo, hi + 1)
    mults = (m * rng.uniform(0.5, 2, channels)).astype(np.float32)
    biases = np.float32(bias_steps) * rng.uniform(0.5, 2, channels).astype(np.float32)
    values = np.stack([np.clip(np.rint(((a.astype(np.float32) + b) * mm).astype(np.float32))
                               + zero, 0, 255).astype(np.int64)
                       for mm, b in zip(mults, biases, strict=True)])
    thresholds = staircase_thresholds(values, lo, 0, 255)
    fit = fit_requantization(thresholds, lo, hi, 0)
    if fit is not None:
        assert_exact(fit, thresholds, lo, hi, 0)
