"""An exact fixed-point requantization for a staircase of integer thresholds, when one exists.

A source that computes out = clamp(round(acc * m + b) + z) in floating point (torch's int8
kernels) has, per channel, an integer staircase: 2^B - 1 thresholds found by evaluating that
very arithmetic (:mod:`codesign.passes.streamline`). Hardware does it far more cheaply as
``Requantize``: clamp(round_half_even((acc * M[c] + O[c]) / 2^s)). This module finds integer
M, O and a shift s for which the requantization equals the staircase on *every* accumulator
value, or reports that none exists (float rounding can bend a staircase off every straight
line; the thresholds then stay).

For a shift s, output level v is reached at accumulator t_v exactly when
(t_v - 1) * M + O < B_v <= t_v * M + O, with B_v the smallest N of round_half_even(N / 2^s)
>= v. Every pair of such bounds is one linear inequality in M, so the feasible multipliers
are an interval computed exactly in integers; the smallest M of the smallest feasible shift is
taken and the result checked against the staircase at every threshold and both ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.ir import requantize

MAX_SHIFT = 40
MAX_MULTIPLIER = (1 << 31) - 1


@dataclass(frozen=True)
class Requantization:
    """Per-channel multipliers and offsets, one shift, the clamp range."""

    multiplier: np.ndarray
    offset: np.ndarray
    shift: int
    saturate: tuple[int, int]


def _level_bound(v: np.ndarray, shift: int) -> np.ndarray:
    """Smallest N with round_half_even(N / 2^shift) >= v (ties go to the even level)."""
    v = np.asarray(v, dtype=np.int64)
    if shift == 0:
        return v
    return (2 * v - 1) * (1 << (shift - 1)) + (v & 1)


def _channel_constraints(thresholds: np.ndarray, lo: int, hi: int, bias: int,
                         sat: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                        np.ndarray]:
    """(levels, t) of the lower bounds O >= B_v - t M and of the upper bounds
    O <= B_v - (t - 1) M - 1 of one channel."""
    counts = np.arange(1, thresholds.size + 1)
    v_lo = bias + int(np.count_nonzero(thresholds <= lo))
    v_hi = bias + int(np.count_nonzero(thresholds <= hi))
    inside = (thresholds > lo) & (thresholds <= hi)
    levels = bias + counts[inside]
    t = thresholds[inside].astype(np.int64)
    low_v, low_t, up_v, up_t = [levels], [t], [levels], [t]
    if v_lo > sat[0]:          # the bottom of the range must already give v_lo
        low_v.append(np.array([v_lo]))
        low_t.append(np.array([lo]))
    if v_hi < sat[1]:          # ... and the top no more than v_hi
        up_v.append(np.array([v_hi + 1]))
        up_t.append(np.array([hi + 1]))
    return (np.concatenate(low_v), np.concatenate(low_t), np.concatenate(up_v),
            np.concatenate(up_t))


def _fit_channel(constraints, shift: int) -> tuple[int, int] | None:
    """(M, O) of the smallest feasible M >= 1 at ``shift``, or None."""
    low_v, low_t, up_v, up_t = constraints
    if low_v.size == 0 and up_v.size == 0:
        return 1, 0                     # a constant channel: the clamp gives it
    b_low, b_up = _level_bound(low_v, shift), _level_bound(up_v, shift)
    # every pair: M * (t_up - 1 - t_low) <= B_up - B_low - 1
    d = (up_t[None, :] - 1) - low_t[:, None]
    r = b_up[None, :] - b_low[:, None] - 1
    if np.any((d == 0) & (r < 0)):
        return None
    m_min, m_max = 1, MAX_MULTIPLIER
    pos, neg = d > 0, d < 0
    if np.any(pos):
        m_max = min(m_max, int(np.min(np.floor_divide(r[pos], d[pos]))))
    if np.any(neg):
        m_min = max(m_min, int(np.max(-np.floor_divide(r[neg], -d[neg]))))   # ceil(r / d)
    if m_min > m_max:
        return None
    m = m_min
    offset = int(np.max(b_low - low_t * m)) if b_low.size else int(np.min(b_up - (up_t - 1) * m
                                                                          - 1))
    return m, offset


def _staircase(thresholds: np.ndarray, a: np.ndarray, bias: int) -> np.ndarray:
    return bias + (a[:, None] >= thresholds[None, :]).sum(axis=1)


def fit_requantization(thresholds: np.ndarray, lo: int, hi: int, bias: int
                       ) -> Requantization | None:
    """A requantization equal to out = bias + #{k: acc >= thresholds[c, k]} for every
    accumulator in [lo, hi] and every channel, or None when no shift up to MAX_SHIFT has
    one."""
    thresholds = np.asarray(thresholds, dtype=np.int64)
    channels = thresholds.shape[0]
    v_lo = bias + (thresholds <= lo).sum(axis=1)
    v_hi = bias + (thresholds <= hi).sum(axis=1)
    sat = (int(v_lo.min()), int(v_hi.max()))
    per_channel = [_channel_constraints(thresholds[c], lo, hi, bias, sat)
                   for c in range(channels)]
    for shift in range(MAX_SHIFT + 1):
        fits = []
        for constraints in per_channel:
            fit = _fit_channel(constraints, shift)
            if fit is None:
                break
            fits.append(fit)
        if len(fits) < channels:
            continue
        multiplier = np.array([m for m, _ in fits], dtype=np.int64)
        offset = np.array([o for _, o in fits], dtype=np.int64)
        result = Requantization(multiplier, offset, shift, sat)
        if _reproduces(result, thresholds, lo, hi, bias):
            return result
    return None


def _reproduces(fit: Requantization, thresholds: np.ndarray, lo: int, hi: int, bias: int
                ) -> bool:
    """The requantization equals the staircase at both ends and on both sides of every
    threshold of every channel (both are monotone, so this is everywhere)."""
    for c in range(thresholds.shape[0]):
        probes = np.unique(np.clip(np.concatenate(
            [[lo, hi], thresholds[c] - 1, thresholds[c]]), lo, hi))
        got = requantize(probes, int(fit.multiplier[c]), fit.shift, *fit.saturate,
                         offset=int(fit.offset[c]))
        if not np.array_equal(got, _staircase(thresholds[c], probes, bias)):
            return False
    return True
