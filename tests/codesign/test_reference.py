from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.errors import GraphError, InputError
from codesign.ir import Add, FloatMap, Graph, IntType, MatVec, MultiThreshold, TensorInfo
from codesign.reference import execute, execute_all, requantize


def small_graph(acc="dot", thresholds=None):
    w = np.array([[1, -1, 1, 1], [-1, -1, 1, -1]])
    x_type = IntType.bipolar()
    out_type = IntType.for_range(0, 4) if acc == "xnor_popcount" else IntType.int_(4)
    tensors = {"x": TensorInfo("x", (4,), x_type), "acc": TensorInfo("acc", (2,), out_type)}
    nodes = [MatVec("mv", ["x"], ["acc"], weight=w, weight_type=IntType.bipolar(), acc=acc)]
    output = "acc"
    if thresholds is not None:
        tensors["y"] = TensorInfo("y", (2,), IntType.bipolar())
        nodes.append(MultiThreshold("th", ["acc"], ["y"], thresholds=np.array(thresholds)))
        output = "y"
    graph = Graph("g", "x", output, tensors, nodes)
    graph.validate()
    return graph


def test_dot_and_popcount():
    x = np.array([[1, 1, 1, 1], [-1, 1, -1, 1]])
    dot = execute(small_graph("dot"), x)
    assert dot.tolist() == [[2, -2], [-2, -2]]
    pop = execute(small_graph("xnor_popcount"), x)
    assert pop.tolist() == [[3, 1], [1, 1]]  # P = (dot + K) / 2


def test_threshold_tie_goes_up():
    # x >= T: a value equal to the threshold gives +1
    graph = small_graph("dot", thresholds=[[2], [-2]])
    out = execute(graph, np.array([[1, 1, 1, 1], [-1, 1, -1, 1]]))
    assert out.tolist() == [[1, 1], [-1, 1]]


def test_input_errors_name_tensor_and_range():
    graph = small_graph()
    with pytest.raises(InputError, match=r"'x' expects frames of shape \(4,\)"):
        execute(graph, np.ones((3, 5)))
    with pytest.raises(InputError, match="bipolar.*excluding 0"):
        execute(graph, np.array([[1, 0, 1, 1]]))
    with pytest.raises(InputError, match="non-integers"):
        execute(graph, np.array([[1.0, 1.0, 1.0, 0.5]]))


def test_reference_refuses_float_nodes():
    graph = small_graph()
    graph.nodes.append(FloatMap("bn", ["acc"], ["z"], evaluate=lambda a: a,
                                out_type=IntType.int_(4)))
    graph.tensors["z"] = TensorInfo("z", (2,), IntType.int_(4))
    graph.output = "z"
    with pytest.raises(GraphError, match="run the codesign.passes pipeline first"):
        execute(graph, np.ones((1, 4), dtype=int))


def test_validate_catches_narrow_accumulator():
    graph = small_graph()
    graph.tensors["acc"] = TensorInfo("acc", (2,), IntType.int_(2))
    with pytest.raises(GraphError, match="cannot hold the accumulator range"):
        graph.validate()


def test_input_errors_for_empty_and_non_numeric_frames():
    graph = small_graph()
    with pytest.raises(InputError, match=r"input 'x': no frames given; pass at least one frame "
                                         r"of shape \(4,\)"):
        execute(graph, np.ones((0, 4), dtype=int))
    with pytest.raises(InputError, match=r"expected an integer array of shape \[N, 4\], got an "
                                         r"array of <U1 values"):
        execute(graph, np.array([["a", "b", "c", "d"]]))
    with pytest.raises(InputError, match="got an array of object values"):
        execute(graph, np.array([[1, None, 1, 1]], dtype=object))


def two_branch_graph():
    """x -> (A, B) -> A + B, with the nodes listed out of order: a DAG, not a chain."""
    rng = np.random.default_rng(3)
    xt = IntType.int_(3)
    wa, wb = rng.integers(-3, 4, (5, 6)), rng.integers(-1, 2, (5, 6))
    a = MatVec("a", ["x"], ["ya"], weight=wa, weight_type=IntType.int_(3))
    b = MatVec("b", ["x"], ["yb"], weight=wb, weight_type=IntType.ternary())
    ta = IntType.for_range(*a.output_range(xt))
    tb = IntType.for_range(*b.output_range(xt))
    tz = IntType.for_range(ta.min + tb.min, ta.max + tb.max)
    tensors = {"x": TensorInfo("x", (6,), xt), "ya": TensorInfo("ya", (5,), ta),
               "yb": TensorInfo("yb", (5,), tb), "z": TensorInfo("z", (5,), tz)}
    graph = Graph("two-branch", "x", "z", tensors, [Add("join", ["ya", "yb"], ["z"]), b, a])
    graph.validate()
    return graph, wa, wb


def test_reference_executes_a_dag_in_topological_order():
    graph, wa, wb = two_branch_graph()
    assert [n.name for n in graph.ordered_nodes()] == ["b", "a", "join"]
    x = np.random.default_rng(4).integers(-4, 4, (7, 6))
    values = execute_all(graph, x)
    naive = [[sum(int(wa[r, c]) * int(f[c]) for c in range(6))
              + sum(int(wb[r, c]) * int(f[c]) for c in range(6)) for r in range(5)] for f in x]
    assert values["z"].tolist() == naive
    assert set(values) == {"x", "ya", "yb", "z"}


