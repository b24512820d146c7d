"""Sparse engine checks in Amaranth's Python simulator: exact outputs, cycles and counters.

Hypothesis sweeps shapes, foldings, lanes, epilogues and sparsity (all-zero rows and fully
dense matrices included); every run is checked against numpy integers, against the stated
cycle formula (``sparse_cycles``) and against the counter identities.
"""

import random
from collections.abc import Callable

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.arch.dataflow.folding import divisors
from codesign.ir import IntType, dot_range
from codesign.reference import requantize
from codesign.streams import pack_beats, unpack_beats
from hdl.epilogue import PassEpilogue, RequantEpilogue, ThresholdEpilogue
from hdl.lanes import BinaryWeightLane, MacLane, TernaryLane, XnorPopcountLane
from hdl.sparse import (
    SPARSE_PERF_COUNTERS,
    SparseMatrixVectorUnit,
    SparseMVUConfig,
    fold_steps,
    sparse_cycles,
    sparse_speedup,
)

EPILOGUES = ["pass", "threshold", "requant"]


def counters(perf: int) -> dict[str, int]:
    return {name: (perf >> (32 * k)) & 0xFFFFFFFF for k, name in enumerate(SPARSE_PERF_COUNTERS)}


def drive(dut, in_beats: list[int], n_out: int, *, ready: Callable[[int], bool] | None = None,
          valid: Callable[[int], bool] | None = None, max_cycles: int = 100_000
          ) -> tuple[list[int], int]:
    """Feed ``in_beats`` (offered when ``valid(cycle)``), take outputs when ``ready(cycle)``.

    Like ``pysim_driver.run_pysim`` but with input gaps too, so loading stalls are covered.
    """
    outputs: list[int] = []
    result = {}

    async def bench(ctx):
        cycle = 0
        index = 0
        while len(outputs) < n_out:
            offer = index < len(in_beats) and (valid is None or valid(cycle))
            ctx.set(dut.i.valid, offer)
            if index < len(in_beats):
                ctx.set(dut.i.payload, in_beats[index])
            ctx.set(dut.o.ready, 1 if ready is None else ready(cycle))
            await ctx.delay(0)
            took_in = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                outputs.append(ctx.get(dut.o.payload))
            await ctx.tick()
            index += bool(took_in)
            cycle += 1
            if cycle > max_cycles:
                raise RuntimeError(f"stuck: {index} in, {len(outputs)} out")
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 0)
        for _ in range(3):
            await ctx.tick()
        result["perf"] = ctx.get(dut.perf)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return outputs, result["perf"]


def sparse_case(mw, mh, pe, simd, in_simd, family, frames, seed, epilogue, density,
                wbits=4, xbits=3):
    """Random sparse weights/inputs for one engine and the exact expected output codes."""
    rng = np.random.default_rng(seed)
    x_kind = seed % 5
    if x_kind == 0:
        in_type = IntType.bipolar()
    else:
        in_type = IntType.int_(xbits) if x_kind % 2 else IntType.uint(xbits)
    bipolar_in = in_type.kind == "bipolar"
    if family == "ternary":
        w_type = IntType.ternary()
        lane = TernaryLane(in_type.bits, in_type.signed, bipolar_in)
    else:
        w_type = IntType.int_(wbits) if seed % 3 else IntType.uint(wbits)
        lane = MacLane(w_type.bits, w_type.signed, in_type.bits, in_type.signed, bipolar_in)
    nonzero = [v for v in range(w_type.min, w_type.max + 1) if v]
    w = rng.choice(nonzero, (mh, mw)) * (rng.random((mh, mw)) < density)
    if seed % 7 == 0:
        w[rng.random(mh) < 0.4] = 0                   # whole rows without a non-zero
    if bipolar_in:
        x = rng.choice([-1, 1], (frames, mw))
    else:
        x = rng.integers(in_type.min, in_type.max + 1, (frames, mw))
    acc_range, acc = dot_range(w_type, in_type, mw), x @ w.T
    lo, hi = acc_range
    if epilogue == "pass":
        out_type = IntType.for_range(lo, hi)
        ep, expected = PassEpilogue(out_type.bits), acc
    elif epilogue == "threshold":
        out_type = IntType.int_(3) if seed % 4 else IntType.uint(1)
        count = out_type.max - out_type.min
        th = np.sort(rng.integers(lo, hi + 2, (mh, count)), axis=1)
        ep = ThresholdEpilogue(th, acc_range, out_type.bits, out_type.min)
        expected = out_type.min + (acc[:, :, None] >= th[None]).sum(axis=2)
    else:
        out_type = IntType.int_(4) if seed % 2 else IntType.uint(3)
        mult = rng.integers(1, 300, mh)
        shift = int(rng.integers(0, 9))
        ep = RequantEpilogue(mult, shift, acc_range, (out_type.min, out_type.max),
                             out_type.bits)
        expected = requantize(acc, mult, shift, out_type.min, out_type.max)
    config = SparseMVUConfig("sparse", mw, mh, pe, simd, lane, w_type.encode(w), acc_range, ep,
                             in_simd=in_simd)
    return config, pack_beats(x, in_type, in_simd), expected, out_type, w


