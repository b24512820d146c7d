"""A deliberately faulty engine through `codesign run`: exit code 1, a one-line error, and a
summary naming exactly the faulty layer, frame and element.

The expectation comes from the integer reference with the same fault applied to the
weights (one weight of fc1 negated): the first element of fc1's own output that differs,
and the number of differing output scores.
"""

import copy

import numpy as np
import pytest
from pin_runs import FAULT_FIFO_DEPTH, FAULT_LAYER, PIN_FRAMES

from codesign.examples import load_example
from codesign.flow import compile_model
from codesign.reference import execute


@pytest.fixture(scope="module")
def expected(faulty_run):
    """First differing element of fc1's output and the differing scores, from the reference
    with the fault applied."""
    example = load_example("binarized-mlp")
    x = example.x_test[:PIN_FRAMES]
    graph = compile_model(example.model, name=example.name).graph
    faulty_graph = copy.deepcopy(graph)
    row, col = faulty_run.notes["fault"]
    faulty_graph.node(FAULT_LAYER).weight[row, col] *= -1
    good = execute(graph, x, keep_all=True)
    bad = execute(faulty_graph, x, keep_all=True)
    matvec = graph.node(FAULT_LAYER)
    out_tensor = matvec.output                        # thresholds fused into the engine
    for tensor in (graph.node("fc0").output, matvec.inputs[0]):
        assert np.array_equal(good[tensor], bad[tensor])       # the layers before: intact
    frame, element = np.argwhere(good[out_tensor] != bad[out_tensor])[0]
    return {
        "tensor": out_tensor, "frame": int(frame), "element": int(element),
        "reference": int(good[out_tensor][frame, element]),
        "hardware": int(bad[out_tensor][frame, element]),
        "mismatches": int(np.count_nonzero(good[graph.output] != bad[graph.output])),
    }


def test_faulty_engine_fails_the_run_with_one_line_error(faulty_run, expected):
    row, _ = faulty_run.notes["fault"]
    assert expected["element"] == row > 0 and expected["frame"] > 0
    assert expected["mismatches"] > 0
    first = (f"layer 'fc1' (tensor '{expected['tensor']}') frame {expected['frame']} element "
             f"{expected['element']}: reference {expected['reference']}, hardware "
             f"{expected['hardware']}")
    assert faulty_run.code == 1
    errors = [line for line in faulty_run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: hardware differs from the reference: {first} "
                      f"({expected['mismatches']} elements); report in {faulty_run.out}"]
    assert "Traceback" not in faulty_run.stderr
    summary = faulty_run.summary
    assert summary["bit_exact"] is False
    assert summary["mismatches"] == expected["mismatches"]
    assert summary["first_mismatch"] == first
    assert summary["frames"] == PIN_FRAMES


def test_the_run_simulates_the_faulty_design_then_its_prefixes(faulty_run):
    simulated = faulty_run.notes["simulated"]
    assert [names for names, _ in simulated] == [["fc0", "fc1", "fc2"], ["fc0"], ["fc0", "fc1"]]
    assert simulated[0][1] == FAULT_FIFO_DEPTH


def test_mismatch_localisation_keeps_the_fifo_depth(faulty_run):
    depths = [depth for _, depth in faulty_run.notes["simulated"]]
    assert depths == [FAULT_FIFO_DEPTH] * 3
