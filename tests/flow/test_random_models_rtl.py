"""Random quant_models networks through the whole flow on Verilator, bit-exact.

``compile_model`` -> ``simulate``: every output element equals the integer reference. Each
network is a new Verilator build (cached by content hash), so only a handful of small ones
run, and a failure is reported as found rather than shrunk.
"""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from codesign.flow import compile_model
from codesign.frontends import from_quant_model
from codesign.ir import IntType
from codesign.passes import absorb_flatten, lower_convolutions
from codesign.reference import execute
from codesign.simulate import simulate
from netgen import (
    LayerSpec,
    NetSpec,
    assert_matches_torch,
    quant_net_specs,
    random_model_inputs,
    random_quant_model,
)

NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The threshold search evaluates tiny batches: fastest on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def assert_rtl_matches_reference(design, x: np.ndarray) -> None:
    result = simulate(design, x)
    expected = execute(design.graph, x)
    assert np.array_equal(result.outputs, expected.reshape(len(x), -1))


# uint8 pixels -> narrow int4 convolution -> uint3 codes, max-pool -> unsigned int4 weights
# -> signs -> TTQ scores; the first channel of each batch norm gets a negative gamma
NEGATIVE_GAMMA_CNN = NetSpec(
    "uint8",
    (LayerSpec("int4", 4, kernel=3, padding=1, act="quant", act_type="uint3", pool=2,
               pool_stride=2),
     LayerSpec("uint4", 6, narrow=False, flatten=True, act="sign"),
     LayerSpec("ttq", 3, ratio_frac_bits=2, act=None, per_channel=False)),
    image=(2, 6, 6), logit_scale=True)


def test_negative_gamma_after_integer_weights_rtl():
    model = random_quant_model(NEGATIVE_GAMMA_CNN, seed=5)
    norms = [m for m in model.layers if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    with torch.no_grad():
        for bn in norms:
            bn.weight[0] = -bn.weight[0].abs() - 0.5
    lowered = absorb_flatten(lower_convolutions(from_quant_model(model)))
    before = lowered.compute_nodes()
    design = compile_model(model)
    after = design.graph.compute_nodes()
    for bn, old, new in zip(norms, before, after, strict=False):
        flips = np.where(bn.weight.detach().numpy() < 0, -1, 1)
        assert flips[0] == -1
        assert np.array_equal(new.weight, old.weight * flips[:, None]), new.name
    assert [str(n.weight_type) for n in before[:2]] == ["int4", "uint4"]
    assert [str(n.weight_type) for n in after[:2]] == ["int4", "int5"]
    # the accumulator widens with the weights: [0, 15*7*36] -> [-16*7*36, 15*7*36]
    assert lowered.tensor(before[1].output).dtype == IntType.uint(12)
    assert after[1].accumulator_type(IntType.uint(3)) == IntType.int_(13)
    x = random_model_inputs(NEGATIVE_GAMMA_CNN, 8, 5)
    assert_matches_torch(model, design.graph, x)
    assert_rtl_matches_reference(design, x)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=NO_SHRINK)
@given(quant_net_specs(max_convs=1, max_dense=2),
       st.sampled_from([None, 256]), st.integers(0, 10**6))
def test_random_network_rtl_bit_exact(spec, target_cycles, seed):
    assume(len(spec.layers) >= 2)       # at least two engines in a chain
    model = random_quant_model(spec, seed)
    design = compile_model(model, target_cycles=target_cycles)
    assert_rtl_matches_reference(design, random_model_inputs(spec, 6, seed))


def test_requant_after_binary_layer_on_bipolar_codes_rtl():
    """A bipolar x bipolar layer feeding a Requant keeps the true dot product (the
    requantization cannot absorb 2P - K), so it runs on a dot-product engine."""
    spec = NetSpec("uint3", (LayerSpec("binary", 4, act="sign"),
                             LayerSpec("binary", 3, batch_norm=False, act="requant",
                                       act_type="int8"),
                             LayerSpec("twn", 2, act=None, per_channel=False)), features=6)
    model = random_quant_model(spec, 3)
    design = compile_model(model)
    assert design.graph.compute_nodes()[1].acc == "dot"
    assert [engine.family.name for engine in design.engines] == [
        "binary_weight", "binary_weight", "ternary"]
    x = random_model_inputs(spec, 8, 3)
    assert_matches_torch(model, design.graph, x)
    assert_rtl_matches_reference(design, x)
