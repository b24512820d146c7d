"""Low-rank factorization: the decompositions reconstruct what has exactly their rank, ranks
follow the energy, and a factorized network (inner factors, requantization, outer factor)
lowers to an integer graph that equals torch on every activation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.flow import compile_model
from codesign.ir import MatVec
from netgen import LayerSpec, NetSpec, assert_matches_torch, random_model_inputs, random_quant_model
from quant_models.fixed_point import Requant
from quant_models.lowrank import (
    LowRankError,
    cp_als,
    cp_reconstruct,
    factorize,
    rank_for_energy,
    svd_factors,
    tucker2,
)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), data=st.data())
def test_svd_of_a_rank_r_matrix_at_rank_r_reconstructs_it(rows, cols, data):
    rank = data.draw(st.integers(1, min(rows, cols)), label="rank")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    gen = torch.Generator().manual_seed(seed)
    w = (torch.randn(rows, rank, generator=gen, dtype=torch.float64)
         @ torch.randn(rank, cols, generator=gen, dtype=torch.float64))
    a, b = svd_factors(w, rank)
    assert a.shape == (rows, rank) and b.shape == (rank, cols)
    torch.testing.assert_close(a @ b, w, rtol=1e-9, atol=1e-9)
    assert rank_for_energy(torch.linalg.svdvals(w), 1.0) <= rank


def test_rank_for_energy_keeps_the_asked_fraction_of_squared_singular_values():
    s = torch.tensor([4.0, 2.0, 1.0, 1.0], dtype=torch.float64)    # energies 16, 4, 1, 1
    assert [rank_for_energy(s, e) for e in (0.5, 16 / 22, 0.8, 20 / 22, 0.95, 1.0)] == [
        1, 1, 2, 2, 3, 4]
    with pytest.raises(LowRankError, match=r"an energy fraction must be in \(0, 1\], got 0"):
        rank_for_energy(s, 0)


def test_tucker2_of_a_tensor_of_multilinear_rank_reconstructs_it():
    gen = torch.Generator().manual_seed(1)
    core = torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64)
    u_out = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    u_in = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    w = torch.einsum("abhw,oa,ib->oihw", core, u_out, u_in)
    p_in, g, p_out = tucker2(w, (2, 3))
    assert p_in.shape == (5, 2) and g.shape == (3, 2, 3, 3) and p_out.shape == (7, 3)
    torch.testing.assert_close(torch.einsum("abhw,oa,ib->oihw", g, p_out, p_in), w,
                               rtol=1e-9, atol=1e-9)
    assert tuple(x.shape[1] for x in tucker2(w, energy=1.0)[::2]) == (2, 3)


def test_cp_als_recovers_a_rank_two_tensor():
    gen = torch.Generator().manual_seed(2)
    factors = [torch.randn(n, 2, generator=gen, dtype=torch.float64) for n in (4, 3, 3, 3)]
    w = cp_reconstruct(factors)
    found = cp_als(w, 2, iterations=300)
    torch.testing.assert_close(cp_reconstruct(found), w, rtol=1e-6, atol=1e-6)


def _mlp(seed):
    spec = NetSpec("uint4", (
        LayerSpec("int4", 12, act="quant", act_type="uint3"),
        LayerSpec("int4", 10, act="quant", act_type="uint3"),
        LayerSpec("int4", 5, act=None, batch_norm=False, per_channel=False),
    ), features=9, logit_scale=True)
    return random_quant_model(spec, seed), spec


def _cnn(seed):
    spec = NetSpec("uint4", (
        LayerSpec("int4", 6, kernel=3, padding=1, act="quant", act_type="uint3"),
        LayerSpec("int4", 8, kernel=3, padding=1, act="quant", act_type="uint3"),
        LayerSpec("int4", 4, flatten=True, act=None, batch_norm=False, per_channel=False),
    ), image=(2, 5, 5))
    return random_quant_model(spec, seed), spec


@pytest.mark.parametrize("case", ["svd-hidden", "svd-output", "tucker", "cp"])
def test_a_factorized_network_lowers_to_integers_that_equal_torch(case):
    make, layer, method, rank = {
        "svd-hidden": (_mlp, "fc0", "svd", 4),
        "svd-output": (_mlp, "fc2", "svd", 3),
        "tucker": (_cnn, "conv1", "tucker", (3, 4)),
        "cp": (_cnn, "conv1", "cp", 3),
    }[case]
    model, spec = make(7)
    x = random_model_inputs(spec, 40, 7)
    data = torch.as_tensor(x if x.ndim == 2 else x.transpose(0, 3, 1, 2), dtype=torch.float32)
    net = factorize(model, layer, method, rank=rank, intermediate_bits=6, data=data).eval()
    requants = [m for m in net.layers if isinstance(m, Requant)]
    assert len(requants) == (1 if method == "svd" else 2)
    assert all(rq.bits == 6 and rq.multiplier >= 1 << 15 for rq in requants)   # calibrated
    design = compile_model(net, name=case)
    engines = [node for node in design.graph.nodes if isinstance(node, MatVec)]
    assert len(engines) == len([m for m in model.modules()
                                if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]) + (
        1 if method == "svd" else 2)
    assert_matches_torch(net, design.graph, x)


def test_factorizing_the_wrong_layer_kind_is_a_named_error():
    model, _ = _mlp(1)
    with pytest.raises(LowRankError, match="layer 'fc0': tucker factorizes a QuantConv2d "
                                           "layer, not QuantLinear"):
        factorize(model, "fc0", "tucker", rank=(2, 2))
    with pytest.raises(LowRankError, match=r"layer 'fc1': svd: rank 11 must be a whole "
                                           r"number in 1\.\.10"):
        factorize(model, "fc1", "svd", rank=11)
    assert np.isfinite(float(rank_for_energy(torch.ones(3), 0.9)))
