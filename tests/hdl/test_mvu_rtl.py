"""The generated Verilog on Verilator: engines and chains bit-exact, cycles exact.

Each hypothesis example is a new Verilator build (cached by content hash), so the
example counts are modest; many random frames go through every build.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from codesign.analytical import compare_counters
from codesign.arch import build_design
from codesign.arch.dataflow.folding import divisors
from codesign.ir import IntType
from codesign.reference import execute
from codesign.simulate import simulate
from netgen import folds, random_chain, random_inputs, random_layer_stack

# every shrinking step would be another Verilator build: report the first failure as found
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=NO_SHRINK)
@given(st.data(), st.integers(1, 24), st.integers(1, 24),
       st.sampled_from(["bipolar", "uint5", "int4"]), st.booleans(), st.integers(0, 10**6))
def test_single_engine_matches_reference_with_exact_cycles(data, mw, mh, in_name, thresholds,
                                                           seed):
    graph = random_chain([mw, mh], IntType.parse(in_name), seed, last_thresholds=thresholds)
    pe = data.draw(st.sampled_from(divisors(mh)), label="pe")
    simd = data.draw(st.sampled_from(divisors(mw)), label="simd")
    design = build_design(graph, folding=folds(graph, [(pe, simd)]))
    frames = 37
    x = random_inputs(graph, frames, seed)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x))
    ideal = frames * (mh // pe) * (mw // simd)
    stage = design.stages[0]
    # the pipeline: issue, read, terms, adder tree, accumulator, two stages per threshold
    # level (read into a register, compare; a bipolar output has one level), the output
    # register
    assert stage.fill_cycles == (7 if thresholds else 5)
    layer = stage.name
    assert result.stage_counters[layer]["issue"] == ideal
    assert result.measured_cycles(layer) == ideal + stage.fill_cycles
    # the wrapper's own clock: first input accepted to last output, both inclusive
    assert result.total_cycles == ideal + stage.fill_cycles


@pytest.mark.parametrize("folding", [
    [(1, 1), (1, 1), (1, 1)],          # fully folded
    [(16, 12), (8, 16), (4, 8)],       # fully parallel
    [(4, 3), (2, 8), (4, 2)],          # mixed, width converters between
])
def test_chain_bit_exact_and_per_layer_cycles(folding):
    graph = random_chain([12, 16, 8, 4], IntType.uint(5), seed=7)
    design = build_design(graph, folding=folds(graph, folding))
    frames = 50
    x = random_inputs(graph, frames, 7)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x))
    for layer in design.stages:
        counters = result.stage_counters[layer.name]
        assert counters["issue"] == frames * layer.cycles_per_frame
        assert result.measured_cycles(layer.name) == (frames * layer.cycles_per_frame
                                                      + layer.fill_cycles)
    # steady state is set by the slowest layer: the whole run costs at most its cycles
    # plus every layer's latency
    bottleneck = max(layer.cycles_per_frame for layer in design.stages)
    latency_bound = sum(layer.cycles_per_frame + layer.fill_cycles + 4
                        for layer in design.stages)
    assert result.total_cycles <= frames * bottleneck + latency_bound


def test_chain_under_random_stalls():
    graph = random_chain([12, 16, 8, 4], IntType.int_(3), seed=11, last_thresholds=True)
    design = build_design(graph, folding=folds(graph, [(4, 3), (2, 8), (4, 2)]))
    x = random_inputs(graph, 40, 11)
    result = simulate(design, x, in_valid_prob=100, out_ready_prob=90, seed=5)
    assert np.array_equal(result.outputs, execute(graph, x))
    for layer in design.stages:
        c = result.stage_counters[layer.name]
        assert c["issue"] == 40 * layer.cycles_per_frame
        assert c["span"] == c["issue"] + c["stall_in"] + c["stall_out"] + layer.fill_cycles
    assert result.stage_counters["fc2"]["stall_out"] > 0


MIXED = [
    # 8-bit-weight input layer -> binary hidden -> ternary -> 4-bit -> integer scores
    (12, "int8", ("threshold", "bipolar")),
    (16, "bipolar", ("threshold", "bipolar")),
    (8, "ternary", ("threshold", "uint2")),
    (8, "int4", ("requant", "int4")),
    (4, "int3", None),
]


@pytest.mark.parametrize("folding", [
    [(1, 1)] * 5,
    [(12, 8), (16, 12), (8, 16), (8, 8), (4, 8)],
    [(4, 2), (8, 4), (2, 8), (4, 2), (2, 4)],
])
def test_mixed_network_bit_exact_and_matches_analytical_model(folding):
    graph = random_layer_stack(8, IntType.uint(5), MIXED, seed=3)
    design = build_design(graph, folding=folds(graph, folding))
    assert [layer.family.name for layer in design.stages] == [
        "mac", "xnor_popcount", "ternary", "mac", "mac"]
    frames = 30
    x = random_inputs(graph, frames, 3)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x))
    for layer in design.stages:
        predicted = layer.predict_counters(frames)
        assert compare_counters(predicted, result.stage_counters[layer.name],
                                in_network=True) == {}, layer.name
        assert result.measured_cycles(layer.name) == predicted["span"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=NO_SHRINK)
@given(st.data(), st.integers(1, 16), st.integers(1, 16),
       st.sampled_from(["ternary", "int2", "uint3", "int8", "int16"]),
       st.sampled_from(["uint4", "int6", "bipolar", "ternary", "uint16"]),
       st.sampled_from([("threshold", "int3"), ("requant", "uint4"), None]),
       st.integers(0, 10**6))
def test_any_family_single_engine_exact_with_analytical_counters(data, mw, mh, wname, xname,
                                                                 post, seed):
    graph = random_layer_stack(mw, IntType.parse(xname), [(mh, wname, post)], seed,
                               sparsity=0.3)
    pe = data.draw(st.sampled_from(divisors(mh)), label="pe")
    simd = data.draw(st.sampled_from(divisors(mw)), label="simd")
    design = build_design(graph, folding=folds(graph, [(pe, simd)]))
    frames = 25
    x = random_inputs(graph, frames, seed)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x))
    layer = design.stages[0]
    assert result.stage_counters[layer.name] == layer.predict_counters(frames, x)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=NO_SHRINK)
@given(st.data(), st.integers(2, 16), st.integers(1, 12),
       st.sampled_from(["ternary", "int4", "uint3"]), st.sampled_from(["uint4", "int3"]),
       st.sampled_from([("threshold", "uint2"), ("requant", "int4"), None]),
       st.sampled_from([0.0, 0.5, 0.9, 1.0]), st.integers(0, 10**6))
def test_sparse_engine_rtl_exact_with_analytical_counters(data, mw, mh, wname, xname, post,
                                                          sparsity, seed):
    graph = random_layer_stack(mw, IntType.parse(xname), [(mh, wname, post)], seed,
                               sparsity=sparsity)
    pe = data.draw(st.sampled_from(divisors(mh)), label="pe")
    simd = data.draw(st.sampled_from(divisors(mw)), label="simd")
    design = build_design(graph, folding=folds(graph, [(pe, simd)]), sparse=["fc0"])
    assert design.stages[0].kind == "sparse_mvu"
    frames = 20
    x = random_inputs(graph, frames, seed)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x))
    layer = design.stages[0]
    assert result.stage_counters[layer.name] == layer.predict_counters(frames, x)


def test_sparse_layer_inside_a_network():
    specs = [(16, "int4", ("threshold", "uint3")), (12, "ternary", ("requant", "int4")),
             (4, "int4", None)]
    graph = random_layer_stack(8, IntType.uint(4), specs, seed=9, sparsity=0.75)
    design = build_design(graph, folding=folds(graph, [(4, 2), (3, 4), (2, 4)]), sparse=0.5)
    assert [layer.kind == 'sparse_mvu' for layer in design.stages] == [True, True, True]
    x = random_inputs(graph, 30, 9)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x))
    for layer in design.stages:
        assert compare_counters(layer.predict_counters(30), result.stage_counters[layer.name],
                                in_network=True) == {}


def test_wide_threshold_epilogue_builds_at_any_pe():
    """255 thresholds (an 8-bit activation) of 18 bits x 16 PEs: a 73,440-bit parameter row
    in one memory used to crash inside Amaranth (its limit is 65,536); every level of the
    binary search of every PE is a bank of its own, one 18-bit threshold wide and 2^k deep
    for level k (one neuron fold), and holds each threshold of its level once."""
    from codesign.generate import generate_verilog

    specs = [(16, "int8", ("threshold", "uint8")), (4, "int4", None)]
    graph = random_layer_stack(4, IntType.uint(8), specs, seed=5)
    design = build_design(graph, folding=folds(graph, [(16, 1), (1, 16)]))
    epilogue = design.stages[0].hdl_config.epilogue
    assert (epilogue.params_per_row, epilogue.param_bits) == (255, 18)
    banks = epilogue.banks(16)
    assert [(bank.width, bank.depth) for bank in banks] == [
        (18, 1 << k) for k in range(8) for _ in range(16)]
    assert sum(bank.width * bank.depth for bank in banks) == 16 * 255 * 18
    assert "module codesign_top" in generate_verilog(design, counters=False).text


def test_parameter_banks_split_across_pe_groups_bit_exact(monkeypatch):
    """Banks narrower than one fold's parameters: the multipliers are split over groups of
    PEs (every threshold level is a bank per PE anyway), and the engine still computes
    exactly."""
    import hdl.epilogue

    monkeypatch.setattr(hdl.epilogue, "MAX_BANK_BITS", 24)
    specs = [(6, "int3", ("threshold", "uint3")), (4, "ternary", ("requant", "int4")),
             (3, "int4", None)]
    graph = random_layer_stack(5, IntType.uint(3), specs, seed=8)
    design = build_design(graph, folding=folds(graph, [(6, 5), (4, 2), (3, 1)]))
    assert len(design.stages[0].hdl_config.epilogue.banks(6)) > 3
    assert len(design.stages[1].hdl_config.epilogue.banks(4)) > 1
    x = random_inputs(graph, 20, 8)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x))


def test_threshold_epilogue_limit_is_named():
    from hdl.errors import HardwareConfigError

    graph = random_layer_stack(4, IntType.uint(4), [(2, "int4", ("threshold", "uint11"))],
                               seed=1)
    with pytest.raises(HardwareConfigError, match=r"stage 'fc0': 2047 thresholds per channel "
                                                  r"need 11 binary-search levels; the "
                                                  r"threshold epilogue takes at most 1023"):
        build_design(graph)