@st.composite
def cases(draw, max_frames=3):
    mw = draw(st.integers(1, 16))
    mh = draw(st.integers(1, 16))
    return dict(
        mw=mw, mh=mh,
        pe=draw(st.sampled_from(divisors(mh))),
        simd=draw(st.integers(1, 4)),
        in_simd=draw(st.sampled_from(divisors(mw))),
        family=draw(st.sampled_from(["ternary", "mac"])),
        frames=draw(st.integers(1, max_frames)),
        seed=draw(st.integers(0, 10**6)),
        epilogue=draw(st.sampled_from(EPILOGUES)),
        density=draw(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.8, 1.0])),
        wbits=draw(st.integers(2, 6)),
        xbits=draw(st.integers(2, 6)),
    )


def check_counts(c: dict[str, int], config: SparseMVUConfig, w: np.ndarray, frames: int
                 ) -> None:
    """Counter values fixed by the weights alone, whatever the stream timing."""
    steps = sum(fold_steps(w, config.pe, config.simd))
    nnz = int(np.count_nonzero(w))
    slots = config.pe * config.simd
    assert steps == config.compute_steps
    assert c["issue"] == frames * steps
    assert c["weight_reads"] == c["ibuf_reads"] == frames * steps
    assert c["lane_ops"] == frames * steps * slots
    assert c["acc_adds"] == frames * steps * config.pe
    assert c["zero_weight_lanes"] == frames * (steps * slots - nnz)
    assert c["skipped_weights"] == frames * (config.mh * config.mw - nnz)
    assert c["in_beats"] == c["ibuf_writes"] == frames * config.load_beats
    assert c["out_beats"] == frames * config.nf
    assert c["param_reads"] == (frames * config.nf if config.epilogue.banks(config.pe) else 0)
    assert c["span"] == c["issue"] + c["stall_in"] + c["stall_out"] + config.fill_cycles


@settings(max_examples=200, deadline=None)
@given(cases())
def test_sparse_exact_outputs_cycles_and_counters(case):
    config, beats, expected, out_type, w = sparse_case(**case)
    frames = case["frames"]
    outs, perf = drive(SparseMatrixVectorUnit(config), beats, frames * config.nf)
    assert np.array_equal(unpack_beats(outs, out_type, config.pe, config.mh), expected)
    c = counters(perf)
    check_counts(c, config, w, frames)
    # full rate: the stated formula, exactly
    assert c["span"] == sparse_cycles(w, config.pe, config.simd, config.in_simd, frames,
                                      config.fill_cycles)
    assert c["span"] == config.cycles(frames)
    assert c["stall_out"] == 0


@settings(max_examples=100, deadline=None)
@given(cases(max_frames=4), st.floats(0.1, 1.0), st.floats(0.1, 1.0))
def test_backpressure_and_input_gaps_keep_outputs_and_account_every_cycle(
        case, ready_rate, valid_rate):
    config, beats, expected, out_type, w = sparse_case(**case)
    frames = case["frames"]
    rng = random.Random(case["seed"])
    ready: dict[int, bool] = {}
    valid: dict[int, bool] = {}
    outs, perf = drive(SparseMatrixVectorUnit(config), beats, frames * config.nf,
                       ready=lambda cyc: ready.setdefault(cyc, rng.random() < ready_rate),
                       valid=lambda cyc: valid.setdefault(cyc, rng.random() < valid_rate))
    assert np.array_equal(unpack_beats(outs, out_type, config.pe, config.mh), expected)
    c = counters(perf)
    check_counts(c, config, w, frames)
    assert c["span"] >= config.cycles(frames)


