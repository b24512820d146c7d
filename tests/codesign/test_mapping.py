import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codesign.arch import Folding, MappingOptions, build_design
from codesign.errors import FoldingError, GraphError
from codesign.ir import Graph, IntType, MatVec, MultiThreshold, TensorInfo, dot_range
from codesign.streams import pack_beats, unpack_beats


def two_layer_graph(mw=12, mid=8, mh=4, in_type=None):
    in_type = in_type or IntType.uint(4)
    rng = np.random.default_rng(0)
    w0 = rng.choice([-1, 1], (mid, mw))
    w1 = rng.choice([-1, 1], (mh, mid))
    acc0 = IntType.for_range(-mw * in_type.max, mw * in_type.max)
    tensors = {
        "x": TensorInfo("x", (mw,), in_type),
        "a0": TensorInfo("a0", (mid,), acc0),
        "h0": TensorInfo("h0", (mid,), IntType.bipolar()),
        "a1": TensorInfo("a1", (mh,), IntType.for_range(0, mid)),
    }
    nodes = [
        MatVec("fc0", ["x"], ["a0"], weight=w0, weight_type=IntType.bipolar()),
        MultiThreshold("th0", ["a0"], ["h0"], thresholds=rng.integers(-5, 5, (mid, 1))),
        MatVec("fc1", ["h0"], ["a1"], weight=w1, weight_type=IntType.bipolar(),
               acc="xnor_popcount"),
    ]
    return Graph("g", "x", "a1", tensors, nodes)


def test_families_from_types():
    design = build_design(two_layer_graph(), folding={"fc0": (2, 3), "fc1": (4, 8)})
    assert [s.family.name for s in design.stages] == ["binary_weight", "xnor_popcount"]
    assert [s.cycles_per_frame for s in design.stages] == [4 * 4, 1]
    assert design.cycles_per_frame == 16


def test_bad_folding_lists_valid_values():
    with pytest.raises(FoldingError, match=r"layer 'fc0': PE=3 does not divide MH=8 \(valid PE: "
                                           r"1, 2, 4, 8\)"):
        build_design(two_layer_graph(), folding={"fc0": (3, 1)})
    with pytest.raises(FoldingError, match=r"SIMD=5 does not divide MW=12 \(valid SIMD: "
                                           r"1, 2, 3, 4, 6, 12\)"):
        build_design(two_layer_graph(), folding={"fc0": (1, 5)})
    with pytest.raises(FoldingError, match=r"folding names unknown layer\(s\) \['fc9'\]; "
                                           r"layers: fc0, fc1"):
        build_design(two_layer_graph(), folding={"fc9": (1, 1)})


@pytest.mark.parametrize("value", [(1, 2, 3), "1,2,3", (0, 1), "x", 5, (1.5, 2), None])
def test_malformed_folding_names_the_layer(value):
    with pytest.raises(FoldingError, match=r"layer 'fc0': folding .* is not accepted; give "
                                           r"\(PE, SIMD\) as two positive integers"):
        build_design(two_layer_graph(), folding={"fc0": value})


def test_folding_as_text_is_accepted():
    design = build_design(two_layer_graph(), folding={"fc0": "2,3"})
    assert (design.stages[0].pe, design.stages[0].simd) == (2, 3)


def test_family_override_must_run_the_layer_exactly():
    # a bipolar-weight layer over uint4 inputs: the XNOR engine cannot compute it
    with pytest.raises(FoldingError, match=r"layer 'fc0': family 'xnor_popcount' cannot run "
                                           r"bipolar x uint4 .*families that can: "
                                           r"binary_weight, ternary, mac"):
        build_design(two_layer_graph(), families={"fc0": "xnor_popcount"})
    with pytest.raises(FoldingError, match=r"layer 'fc0': unknown PE family 'dsp'; families: "
                                           r"xnor_popcount, binary_weight, ternary, codebook, mac"):
        build_design(two_layer_graph(), families={"fc0": "dsp"})
    with pytest.raises(FoldingError, match=r"families names unknown layer\(s\) \['fcX'\]"):
        build_design(two_layer_graph(), families={"fcX": "mac"})


