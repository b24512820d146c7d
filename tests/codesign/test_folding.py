"""The automatic folding: among the foldings that keep an engine and its window generator
within the engine's rate for the target, the fewest lanes (the default for a cycle target)
or the fewest LUTs by the resource model.

The referees are brute forces written here from the rules' statements: every folding the
generators build (PE divides MH, SIMD divides MW and a window's channels) is made as a stage
of its own, its engine cycles counted by the formula and its window's by the window stage,
priced by the resource model, and the minimum taken; for the fewest lanes, also the rule as
it was stated before windows were held to their engine's rate.
"""

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.arch import Folding, MappingOptions, build_design
from codesign.arch.dataflow.folding import content_digest
from codesign.arch.resource_model import load_calibration
from codesign.arch.stages import EngineStage, WindowStage
from codesign.errors import OptionError, UnknownTargetError
from codesign.ir import IntType
from codesign.passes.lower import fuse_epilogues
from netgen import random_cnn, random_layer_stack

WEIGHTS = ["bipolar", "ternary", "int3", "int8"]


def fewest_luts(graph, target, **options):
    return build_design(graph, target_cycles=target, folding_objective="luts", **options)


def _window_in_front(design, engine):
    before = design.stages[design.stages.index(engine) - 1]
    return before if isinstance(before, WindowStage) else None


def _luts(stage, target):
    try:
        return stage.estimate_resources(target).lut
    except UnknownTargetError:
        return None


