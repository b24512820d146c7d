"""Convolutional networks on Verilator: sliding windows, engines, pooling, bit-exact."""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from codesign.analytical import compare_counters
from codesign.arch import build_design
from codesign.arch.stages import EngineStage
from codesign.ir import IntType
from codesign.reference import execute
from codesign.simulate import simulate
from netgen import folds, random_cnn, random_inputs


@pytest.mark.parametrize("weight, act, folding", [
    ("bipolar", "bipolar", [(2, 1), (3, 2), (3, 2)]),
    ("int3", "uint2", [(4, 1), (6, 4), (1, 6)]),
    ("ternary", "int3", [(1, 1), (2, 2), (3, 1)]),
])
def test_small_cnn_bit_exact(weight, act, folding):
    graph = random_cnn(5, weight=weight, act=act)
    design = build_design(graph, folding=folds(graph, folding))
    assert [stage.kind for stage in design.stages] == ["window", "mvu", "pool", "window",
                                                       "mvu", "mvu"]
    x = random_inputs(graph, 6, 5)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x).reshape(6, -1))
    for stage in design.stages:
        if isinstance(stage, EngineStage):
            assert compare_counters(stage.predict_counters(6),
                                    result.stage_counters[stage.name], in_network=True) == {}


def test_bipolar_padding_is_plus_one_in_hardware():
    graph = random_cnn(8, in_type=IntType.bipolar(), weight="bipolar", act="bipolar",
                       convs=((4, 3, 1, 1),), pool=None)
    design = build_design(graph, folding=folds(graph, [(2, 1), (3, 4)]))
    x = random_inputs(graph, 4, 8)
    assert np.array_equal(simulate(design, x).outputs, execute(graph, x).reshape(4, -1))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(st.sampled_from(["bipolar", "ternary", "int3", "uint2"]),
       st.sampled_from(["bipolar", "uint2", "int3"]), st.integers(4, 9), st.integers(1, 3),
       st.integers(1, 3), st.integers(1, 2), st.data(), st.integers(0, 10**6))
def test_conv_chain_any_family_bit_exact(weight, act, size, channels, kernel, stride, data,
                                         seed):
    pad = data.draw(st.integers(0, kernel - 1), label="pad")
    if size + 2 * pad < kernel:
        return
    if weight == "bipolar" and act != "bipolar":
        act = "bipolar"     # a binary layer's thresholds give bipolar maps in this helper
    graph = random_cnn(seed, image=(size, size, channels), convs=((4, kernel, stride, pad),),
                       pool=None, weight=weight, act=act)
    conv_simd = data.draw(st.sampled_from([d for d in (1, 2, 3) if channels % d == 0]),
                          label="simd")
    design = build_design(graph, folding=folds(graph, [(2, conv_simd), (1, 4)]))
    x = random_inputs(graph, 3, seed)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x).reshape(3, -1))
    window = design.stages[0]
    assert result.measured_cycles(window.name) == 3 * window.cycles_per_frame + 1


def test_counters_are_read_when_every_stage_is_idle():
    """A 3/2 pool drops the last conv rows and columns of every frame: the last output leaves
    while the conv engine still computes them. The run settles before reading counters, so
    every stage's cycles are whole (formula + fill) and the analytical model holds."""
    graph = random_cnn(4, image=(9, 6, 1), in_type=IntType.bipolar(), weight="bipolar",
                       act="bipolar", convs=((4, 3, 1, 0),), pool=(3, 2))
    design = build_design(graph, folding=folds(graph, [(1, 1), (1, 1)]))
    frames = 30
    x = random_inputs(graph, frames, 4)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x).reshape(frames, -1))
    conv = design.stage("conv0")
    assert conv.cycles_per_frame == 7 * 4 * 4 * 9               # 7x4 pixels, 4 rows, 9 taps
    for stage in design.stages:
        predicted = stage.predict_counters(frames)
        assert compare_counters(predicted, result.stage_counters[stage.name],
                                in_network=True) == {}, stage.name
        # every stage's active cycles: what it issued plus its fill; engines issue their
        # formula exactly (the pool's issue stops at the last window it closes)
        assert result.measured_cycles(stage.name) == predicted["issue"] + stage.fill_cycles
        if stage.kind == "mvu":
            assert predicted["issue"] == frames * stage.cycles_per_frame
