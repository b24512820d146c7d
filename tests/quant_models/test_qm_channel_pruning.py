"""Channel rankings against outside referees, rounding to foldable counts, the gradual
schedule, and network slimming's penalty."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from netgen import LayerSpec, NetSpec, random_model_inputs, random_quant_model, torch_layout
from quant_models.channel_pruning import (
    ChannelPruningError,
    ChannelPruningSchedule,
    choose_channels,
    gamma_penalty,
    kept_channels,
    masked_channels,
)
from quant_models.pruning import cubic_sparsity
from quant_models.structure import layer_sites


def _net(seed=0):
    spec = NetSpec("uint4", (
        LayerSpec("int4", 6, kernel=3, padding=1, act="quant", act_type="uint3"),
        LayerSpec("int4", 5, kernel=3, padding=0, act="quant", act_type="uint3"),
        LayerSpec("int4", 4, flatten=True, act=None, batch_norm=False, per_channel=False),
    ), image=(2, 5, 5))
    return random_quant_model(spec, seed), spec


def test_kept_channels_round_to_the_nearest_multiple():
    assert [kept_channels(32, f, 4) for f in (0.5, 0.6, 0.7, 0.75, 0.95)] == [16, 12, 12, 8, 4]
    assert [kept_channels(10, f) for f in (0.0, 0.25, 0.5, 0.99)] == [10, 8, 5, 1]
    assert kept_channels(6, 0.5, 8) == 6                # never more than there are
    with pytest.raises(ChannelPruningError, match=r"in \[0, 1\), got 1.0"):
        kept_channels(8, 1.0)


def test_l1_and_bn_scale_rank_like_a_naive_sort():
    model, _ = _net(1)
    site = layer_sites(model)[0]
    weight = site.module.weight.detach().numpy()
    l1 = np.abs(weight).reshape(weight.shape[0], -1).sum(axis=1)
    assert choose_channels(model, "conv0", 3, "l1") == sorted(
        range(6), key=lambda c: (l1[c], c))[:3]
    gamma = np.abs(list(model.layers)[site.norm].weight.detach().numpy())
    assert choose_channels(model, "conv0", 4, "bn_scale") == sorted(
        range(6), key=lambda c: (gamma[c], c))[:4]


def _consumer_output(model, x, removed):
    """The consumer's output with the ``removed`` channels of conv0 zeroed at its input."""
    layers = list(model.layers)
    consumer = layer_sites(model)[0].consumer
    value = torch_layout(x)
    with torch.no_grad():
        for module in layers[:consumer]:
            value = module(value)
        value = value.clone()
        value[:, list(removed)] = 0
        return layers[consumer](value).double()


def test_thinet_picks_the_channel_whose_removal_changes_the_next_layer_least():
    model, spec = _net(2)
    x = random_model_inputs(spec, 64, 2)
    sample = torch_layout(x)
    full = _consumer_output(model, x, ())
    # referee: try every single channel and every pair, by brute force
    change = {c: float((_consumer_output(model, x, (c,)) - full).square().sum())
              for c in range(6)}
    first = choose_channels(model, "conv0", 1, "thinet", sample, samples=10**6)
    assert first == [min(range(6), key=lambda c: (change[c], c))]
    pair = choose_channels(model, "conv0", 2, "thinet", sample, samples=10**6)
    second = {c: float((_consumer_output(model, x, (first[0], c)) - full).square().sum())
              for c in range(6) if c != first[0]}
    assert pair == [first[0], min(second, key=lambda c: (second[c], c))]


def test_the_gradual_schedule_masks_along_the_cubic_curve():
    model, _ = _net(3)
    schedule = ChannelPruningSchedule(model, {"conv0": 4, "conv1": 3}, "l1", start_epoch=2,
                                      num_steps=3, frequency=2)
    seen = []
    for epoch in range(1, 12):
        schedule(epoch)
        seen.append((len(masked_channels(model, "conv0")), len(masked_channels(model, "conv1"))))
    expected = [(round(cubic_sparsity(e, 0, 1, 2, 3, 2) * 4),
                 round(cubic_sparsity(e, 0, 1, 2, 3, 2) * 3)) for e in range(1, 12)]
    assert seen == expected and seen[-1] == (4, 3)
    assert schedule.end_epoch == 8


def test_the_slimming_penalty_is_the_l1_norm_of_the_gammas():
    model, _ = _net(4)
    layers = list(model.layers)
    sites = layer_sites(model)
    penalty = gamma_penalty(model, ["conv0", "conv1"], 0.25)()
    expected = 0.25 * sum(float(layers[s.norm].weight.detach().abs().sum())
                          for s in sites[:2])
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ChannelPruningError, match="layer 'fc2' has no batch norm"):
        gamma_penalty(model, ["fc2"], 0.1)