def brute_force(engine: EngineStage, window: WindowStage | None, target_cycles: int,
                resource_target: str = "xc7", objective: str = "luts") -> Folding:
    """The rule, folding by folding: each candidate made anew from the mapped stages' own
    fields."""
    channels = window.in_shape[-1] if window is not None else engine.mw
    rows = []
    for pe in range(1, engine.mh + 1):
        for simd in range(1, channels + 1):
            if engine.mh % pe or engine.mw % simd or channels % simd:
                continue
            stage = type(engine)(engine.name, engine.node, engine.input_type,
                                 engine.output_type, engine.family, Folding(pe, simd),
                                 vectors=engine.vectors, memory_style=engine.memory_style)
            dense = engine.vectors * (engine.mh // pe) * (engine.mw // simd)
            luts = _luts(stage, resource_target)
            if luts is not None:
                # the bound the search prunes with never exceeds the price
                assert stage.lut_lower_bound(resource_target) <= luts
            slowest = dense
            if window is not None:
                other = WindowStage(window.name, window.node, window.input_type,
                                    window.in_shape, simd, window.memory_style)
                slowest = max(dense, other.steady_cycles_per_frame)
                window_luts = _luts(other, resource_target)
                luts = None if luts is None or window_luts is None else luts + window_luts
            rows.append((Folding(pe, simd), dense, slowest, luts))
    rate = max((dense for _, dense, _, _ in rows if dense <= target_cycles), default=None)
    fits = [row for row in rows if rate is not None and row[2] <= rate]
    if not fits:
        fastest = min(row[2] for row in rows)
        fits = [row for row in rows if row[2] == fastest]

    def key(row):
        folding, _, _, luts = row
        pe, simd = folding.pe, folding.simd
        lanes = (pe * simd, abs(math.log2(pe) - math.log2(simd)), -pe)
        return (luts is None, luts or 0, *lanes) if objective == "luts" else lanes

    return min(fits, key=key)[0]


def assert_fewest(design, target, objective, resource_target="xc7"):
    for engine in design.engines:
        expected = brute_force(engine, _window_in_front(design, engine), target,
                               resource_target, objective)
        assert engine.folding == expected, engine.name


def assert_fewest_luts(design, target, resource_target="xc7"):
    assert_fewest(design, target, "luts", resource_target)


def fewest_lanes_as_before(mh: int, mw: int, simds, vectors: int, target: int) -> Folding:
    """The rule without windows: the fewest lanes with vectors * (MH/PE) * (MW/SIMD) within
    the target, then PE and SIMD closest to each other, then the larger PE; the fastest
    folding (PE = MH, the largest SIMD) when none is within it."""
    fits = [(pe * simd, abs(math.log2(pe) - math.log2(simd)), -pe, Folding(pe, simd))
            for pe in range(1, mh + 1) for simd in simds
            if mh % pe == 0 and vectors * (mh // pe) * (mw // simd) <= target]
    return min(fits)[3] if fits else Folding(mh, max(simds))


@st.composite
def layers(draw):
    """One dense layer of any weight type and epilogue, sometimes on the zero-skipping
    engine or another family, and a cycle target."""
    weight = draw(st.sampled_from(WEIGHTS))
    in_type = draw(st.sampled_from(["uint4", "int3", "bipolar"]))
    if weight == "bipolar" or in_type == "bipolar":
        weight = "bipolar" if in_type == "bipolar" else weight
    mw = draw(st.sampled_from([4, 6, 12, 16, 24, 32]))
    mh = draw(st.sampled_from([2, 4, 6, 8, 12, 16]))
    post = draw(st.sampled_from([None, ("threshold", "bipolar"), ("threshold", "uint2"),
                                 ("requant", "int4")]))
    sparsity = draw(st.sampled_from([0.0, 0.5, 0.8]))
    seed = draw(st.integers(0, 2**16))
    graph = random_layer_stack(mw, IntType.parse(in_type), [(mh, weight, post)], seed,
                               sparsity=sparsity)
    options = {}
    if weight != "bipolar" and draw(st.booleans()):
        options["sparse"] = ["fc0"]
    elif weight == "bipolar" and in_type != "bipolar" and draw(st.booleans()):
        options["families"] = {"fc0": draw(st.sampled_from(["ternary", "mac"]))}
    target = draw(st.integers(1, mh * mw + 2))
    return graph, target, options


@settings(max_examples=60, deadline=None)
@given(layers())
def test_a_layers_folding_is_the_brute_force_fewest_luts(case):
    graph, target, options = case
    design = fewest_luts(graph, target, **options)
    assert_fewest_luts(design, target)


@settings(max_examples=60, deadline=None)
@given(layers())
def test_a_layers_default_folding_is_the_fewest_lanes_as_before(case):
    """Without a window nothing holds an engine back but its own cycles: the default
    folding for a cycle target is the rule as it always was."""
    graph, target, options = case
    design = build_design(graph, target_cycles=target, **options)
    assert design.options.objective == "lanes"
    for engine in design.engines:
        simds = [s for s in range(1, engine.mw + 1) if engine.mw % s == 0]
        assert engine.folding == fewest_lanes_as_before(engine.mh, engine.mw, simds,
                                                        engine.vectors, target)
    assert_fewest(design, target, "lanes")


@st.composite
def convolutions(draw):
    """A random CNN (one or two convolutions, a dense output layer) and a cycle target."""
    size = draw(st.sampled_from([4, 6, 8]))
    channels = draw(st.sampled_from([1, 2, 4, 8]))
    convs, side = [], size
    for _ in range(draw(st.integers(1, 2))):
        k = draw(st.sampled_from([k for k in (1, 2, 3) if k <= side]))
        pad = draw(st.sampled_from([0, 1])) if k > 1 else 0
        stride = draw(st.sampled_from([1, 2]))
        convs.append((draw(st.sampled_from([2, 4, 8])), k, stride, pad))
        side = (side + 2 * pad - k) // stride + 1
    weight = draw(st.sampled_from(["bipolar", "int3"]))
    act = draw(st.sampled_from(["bipolar", "uint2"]))
    seed = draw(st.integers(0, 2**16))
    graph = random_cnn(seed, image=(size, size, channels), convs=tuple(convs), pool=None,
                       weight=weight, act=act)
    return graph, draw(st.integers(1, 3000))


@settings(max_examples=40, deadline=None)
@given(convolutions())
def test_a_convolutions_folding_is_the_brute_force_fewest_luts(case):
    graph, target = case
    design = fewest_luts(graph, target)
    assert_fewest_luts(design, target)


@settings(max_examples=40, deadline=None)
@given(convolutions())
def test_a_convolutions_default_folding_is_the_brute_force_fewest_lanes(case):
    """Behind a window the fewest lanes are taken among the foldings whose window keeps the
    engine's rate: the rule as it was whenever its folding's window keeps that rate."""
    graph, target = case
    design = build_design(graph, target_cycles=target)
    assert_fewest(design, target, "lanes")
    for engine in design.engines:
        window = _window_in_front(design, engine)
        channels = engine.mw if window is None else window.in_shape[-1]
        simds = [s for s in range(1, channels + 1) if channels % s == 0]
        before = fewest_lanes_as_before(engine.mh, engine.mw, simds, engine.vectors, target)
        rate = max((engine.vectors * (engine.mh // pe) * (engine.mw // simd)
                    for pe in range(1, engine.mh + 1) for simd in simds
                    if engine.mh % pe == 0
                    and engine.vectors * (engine.mh // pe) * (engine.mw // simd) <= target),
                   default=None)
        kept = window is None or (rate is not None and WindowStage(
            window.name, window.node, window.input_type, window.in_shape,
            before.simd).steady_cycles_per_frame <= rate)
        if kept:
            assert engine.folding == before, engine.name


@settings(max_examples=25, deadline=None)
@given(convolutions(), st.sampled_from(["lanes", "luts"]))
def test_engines_meet_the_target_and_windows_keep_their_engines_rate(case, objective):
    """Each engine takes at most the target, and its window generator at most the engine's
    rate: the most cycles any folding of the engine takes within the target (what the
    engine folded with the fewest lanes takes). Only when no folding keeps the window to
    that rate (it must read every input beat, say) is the pair the fastest there is."""
    graph, target = case
    design = build_design(graph, target_cycles=target, folding_objective=objective)
    for engine in design.engines:
        window = _window_in_front(design, engine)
        channels = engine.mw if window is None else window.in_shape[-1]
        pairs = {}
        for pe in range(1, engine.mh + 1):
            for simd in range(1, channels + 1):
                if engine.mh % pe or channels % simd:
                    continue
                cycles = engine.vectors * (engine.mh // pe) * (engine.mw // simd)
                if window is not None:
                    other = WindowStage(window.name, window.node, window.input_type,
                                        window.in_shape, simd)
                    cycles = (cycles, other.steady_cycles_per_frame)
                else:
                    cycles = (cycles, 0)
                pairs[pe, simd] = cycles
        rate = max((e for e, _ in pairs.values() if e <= target), default=None)
        chosen = (engine.cycles_per_frame,
                  0 if window is None else window.steady_cycles_per_frame)
        if rate is not None and any(max(pair) <= rate for pair in pairs.values()):
            assert engine.cycles_per_frame <= rate <= target
            assert chosen[1] <= rate
        else:
            assert max(pairs[engine.pe, engine.simd]) == min(map(max, pairs.values()))
        assert pairs[engine.pe, engine.simd][1] == chosen[1]


def test_a_window_bubble_rules_out_a_folding_its_engine_allows():
    """A 4x4x32 map, 3x3 windows: at SIMD 1 the window emits 1152 beats per frame plus a
    bubble of 256 cycles at each frame boundary. 32x1 meets the engine's rate for a target
    of 1200 (4 * 1 * 288 = 1152 cycles) but its window would take 1408: no candidate."""
    graph = random_cnn(3, image=(4, 4, 32), convs=((32, 3, 1, 0),), pool=None,
                       weight="bipolar", act="bipolar", in_type=IntType.bipolar())
    design = fewest_luts(graph, 1200)
    engine = design.engines[0]
    window = _window_in_front(design, engine)
    one = WindowStage(window.name, window.node, window.input_type, window.in_shape, 1)
    assert (one.cycles_per_frame, one.steady_cycles_per_frame) == (1152, 1408)
    assert engine.vectors * (engine.mh // 32) * (engine.mw // 1) == 1152
    assert engine.simd > 1
    assert engine.cycles_per_frame <= 1152 and window.steady_cycles_per_frame <= 1152
    assert_fewest_luts(design, 1200)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 4096))
def test_without_a_calibration_the_fewest_lanes_win(mh, mw, target):
    """A resource target the model has no calibration for prices nothing: the folding with
    the fewest lanes that meets the target (PE and SIMD balanced among equals)."""
    graph = random_layer_stack(mw, IntType.uint(4), [(mh, "bipolar", None)], 0)
    options = MappingOptions.create(target_cycles=target, resource_target="ecp5",
                                    folding_objective="luts")
    engine = build_design(graph, options).engines[0]
    fold = engine.folding
    assert mh % fold.pe == 0 and mw % fold.simd == 0
    assert (mh // fold.pe) * (mw // fold.simd) <= target
    assert fold.pe * fold.simd == min(pe * simd for pe in range(1, mh + 1)
                                      for simd in range(1, mw + 1)
                                      if mh % pe == 0 and mw % simd == 0
                                      and (mh // pe) * (mw // simd) <= target)
    assert brute_force(engine, None, target, "ecp5") == fold


def test_the_choice_is_remembered_by_content():
    """The choice is kept for the process by the layer's content: layers built apart but
    equal share it, and a changed weight or threshold makes another layer."""
    def fused_layer():
        graph = fuse_epilogues(random_layer_stack(32, IntType.uint(4),
                                                  [(16, "int4", ("threshold", "uint2"))], 7))
        return graph, graph.compute_nodes()[0]

    (a, node_a), (b, node_b) = fused_layer(), fused_layer()
    assert node_a is not node_b and content_digest(node_a) == content_digest(node_b)
    thresholds = node_b.post.thresholds
    node_b.post.thresholds = thresholds + 1
    assert content_digest(node_a) != content_digest(node_b)
    node_b.post.thresholds = thresholds
    node_b.weight = np.where(node_b.weight == 0, 1, 0) * node_b.weight.max()
    assert content_digest(node_a) != content_digest(node_b)
    for graph in (a, b):
        assert_fewest_luts(fewest_luts(graph, 64), 64)


def test_the_calibrations_coefficients_are_not_negative():
    """The search prunes with the price of an engine's lanes and control as a lower bound of
    its whole price: it holds because no feature costs a negative number of LUTs."""
    calibration = load_calibration("xc7")
    assert min(calibration.lut.values()) >= 0


@pytest.mark.parametrize("target", [16, 64, 256, 1024])
def test_larger_targets_never_cost_more_luts(target):
    """A larger target only adds candidates: every engine's price can only fall."""
    graph = random_layer_stack(64, IntType.uint(4), [(32, "int4", ("threshold", "uint2")),
                                                     (10, "bipolar", None)], 2)
    prices = []
    for t in (target, 2 * target, 4 * target):
        design = fewest_luts(graph, t)
        prices.append([e.estimate_resources().lut for e in design.engines])
    for before, after in pairwise(prices):
        assert all(np.less_equal(after, before))


def test_the_objective_defaults_by_what_chooses_the_folding():
    """A cycle target (given or the default) folds for the fewest lanes; a frame rate or a
    budget for the fewest LUTs; an objective given is kept whatever chooses."""
    assert MappingOptions.create().objective == "lanes"
    assert MappingOptions.create(target_cycles=64).objective == "lanes"
    assert MappingOptions.create(lut_budget=900).objective == "luts"
    assert MappingOptions.create(target_fps=1e4, fmax_mhz=100.0).objective == "luts"
    assert MappingOptions.create(target_fps=1e4, fmax_mhz=100.0,
                                 folding_objective="lanes").objective == "lanes"
    assert MappingOptions.create(target_cycles=64,
                                 folding_objective="luts").objective == "luts"


@pytest.mark.parametrize("value", ["area", "LUTs", 1, ""])
def test_an_unknown_objective_is_a_named_error(value):
    with pytest.raises(OptionError) as info:
        MappingOptions.create(folding_objective=value)
    assert str(info.value) == (f"folding_objective={value!r}: give 'lanes' or 'luts' (or "
                               "leave it unset for the default)")


def test_the_objective_chooses_among_the_same_candidates():
    """binarized-mlp's fc1 shape (128 x 128 bipolar x bipolar, 128 cycles): the fewest lanes
    balance PE and SIMD (16 x 8, the rule as it was); the fewest LUTs need not, and never
    cost more than it at the same cycles."""
    graph = random_layer_stack(64, IntType.bipolar(), [(128, "bipolar", ("threshold",
                                                                          "bipolar")),
                                                       (128, "bipolar", ("threshold",
                                                                          "bipolar"))], 4)
    lanes = build_design(graph, target_cycles=128)
    luts = fewest_luts(graph, 128)
    assert [e.folding for e in lanes.engines] == [Folding(8, 8), Folding(16, 8)]
    assert all(e.cycles_per_frame <= 128 for e in luts.engines)
    for a, b in zip(lanes.engines, luts.engines, strict=True):
        assert b.estimate_resources().lut <= a.estimate_resources().lut
        assert b.pe * b.simd >= a.pe * a.simd
