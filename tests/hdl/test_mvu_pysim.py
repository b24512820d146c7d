"""Engine checks in Amaranth's Python simulator: exact outputs and exact cycle counts.

These need no Verilator build, so hypothesis can sweep many foldings cheaply; the RTL
tests (test_mvu_rtl.py) repeat the essentials on the Verilator model.
"""

import random
import re
from dataclasses import replace

import numpy as np
import pytest
from amaranth.back import rtlil
from hypothesis import given, settings
from hypothesis import strategies as st
from pysim_driver import drive, run_pysim

from codesign.arch.dataflow.folding import divisors
from codesign.ir import IntType, dot_range
from codesign.reference import requantize
from codesign.streams import pack_beats, unpack_beats
from hdl.epilogue import PassEpilogue, RequantEpilogue, ThresholdEpilogue
from hdl.lanes import BinaryWeightLane, MacLane, TernaryLane, XnorPopcountLane
from hdl.mvu import PERF_COUNTERS, MatrixVectorUnit, MVUConfig


def counters(perf: int) -> dict[str, int]:
    return {name: (perf >> (32 * k)) & 0xFFFFFFFF for k, name in enumerate(PERF_COUNTERS)}


FAMILIES = ["xnor", "bw", "ternary", "mac"]
EPILOGUES = ["pass", "threshold", "requant"]


def engine_case(mw, mh, pe, simd, family, frames, seed, epilogue, wbits=4, xbits=3):
    """Random weights/inputs for one engine and the exact expected output codes."""
    rng = np.random.default_rng(seed)
    x_signed = bool(seed % 2)
    in_type = IntType.int_(xbits) if x_signed else IntType.uint(xbits)
    if family == "xnor":
        w_type, in_type, lane = IntType.bipolar(), IntType.bipolar(), XnorPopcountLane()
    elif family == "bw":
        w_type, lane = IntType.bipolar(), BinaryWeightLane(in_type.bits, in_type.signed)
    elif family == "ternary":
        w_type, lane = IntType.ternary(), TernaryLane(in_type.bits, in_type.signed)
    else:
        w_type = IntType.int_(wbits) if seed % 3 else IntType.uint(wbits)
        lane = MacLane(w_type.bits, w_type.signed, in_type.bits, in_type.signed)
    values = ([-1, 1] if w_type.kind == "bipolar" else
              list(range(w_type.min, w_type.max + 1)))
    w = rng.choice(values, (mh, mw))
    if in_type.kind == "bipolar":
        x = rng.choice([-1, 1], (frames, mw))
    else:
        x = rng.integers(in_type.min, in_type.max + 1, (frames, mw))
    if family == "xnor":
        acc_range, acc = (0, mw), (x @ w.T + mw) // 2
    else:
        acc_range, acc = dot_range(w_type, in_type, mw), x @ w.T
    lo, hi = acc_range
    if epilogue == "pass":
        out_type = IntType.for_range(lo, hi)
        ep, expected = PassEpilogue(out_type.bits), acc
    elif epilogue == "threshold":
        out_type = IntType.int_(3) if seed % 5 else IntType.uint(1)
        # any number of thresholds up to the type's 2^B - 1 (fewer exercises the padding)
        count = int(rng.integers(1, out_type.max - out_type.min + 1))
        th = np.sort(rng.integers(lo, hi + 2, (mh, count)), axis=1)
        ep = ThresholdEpilogue(th, acc_range, out_type.bits, out_type.min)
        expected = out_type.min + (acc[:, :, None] >= th[None]).sum(axis=2)
    else:
        out_type = IntType.int_(4) if seed % 2 else IntType.uint(3)
        mult = rng.integers(1, 300, mh)
        shift = int(rng.integers(0, 9))
        # every third case adds per-row offsets (a bias and zero points, as torch.ao's)
        # (non-negative ones use their top bit: unsigned storage)
        offsets = (None if seed % 3 == 1 else rng.integers(-(1 << 10), 1 << 10, mh)
                   if seed % 3 == 0 else rng.integers(0, 1 << 12, mh))
        ep = RequantEpilogue(mult, shift, acc_range, (out_type.min, out_type.max),
                             out_type.bits, offsets)
        expected = requantize(acc, mult, shift, out_type.min, out_type.max,
                              0 if offsets is None else offsets)
    config = MVUConfig("layer", mw, mh, pe, simd, lane, w_type.encode(w), acc_range, ep)
    return config, pack_beats(x, in_type, simd), expected, out_type, w, x


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(1, 12), st.integers(1, 12), st.sampled_from(FAMILIES),
       st.integers(1, 4), st.integers(0, 10**6), st.sampled_from(EPILOGUES))
