"""Max-pool unit in Amaranth's Python simulator: exact beats and exact cycles.

The reference is torch.nn.functional.max_pool2d (floor mode) on the element values:
two's-complement or unsigned integers, or +-1 for bipolar codes (mapped back to 1 = +1).
"""

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from pysim_driver import drive as drive_stream

from codesign.arch.dataflow.folding import divisors
from hdl.pool import FILL_CYCLES, PERF_COUNTERS, MaxPool, PoolConfig, pool_cycles

MODES = ["unsigned", "signed", "bipolar"]


def counters(perf: int) -> dict[str, int]:
    return {name: (perf >> (32 * k)) & 0xFFFFFFFF for k, name in enumerate(PERF_COUNTERS)}


def drive(dut, in_beats, n_out, *, ready=None, valid=None, max_cycles=50_000):
    return drive_stream(dut, in_beats, n_out, PERF_COUNTERS, ready=ready, valid=valid,
                        max_cycles=max_cycles)


def pack(codes: np.ndarray, simd: int, bits: int) -> list[int]:
    """Codes in stream order -> beats of ``simd`` elements, element j at bits [j*b, (j+1)*b)."""
    flat = codes.reshape(-1, simd)
    return [sum(int(v) << (j * bits) for j, v in enumerate(row)) for row in flat.tolist()]


def config(name, ih, iw, channels, k, stride, simd, bits, mode):
    return PoolConfig(name, ih, iw, channels, k, stride, simd, 1 if mode == "bipolar" else bits,
                      mode == "signed", mode == "bipolar")


def values_and_codes(cfg: PoolConfig, rng, shape) -> tuple[np.ndarray, np.ndarray]:
    """Random element values and their storage codes."""
    bits = cfg.elem_bits
    if cfg.bipolar:
        values = rng.choice([-1, 1], shape)
        return values, (values > 0).astype(np.int64)
    if cfg.signed:
        values = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), shape)
        return values, values & ((1 << bits) - 1)
    values = rng.integers(0, 1 << bits, shape)
    return values, values


def run_case(cfg: PoolConfig, frames: int, seed: int, **drive_args):
    rng = np.random.default_rng(seed)
    x, codes = values_and_codes(cfg, rng, (frames, cfg.ih, cfg.iw, cfg.channels))
    pooled = F.max_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2).double(), cfg.k, cfg.stride)
    pooled = pooled.permute(0, 2, 3, 1).long().numpy()                # N OH OW C
    out_codes = ((pooled > 0).astype(np.int64) if cfg.bipolar else
                 pooled & ((1 << cfg.elem_bits) - 1))
    want = pack(out_codes, cfg.simd, cfg.elem_bits)
    outs, c = drive(MaxPool(cfg), pack(codes, cfg.simd, cfg.elem_bits), len(want),
                    **drive_args)
    assert outs == want
    assert c["out_beats"] == len(want) == frames * cfg.out_frame_beats
    assert c["in_beats"] == frames * cfg.in_frame_beats
    assert c["span"] == c["issue"] + c["stall_in"] + c["stall_out"] + FILL_CYCLES
    last_frame_tail = cfg.in_frame_beats - (pool_cycles(cfg, 1) - FILL_CYCLES)
    assert c["issue"] == c["in_beats"] - last_frame_tail
    k1 = cfg.k - 1
    assert c["buffer_reads"] == k1 * c["out_beats"]
    hemits = frames * cfg.ih * cfg.ow * cfg.folds
    assert c["compares"] == k1 * cfg.simd * (hemits + c["out_beats"])
    kept = sum(cfg.kept(y, cfg.oh) for y in range(cfg.ih))
    assert c["buffer_writes"] == (frames * kept * cfg.ow * cfg.folds if k1 else 0)
    return c


@st.composite
def pool_configs(draw):
    k = draw(st.integers(1, 4))
    channels = draw(st.integers(1, 6))
    return config("pool", draw(st.integers(k, 9)), draw(st.integers(k, 9)), channels, k,
                  draw(st.integers(1, 3)), draw(st.sampled_from(divisors(channels))),
                  draw(st.integers(1, 6)), draw(st.sampled_from(MODES)))


