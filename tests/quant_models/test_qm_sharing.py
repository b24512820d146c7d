"""Weight sharing: k-means with linear initialisation, the centroid gradient, exact integer
forward passes, the codebook the compiler reads, and the named errors for bad codebooks."""

import numpy as np
import pytest
import torch
from torch import nn

from codesign.errors import GraphError
from codesign.frontends import from_quant_model
from codesign.passes import run_passes
from netgen import RandomNet, assert_matches_torch
from quant_models.fixed_point import QuantAct, link_input_scales
from quant_models.layers import IntegerInput, LogitScale
from quant_models.pruning import magnitude_prune_
from quant_models.sharing import (
    SharedConv2d,
    SharedLinear,
    WeightSharingError,
    kmeans_1d,
    share_weights_,
)


def naive_kmeans(values, k):
    """Lloyd's algorithm written out: linear initialisation, nearest (lower on a tie)."""
    lo, hi = min(values), max(values)
    centroids = [lo + (hi - lo) * i / (k - 1) if k > 1 else lo for i in range(k)]
    labels = None
    while True:
        new = [min(range(k), key=lambda j: (abs(v - centroids[j]), j)) for v in values]
        if new == labels:
            return centroids, labels
        labels = new
        for j in range(k):
            members = [v for v, label in zip(values, labels, strict=True) if label == j]
            if members:
                centroids[j] = sum(members) / len(members)


@pytest.mark.parametrize("seed, k", [(0, 3), (1, 7), (2, 15), (3, 4)])
def test_kmeans_matches_the_algorithm_written_out(seed, k):
    values = np.random.default_rng(seed).normal(0, 1, 60).round(3)
    centroids, labels = kmeans_1d(values, k)
    want_c, want_l = naive_kmeans(values.tolist(), k)
    assert labels.tolist() == want_l
    np.testing.assert_allclose(centroids, want_c, rtol=0, atol=1e-12)


def test_empty_clusters_are_left_unused_and_reported():
    layer = SharedLinear(4, 2, index_bits=3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 1.0, 1.0]]))
    report, = share_weights_(nn.Sequential(layer))
    assert (report.clusters, report.empty) == (7, 5)        # only both ends are populated
    values, bits = layer.weight_codebook()
    assert bits == 3 and values == (0, 13, 127)             # step = 1.0 / 127
    assert np.array_equal(np.asarray(values)[layer.codebook_indices()],
                          layer.integer_weight()[0].numpy())


def test_centroid_gradient_is_the_sum_of_its_members_gradients():
    torch.manual_seed(0)
    layer = SharedLinear(12, 5, index_bits=3)
    magnitude_prune_(layer, 0.5)
    share_weights_(nn.Sequential(layer))
    x = torch.randint(0, 8, (9, 12)).float()
    target = torch.randn(9, 5)
    ((layer(x) - target) ** 2).sum().backward()
    # referee: the same forward on a free float weight, its gradient summed per cluster
    w_int, step = layer.integer_weight()
    w_eff = (w_int.float() * step).requires_grad_()
    ((x @ w_eff.T - target) ** 2).sum().backward()
    assign = layer.assignments
    expected = torch.stack([w_eff.grad[assign == k].sum() for k in range(1, 8)])
    torch.testing.assert_close(layer.centroids.grad, expected, rtol=1e-5, atol=1e-4)


def test_forward_is_the_integer_accumulator_times_the_step_and_zeros_stay_zero():
    torch.manual_seed(1)
    layer = SharedLinear(10, 6, index_bits=4)
    magnitude_prune_(layer, 0.6)
    share_weights_(nn.Sequential(layer))
    pruned = layer.weight_mask == 0
    x = torch.randint(0, 16, (5, 10)).float()
    w_int, step = layer.integer_weight()
    assert torch.equal(layer(x), (x @ w_int.float().T) * step)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        layer(x).square().sum().backward()
        optimizer.step()
    after, _ = layer.integer_weight()
    assert bool((after[pruned] == 0).all()) and not torch.equal(after, w_int)


