"""QONNX import against the outside referee: ``qonnx.core.onnx_exec.execute_onnx``.

Random QONNX chains of every supported op (power-of-two scales, so the model's float32
arithmetic is exact): the integer reference, streamlined, reproduces every element of the
referee's output through the output edge.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("qonnx")

from codesign.frontends.qonnx import import_qonnx  # noqa: E402
from codesign.passes import run_passes  # noqa: E402
from codesign.reference import execute  # noqa: E402
from qonnxgen import LayerSpec, QonnxSpec, qonnx_specs, random_inputs, random_qonnx  # noqa: E402


def assert_matches_referee(spec: QonnxSpec, seed: int, frames: int = 24):
    model = random_qonnx(spec, seed)
    net = import_qonnx(model, name="random")
    graph = run_passes(net.graph)
    x = random_inputs(spec, frames, seed)
    outputs = execute(graph, net.input_codes(x))
    ours = net.scores(outputs, graph)
    referee = net.run_source(x).reshape(frames, -1)
    assert ours.dtype == np.float32 and referee.dtype == np.float32
    assert np.array_equal(ours, referee), (np.abs(ours - referee).max(), spec)
    return net, graph


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qonnx_specs(max_convs=0, max_dense=3), st.integers(0, 10**6))
def test_random_mlp_matches_execute_onnx(spec, seed):
    assert_matches_referee(spec, seed)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qonnx_specs(max_convs=2, max_dense=1), st.integers(0, 10**6))
def test_random_cnn_matches_execute_onnx(spec, seed):
    assert_matches_referee(spec, seed, frames=8)


@pytest.mark.parametrize("act", ["quant", "bipolar", "multithreshold", "trunc"])
@pytest.mark.parametrize("weight", ["int", "bipolar", "ternary"])
def test_every_quantizer_and_weight_kind(act, weight):
    spec = QonnxSpec((10,), input_bits=3, layers=(
        LayerSpec(6, weight=weight, weight_bits=3, act=act, act_bits=2, batch_norm=act != "trunc",
                  per_channel=act != "trunc"),
        LayerSpec(4, weight="int", weight_bits=5, act=None)))
    assert_matches_referee(spec, 7)