@settings(max_examples=40, deadline=None)
@given(pool_configs(), st.integers(1, 3), st.integers(0, 10**6))
def test_pool_matches_torch_with_exact_cycles(cfg, frames, seed):
    c = run_case(cfg, frames, seed)
    assert c["span"] == pool_cycles(cfg, frames)
    assert c["stall_in"] == c["stall_out"] == 0


@settings(max_examples=25, deadline=None)
@given(pool_configs(), st.integers(1, 3), st.integers(0, 10**6), st.floats(0.2, 1.0),
       st.floats(0.2, 1.0))
def test_backpressure_and_late_input_keep_beats_and_account_every_cycle(
        cfg, frames, seed, ready_rate, valid_rate):
    rng = random.Random(seed)
    ready: dict[int, bool] = {}
    valid: dict[int, bool] = {}
    run_case(cfg, frames, seed,
             ready=lambda cyc: ready.setdefault(cyc, rng.random() < ready_rate),
             valid=lambda cyc: valid.setdefault(cyc, rng.random() < valid_rate))


def test_cnv_pool_28_to_14_bipolar():
    # FINN CNV's first pool, on 4 of its 64 channels: one 1-bit row buffer of 14*2 words.
    cfg = config("cnv_pool1", 28, 28, 4, 2, 2, 2, 1, "bipolar")
    assert (cfg.oh, cfg.ow, cfg.buffer_words) == (14, 14, 28)
    c = run_case(cfg, 1, seed=5)
    # every beat at full rate; the last one closes the last window: 28*28*2 + FILL
    assert c["span"] == pool_cycles(cfg, 1) == 28 * 28 * 2 + FILL_CYCLES


def test_cnv_pool_10_to_5_two_frames():
    cfg = config("cnv_pool2", 10, 10, 8, 2, 2, 4, 1, "bipolar")
    c = run_case(cfg, 2, seed=9)
    assert c["span"] == pool_cycles(cfg, 2) == 2 * 10 * 10 * 2 + FILL_CYCLES


def test_floor_mode_drops_trailing_rows_and_columns():
    # 7x7, k=2, s=2 -> 3x3: row 6 and column 6 are read and dropped; the last output comes
    # with row 5, column 5, so the span stops there: (5*7 + 6)*C/SIMD + FILL.
    cfg = config("odd", 7, 7, 3, 2, 2, 1, 4, "signed")
    assert (cfg.oh, cfg.ow) == (3, 3)
    c = run_case(cfg, 2, seed=11)
    assert pool_cycles(cfg, 1) == (5 * 7 + 6) * 3 + FILL_CYCLES
    assert c["span"] == pool_cycles(cfg, 2) == 7 * 7 * 3 + (5 * 7 + 6) * 3 + FILL_CYCLES


def test_overlapping_3x3_stride_2_window():
    cfg = config("overlap", 9, 9, 2, 3, 2, 2, 5, "unsigned")
    assert (cfg.oh, cfg.ow, cfg.buffer_words) == (4, 4, 8)
    c = run_case(cfg, 2, seed=13)
    assert c["span"] == pool_cycles(cfg, 2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(ih=2), "smaller than"),
    (dict(iw=1), "smaller than"),
    (dict(channels=6, simd=4), "does not divide"),
    (dict(k=0), "k=0"),
    (dict(stride=0), "stride=0"),
    (dict(bipolar=True), "bipolar"),
    (dict(bipolar=True, elem_bits=1, signed=True), "bipolar"),
])
def test_rejects_bad_configs(kwargs, message):
    base = dict(name="bad", ih=6, iw=6, channels=4, k=3, stride=2, simd=2, elem_bits=3,
                signed=False, bipolar=False)
    with pytest.raises(ValueError, match=message):
        PoolConfig(**{**base, **kwargs})
