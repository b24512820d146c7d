"""Sliding-window generator in Amaranth's Python simulator: exact beats and exact cycles.

The reference is torch: pad the integer codes with the pad code, cut K x K patches with
Tensor.unfold and reorder them to (ky, kx, c), the column order of a weight matrix reshaped
to [Cout, KH*KW*Cin].
"""

import random
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from pysim_driver import drive as drive_stream

from codesign.arch.dataflow.folding import divisors
from hdl.window import FILL_CYCLES, PERF_COUNTERS, SlidingWindow, WindowConfig, window_cycles

CYCLE_BUDGET = 2500   # keeps each simulated example well under a second


def counters(perf: int) -> dict[str, int]:
    return {name: (perf >> (32 * k)) & 0xFFFFFFFF for k, name in enumerate(PERF_COUNTERS)}


def drive(dut, in_beats, n_out, *, ready=None, valid=None, max_cycles=50_000):
    return drive_stream(dut, in_beats, n_out, PERF_COUNTERS, ready=ready, valid=valid,
                        max_cycles=max_cycles)


def pack(codes: np.ndarray, simd: int, bits: int) -> list[int]:
    """Rows of codes -> beats of ``simd`` elements, element j at bits [j*bits, (j+1)*bits)."""
    flat = codes.reshape(-1, simd)
    return [sum(int(v) << (j * bits) for j, v in enumerate(row)) for row in flat.tolist()]


def expected_windows(cfg: WindowConfig, x: np.ndarray) -> np.ndarray:
    """x: codes [N, H, W, C] -> window elements [N*OH*OW*KH*KW*C] in stream order."""
    t = torch.from_numpy(x).permute(0, 3, 1, 2)                       # N C H W
    t = F.pad(t, (cfg.pad_left, cfg.pad_right, cfg.pad_top, cfg.pad_bottom),
              value=cfg.pad_code)
    patches = t.unfold(2, cfg.kh, cfg.stride_h).unfold(3, cfg.kw, cfg.stride_w)
    # N C OH OW KH KW -> N OH OW KH KW C
    return patches.permute(0, 2, 3, 4, 5, 1).reshape(-1).numpy()


def run_case(cfg: WindowConfig, frames: int, seed: int, **drive_args):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1 << cfg.elem_bits, (frames, cfg.ih, cfg.iw, cfg.channels))
    want = pack(expected_windows(cfg, x), cfg.simd, cfg.elem_bits)
    outs, c = drive(SlidingWindow(cfg), pack(x, cfg.simd, cfg.elem_bits), len(want),
                    **drive_args)
    assert outs == want
    assert c["issue"] == c["out_beats"] == len(want) == frames * cfg.out_frame_beats
    assert c["in_beats"] == c["buffer_writes"] == frames * cfg.in_frame_beats
    assert c["buffer_reads"] + c["pad_beats"] == c["issue"]
    assert c["span"] == c["issue"] + c["stall_in"] + c["stall_out"] + FILL_CYCLES
    return c, want


