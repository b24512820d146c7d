import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codesign.errors import FoldingError, GraphError
from codesign.ir import Graph, IntType, MatVec, MultiThreshold, TensorInfo, dot_range
from codesign.mapping import (
    Folding,
    auto_folding,
    build_design,
    divisors,
    pack_beats,
    unpack_beats,
)


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
    design = build_design(two_layer_graph(), {"fc0": (2, 3), "fc1": (4, 8)})
    assert [layer.family for layer in design.layers] == ["binary_weight", "xnor_popcount"]
    assert [layer.cycles_per_frame for layer in design.layers] == [4 * 4, 1]


def test_bad_folding_lists_valid_values():
    with pytest.raises(FoldingError, match=r"layer 'fc0': PE=3 does not divide MH=8 \(valid PE: "
                                           r"1, 2, 4, 8\)"):
        build_design(two_layer_graph(), {"fc0": (3, 1)})
    with pytest.raises(FoldingError, match=r"SIMD=5 does not divide MW=12 \(valid SIMD: "
                                           r"1, 2, 3, 4, 6, 12\)"):
        build_design(two_layer_graph(), {"fc0": (1, 5)})
    with pytest.raises(FoldingError, match="unknown layer"):
        build_design(two_layer_graph(), {"fc9": (1, 1)})
    with pytest.raises(FoldingError, match="2 layers"):
        build_design(two_layer_graph(), [(1, 1)])


def test_family_override_must_match_types():
    with pytest.raises(GraphError, match="needs 'binary_weight'"):
        build_design(two_layer_graph(), families={"fc0": "xnor_popcount"})


@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 4096))
def test_auto_folding_meets_target_with_fewest_lanes(mh, mw, target):
    fold = auto_folding(mh, mw, target)
    assert mh % fold.pe == 0 and mw % fold.simd == 0
    cycles = (mh // fold.pe) * (mw // fold.simd)
    assert cycles <= max(target, 1)
    for pe in divisors(mh):
        for simd in divisors(mw):
            if (mh // pe) * (mw // simd) <= max(target, 1):
                assert pe * simd >= fold.pe * fold.simd


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
    d = build_design(two_layer_graph(), [Folding(8, 12), (1, 1)])
    assert (d.layers[0].pe, d.layers[0].simd, d.layers[1].pe) == (8, 12, 1)


def _one_layer(wtype, xtype, mw=8, mh=4):
    rng = np.random.default_rng(0)
    values = [-1, 1] if wtype.kind == "bipolar" else [wtype.min, 0, wtype.max]
    node = MatVec("fc0", ["x"], ["a"], weight=rng.choice(values, (mh, mw)), weight_type=wtype)
    lo, hi = node.output_range(xtype)
    tensors = {"x": TensorInfo("x", (mw,), xtype),
               "a": TensorInfo("a", (mh,), IntType.for_range(lo, hi))}
    return Graph("g", "x", "a", tensors, [node])


def test_type_combination_without_engine_is_named():
    with pytest.raises(GraphError, match=r"layer 'fc0': no engine for bipolar weights x "
                                         r"ternary inputs; available: .*bipolar weights x "
                                         r"bipolar inputs"):
        build_design(_one_layer(IntType.bipolar(), IntType.ternary()))


def test_mac_width_limit_is_named():
    with pytest.raises(GraphError, match="int17 weights are wider than the MAC engine's 16 bits"):
        build_design(_one_layer(IntType.int_(17), IntType.uint(4)))
    with pytest.raises(GraphError, match="uint20 inputs are wider"):
        build_design(_one_layer(IntType.int_(8), IntType.uint(20)))


def test_accumulator_too_wide_is_refused():
    # 16x16-bit products over 2^31 inputs cannot be held in a 62-bit accumulator type
    with pytest.raises(GraphError, match="needs 1..62 bits"):
        IntType.for_range(*dot_range(IntType.int_(16), IntType.int_(16), 2**31))


def test_sparse_needs_zero_weights_and_known_layers():
    with pytest.raises(GraphError, match="bipolar weights have no zeros to skip"):
        build_design(_one_layer(IntType.bipolar(), IntType.uint(4)), sparse=["fc0"])
    with pytest.raises(GraphError, match="sparse names unknown layer"):
        build_design(_one_layer(IntType.ternary(), IntType.uint(4)), sparse=["fc7"])
    design = build_design(_one_layer(IntType.ternary(), IntType.uint(4)), sparse=0.0)
    assert design.layers[0].sparse and design.layers[0].family == "ternary"
