"""The IR's joins and pools: Add with integer multipliers, Concat, SumPool and GlobalSumPool,
each against a naive loop over Python integers, with derived types and named errors."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.errors import GraphError
from codesign.ir import (
    Add,
    Concat,
    GlobalSumPool,
    Graph,
    IntType,
    MultiThreshold,
    SumPool,
    TensorInfo,
)
from codesign.passes import fuse_epilogues
from codesign.reference import execute_all

TYPES = ["bipolar", "ternary", "uint1", "uint4", "int3", "int6"]


def draw(rng, dtype: IntType, shape):
    if dtype.kind == "bipolar":
        return rng.choice([-1, 1], shape)
    return rng.integers(dtype.min, dtype.max + 1, shape)


def two_input_graph(a_t, b_t, shape, weights, bias):
    add = Add("join", ["a", "b"], ["y"], weights=weights, bias=bias)
    out = IntType.for_range(*add.output_range(a_t, b_t))
    x_t = IntType.int_(8)
    tensors = {"x": TensorInfo("x", (1,), x_t), "a": TensorInfo("a", shape, a_t),
               "b": TensorInfo("b", shape, b_t), "y": TensorInfo("y", shape, out)}
    return Graph("add", "x", "y", tensors, [add]), add, out


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(TYPES), st.sampled_from(TYPES), st.integers(-7, 7).filter(bool),
       st.integers(-7, 7).filter(bool), st.integers(-20, 20), st.integers(0, 10**6))
def test_add_is_the_weighted_integer_sum_with_a_derived_type(ta, tb, wa, wb, bias, seed):
    a_t, b_t = IntType.parse(ta), IntType.parse(tb)
    graph, add, out = two_input_graph(a_t, b_t, (3, 4), (wa, wb), bias)
    add.check(graph)
    rng = np.random.default_rng(seed)
    a, b = draw(rng, a_t, (5, 3, 4)), draw(rng, b_t, (5, 3, 4))
    got = add.execute([a, b], graph)
    naive = [[[wa * int(a[n, i, j]) + wb * int(b[n, i, j]) + bias for j in range(4)]
              for i in range(3)] for n in range(5)]
    assert got.tolist() == naive
    # the type holds every sum of every pair of values, and no narrower type would
    values_a = [-1, 1] if a_t.kind == "bipolar" else range(a_t.min, a_t.max + 1)
    values_b = [-1, 1] if b_t.kind == "bipolar" else range(b_t.min, b_t.max + 1)
    sums = [wa * x + wb * y + bias for x, y in itertools.product(values_a, values_b)]
    assert out == IntType.for_range(min(sums), max(sums))


def test_add_errors_are_named():
    graph, add, _ = two_input_graph(IntType.uint(4), IntType.int_(5), (2, 3), (1, 1), 0)
    graph.tensors["b"] = TensorInfo("b", (2, 4), IntType.int_(5))
    with pytest.raises(GraphError, match=r"Add 'join': shapes \(2, 3\) \+ \(2, 4\) -> \(2, 3\) "
                                         r"must all be equal"):
        add.check(graph)
    graph, add, _ = two_input_graph(IntType.uint(4), IntType.int_(5), (2, 3), (1, 0), 0)
    with pytest.raises(GraphError, match=r"weights \(1, 0\) must be two non-zero integers"):
        add.check(graph)
    graph, add, _ = two_input_graph(IntType.uint(4), IntType.uint(4), (2, 3), (3, 1), 0)
    graph.tensors["y"] = TensorInfo("y", (2, 3), IntType.uint(5))
    with pytest.raises(GraphError, match=r"output type uint5 cannot hold the sums \[0, 60\]"):
        add.check(graph)


def test_add_takes_a_fused_threshold_epilogue():
    graph, add, out = two_input_graph(IntType.uint(2), IntType.int_(3), (4,), (2, 1), 1)
    th = np.array([[-1, 0, 3], [0, 0, 0], [9, 10, 11], [-20, -19, 2]])
    graph.nodes.append(MultiThreshold("th", ["y"], ["z"], thresholds=th,
                                      out_type=IntType.uint(2), out_scale=1, out_bias=0))
    graph.tensors["z"] = TensorInfo("z", (4,), IntType.uint(2))
    graph.output = "z"
    fused = fuse_epilogues(graph)
    assert [n.op_type for n in fused.nodes] == ["Add"] and fused.nodes[0].post is not None
    rng = np.random.default_rng(1)
    a, b = draw(rng, IntType.uint(2), (6, 4)), draw(rng, IntType.int_(3), (6, 4))
    sums = 2 * a + b + 1
    expected = (sums[..., None] >= th).sum(axis=-1)
    assert np.array_equal(fused.nodes[0].execute([a, b], fused), expected)


def test_concat_joins_channels_and_names_mismatches():
    tensors = {"x": TensorInfo("x", (1,), IntType.uint(2)),
               "a": TensorInfo("a", (2, 2, 3), IntType.uint(4)),
               "b": TensorInfo("b", (2, 2, 1), IntType.uint(4)),
               "y": TensorInfo("y", (2, 2, 4), IntType.uint(4))}
    node = Concat("cat", ["a", "b"], ["y"])
    graph = Graph("cat", "x", "y", tensors, [node])
    node.check(graph)
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 16, (3, 2, 2, 3)), rng.integers(0, 16, (3, 2, 2, 1))
    got = node.execute([a, b], graph)
    assert [[[list(got[n, i, j]) == [*a[n, i, j], *b[n, i, j]] for j in range(2)]
             for i in range(2)] for n in range(3)] == [[[True] * 2] * 2] * 3
    graph.tensors["b"] = TensorInfo("b", (2, 2, 1), IntType.int_(4))
    with pytest.raises(GraphError, match=r"Concat 'cat': inputs have types int4, uint4; "
                                         r"concatenated channels must share one type"):
        node.check(graph)
    graph.tensors["b"] = TensorInfo("b", (2, 3, 1), IntType.uint(4))
    with pytest.raises(GraphError, match=r"input shapes \(2, 2, 3\), \(2, 3, 1\) differ in "
                                         r"more than the channels"):
        node.check(graph)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 3), st.integers(0, 3),
       st.sampled_from(TYPES), st.integers(0, 10**6))
def test_sum_pools_against_naive_loops(k, stride, extra_h, extra_w, tname, seed):
    dtype = IntType.parse(tname)
    h, w, c = k + extra_h, k + extra_w, 2
    rng = np.random.default_rng(seed)
    x = draw(rng, dtype, (2, h, w, c))
    pool = SumPool("avg", ["x"], ["y"], kernel=k, stride=stride)
    oh, ow = pool.output_hw(h, w)
    out_t = IntType.for_range(*pool.output_range(dtype))
    graph = Graph("p", "x", "y", {"x": TensorInfo("x", (h, w, c), dtype),
                                  "y": TensorInfo("y", (oh, ow, c), out_t)}, [pool])
    got = execute_all(graph, x)["y"]
    naive = [[[[sum(int(x[n, oy * stride + i, ox * stride + j, ch])
                    for i in range(k) for j in range(k)) for ch in range(c)]
               for ox in range(ow)] for oy in range(oh)] for n in range(2)]
    assert got.tolist() == naive
    assert out_t == IntType.for_range(k * k * dtype.min, k * k * dtype.max)
    gap = GlobalSumPool("gap", ["x"], ["s"])
    g_t = IntType.for_range(*gap.output_range(dtype, h * w))
    graph = Graph("g", "x", "s", {"x": TensorInfo("x", (h, w, c), dtype),
                                  "s": TensorInfo("s", (c,), g_t)}, [gap])
    got = execute_all(graph, x)["s"]
    assert got.tolist() == [[sum(int(v) for v in x[n, :, :, ch].reshape(-1)) for ch in range(c)]
                            for n in range(2)]