def test_zero_matrix_outputs_epilogue_of_zero():
    """A matrix without any non-zero still runs: one padding step per fold, acc = 0."""
    config, beats, expected, out_type, w = sparse_case(6, 4, 2, 2, 3, "mac", 2, 1, "requant",
                                                       0.0)
    assert not w.any() and config.steps == [1, 1]
    outs, perf = drive(SparseMatrixVectorUnit(config), beats, 2 * config.nf)
    assert np.array_equal(unpack_beats(outs, out_type, 2, 4), expected)
    c = counters(perf)
    # L = 2 beats, C = 2 steps, fill: issue, three datapath stages, three of requantization
    assert config.fill_cycles == 1 + 3 + 3
    assert c["span"] == config.cycles(2) == 2 + 2 + 1 * 2 + 7
    assert c["skipped_weights"] == 2 * 24


def test_fold_steps_and_cycle_formula_by_hand():
    w = np.array([[1, 0, 2, 3],       # fold 0: rows with 3 and 1 non-zeros
                  [0, 0, 0, 5],
                  [0, 0, 0, 0],       # fold 1: no non-zero at all
                  [0, 0, 0, 0]])
    assert fold_steps(w, pe=2, simd=1) == [3, 1]
    assert fold_steps(w, pe=2, simd=2) == [2, 1]
    assert fold_steps(w, pe=1, simd=4) == [1, 1, 1, 1]
    assert fold_steps(w, pe=4, simd=1) == [3]
    # L = 4 load beats, C = 4 steps: L + C + (N-1) max(L, C) + FILL
    assert sparse_cycles(w, 2, 1, 1, 3, 4) == 4 + 4 + 2 * 4 + 4
    assert sparse_cycles(w, 2, 2, 1, 3, 4) == 4 + 3 + 2 * 4 + 4     # load-bound
    assert sparse_cycles(w, 2, 1, 4, 3, 4) == 1 + 4 + 2 * 4 + 4     # one beat per vector
    assert sparse_cycles(w, 2, 1, 4, 0, 4) == 0


def test_fill_is_issue_datapath_and_epilogue_stages():
    """FILL = 1 (issue and gather) + 3 (terms, adder tree, accumulator) + the epilogue's
    stages: none for the accumulator, 2B for a B-level binary search (each level reads into
    a register, then compares), three to requantize."""
    ternary = TernaryLane(3, False)
    w = np.ones((2, 2), dtype=np.int64)

    def fill(epilogue) -> int:
        return SparseMVUConfig("s", 2, 2, 1, 1, ternary, w, (-14, 14), epilogue).fill_cycles

    assert fill(PassEpilogue(5)) == 4
    assert fill(ThresholdEpilogue(np.zeros((2, 1)), (-14, 14), 1)) == 4 + 2
    assert fill(ThresholdEpilogue(np.zeros((2, 7)), (-14, 14), 3)) == 4 + 6
    assert fill(ThresholdEpilogue(np.zeros((2, 5)), (-14, 14), 3)) == 4 + 6
    assert fill(RequantEpilogue(np.ones(2), 2, (-14, 14), (-8, 7), 4)) == 7


def test_dense_matrix_with_one_beat_vectors_takes_the_dense_steps():
    """No zero weights and single-beat vectors: 1 + N * NF * SF + FILL, the dense engine's
    steps, the first one issued the cycle after the beat is loaded."""
    w = np.ones((6, 8), dtype=np.int64)
    for pe, simd in [(1, 1), (2, 4), (3, 8), (6, 2)]:
        nf, sf = 6 // pe, 8 // simd
        assert fold_steps(w, pe, simd) == [sf] * nf
        assert sparse_cycles(w, pe, simd, 8, 5, 4) == 1 + 5 * nf * sf + 4


