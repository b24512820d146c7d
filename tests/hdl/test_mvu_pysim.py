"""Engine checks in Amaranth's Python simulator: exact outputs and exact cycle counts.

These need no Verilator build, so hypothesis can sweep many foldings cheaply; the RTL
tests (test_mvu_rtl.py) repeat the essentials on the Verilator model.
"""

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pysim_driver import run_pysim

from codesign.ir import IntType
from codesign.mapping import divisors, pack_beats, unpack_beats
from hdl.lanes import BinaryWeightLane, XnorPopcountLane
from hdl.mvu import FILL_CYCLES, PERF_COUNTERS, MatrixVectorUnit, MVUConfig


def counters(perf: int) -> dict[str, int]:
    return {name: (perf >> (32 * k)) & 0xFFFFFFFF for k, name in enumerate(PERF_COUNTERS)}


def engine_case(mw, mh, pe, simd, family, frames, seed, with_thresholds):
    rng = np.random.default_rng(seed)
    w = rng.choice([-1, 1], (mh, mw))
    if family == "xnor":
        x = rng.choice([-1, 1], (frames, mw))
        in_type, lane, acc_range = IntType.bipolar(), XnorPopcountLane(), (0, mw)
        acc = (x @ w.T + mw) // 2
    else:
        in_type = IntType.int_(4) if seed % 2 else IntType.uint(3)
        x = rng.integers(in_type.min, in_type.max + 1, (frames, mw))
        lane = BinaryWeightLane(in_type.bits, in_type.signed)
        bound = mw * max(-in_type.min, in_type.max)
        acc_range, acc = (-bound, bound), x @ w.T
    thresholds = (rng.integers(acc_range[0], acc_range[1] + 2, (mh, 1))
                  if with_thresholds else None)
    out_type = IntType.uint(1) if with_thresholds else IntType.for_range(*acc_range)
    config = MVUConfig("layer", mw, mh, pe, simd, lane, IntType.bipolar().encode(w), acc_range,
                       thresholds, out_type.bits)
    expected = acc if thresholds is None else (acc >= thresholds[:, 0]).astype(np.int64)
    return config, pack_beats(x, in_type, simd), expected, out_type


@settings(max_examples=25, deadline=None)
@given(st.data(), st.integers(1, 12), st.integers(1, 12), st.sampled_from(["xnor", "bw"]),
       st.integers(1, 4), st.integers(0, 10**6), st.booleans())
def test_engine_exact_outputs_and_cycles(data, mw, mh, family, frames, seed, thresholds):
    pe = data.draw(st.sampled_from(divisors(mh)))
    simd = data.draw(st.sampled_from(divisors(mw)))
    config, beats, expected, out_type = engine_case(mw, mh, pe, simd, family, frames, seed,
                                                    thresholds)
    outs, perf, _ = run_pysim(MatrixVectorUnit(config), beats, frames * mh // pe)
    assert np.array_equal(unpack_beats(outs, out_type, pe, mh), expected)
    c = counters(perf)
    ideal = frames * (mh // pe) * (mw // simd)
    assert c["issue"] == ideal
    assert c["span"] == ideal + FILL_CYCLES        # full rate: no stall, exact fill
    assert c["stall_in"] == c["stall_out"] == 0
    assert c["lane_ops"] == ideal * pe * simd
    assert c["weight_reads"] == ideal
    assert c["in_beats"] == frames * (mw // simd)
    assert c["out_beats"] == frames * (mh // pe)
    nf = mh // pe
    assert c["ibuf_reads"] == (frames * (nf - 1) * (mw // simd) if nf > 1 else 0)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([(8, 6, 2, 4), (8, 6, 6, 8), (6, 4, 1, 1), (4, 8, 8, 2)]),
       st.integers(0, 10**6), st.floats(0.1, 0.9))
def test_backpressure_keeps_outputs_and_accounts_every_cycle(shape, seed, ready_rate):
    mw, mh, pe, simd = shape
    config, beats, expected, out_type = engine_case(mw, mh, pe, simd, "xnor", 3, seed, True)
    rng = random.Random(seed)
    pattern: dict[int, bool] = {}
    outs, perf, _ = run_pysim(MatrixVectorUnit(config), beats, 3 * mh // pe,
                              ready_pattern=lambda cyc: pattern.setdefault(
                                  cyc, rng.random() < ready_rate))
    assert np.array_equal(unpack_beats(outs, out_type, pe, mh), expected)
    c = counters(perf)
    assert c["issue"] == 3 * (mh // pe) * (mw // simd)
    assert c["span"] == c["issue"] + c["stall_in"] + c["stall_out"] + FILL_CYCLES
