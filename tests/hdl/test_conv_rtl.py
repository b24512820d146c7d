"""Convolutional networks on Verilator: sliding windows, engines, pooling, bit-exact."""

import numpy as np
import pytest

from codesign.analytical import compare_counters, predict_counters
from codesign.ir import IntType
from codesign.mapping import Layer, build_design
from codesign.reference import execute
from codesign.simulate import simulate
from netgen import random_cnn, random_inputs


@pytest.mark.parametrize("weight, act, folding", [
    ("bipolar", "bipolar", [(2, 1), (3, 2), (3, 2)]),
    ("int3", "uint2", [(4, 1), (6, 4), (1, 6)]),
    ("ternary", "int3", [(1, 1), (2, 2), (3, 1)]),
])
def test_small_cnn_bit_exact(weight, act, folding):
    graph = random_cnn(5, weight=weight, act=act)
    design = build_design(graph, folding)
    assert [stage.kind for stage in design.layers] == ["window", "mvu", "pool", "window",
                                                       "mvu", "mvu"]
    x = random_inputs(graph, 6, 5)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x).reshape(6, -1))
    for stage in design.layers:
        if isinstance(stage, Layer):
            assert compare_counters(predict_counters(stage, 6),
                                    result.layer_counters[stage.name], in_network=True) == {}


def test_bipolar_padding_is_plus_one_in_hardware():
    graph = random_cnn(8, in_type=IntType.bipolar(), weight="bipolar", act="bipolar",
                       convs=((4, 3, 1, 1),), pool=None)
    design = build_design(graph, [(2, 1), (3, 4)])
    x = random_inputs(graph, 4, 8)
    assert np.array_equal(simulate(design, x).outputs, execute(graph, x).reshape(4, -1))