def test_engine_exact_outputs_and_cycles(data, mw, mh, family, frames, seed, epilogue):
    pe = data.draw(st.sampled_from(divisors(mh)))
    simd = data.draw(st.sampled_from(divisors(mw)))
    config, beats, expected, out_type, w, x = engine_case(mw, mh, pe, simd, family, frames,
                                                          seed, epilogue)
    outs, perf, _ = run_pysim(MatrixVectorUnit(config), beats, frames * mh // pe)
    assert np.array_equal(unpack_beats(outs, out_type, pe, mh), expected)
    c = counters(perf)
    ideal = frames * (mh // pe) * (mw // simd)
    assert c["issue"] == ideal
    assert c["span"] == ideal + config.fill_cycles    # full rate: no stall, exact fill
    assert c["stall_in"] == c["stall_out"] == 0
    assert c["lane_ops"] == ideal * pe * simd
    assert c["weight_reads"] == ideal
    assert c["param_reads"] == (0 if epilogue == "pass" else frames * (mh // pe))
    assert c["in_beats"] == frames * (mw // simd)
    assert c["out_beats"] == frames * (mh // pe)
    nf = mh // pe
    assert c["ibuf_reads"] == (frames * (nf - 1) * (mw // simd) if nf > 1 else 0)
    zeros = int(np.count_nonzero(w == 0)) * frames if family in ("ternary", "mac") else 0
    assert c["zero_weight_lanes"] == zeros
    gated = (int(((x == 0).astype(int) @ (w != 0).T.astype(int)).sum())
             if family in ("ternary", "mac") else 0)
    assert c["zero_act_lanes"] == gated


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 8), st.integers(1, 8), st.sampled_from(FAMILIES),
       st.integers(1, 3), st.integers(0, 10**6), st.sampled_from(EPILOGUES),
       st.floats(0.1, 1.0), st.floats(0.1, 1.0))
def test_backpressure_and_input_gaps_keep_outputs_and_account_every_cycle(
        data, mw, mh, family, frames, seed, epilogue, ready_rate, valid_rate):
    """Random output backpressure and input gaps: the same outputs, the same events, and
    every cycle of the span accounted for (span = issue + stall_in + stall_out + FILL)."""
    pe = data.draw(st.sampled_from(divisors(mh)))
    simd = data.draw(st.sampled_from(divisors(mw)))
    config, beats, expected, out_type, w, x = engine_case(mw, mh, pe, simd, family, frames,
                                                          seed, epilogue)
    rng = random.Random(seed)
    ready: dict[int, bool] = {}
    valid: dict[int, bool] = {}
    outs, c = drive(MatrixVectorUnit(config), beats, frames * mh // pe, PERF_COUNTERS,
                    ready=lambda cyc: ready.setdefault(cyc, rng.random() < ready_rate),
                    valid=lambda cyc: valid.setdefault(cyc, rng.random() < valid_rate))
    assert np.array_equal(unpack_beats(outs, out_type, pe, mh), expected)
    ideal = frames * (mh // pe) * (mw // simd)
    assert c["issue"] == c["weight_reads"] == ideal
    assert c["lane_ops"] == ideal * pe * simd
    assert c["param_reads"] == (0 if epilogue == "pass" else frames * (mh // pe))
    zeros = int(np.count_nonzero(w == 0)) * frames if family in ("ternary", "mac") else 0
    assert c["zero_weight_lanes"] == zeros
    assert c["span"] == c["issue"] + c["stall_in"] + c["stall_out"] + config.fill_cycles


def test_fill_is_front_datapath_and_epilogue_stages():
    """FILL = 2 (issue, read) + 3 (terms, adder tree, accumulator) + the epilogue's stages:
    none for the accumulator, two per binary-search level (read into a register, then
    compare), three to requantize; a one-step
    run of each takes exactly 1 + FILL cycles."""
    lane = XnorPopcountLane()
    w = np.ones((1, 1), dtype=np.int64)
    cases = [(PassEpilogue(2), 5),
             (ThresholdEpilogue(np.ones((1, 1)), (0, 1), 1), 5 + 2),
             (ThresholdEpilogue(np.array([[0, 1, 1, 2, 2]]), (0, 1), 3), 5 + 6),
             (RequantEpilogue(np.ones(1), 1, (0, 1), (0, 1), 1), 8)]
    for epilogue, fill in cases:
        config = MVUConfig("one", 1, 1, 1, 1, lane, w, (0, 1), epilogue)
        assert config.fill_cycles == fill
        _, perf, _ = run_pysim(MatrixVectorUnit(config), [1], 1)
        assert counters(perf)["span"] == 1 + fill


def flip_flop_bits(config: MVUConfig) -> tuple[int, bool]:
    """(flip-flop bits of the engine's RTLIL: registers and clocked memory read ports,
    whether the weight memory's read port is clocked)."""
    text = rtlil.convert(MatrixVectorUnit(config, counters=False))
    bits, weights_clocked = 0, None
    for cell in re.split(r"\n\s*cell ", text)[1:]:
        kind = cell.split()[0]
        width = int(re.search(r"parameter \\WIDTH (\d+)", cell)[1]) if "\\WIDTH" in cell else 0
        clocked = re.search(r"parameter \\CLK_ENABLE 1\b", cell) is not None
        if kind == "$dff" or (kind == "$memrd_v2" and clocked):
            bits += width
        if kind == "$memrd_v2" and '"\\\\weights"' in cell:
            weights_clocked = clocked
    assert weights_clocked is not None
    return bits, weights_clocked


# (mw, mh, pe, simd): weight memories of 4 words (shallow) and of 32 words (deeper)
SHALLOW, DEEP = (16, 6, 3, 8), (16, 24, 3, 4)


@pytest.mark.parametrize("family", ["xnor", "bw"])
@pytest.mark.parametrize("shape, style, in_lanes", [
    (SHALLOW, "auto", True), (SHALLOW, "distributed", True), (SHALLOW, "registers", True),
    (SHALLOW, "block", False), (DEEP, "auto", False), (DEEP, "block", False)])
def test_shallow_one_bit_weight_rom_is_read_by_the_lanes_with_the_same_cycles(
        family, shape, style, in_lanes):
    """1-bit weights in a ROM of at most 16 words outside block RAM are read
    combinationally from a registered address (each lane's term one LUT of address and
    activation); every other weight memory keeps its read register. Either way: the same
    outputs, the same cycles (exact fill at full rate, every cycle accounted for under
    backpressure and input gaps)."""
    mw, mh, pe, simd = shape
    frames, seed = 3, 11
    config, beats, expected, out_type, _, _ = engine_case(mw, mh, pe, simd, family, frames,
                                                          seed, "threshold")
    config = replace(config, memory_style=style)
    assert config.weights_in_lanes is in_lanes
    outs, perf, _ = run_pysim(MatrixVectorUnit(config), beats, frames * mh // pe)
    assert np.array_equal(unpack_beats(outs, out_type, pe, mh), expected)
    c = counters(perf)
    ideal = frames * (mh // pe) * (mw // simd)
    assert c["issue"] == c["weight_reads"] == ideal
    assert c["span"] == ideal + config.fill_cycles
    assert c["stall_in"] == c["stall_out"] == 0
    rng = random.Random(seed)
    outs, c = drive(MatrixVectorUnit(config), beats, frames * mh // pe, PERF_COUNTERS,
                    ready=lambda cyc: rng.random() < 0.4, valid=lambda cyc: rng.random() < 0.6)
    assert np.array_equal(unpack_beats(outs, out_type, pe, mh), expected)
    assert c["issue"] == c["weight_reads"] == ideal
    assert c["stall_out"] > 0 and c["stall_in"] > 0
    assert c["span"] == c["issue"] + c["stall_in"] + c["stall_out"] + config.fill_cycles


@pytest.mark.parametrize("family", ["xnor", "bw"])
def test_lanes_reading_the_weight_rom_trade_two_word_registers_for_two_address_registers(
        family):
    """The same engine with its weights in block RAM (read register, then the operand
    register of the whole word) and in logic (address registers, no register of the word):
    the flip-flops differ by exactly two weight words less two addresses."""
    mw, mh, pe, simd = SHALLOW
    config = engine_case(mw, mh, pe, simd, family, 1, 5, "threshold")[0]
    in_logic = replace(config, memory_style="auto")
    in_block = replace(config, memory_style="block")
    assert in_logic.weights_in_lanes and not in_block.weights_in_lanes
    word = pe * simd
    depth = (mh // pe) * (mw // simd)
    logic_bits, logic_clocked = flip_flop_bits(in_logic)
    block_bits, block_clocked = flip_flop_bits(in_block)
    assert (logic_clocked, block_clocked) == (False, True)
    assert logic_bits == block_bits - 2 * word + 2 * (depth - 1).bit_length()