@pytest.mark.parametrize("family", ["ternary", "mac"])
def test_family_override_runs_a_binary_layer_elsewhere(family):
    design = build_design(two_layer_graph(), families={"fc0": family})
    stage = design.stages[0]
    assert stage.family.name == family
    # bipolar weights stored as 2-bit two's complement (+1 = 01, -1 = 11) on these lanes
    assert stage.weight_storage.bits == 2
    assert set(np.unique(stage.weight_codes()).tolist()) == {1, 3}


def test_xnor_layer_cannot_move_without_dot_accumulation():
    # fc1 accumulates popcounts in the IR; a dot-product engine would compute something else
    with pytest.raises(FoldingError, match=r"family 'mac' cannot run bipolar x bipolar "
                                           r"\(the mac family accumulates dot products, the "
                                           r"layer's IR popcounts"):
        build_design(two_layer_graph(), families={"fc1": "mac"})


@given(st.sampled_from(["bipolar", "int3", "uint5", "int12"]), st.integers(1, 6),
       st.integers(1, 5), st.data())
def test_pack_unpack_roundtrip(name, elems, beats_per_frame, data):
    dtype = IntType.parse(name)
    channels = elems * beats_per_frame
    frames = data.draw(st.integers(1, 4))
    if dtype.kind == "bipolar":
        values = np.array(data.draw(st.lists(st.sampled_from([-1, 1]), min_size=frames * channels,
                                             max_size=frames * channels)))
    else:
        values = np.array(data.draw(st.lists(st.integers(dtype.min, dtype.max),
                                             min_size=frames * channels,
                                             max_size=frames * channels)))
    values = values.reshape(frames, channels)
    beats = pack_beats(values, dtype, elems)
    assert len(beats) == frames * beats_per_frame
    assert all(0 <= b < (1 << (dtype.bits * elems)) for b in beats)
    assert np.array_equal(unpack_beats(beats, dtype, elems, channels), values)


def test_pack_element_order():
    # element j of a beat at bits [j*b, (j+1)*b); earlier elements in earlier beats
    beats = pack_beats(np.array([[1, 2, 3, 4]]), IntType.uint(4), 2)
    assert beats == [0x21, 0x43]


def test_folding_type_accepts_tuple_and_dataclass():
    d = build_design(two_layer_graph(), folding={"fc0": Folding(8, 12), "fc1": (1, 1)})
    assert (d.stages[0].pe, d.stages[0].simd, d.stages[1].pe) == (8, 12, 1)


def test_options_are_hashable_and_normalised():
    a = MappingOptions.create({"fc1": (1, 1), "fc0": "8,12"}, sparse=["b", "a"])
    b = MappingOptions.create({"fc0": (8, 12), "fc1": Folding(1, 1)}, sparse=("a", "b"))
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize("kwargs, message", [
    ({"target_cycles": 0}, r"target_cycles=0: give a whole number of cycles per frame, at "
                           r"least 1"),
    ({"target_cycles": -5}, r"target_cycles=-5"),
    ({"fifo_depth": 0}, r"fifo_depth=0: a FIFO between stages needs at least 2 beats"),
    ({"fifo_depth": 1}, r"fifo_depth=1: a FIFO between stages needs at least 2 beats"),
    ({"sparse": 1.5}, r"sparse=1.5: a weight sparsity must be in 0..1"),
    ({"sparse": "fc0"}, r"sparse='fc0': give a list of layer names or a sparsity"),
])
def test_option_rules(kwargs, message):
    from codesign.errors import OptionError

    with pytest.raises(OptionError, match=message):
        MappingOptions.create(**kwargs)


def _one_layer(wtype, xtype, mw=8, mh=4):
    rng = np.random.default_rng(0)
    values = [-1, 1] if wtype.kind == "bipolar" else [wtype.min, 0, wtype.max]
    node = MatVec("fc0", ["x"], ["a"], weight=rng.choice(values, (mh, mw)), weight_type=wtype)
    lo, hi = node.output_range(xtype)
    tensors = {"x": TensorInfo("x", (mw,), xtype),
               "a": TensorInfo("a", (mh,), IntType.for_range(lo, hi))}
    return Graph("g", "x", "a", tensors, [node])


def test_type_combination_without_engine_is_named():
    with pytest.raises(FoldingError, match=r"layer 'fc0': no engine for int17 weights x uint4 "
                                           r"inputs: the xnor_popcount family takes bipolar "
                                           r"weights x bipolar inputs, not int17 x uint4"):
        build_design(_one_layer(IntType.int_(17), IntType.uint(4)))