def test_add_output_type_must_hold_the_sums():
    graph, _, _ = two_branch_graph()
    graph.tensors["z"] = TensorInfo("z", (5,), graph.tensors["ya"].dtype)
    with pytest.raises(GraphError, match=r"Add 'join': output type .* cannot hold the sums"):
        graph.validate()


def test_cycles_and_missing_producers_are_named():
    graph, _, _ = two_branch_graph()
    graph.nodes[0].inputs = ["ya", "nowhere"]
    with pytest.raises(GraphError, match=r"Add 'join' reads 'nowhere', which no node produces"):
        graph.validate()
    graph, _, _ = two_branch_graph()
    graph.node("a").inputs = ["z"]
    with pytest.raises(GraphError, match="has a cycle through"):
        graph.validate()


def _requantize_referee(x: int, multiplier: int, shift: int, lo: int, hi: int) -> int:
    """saturate(round_half_even(x * M / 2^s)) in exact rationals (Python rounds a Fraction
    half to even)."""
    return min(max(round(Fraction(x * multiplier, 2**shift)), lo), hi)


@st.composite
def requantize_cases(draw):
    """(x, M, s, out type) with |x * M| < 2^63; about half the cases are exact ties
    x * M = (2k + 1) * 2^(s - 1), the only inputs where half-to-even decides."""
    shift = draw(st.integers(0, 62), label="shift")
    multiplier = draw(st.integers(-(2**32) + 1, 2**32 - 1), label="multiplier")
    limit = (2**63 - 1) // max(abs(multiplier), 1)
    twos = (multiplier & -multiplier).bit_length() - 1 if multiplier else 0
    step = 1 << max(shift - 1 - twos, 0)     # x = odd * step makes x * M an odd * 2^(s-1)
    if multiplier and shift > 0 and twos <= shift - 1 and limit >= step \
            and draw(st.booleans(), label="tie"):
        odd = draw(st.integers(-(limit // step), limit // step).map(lambda k: 2 * (k // 2) + 1)
                   .filter(lambda k: abs(k) * step <= limit), label="odd")
        x = odd * step
        assert (x * multiplier) % (1 << shift) == 1 << (shift - 1)
    else:
        x = draw(st.integers(-limit, limit), label="x")
    out_type = draw(st.sampled_from(["int", "uint"]).flatmap(
        lambda kind: st.integers(2 if kind == "int" else 1, 62).map(
            lambda bits: IntType(kind, bits))), label="out type")
    return x, multiplier, shift, out_type


@settings(max_examples=600, deadline=None)
@given(requantize_cases())
def test_requantize_matches_exact_rational_rounding(case):
    x, multiplier, shift, out_type = case
    got = requantize(np.array([x, -x]), multiplier, shift, out_type.min, out_type.max)
    assert got.tolist() == [_requantize_referee(v, multiplier, shift, out_type.min,
                                                out_type.max) for v in (x, -x)]


@settings(max_examples=100, deadline=None)
@given(st.lists(requantize_cases(), min_size=1, max_size=8))
def test_requantize_per_channel_multipliers(cases):
    """An array of multipliers (one per channel) rounds each element on its own."""
    x = np.array([c[0] for c in cases])
    multipliers = np.array([c[1] for c in cases])
    shift, out_type = cases[0][2], cases[0][3]
    got = requantize(x, multipliers, shift, out_type.min, out_type.max)
    assert got.tolist() == [_requantize_referee(int(v), int(m), shift, out_type.min,
                                                out_type.max) for v, m in zip(x, multipliers,
                                                                               strict=True)]


def test_requantize_ties_go_to_even():
    x = np.array([1, 3, 5, 7, -1, -3, -5, -7])           # x / 2: every one a tie
    assert requantize(x, 1, 1, -100, 100).tolist() == [0, 2, 2, 4, 0, -2, -2, -4]
    assert requantize(x, -3, 2, -100, 100).tolist() == [-1, -2, -4, -5, 1, 2, 4, 5]
    assert requantize(np.array([2**62 - 1]), 1, 62, 0, 1).tolist() == [1]   # just below 1
    assert requantize(np.array([-(2**61)]), 1, 62, -1, 0).tolist() == [0]   # -0.5 -> 0


@settings(max_examples=300, deadline=None)
@given(requantize_cases(), st.integers(-(1 << 40), 1 << 40))
def test_requantize_offset_matches_exact_rational_rounding(case, offset):
    """(x * M + O) / 2^s rounds half to even and saturates like the exact rational."""
    x, multiplier, shift, out_type = case
    x = max(-(1 << 20), min(1 << 20, x))
    multiplier = max(-(1 << 20), min(1 << 20, multiplier))
    got = requantize(np.array([x]), multiplier, shift, out_type.min, out_type.max, offset)
    value = Fraction(x * multiplier + offset, 1 << shift)
    assert got.tolist() == [max(out_type.min, min(out_type.max, round(value)))]
