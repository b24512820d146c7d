"""The seeds' metrics: stored weights and bits of every engine kind against hand counts, the
lane-budget folding against a brute-force search, alpha and beta."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.arch import build_design
from codesign.arch.stage_pool import StagePool
from codesign.bits import range_bits
from codesign.ir import IntType, MatVec, MultiThreshold, Requantize
from codesign.metrics import (
    FLOAT_BITS,
    compression_metrics,
    design_lanes,
    fold_for_lanes,
    lanes_at,
    stored_bits,
    stored_weights,
)
from codesign.passes.lower import fuse_epilogues
from netgen import random_cnn, random_layer_stack
from quant_models.quantize import dense_twin
from quant_models.zoo import builtin_example

SPECS = [(8, "int4", ("threshold", "uint2")), (6, "int3", ("requant", "int4")),
         (4, "ternary", None)]


def _stack(seed, sparsity=0.0):
    return random_layer_stack(12, IntType.uint(3), SPECS, seed, sparsity=sparsity)


def _epilogue_bits(graph, matvec):
    """Hand count: 2^B - 1 thresholds of the accumulator's width (+1) per row, or one
    multiplier per row; nothing for a bare accumulator."""
    post = matvec.post
    lo, hi = matvec.output_range(graph.tensor(matvec.inputs[0]).dtype)
    if isinstance(post, MultiThreshold):
        levels = post.thresholds.shape[1].bit_length()
        return matvec.mh * ((1 << levels) - 1) * range_bits(lo, hi + 1)[0]
    if isinstance(post, Requantize):
        m = np.broadcast_to(np.asarray(post.multiplier).reshape(-1), (matvec.mh,))
        return matvec.mh * range_bits(min(int(m.min()), 0), max(int(m.max()), 0))[0]
    return 0


def test_a_dense_design_stores_every_weight_and_its_epilogue():
    graph = _stack(1)
    design = build_design(graph, folding={"fc0": (2, 3), "fc1": (3, 4), "fc2": (1, 2)})
    fused = {mv.name: mv for mv in fuse_epilogues(graph).nodes if isinstance(mv, MatVec)}
    weight_bits = {"fc0": 4, "fc1": 3, "fc2": 2}
    assert stored_weights(design) == 8 * 12 + 6 * 8 + 4 * 6
    assert stored_bits(design) == {
        "weights": sum(mv.mh * mv.mw * weight_bits[n] for n, mv in fused.items()),
        "epilogue": sum(_epilogue_bits(graph, mv) for mv in fused.values())}
    assert design_lanes(design) == 2 * 3 + 3 * 4 + 1 * 2


def test_a_sparse_design_stores_its_non_zeros_with_indices():
    graph = _stack(2, sparsity=0.6)
    folding = {"fc0": (2, 3), "fc1": (3, 2), "fc2": (2, 2)}
    design = build_design(graph, folding=folding, sparse=["fc0", "fc1", "fc2"])
    fused = {mv.name: mv for mv in fuse_epilogues(graph).nodes if isinstance(mv, MatVec)}
    weight_bits = {"fc0": 4, "fc1": 3, "fc2": 2}
    slots = {}
    for name, mv in fused.items():   # every fold takes its busiest row's ceil(nnz / SIMD)
        pe, simd = folding[name]
        nnz = (mv.weight != 0).sum(axis=1)
        slots[name] = pe * simd * sum(max(1, max(math.ceil(nnz[f * pe + p] / simd)
                                                 for p in range(pe)))
                                      for f in range(mv.mh // pe))
    assert stored_weights(design) == sum(int((mv.weight != 0).sum()) for mv in fused.values())
    assert stored_bits(design) == {
        "weights": sum(slots[n] * weight_bits[n] for n in fused),
        "indices": sum(slots[n] * (fused[n].mw - 1).bit_length() for n in fused),
        "epilogue": sum(_epilogue_bits(graph, mv) for mv in fused.values())}


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_the_lane_budget_folding_is_the_fastest_that_fits(seed):
    """The baseline folds by the fewest lanes: the lanes needed never grow with the target,
    and the bisection finds the smallest target that fits (the slowest if none does)."""
    graph = random_cnn(seed, convs=((4, 3, 1, 1), (6, 3, 1, 0)), weight="int3")
    high = max(mv.mh * mv.mw * int(np.prod(graph.tensor(mv.inputs[0]).shape[:-1]))
               for mv in graph.nodes if isinstance(mv, MatVec))
    pool = StagePool()
    needed = [lanes_at(graph, t, pool) for t in range(1, high + 1)]
    assert all(a >= b for a, b in pairwise(needed))   # never grows
    for lanes in (1, 2, 3, 5, 8, 13, 21, 34, 55, 89):
        fits = [t for t, n in zip(range(1, high + 1), needed, strict=True) if n <= lanes]
        target = fold_for_lanes(graph, lanes)
        assert target == (fits[0] if fits else high)
        assert design_lanes(build_design(graph, target_cycles=target)) == needed[target - 1]


def test_alpha_and_beta_count_float_weights_against_stored_ones():
    graph = _stack(3)
    design = build_design(graph, folding={"fc0": (2, 3), "fc1": (3, 4), "fc2": (1, 2)})
    baseline = torch.nn.Sequential(torch.nn.Linear(12, 40), torch.nn.Conv2d(3, 5, 3))
    record = compression_metrics(design, 10.0, "float-x", baseline, None)
    params = 12 * 40 + 3 * 5 * 9
    kept = 8 * 12 + 6 * 8 + 4 * 6
    assert record["baseline_weights"] == params and record["weights"] == kept
    assert record["alpha"] == params / kept and record["beta"] == (params - kept) / kept
    bits = sum(stored_bits(design).values())
    assert record["alpha_bits"] == FLOAT_BITS * params / bits
    assert record["delta"] is None and record["baseline_design"] is None


def test_the_dense_twin_keeps_the_float_networks_predictions():
    from quant_models.data import load_digits_split

    split = load_digits_split()
    model, _ = builtin_example("float-mlp")
    twin = dense_twin(model, torch.as_tensor(split.x_train, dtype=torch.float32))
    first = twin.layers[1]
    torch.testing.assert_close(first.weight, model.layers[0].weight / 16)
    x = torch.as_tensor(split.x_test, dtype=torch.float32)
    with torch.no_grad():
        agree = (twin(x).argmax(1) == model(x).argmax(1)).float().mean()
    assert float(agree) > 0.97
