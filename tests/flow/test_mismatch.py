"""A hardware fault is caught and named: first differing stage, frame and element."""

import copy

import numpy as np
import pytest

from codesign.arch import build_design
from codesign.arch.stages import DenseEngine
from codesign.energy import EnergyTable
from codesign.errors import InputError
from codesign.evaluate import evaluate
from codesign.ir import IntType
from codesign.reference import execute, execute_all
from codesign.simulate import simulate
from netgen import folds, random_chain, random_inputs


def inject_fault(monkeypatch, stage_name):
    """Every weight of one stage inverted in the generated hardware (not in the graph)."""
    true_config = DenseEngine.make_hdl_config

    def faulty(stage):
        config = true_config(stage)
        if stage.name == stage_name:
            config.weight_codes = config.weight_codes.copy() ^ 1
        return config

    monkeypatch.setattr(DenseEngine, "make_hdl_config", faulty)


def test_fault_in_middle_layer_is_localized(monkeypatch):
    graph = random_chain([8, 12, 6, 4], IntType.uint(3), seed=21)
    inject_fault(monkeypatch, "fc1")        # before mapping: stages build their configs there
    # deep FIFOs: localisation must simulate every prefix with the design's own options
    design = build_design(graph, folding=folds(graph, [(4, 2), (3, 4), (2, 3)]), fifo_depth=16)
    x = random_inputs(graph, 30, 21)
    evaluation = evaluate(design, x, execute_all(graph, x), EnergyTable.load())
    verification = evaluation.verification
    assert not verification.bit_exact and verification.mismatches > 0
    located = verification.first
    assert located.stage == "fc1" and located.tensor == "h1"
    # the same fault applied to the reference predicts exactly where it first shows
    faulty_graph = copy.deepcopy(graph)
    faulty_graph.node("fc1").weight = -faulty_graph.node("fc1").weight
    good = execute(graph, x, keep_all=True)["h1"]
    bad = execute(faulty_graph, x, keep_all=True)["h1"]
    frame, element = np.argwhere(good != bad)[0]
    assert (located.frame, located.element) == (frame, element)
    assert (located.expected, located.got) == (good[frame, element], bad[frame, element])
    assert located.describe().startswith(f"layer 'fc1' (tensor 'h1') frame {frame} element "
                                         f"{element}: reference")


def test_simulate_rejects_bad_inputs_before_building():
    graph = random_chain([8, 4], IntType.uint(3), seed=1)
    design = build_design(graph, folding=folds(graph, [(1, 1)]))
    with pytest.raises(InputError, match=r"expects frames of shape \(8,\)"):
        simulate(design, np.zeros((5, 7), dtype=int))
    with pytest.raises(InputError, match="uint3: accepted integers 0..7; got 0..9"):
        simulate(design, np.full((2, 8), 9) * (np.arange(8) % 2))
    with pytest.raises(InputError, match="no frames given"):
        simulate(design, np.zeros((0, 8), dtype=int))
