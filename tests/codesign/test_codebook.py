"""Shared weights in the IR and on the codebook family: the table, its errors, family choice,
storage codes, counters and energy (hand-computed from the table, not from the code)."""

import numpy as np
import pytest

from codesign.arch import build_design
from codesign.energy import EnergyTable, stage_energy
from codesign.errors import FoldingError, GraphError
from codesign.ir import Codebook, IntType, MatVec, TensorInfo
from netgen import folds, random_inputs, random_layer_stack, share_weights


def shared_graph(seed=0, sparsity=0.5, bits=3, values="int8"):
    graph = random_layer_stack(8, IntType.uint(4), [(6, "int4", ("threshold", "uint2")),
                                                    (4, "int4", None)], seed,
                               sparsity=sparsity)
    return share_weights(graph, bits, seed, values)


def test_codebook_indices():
    book = Codebook((0, 7, -3, 12), 2)
    assert np.array_equal(book.indices(np.array([[12, 0], [-3, 7]])), [[3, 0], [2, 1]])
    assert Codebook.covering(np.array([5, 0, -2, 5]), 2).values == (0, -2, 5)


@pytest.mark.parametrize("values, bits, message", [
    ((0, 1, 2, 3, 4), 2, r"a codebook of 5 entries does not fit 2-bit indices \(at most 4\)"),
    ((0, 1.5), 2, r"codebook value 1.5 is not an integer: shared values must lie on the "
                  r"layer's fixed-point grid"),
    ((3, 0), 2, r"entry 0 must be the zero weight"),
    ((0, 2, 2), 2, r"repeats a value"),
    ((0, 1), 0, r"indices have 1..16 bits"),
])
def test_bad_codebooks_are_named_errors(values, bits, message):
    with pytest.raises(GraphError, match=message):
        Codebook(values, bits)


def test_weight_outside_its_codebook_names_the_layer():
    graph = shared_graph()
    node = graph.compute_nodes()[0]
    node.weight = node.weight.copy()
    node.weight[0, 0] = 3 if 3 not in node.codebook.values else 5
    with pytest.raises(GraphError, match=r"MatVec 'fc0': weight -?\d+ is not in the codebook"):
        graph.validate()


def test_shared_layers_go_on_the_codebook_family_and_store_indices():
    graph = shared_graph(bits=3)
    design = build_design(graph, folding=folds(graph, [(3, 4), (2, 2)]))
    for stage in design.engines:
        assert stage.family.name == "codebook"
        assert stage.weight_storage == IntType.uint(3)
        book = stage.node.codebook
        codes = stage.weight_codes()
        assert np.array_equal(np.asarray(book.values)[codes], stage.node.weight)
        assert np.array_equal(codes == 0, stage.node.weight == 0)


def test_codebook_family_refuses_unshared_layers_and_mac_runs_shared_ones():
    plain = random_layer_stack(8, IntType.uint(4), [(4, "int4", None)], 0)
    with pytest.raises(FoldingError, match=r"layer 'fc0': family 'codebook' cannot run int4 x "
                                           r"uint4 \(the codebook family stores indices into "
                                           r"a layer's codebook; this layer's weights are not "
                                           r"shared through one\)"):
        build_design(plain, families={"fc0": "codebook"})
    graph = shared_graph()
    design = build_design(graph, families={"fc0": "mac", "fc1": "mac"})
    assert [s.family.name for s in design.engines] == ["mac", "mac"]
    assert design.engines[0].weight_storage == graph.compute_nodes()[0].weight_type


def test_index_width_beyond_the_lane_is_refused():
    graph = random_layer_stack(8, IntType.uint(4), [(4, "int4", None)], 0)
    node = graph.compute_nodes()[0]
    node.codebook = Codebook.covering(node.weight, 9)
    with pytest.raises(FoldingError, match=r"9-bit codebook indices are wider than the "
                                           r"codebook lane's 8 bits"):
        build_design(graph, families={"fc0": "codebook"})
    # by default the layer runs on the cheapest family that computes its values
    assert build_design(graph).engines[0].family.name == "mac"


def test_counters_and_energy_by_hand():
    """One 4x6 layer, PE=2, SIMD=3: every counter and every pJ from first principles."""
    weight = np.array([[0, 5, 0, -3, 5, 0], [7, 0, 0, 0, -3, 5],
                       [0, 0, 0, 0, 0, 0], [5, 5, 7, -3, 0, 7]])
    tensors = {"x": TensorInfo("x", (6,), IntType.uint(4)),
               "y": TensorInfo("y", (4,), IntType.int_(12))}
    node = MatVec("fc0", ["x"], ["y"], weight=weight, weight_type=IntType.int_(4),
                  codebook=Codebook((0, -3, 5, 7), 2))
    from codesign.ir import Graph

    graph = Graph("one", "x", "y", tensors, [node])
    graph.validate()
    stage = build_design(graph, folding={"fc0": (2, 3)}).stages[0]
    x = np.array([[0, 1, 2, 3, 0, 5], [4, 0, 4, 0, 4, 0]])
    counters = stage.predict_counters(2, x)
    zeros = int(np.sum(weight == 0))
    zero_acts = sum(int(np.sum((weight != 0) & (row == 0))) for row in x)
    assert counters["issue"] == 2 * 2 * 2 and counters["lane_ops"] == 8 * 6
    assert counters["zero_weight_lanes"] == 2 * zeros
    assert counters["zero_act_lanes"] == zero_acts
    table = EnergyTable.load()
    energy = stage_energy(stage, {str(k): v for k, v in counters.items()}, table)
    lookups = 8 * 6 - 2 * zeros
    macs = lookups - zero_acts
    # a 4-bit value x 4-bit activation multiplier and an 8-bit adder share per MAC
    mac = 0.2 * (4 / 8) ** 2 + 0.03
    assert energy["lanes"] == pytest.approx(macs * mac)
    # a 2^2:1 multiplexer of the 4-bit value: 2 levels x 4 bits of gate toggles
    assert energy["codebook table"] == pytest.approx(lookups * 2 * 4 * 0.001)
    # the weight memory word: PE x SIMD indices of 2 bits, read once per issue
    assert energy["weight memory"] == pytest.approx(8 * 10.0 * (2 * 3 * 2) / 64)


def test_streamline_keeps_a_negated_shared_row_in_its_codebook():
    from codesign.passes.streamline import _negated_codebook

    node = MatVec("fc0", ["x"], ["y"], weight=np.array([[2, -5]]), weight_type=IntType.int_(4),
                  codebook=Codebook((0, 2, 5), 2))
    assert _negated_codebook(np.array([[-2, 5]]), node).values == (0, 2, 5, -2)
    with pytest.raises(GraphError, match=r"rows negated for a decreasing activation .* need the "
                                         r"values \[-5, -2\]"):
        _negated_codebook(np.array([[-2, -5]]), node)


def test_random_inputs_run_the_reference():
    graph = shared_graph(sparsity=0.9)
    from codesign.reference import execute

    x = random_inputs(graph, 5, 0)
    assert execute(graph, x).shape == (5, 4)