@st.composite
def window_configs(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pads = [draw(st.integers(0, kernel - 1)) for kernel in (kh, kw, kh, kw)]
    ih = draw(st.integers(max(1, kh - pads[0] - pads[2]), 9))
    iw = draw(st.integers(max(1, kw - pads[1] - pads[3]), 9))
    channels = draw(st.integers(1, 6))
    simd = draw(st.sampled_from(divisors(channels)))
    stride_h, stride_w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    bits = draw(st.integers(1, 6))
    cfg = WindowConfig("swg", ih, iw, channels, kh, kw, stride_h, stride_w, *pads, simd, bits,
                       draw(st.integers(0, (1 << bits) - 1)))
    # the default ring, or a larger one (fewer frame-boundary bubbles: other cycle counts)
    extra = draw(st.sampled_from([None, 1, 3]))
    return cfg if extra is None else replace(cfg, buffer_rows=cfg.rows + extra)


def affordable_frames(cfg: WindowConfig, frames: int) -> int:
    """Fewer frames when a large kernel on a large map would make the example slow."""
    while frames > 1 and window_cycles(cfg, frames) > CYCLE_BUDGET:
        frames -= 1
    return frames


@settings(max_examples=40, deadline=None)
@given(window_configs(), st.integers(1, 3), st.integers(0, 10**6))
def test_windows_match_torch_with_exact_cycles(cfg, frames, seed):
    frames = affordable_frames(cfg, frames)
    c, _ = run_case(cfg, frames, seed)
    assert c["span"] == window_cycles(cfg, frames)
    assert c["stall_out"] == 0
    if frames == 1 and cfg.out_row_beats >= cfg.stride_h * cfg.row_words:
        first_rows = min(cfg.kh - cfg.pad_top, cfg.ih)
        assert c["span"] == (first_rows * cfg.row_words + cfg.out_frame_beats + FILL_CYCLES)


@settings(max_examples=25, deadline=None)
@given(window_configs(), st.integers(1, 3), st.integers(0, 10**6), st.floats(0.2, 1.0),
       st.floats(0.2, 1.0))
def test_backpressure_and_late_input_keep_beats_and_account_every_cycle(
        cfg, frames, seed, ready_rate, valid_rate):
    frames = affordable_frames(cfg, frames)
    rng = random.Random(seed)
    ready: dict[int, bool] = {}
    valid: dict[int, bool] = {}
    run_case(cfg, frames, seed,
             ready=lambda cyc: ready.setdefault(cyc, rng.random() < ready_rate),
             valid=lambda cyc: valid.setdefault(cyc, rng.random() < valid_rate))


def cnv(name, ih, c, k, stride=1, pad=0, simd=None, bits=1, rows=None):
    return WindowConfig(name, ih, ih, c, k, k, stride, stride, pad, pad, pad, pad,
                        simd or c, bits, 1 if bits == 1 else 0, rows)


def test_cnv_3x3_on_10x10x8_cycles_by_hand():
    # B = 10 beats per row, Q = 8 windows * 9 beats = 72 per output row, R = KH + SH = 4.
    # Rows 0..2 are in at cycle 30; then 8 output rows back to back (the writer keeps ahead):
    # 30 + 8*72 + FILL = 607.
    cfg = cnv("cnv_conv2", 10, 8, 3)
    assert cfg.rows == 4 and cfg.buffer_words == 40
    assert window_cycles(cfg, 1) == 607
    # Frame 2: while the last output row (rows 7..9) is emitted the ring (lo + R = 11) takes
    # only the next frame's row 0; its rows 1 and 2 follow it: a 20-cycle bubble.
    assert window_cycles(cfg, 2) == 607 + 20 + 8 * 72
    # A 6-row ring loads all three during the last output row: no bubble.
    assert window_cycles(cnv("cnv_conv2", 10, 8, 3, rows=6), 2) == 607 + 8 * 72
    c, _ = run_case(cfg, 2, seed=7)
    assert c["span"] == 607 + 20 + 8 * 72
    assert c["stall_in"] == 30 + 20 and c["pad_beats"] == 0


def test_padded_stride2_window_by_hand():
    # 3x3 stride 2 pad 1 on 8x8x4, SIMD 2: OH = OW = 4, R = KH + SH = 5 rows of 16 words.
    cfg = cnv("down", 8, 4, 3, stride=2, pad=1, simd=2, bits=4)
    assert (cfg.oh, cfg.ow, cfg.rows, cfg.buffer_words) == (4, 4, 5, 80)
    c, want = run_case(cfg, 2, seed=3)
    assert c["span"] == window_cycles(cfg, 2)
    # real kernel rows per output row: 2, 3, 3, 3 (likewise columns): 11 * 11 of the
    # 16 * 9 window positions are in the image, per frame and channel fold
    assert c["pad_beats"] == 2 * 2 * (16 * 9 - 11 * 11)


def test_pointwise_window_is_the_identity_stream():
    # 1x1 kernel, stride 1: the output stream equals the input stream, one row behind.
    cfg = cnv("pw", 5, 6, 1, simd=3, bits=3)
    c, _ = run_case(cfg, 3, seed=1)
    b = 5 * 2
    assert window_cycles(cfg, 3) == 3 * 5 * b + b + FILL_CYCLES == c["span"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(ih=2, pad_top=0, pad_bottom=0), "smaller than"),
    (dict(iw=1, pad_left=1, pad_right=0), "smaller than"),
    (dict(channels=6, simd=4), "does not divide"),
    (dict(pad_top=3), "smaller than the kernel"),
    (dict(pad_right=4), "smaller than the kernel"),
    (dict(stride_h=0), "stride_h"),
    (dict(pad_code=8), "does not fit"),
    (dict(buffer_rows=2), "buffer_rows"),
])
def test_rejects_bad_configs(kwargs, message):
    base = dict(name="bad", ih=6, iw=6, channels=4, kh=3, kw=3, stride_h=1, stride_w=1,
                pad_top=1, pad_left=1, pad_bottom=1, pad_right=1, simd=2, elem_bits=3,
                pad_code=0)
    with pytest.raises(ValueError, match=message):
        WindowConfig(**{**base, **kwargs})
