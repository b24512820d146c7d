"""Magnitude pruning: exact counts and zeros, cumulative masks, the cubic schedule, training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from quant_models.data import load_digits_split
from quant_models.fixed_point import QuantLinear
from quant_models.layers import BinaryLinear
from quant_models.models import BinarizedMLP, FixedPointMLP
from quant_models.pruning import (
    PruningSchedule,
    attach_mask_,
    cubic_sparsity,
    magnitude_prune_,
    prunable_layers,
    sparsity_report,
)
from quant_models.ternary import TernaryLinear
from quant_models.train import train_classifier


def _distinct(layer: nn.Linear, seed: int = 0) -> None:
    """Give ``layer`` distinct, non-zero weights so magnitude ranks are unambiguous."""
    gen = torch.Generator().manual_seed(seed)
    n = layer.weight.numel()
    mags = (torch.randperm(n, generator=gen).to(torch.float32) + 1) / n
    signs = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    with torch.no_grad():
        layer.weight.copy_((mags * signs).view_as(layer.weight))


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.75, 0.9])
def test_layer_scope_exact_counts_and_smallest_weights(sparsity: float) -> None:
    layer = nn.Linear(10, 7)
    _distinct(layer)
    before = layer.weight.detach().abs().clone()
    counts = magnitude_prune_(layer, sparsity)
    k = round(sparsity * 70)
    assert counts == {"": k}
    mask = layer.weight_mask
    assert int((mask == 0).sum()) == k
    assert int((layer.weight == 0).sum()) == k
    if 0 < k < 70:
        assert before[mask == 0].max() < before[mask == 1].min()
    assert sparsity_report(layer) == {"": k / 70}


def test_quantized_layers_prune_integer_weights_to_exact_zeros() -> None:
    for layer in (QuantLinear(12, 8, weight_bits=8), TernaryLinear(12, 8)):
        _distinct(layer, seed=1)
        magnitude_prune_(layer, 0.75)
        w_int, _ = layer.integer_weight()
        assert int((layer.weight_mask == 0).sum()) == 72
        assert not bool(w_int[layer.weight_mask == 0].any())
        x = torch.randint(0, 16, (5, 12)).to(torch.float32)
        y = layer(x)
        y.sum().backward()
        assert not bool(layer.weight.grad[layer.weight_mask == 0].any())


def test_quant_linear_pruned_weights_are_exactly_the_masked_ones() -> None:
    layer = QuantLinear(16, 4, weight_bits=8)
    _distinct(layer, seed=2)
    with torch.no_grad():
        layer.weight.add_(torch.sign(layer.weight))  # |w| in (1, 2]: no rounding zeros
    magnitude_prune_(layer, 0.5)
    w_int, _ = layer.integer_weight()
    assert torch.equal(w_int == 0, layer.weight_mask == 0)
    assert sparsity_report(layer) == {"": 0.5} == sparsity_report(layer, "mask")


def test_ties_are_broken_by_index_and_pruning_is_cumulative() -> None:
    layer = nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.fill_(0.5)
    magnitude_prune_(layer, 0.25)
    assert layer.weight_mask.flatten().tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[9.0, 9.0, 0.1, 3.0], [0.2, 5.0, 6.0, 7.0]]))
    magnitude_prune_(layer, 0.5)
    # the two already pruned stay pruned even though their latent values are now large
    assert layer.weight_mask.flatten().tolist() == [0, 0, 0, 1, 0, 1, 1, 1]
    with pytest.raises(ValueError):
        magnitude_prune_(layer, 0.25)


def test_global_scope_ranks_all_layers_together() -> None:
    model = nn.Sequential(nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]))
        model[2].weight.copy_(torch.tensor([[0.05, 0.9], [0.15, 0.95], [0.25, 0.99]]))
    counts = magnitude_prune_(model, 0.5, scope="global")  # 7 of 14
    assert counts == {"0": 4, "2": 3}
    assert model[0].weight_mask.flatten().tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert model[2].weight_mask.flatten().tolist() == [0, 1, 0, 1, 0, 1]
    report = sparsity_report(model)
    assert report == {"0": 0.5, "2": 0.5}


def test_plain_linear_mask_is_enforced_in_forward() -> None:
    layer = nn.Linear(3, 2)
    _distinct(layer)
    magnitude_prune_(layer, 0.5)
    with torch.no_grad():
        layer.weight.fill_(1.0)  # e.g. an optimizer step moved pruned weights
    layer(torch.ones(1, 3))
    assert torch.equal(layer.weight.detach(), layer.weight_mask)
    assert attach_mask_(layer) is layer.weight_mask


def test_binary_layers_are_not_prunable() -> None:
    with pytest.raises(TypeError):
        magnitude_prune_(BinaryLinear(4, 4), 0.5)
    with pytest.raises(TypeError):
        attach_mask_(BinaryLinear(4, 4))
    model = BinarizedMLP(hidden=(16,))
    assert prunable_layers(model) == []
    with pytest.raises(ValueError):
        magnitude_prune_(model, 0.5)
    assert set(sparsity_report(model).values()) == {0.0}


def test_prune_argument_validation_and_exclude() -> None:
    model = FixedPointMLP(hidden=(16,), weight_bits=8, act_bits=8)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError):
            magnitude_prune_(model, bad)
    with pytest.raises(ValueError):
        magnitude_prune_(model, 0.5, scope="row")  # type: ignore[arg-type]
    counts = magnitude_prune_(model, 0.5, exclude=["layers.4"])
    assert counts == {"layers.1": 512}
    assert sparsity_report(model, "mask") == {"layers.1": 0.5, "layers.4": 0.0}
    with pytest.raises(ValueError):
        sparsity_report(model, "bits")  # type: ignore[arg-type]


def test_cubic_schedule_values() -> None:
    values = [cubic_sparsity(t, 0.0, 0.8, start=3, num_steps=4, frequency=2) for t in range(14)]
    expected = [0, 0, 0, 0, 0, 0.4625, 0.4625, 0.7, 0.7, 0.7875, 0.7875, 0.8, 0.8, 0.8]
    assert values == pytest.approx(expected, abs=1e-12)
    assert cubic_sparsity(5, 0.2, 0.6, start=5, num_steps=3, frequency=1) == pytest.approx(0.2)
    # s_t = s_f + (s_i - s_f) (1 - k/n)^3
    assert cubic_sparsity(6, 0.2, 0.6, 5, 3, 1) == pytest.approx(0.6 - 0.4 * (2 / 3) ** 3)


def test_schedule_prunes_cumulatively_as_a_step_callback() -> None:
    layer = nn.Linear(10, 10)
    _distinct(layer)
    schedule = PruningSchedule(layer, 0.8, start_epoch=2, num_steps=3, frequency=1)
    assert schedule.end_epoch == 5
    for epoch in range(1, 8):
        schedule(epoch)
        assert int((layer.weight_mask == 0).sum()) == round(100 * schedule.sparsity_at(epoch))
    assert [e for e, _ in schedule.history] == [3, 4, 5]
    assert schedule.current == pytest.approx(0.8)
    with pytest.raises(ValueError):
        PruningSchedule(layer, 0.5, initial_sparsity=0.6)
    with pytest.raises(ValueError):
        PruningSchedule(layer, 0.5, num_steps=0)


def test_train_classifier_runs_the_pruning_schedule() -> None:
    split = load_digits_split()
    torch.manual_seed(0)
    model = FixedPointMLP(hidden=(32,), weight_bits=8, act_bits=4)
    schedule = PruningSchedule(model, 0.75, start_epoch=1, num_steps=2, frequency=1)
    seen: list[int] = []

    def callback(epoch: int) -> None:
        seen.append(epoch)
        schedule(epoch)

    report = train_classifier(
        model, split, epochs=4, lr=3e-3, batch_size=128, seed=0, step_callback=callback
    )
    assert seen == [1, 2, 3, 4]
    assert sparsity_report(model, "mask") == {"layers.1": 0.75, "layers.4": 0.75}
    for name, value in sparsity_report(model).items():
        assert value >= 0.75, name
    assert report.test_accuracy > 0.5