def test_bipolar_weights_over_ternary_inputs_add_or_subtract():
    design = build_design(_one_layer(IntType.bipolar(), IntType.ternary()))
    assert design.stages[0].family.name == "binary_weight"


def test_mac_width_limit_is_named():
    with pytest.raises(FoldingError, match="int17 weights are wider than the mac engine's 16 "
                                           "bits; requantize to at most 16 bits"):
        build_design(_one_layer(IntType.int_(17), IntType.uint(4)))
    with pytest.raises(FoldingError, match="uint20 inputs are wider"):
        build_design(_one_layer(IntType.int_(8), IntType.uint(20)))


def test_accumulator_too_wide_is_refused():
    # 16x16-bit products over 2^31 inputs cannot be held in a 62-bit accumulator type
    with pytest.raises(GraphError, match="needs 1..62 bits"):
        IntType.for_range(*dot_range(IntType.int_(16), IntType.int_(16), 2**31))


def test_sparse_needs_zero_weights_and_known_layers():
    with pytest.raises(FoldingError, match="bipolar weights have no zeros to skip"):
        build_design(_one_layer(IntType.bipolar(), IntType.uint(4)), sparse=["fc0"])
    with pytest.raises(FoldingError, match=r"sparse names unknown layer\(s\) \['fc7'\]"):
        build_design(_one_layer(IntType.ternary(), IntType.uint(4)), sparse=["fc7"])
    design = build_design(_one_layer(IntType.ternary(), IntType.uint(4)), sparse=0.0)
    assert design.stages[0].kind == "sparse_mvu" and design.stages[0].family.name == "ternary"


def test_a_two_branch_graph_maps_to_a_fork_two_engines_and_an_add():
    from codesign.ir import Add

    rng = np.random.default_rng(1)
    xt = IntType.uint(3)
    a = MatVec("fa", ["x"], ["ya"], weight=rng.choice([-1, 1], (4, 4)),
               weight_type=IntType.bipolar())
    b = MatVec("fb", ["x"], ["yb"], weight=rng.choice([-1, 1], (4, 4)),
               weight_type=IntType.bipolar())
    acc = IntType.for_range(*a.output_range(xt))
    add = Add("join", ["ya", "yb"], ["z"])
    tensors = {"x": TensorInfo("x", (4,), xt), "ya": TensorInfo("ya", (4,), acc),
               "yb": TensorInfo("yb", (4,), acc),
               "z": TensorInfo("z", (4,), IntType.for_range(2 * acc.min, 2 * acc.max))}
    graph = Graph("fork", "x", "z", tensors, [a, b, add])
    design = build_design(graph)
    assert [(stage.name, stage.kind) for stage in design.stages] == [
        ("x_fork", "fork"), ("fa", "mvu"), ("fb", "mvu"), ("join", "add")]
    assert design.stages[0].consumers == (("fa", 0), ("fb", 0))
    assert design.stages[-1].input_tensors == ["ya", "yb"]


def test_a_branch_that_never_reaches_the_output_is_named():
    from codesign.ir import Add

    rng = np.random.default_rng(1)
    xt = IntType.uint(3)
    a = MatVec("fa", ["x"], ["ya"], weight=rng.choice([-1, 1], (4, 4)),
               weight_type=IntType.bipolar())
    dead = MatVec("fd", ["x"], ["yd"], weight=rng.choice([-1, 1], (4, 4)),
                  weight_type=IntType.bipolar())
    acc = IntType.for_range(*a.output_range(xt))
    add = Add("join", ["ya", "ya"], ["z"])
    tensors = {"x": TensorInfo("x", (4,), xt), "ya": TensorInfo("ya", (4,), acc),
               "yd": TensorInfo("yd", (4,), acc),
               "z": TensorInfo("z", (4,), IntType.for_range(2 * acc.min, 2 * acc.max))}
    graph = Graph("dead", "x", "z", tensors, [a, dead, add])
    with pytest.raises(GraphError, match=r"MatVec 'fd' produces 'yd', which nothing reads \(a "
                                         r"branch of the fork of 'x'\): a branch that does not "
                                         r"reach the graph output can never drain"):
        build_design(graph)
