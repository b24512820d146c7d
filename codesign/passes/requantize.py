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
    """(M, O) with M >= 1 feasible at ``shift``, or None.

    g(M) = max(B_low - t_low M) - min(B_up - (t_up - 1) M - 1) is convex and piecewise
    linear in M (a maximum of lines minus a minimum of lines); O exists iff g(M) <= 0, so
    the feasible multipliers are an interval. An integer ternary search narrows to the
    minimum of g, keeping to the left of any feasible point, so the smallest feasible M is
    found.
    """
    low_v, low_t, up_v, up_t = constraints
    if low_v.size == 0 and up_v.size == 0:
        return 1, 0                     # a constant channel: the clamp gives it
    b_low, b_up = _level_bound(low_v, shift), _level_bound(up_v, shift)

    def lower(m: int) -> int:
        return int(np.max(b_low - low_t * m)) if b_low.size else -(1 << 62)

    def upper(m: int) -> int:
        return int(np.min(b_up - (up_t - 1) * m - 1)) if b_up.size else 1 << 62

    def gap(m: int) -> int:
        return lower(m) - upper(m)

    # a multiplier of 2^shift per level at most: every level in one accumulator step
    lo, hi = 1, min(MAX_MULTIPLIER, (int(np.ptp(np.concatenate([low_v, up_v]))) + 2) << shift)
    # gap is convex: an integer ternary search finds its minimum ...
    while hi - lo > 2:
        m1, m2 = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        g1, g2 = gap(m1), gap(m2)
        if g1 <= 0:
            hi = m1             # feasible: the smallest feasible M is at most m1
        elif g1 < g2:
            hi = m2 - 1
        elif g1 > g2:
            lo = m1 + 1
        else:
            lo, hi = m1, m2
    feasible = [m for m in range(lo, hi + 1) if gap(m) <= 0]
    if not feasible:
        return None
    best = feasible[0]
    return best, lower(best) if b_low.size else upper(best)


def _first_shift(thresholds: np.ndarray) -> int:
    """A shift below which no multiplier >= 1 can give the staircase's slope: 2^s must be at
    least the accumulator steps per output level."""
    spans = []
    for row in thresholds:
        inner = np.unique(row)
        if inner.size >= 2:
            spans.append((inner[-1] - inner[0]) / (inner.size - 1))
    step = max(spans) if spans else 1.0
    return max(0, int(np.floor(np.log2(max(step, 1.0)))) - 1)


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
    for shift in range(_first_shift(thresholds), MAX_SHIFT + 1):
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
