"""Every counter of an isolated window or pool stage equals the analytical prediction.

The stages are simulated alone at full rate (input always offered, output always taken) in
Amaranth's Python simulator, from the configuration the flow generates for them
(their stage's ``hdl_config``), and every counter their hardware reports
(hdl.window.PERF_COUNTERS, hdl.pool.PERF_COUNTERS) must equal the stage's own prediction
(``predict_counters``) exactly.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pysim_driver import drive

from codesign import ir
from codesign.arch.dataflow.folding import divisors
from codesign.arch.stages import PoolStage, WindowStage
from hdl.pool import PERF_COUNTERS as POOL_COUNTERS
from hdl.pool import MaxPool
from hdl.window import PERF_COUNTERS as WINDOW_COUNTERS
from hdl.window import SlidingWindow

CYCLE_BUDGET = 1500   # keeps each simulated example to a fraction of a second


def element_type(draw) -> ir.IntType:
    kind = draw(st.sampled_from(["uint", "int", "bipolar"]))
    if kind == "bipolar":
        return ir.IntType.bipolar()
    bits = draw(st.integers(2, 4))
    return ir.IntType.uint(bits) if kind == "uint" else ir.IntType.int_(bits)


def random_beats(shape: tuple[int, ...], dtype: ir.IntType, simd: int, frames: int,
                 seed: int) -> list[int]:
    """Random frames of ``dtype`` values, packed SIMD elements per beat."""
    rng = np.random.default_rng(seed)
    values = (rng.choice([-1, 1], (frames, *shape)) if dtype.kind == "bipolar"
              else rng.integers(dtype.min, dtype.max + 1, (frames, *shape)))
    codes = dtype.encode(values).reshape(-1, simd)
    return [sum(int(v) << (j * dtype.bits) for j, v in enumerate(row)) for row in codes.tolist()]


def window_stage(h, w, c, kernel, stride, padding, simd, dtype, pad_value) -> WindowStage:
    node = ir.SlidingWindow("swg", ["x"], ["y"], kernel=kernel, stride=stride, padding=padding,
                            pad_value=pad_value)
    return WindowStage("swg", node, dtype, (h, w, c), simd)


def pool_stage(h, w, c, k, stride, simd, dtype) -> PoolStage:
    node = ir.MaxPool("pool", ["x"], ["y"], kernel=k, stride=stride)
    return PoolStage("pool", node, dtype, (h, w, c), simd)


def measured_window(stage: WindowStage, frames: int, seed: int) -> dict[str, int]:
    config = stage.hdl_config
    beats = random_beats(stage.in_shape, stage.input_type, stage.simd, frames, seed)
    _, counters = drive(SlidingWindow(config), beats, frames * config.out_frame_beats,
                        WINDOW_COUNTERS)
    return counters


def measured_pool(stage: PoolStage, frames: int, seed: int) -> dict[str, int]:
    config = stage.hdl_config
    beats = random_beats(stage.in_shape, stage.input_type, stage.simd, frames, seed)
    _, counters = drive(MaxPool(config), beats, frames * config.out_frame_beats, POOL_COUNTERS)
    return counters


@st.composite
def windows(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    top, left, bottom, right = (draw(st.integers(0, k - 1)) for k in (kh, kw, kh, kw))
    h = draw(st.integers(max(1, kh - top - bottom), 6))
    w = draw(st.integers(max(1, kw - left - right), 6))
    c = draw(st.integers(1, 4))
    dtype = element_type(draw)
    pad_value = 1 if dtype.kind == "bipolar" else draw(st.integers(dtype.min, dtype.max))
    return window_stage(h, w, c, (kh, kw), (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                        (top, left, bottom, right), draw(st.sampled_from(divisors(c))), dtype,
                        pad_value)


@st.composite
def pools(draw):
    k = draw(st.integers(1, 3))
    c = draw(st.integers(1, 4))
    return pool_stage(draw(st.integers(k, 7)), draw(st.integers(k, 7)), c, k,
                      draw(st.integers(1, 3)), draw(st.sampled_from(divisors(c))),
                      element_type(draw))


def affordable(predicted_span, frames: int) -> int:
    """Fewer frames when the example would simulate too many cycles."""
    while frames > 1 and predicted_span(frames) > CYCLE_BUDGET:
        frames -= 1
    return frames


@settings(max_examples=30, deadline=None)
@given(windows(), st.integers(1, 3), st.integers(0, 10**6))
def test_every_window_counter_is_predicted(stage, frames, seed):
    frames = affordable(lambda n: stage.predict_counters(n)["span"], frames)
    predicted = stage.predict_counters(frames)
    assert set(predicted) == set(WINDOW_COUNTERS)
    assert measured_window(stage, frames, seed) == predicted


@settings(max_examples=30, deadline=None)
@given(pools(), st.integers(1, 3), st.integers(0, 10**6))
def test_every_pool_counter_is_predicted(stage, frames, seed):
    frames = affordable(lambda n: stage.predict_counters(n)["span"], frames)
    predicted = stage.predict_counters(frames)
    assert set(predicted) == set(POOL_COUNTERS)
    assert measured_pool(stage, frames, seed) == predicted


def test_window_3x3_on_4x4_two_frames_by_hand():
    # B = 4 beats per input row, Q = 2 windows * 9 = 18 beats per output row, ring R = 4
    # rows (KH + SH). Frame 1: rows 0..3 in at cycles 0..15 (the ring holds them all);
    # output row 0 (rows 0..2) runs 12..29, output row 1 (rows 1..3) 30..47.
    # Frame 2: its row 0 (global row 4) must wait until output row 0 is done (cycle 30): 14
    # blocked cycles; its row 1 until output row 1 is done (48): 14 more; rows 2 and 3
    # follow at 52 and 56. Output row 2 starts when row 6 is in (56), runs 56..73, output
    # row 3 74..91; the last beat leaves the output register at 92: span 93.
    stage = window_stage(4, 4, 1, (3, 3), (1, 1), (0, 0, 0, 0), 1, ir.IntType.uint(3), 0)
    expected = {
        "issue": 72, "out_beats": 72, "buffer_reads": 72, "pad_beats": 0,
        "in_beats": 32, "buffer_writes": 32, "in_blocked": 28,
        "span": 93, "stall_out": 0,
        "stall_in": 12 + 8,          # before output row 0, and between output rows 1 and 2
    }
    assert stage.predict_counters(2) == expected
    assert measured_window(stage, 2, seed=1) == expected


def test_padded_strided_window_counts_padding_beats_by_hand():
    # 3x3, stride 2, padding 1 on 5x5x2 with SIMD 1: OH = OW = 3. Output row/column 0 reads
    # kernel rows 1..2 of the image (2 real rows), 1 and 2 read 3 and 2: 7 real rows and 7
    # real columns of the 9 x 9 kernel positions per row/column pair.
    stage = window_stage(5, 5, 2, (3, 3), (2, 2), (1, 1, 1, 1), 1, ir.IntType.int_(4), 0)
    predicted = stage.predict_counters(1)
    assert predicted["out_beats"] == 3 * 3 * 9 * 2
    assert predicted["buffer_reads"] == 7 * 7 * 2
    assert predicted["pad_beats"] == (81 - 49) * 2
    assert measured_window(stage, 1, seed=2) == predicted


def test_pool_2x2_on_5x5_by_hand():
    # k = s = 2 on 5x5x2, SIMD 1: OH = OW = 2; row 4 and column 4 are dropped. The last
    # window closes at row 3, column 3, fold 1: beat (3*5 + 3 + 1)*2 - 1 = 37, so span 39.
    # Rows 0 and 2 are buffered (a window closing on rows 1 and 3 needs them): 2 rows of
    # OW*2 = 4 words. Every beat of columns 1 and 3 (5 rows * 2 columns * 2 folds = 20)
    # takes one max, and each of the 8 outputs one more.
    stage = pool_stage(5, 5, 2, 2, 2, 1, ir.IntType.uint(4))
    expected = {
        "issue": 38, "stall_in": 0, "stall_out": 0, "span": 39,
        "in_beats": 50, "out_beats": 8, "buffer_reads": 8, "buffer_writes": 8,
        "compares": 20 + 8,
    }
    assert stage.predict_counters(1) == expected
    assert measured_pool(stage, 1, seed=3) == expected