def test_compressed_image_holds_exactly_the_non_zeros():
    config, *_ = sparse_case(7, 6, 3, 2, 1, "mac", 1, 11, "pass", 0.4)
    ib, sb, pe, simd = config.index_bits, config.slot_bits, config.pe, config.simd
    assert ib == 3
    rebuilt = np.zeros_like(config.weight_codes)
    words = iter(config.weight_words())
    for nf, n_steps in enumerate(config.steps):
        for step in range(n_steps):
            word = next(words)
            flags = word >> config.slots_width
            assert flags == (step == n_steps - 1) * (1 + 2 * (nf == config.nf - 1))
            for p in range(pe):
                for j in range(simd):
                    slot = (word >> ((p * simd + j) * sb)) & ((1 << sb) - 1)
                    col, code = slot & ((1 << ib) - 1), slot >> ib
                    if code:
                        assert rebuilt[nf * pe + p, col] == 0
                        rebuilt[nf * pe + p, col] = code
    assert next(words, None) is None
    assert np.array_equal(rebuilt, config.weight_codes)


def test_default_in_simd():
    ep = PassEpilogue(8)
    lane = MacLane(4, True, 4, True)
    w = np.zeros((2, 6), dtype=np.int64)
    assert SparseMVUConfig("a", 6, 2, 1, 3, lane, w, (-100, 100), ep).in_simd == 3
    assert SparseMVUConfig("a", 6, 2, 1, 4, lane, w, (-100, 100), ep).in_simd == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(pe=3), "PE=3"),
    (dict(pe=0), "PE=0"),
    (dict(simd=0), "SIMD=0"),
    (dict(in_simd=4), "in_simd=4"),
    (dict(lane=XnorPopcountLane()), "bipolar"),
    (dict(lane=BinaryWeightLane(3, True)), "bipolar"),
    (dict(weight_codes=np.zeros((4, 5), dtype=np.int64)), "not"),
    (dict(weight_codes=np.full((4, 6), 16)), "storage codes"),
])
def test_unworkable_configs_are_refused(kwargs, message):
    args = dict(name="bad", mw=6, mh=4, pe=2, simd=2, lane=MacLane(4, True, 3, True),
                weight_codes=np.zeros((4, 6), dtype=np.int64), acc_range=(-500, 500),
                epilogue=PassEpilogue(11))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SparseMVUConfig(**args)


def test_speedup_report_is_consistent():
    rng = np.random.default_rng(0)
    w = rng.integers(1, 8, (16, 16)) * (rng.random((16, 16)) < 0.5)
    r = sparse_speedup(w, 4, 2)
    assert r["dense"] == 4 * 8
    assert r["compute"] == sum(fold_steps(w, 4, 2))
    assert r["ideal"] == pytest.approx(256 / np.count_nonzero(w))
    assert r["efficiency"] <= r["compute_efficiency"] <= 1.0 + 1e-9


@pytest.mark.parametrize("period", [2, 3, 5, 7])
@pytest.mark.parametrize("shape", [(4, 2, 1, 1, 4), (4, 4, 2, 2, 4), (6, 3, 1, 2, 3),
                                   (8, 4, 4, 1, 8)])
def test_loaded_bank_survives_a_frozen_last_step(shape, period):
    """Output held off while the next-but-one vector is waiting to load.

    With single-beat (or short) vectors the loader refills a bank in one cycle, so a bank
    released before its vector's last step has gathered its activations would be
    overwritten under that step; the outputs would then mix two vectors.
    """
    mw, mh, pe, simd, in_simd = shape
    config, beats, expected, out_type, _ = sparse_case(mw, mh, pe, simd, in_simd, "mac", 6,
                                                       period, "pass", 1.0)
    outs, perf = drive(SparseMatrixVectorUnit(config), beats, 6 * config.nf,
                       ready=lambda cyc: cyc % period == 0)
    assert np.array_equal(unpack_beats(outs, out_type, pe, mh), expected)
    c = counters(perf)
    assert c["span"] == c["issue"] + c["stall_in"] + c["stall_out"] + config.fill_cycles
