import numpy as np
import pytest

from codesign.errors import GraphError, InputError
from codesign.ir import FloatMap, Graph, IntType, MatVec, MultiThreshold, TensorInfo
from codesign.reference import execute


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
    with pytest.raises(GraphError, match="run codesign.passes.streamline first"):
        execute(graph, np.ones((1, 4), dtype=int))


def test_validate_catches_narrow_accumulator():
    graph = small_graph()
    graph.tensors["acc"] = TensorInfo("acc", (2,), IntType.int_(2))
    with pytest.raises(GraphError, match="cannot hold the accumulator range"):
        graph.validate()
