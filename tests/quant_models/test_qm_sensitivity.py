"""Sensitivity analysis: curves that start at the reference, proposals by the rule."""

from __future__ import annotations

import torch

from quant_models.data import load_digits_split
from quant_models.sensitivity import (
    SensitivityCurve,
    apply_proposal,
    bits_sensitivity,
    channel_sensitivity,
    proposal_steps,
    propose,
)
from quant_models.structure import layer_sites
from quant_models.train import evaluate
from quant_models.zoo import builtin_example


def test_proposals_take_the_most_compressed_setting_within_the_loss():
    curves = [
        SensitivityCurve("conv0", "channels", (0.0, 0.25, 0.5, 0.75), (0.99, 0.985, 0.97, 0.98)),
        SensitivityCurve("conv1", "channels", (0.0, 0.25, 0.5), (0.99, 0.99, 0.981)),
        SensitivityCurve("conv2", "channels", (0.0, 0.25), (0.95, 0.9)),
        SensitivityCurve("fc3", "weight_bits", (8.0, 4.0, 3.0, 2.0), (0.99, 0.99, 0.98, 0.5)),
    ]
    proposal = propose(curves, 0.99, 0.01)
    # conv0 stops at 0.25: 0.5 misses, so 0.75 does not count although it is within
    assert proposal == {"channels": {"conv0": 0.25, "conv1": 0.5},
                        "weight_bits": {"fc3": 3.0}}
    assert proposal_steps(proposal, epochs=5) == [
        {"technique": "channel_pruning", "criterion": "l1",
         "layers": {"conv0": 0.25, "conv1": 0.5}, "epochs": 5},
        {"technique": "weight_bits", "epochs": 5, "layers": {"fc3": 3}}]


def test_curves_of_a_trained_network():
    model, _ = builtin_example("fixed-point-mlp-w4a4")
    split = load_digits_split()
    x, y = split.x_test[:150], split.y_test[:150]
    reference = evaluate(model, x, y)
    channels = channel_sensitivity(model, x, y, fractions=(0.0, 0.5))
    bits = bits_sensitivity(model, x, y, bits=(4, 2))
    assert [c.layer for c in channels] == ["fc0", "fc1"]
    assert [c.layer for c in bits] == ["fc0", "fc1", "fc2"]
    assert all(c.accuracies[0] == reference for c in (*channels, *bits))   # untouched
    both = apply_proposal(model, {"channels": {"fc0": 0.5}, "weight_bits": {"fc2": 2}},
                          sample=torch.as_tensor(x, dtype=torch.float32))
    fc2 = layer_sites(both)[2].module
    assert fc2.weight_bits == 2 and fc2.integer_weight()[0].abs().max() <= 1
    assert layer_sites(model)[2].module.weight_bits == 4           # the model is untouched
