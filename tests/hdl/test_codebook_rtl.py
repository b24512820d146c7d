"""The codebook engine in RTL: random codebooks, index widths, foldings and sparsity, dense and
zero-skipping, equal to the integer reference with every counter as the analytical model
predicts. Each example is a Verilator build, so the budget is a handful, without shrinking."""

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from codesign.arch import build_design
from codesign.arch.dataflow.folding import divisors
from codesign.ir import IntType
from codesign.reference import execute
from codesign.simulate import simulate
from netgen import folds, random_inputs, random_layer_stack, share_weights

NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=NO_SHRINK)
@given(st.data(), st.integers(1, 16), st.integers(1, 12), st.integers(2, 6),
       st.sampled_from(["int8", "int4", "uint6"]), st.sampled_from(["uint4", "int3", "bipolar"]),
       st.sampled_from([("threshold", "uint2"), ("requant", "int4"), None]),
       st.sampled_from([0.0, 0.5, 0.9]), st.booleans(), st.integers(0, 10**6))
def test_codebook_engine_equals_reference_with_exact_counters(data, mw, mh, bits, values, xname,
                                                              post, sparsity, sparse, seed):
    graph = random_layer_stack(mw, IntType.parse(xname), [(mh, "int4", post)], seed,
                               sparsity=sparsity)
    share_weights(graph, bits, seed, values)
    pe = data.draw(st.sampled_from(divisors(mh)), label="pe")
    simd = data.draw(st.sampled_from(divisors(mw)), label="simd")
    design = build_design(graph, folding=folds(graph, [(pe, simd)]),
                          sparse=["fc0"] if sparse else None)
    layer = design.stages[0]
    assert layer.family.name == "codebook"
    assert layer.kind == ("sparse_mvu" if sparse else "mvu")
    assert layer.weight_storage == IntType.uint(bits)
    frames = 20
    x = random_inputs(graph, frames, seed)
    result = simulate(design, x)
    assert np.array_equal(result.outputs, execute(graph, x))
    assert result.stage_counters[layer.name] == layer.predict_counters(frames, x)
