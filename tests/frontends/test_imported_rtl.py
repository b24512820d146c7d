"""Imported networks in RTL: every output element of the Verilator run equals the integer
reference (QONNX chains of every quantizer, and torch.ao models whose requantizations carry
offsets: zero points and biases). Each design is a Verilator build, so only a handful."""

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("qonnx")

from codesign.flow import compile_graph  # noqa: E402
from codesign.frontends.qonnx import import_qonnx  # noqa: E402
from codesign.frontends.torch_ao import import_torch_ao  # noqa: E402
from codesign.ir import Requantize  # noqa: E402
from codesign.reference import execute  # noqa: E402
from codesign.simulate import simulate  # noqa: E402
from qonnxgen import LayerSpec, QonnxSpec, random_inputs, random_qonnx  # noqa: E402

SPECS = {
    "mlp-every-quantizer": QonnxSpec((12,), input_bits=4, input_signed=True, layers=(
        LayerSpec(8, weight="int", weight_bits=3, act="multithreshold", act_bits=2,
                  batch_norm=True, per_channel=True),
        LayerSpec(8, weight="ternary", act="bipolar", bias=True),
        LayerSpec(6, weight="bipolar", act="quant", act_bits=3, act_signed=True, relu=False,
                  mul_add=True),
        LayerSpec(4, weight="int", weight_bits=5, act=None))),
    "cnn-pool-flatten": QonnxSpec((2, 6, 6), input_bits=5, layers=(
        LayerSpec(4, op="conv", kernel=3, pad=1, weight_bits=4, act="quant", act_bits=2,
                  batch_norm=True, relu=True, pool=True),
        LayerSpec(4, op="conv", kernel=2, weight="ternary", act="trunc", act_bits=2,
                  per_channel=False, flatten=True),
        LayerSpec(3, op="gemm", weight="int", weight_bits=4, act=None))),
}


def assert_rtl_equals_reference(graph, codes):
    design = compile_graph(graph)
    result = simulate(design, codes)
    expected = execute(design.graph, codes)
    assert np.array_equal(result.outputs, expected.reshape(len(codes), -1))
    return design


@pytest.mark.parametrize("name", sorted(SPECS))
def test_qonnx_chain_in_rtl(name):
    spec = SPECS[name]
    net = import_qonnx(random_qonnx(spec, 11), name=name)
    x = random_inputs(spec, 6, 11)
    design = assert_rtl_equals_reference(net.graph, net.input_codes(x))
    ours = net.scores(execute(design.graph, net.input_codes(x)), design.graph)
    assert np.array_equal(ours, net.run_source(x).reshape(6, -1))


def test_torch_ao_requantize_offsets_in_rtl():
    import torch.ao.quantization as tq

    torch.backends.quantized.engine = "qnnpack"
    torch.manual_seed(2)
    model = nn.Sequential(tq.QuantStub(), nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 5),
                          tq.DeQuantStub()).eval()
    model = tq.fuse_modules(model, [["1", "2"]])
    model.qconfig = tq.get_default_qconfig("qnnpack")
    tq.prepare(model, inplace=True)
    model(torch.randn(128, 1, 6, 6))
    tq.convert(model, inplace=True)
    net = import_torch_ao(model, (1, 6, 6))
    x = np.random.default_rng(0).normal(0, 1.2, (6, 1, 6, 6)).astype(np.float32)
    design = assert_rtl_equals_reference(net.graph, net.input_codes(x))
    posts = [mv.post for mv in design.graph.compute_nodes()]
    assert any(isinstance(p, Requantize) and np.any(p.offsets(p.multiplier.size) != 0)
               for p in posts)
    ours = net.scores(execute(design.graph, net.input_codes(x)), design.graph)
    assert np.array_equal(ours, net.run_source(x).reshape(6, -1))