def test_bad_codebooks_are_named_errors():
    layer = SharedLinear(3, 2, index_bits=2)
    assign = torch.ones(2, 3, dtype=torch.int64)
    with pytest.raises(WeightSharingError, match=r"layer fc: a codebook of 5 entries \(zero and "
                                                 r"4 centroids\) does not fit 2-bit indices "
                                                 r"\(at most 4\)"):
        layer.set_codebook([0.1, 0.2, 0.3, 0.4], assign, 0.1, where="fc")
    with pytest.raises(WeightSharingError, match=r"layer fc: centroid 2 = 0.25 is not on the "
                                                 r"fixed-point grid of step 0.1 \(2.5000 steps\)"):
        layer.set_codebook([0.1, 0.25], assign, 0.1, where="fc")
    with pytest.raises(WeightSharingError, match=r"assignments must have the weight's shape "
                                                 r"\(2, 3\) and values 0..2"):
        layer.set_codebook([0.1, 0.2], assign * 3, 0.1, where="fc")
    with pytest.raises(WeightSharingError, match=r"has float weights: cluster it"):
        SharedLinear(3, 2).integer_weight()
    with pytest.raises(WeightSharingError, match=r"index_bits=9: a codebook index has 2..8"):
        SharedLinear(3, 2, index_bits=9)


def _tiny_model(conv: bool, seed: int, negative_gamma: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    if conv:
        first = SharedConv2d(1, 4, 3, padding=1, index_bits=3)
        body = [first, nn.BatchNorm2d(4), QuantAct(3, init_scale=2.0), nn.Flatten(),
                SharedLinear(4 * 16, 5, index_bits=3), LogitScale(1.0)]
    else:
        first = SharedLinear(16, 8, index_bits=3)
        body = [first, nn.BatchNorm1d(8), QuantAct(3, init_scale=2.0),
                SharedLinear(8, 5, index_bits=4), LogitScale(1.0)]
    model = RandomNet([IntegerInput(4, False), *body], (1, 4, 4) if conv else None)
    link_input_scales(model.layers)
    for module in model.layers:
        if isinstance(module, (SharedLinear, SharedConv2d)):
            magnitude_prune_(module, 0.5)
    share_weights_(model)
    with torch.no_grad():
        bn = model.layers[2]
        bn.running_mean.uniform_(-20, 20)
        bn.running_var.uniform_(50, 200)
        if negative_gamma:
            bn.weight.copy_(-bn.weight.abs())
    return model.eval()


@pytest.mark.parametrize("conv", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_shared_network_lowers_with_codebooks_and_equals_torch(conv, seed):
    model = _tiny_model(conv, seed)
    graph = run_passes(from_quant_model(model))
    matvecs = graph.compute_nodes()
    assert all(mv.codebook is not None for mv in matvecs)
    assert matvecs[0].codebook.index_bits == 3
    x = np.random.default_rng(seed).integers(0, 16, (40, *((4, 4, 1) if conv else (16,))))
    assert_matches_torch(model, graph, x)


def test_negative_batch_norm_scale_extends_or_refuses_the_codebook():
    """A decreasing channel's row is negated by streamlining: its values join the table when
    the index width has room (and the network still equals torch), else a named error."""
    model = _tiny_model(False, 0, negative_gamma=True)
    with pytest.raises(GraphError, match=r"MatVec 'fc0'.*: rows negated for a decreasing "
                                         r"activation .* has no room for"):
        run_passes(from_quant_model(model))
    layer = model.layers[1]
    assign = torch.randint(0, 3, layer.weight.shape, generator=torch.Generator().manual_seed(0))
    layer.set_codebook([-0.25, 0.5], assign, 0.25, where="fc0")      # values 0, -1, 2
    graph = run_passes(from_quant_model(model))
    assert graph.compute_nodes()[0].codebook.values == (0, -1, 2, -2, 1)
    x = np.random.default_rng(0).integers(0, 16, (40, 16))
    assert_matches_torch(model, graph, x)
