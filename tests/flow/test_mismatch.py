"""A hardware fault is caught and named: first differing layer, frame and element."""

import copy

import numpy as np

import codesign.generate as generate
from codesign.ir import IntType
from codesign.mapping import build_design
from codesign.reference import execute
from codesign.simulate import simulate
from codesign.verify import compare, localize_mismatch
from netgen import random_chain, random_inputs


def test_fault_in_middle_layer_is_localized(monkeypatch):
    graph = random_chain([8, 12, 6, 4], IntType.uint(3), seed=21)
    design = build_design(graph, [(4, 2), (3, 4), (2, 3)])
    x = random_inputs(graph, 30, 21)
    true_config = generate.engine_config

    def faulty(layer):
        config = true_config(layer)
        if layer.name == "fc1":
            config.weight_codes = config.weight_codes.copy()
            config.weight_codes[:, :] ^= 1          # every weight of fc1 inverted
        return config

    monkeypatch.setattr(generate, "engine_config", faulty)
    result = simulate(design, x)
    verification = compare(design, x, result.outputs)
    assert not verification.bit_exact and verification.mismatches > 0
    assert verification.first.layer == "fc2"
    located = localize_mismatch(design, x)
    assert located is not None
    assert located.layer == "fc1" and located.tensor == "h1"
    # the same fault applied to the reference predicts exactly where it first shows
    faulty_graph = copy.deepcopy(graph)
    faulty_graph.node("fc1").weight = -faulty_graph.node("fc1").weight
    good = execute(graph, x, keep_all=True)["h1"]
    bad = execute(faulty_graph, x, keep_all=True)["h1"]
    frame, element = np.argwhere(good != bad)[0]
    assert (located.frame, located.element) == (frame, element)
    assert (located.expected, located.got) == (good[frame, element], bad[frame, element])
    assert "layer 'fc1'" in located.describe()


def test_simulate_rejects_bad_inputs_before_building():
    import pytest

    from codesign.errors import InputError

    graph = random_chain([8, 4], IntType.uint(3), seed=1)
    design = build_design(graph, [(1, 1)])
    with pytest.raises(InputError, match=r"expects frames of shape \(8,\)"):
        simulate(design, np.zeros((5, 7), dtype=int))
    with pytest.raises(InputError, match="uint3: accepted integers 0..7; got 0..9"):
        simulate(design, np.full((2, 8), 9) * (np.arange(8) % 2))
