"""Brevitas networks exported with Brevitas's QONNX export and imported: the integer
reference equals ``execute_onnx`` on every element, for every layer kind (QuantLinear,
QuantConv2d, QuantReLU, QuantIdentity; 1..8 bits, binary and ternary weights, per-tensor and
per-channel scales), and the shipped examples on the whole digits test split."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

pytest.importorskip("brevitas")
pytest.importorskip("qonnx")

from codesign.examples import IMPORTED_EXAMPLES, load_example  # noqa: E402
from codesign.frontends.qonnx import import_qonnx  # noqa: E402
from codesign.passes import run_passes  # noqa: E402
from codesign.reference import execute  # noqa: E402


def quantizers():
    import brevitas.quant as q

    return q


class EveryLayerMLP(nn.Module):
    """One of each: int4 signed input, 3-bit per-channel weights, 2-bit ReLU, binary weights
    and activations, ternary weights, 8-bit activations and weights."""

    def __init__(self):
        import brevitas.nn as qnn

        q = quantizers()
        super().__init__()
        self.layers = nn.Sequential(
            qnn.QuantIdentity(act_quant=q.Int8ActPerTensorFixedPoint, bit_width=4),
            qnn.QuantLinear(12, 10, bias=False, weight_quant=q.Int8WeightPerTensorFixedPoint,
                            weight_bit_width=3, weight_scaling_per_output_channel=True),
            nn.BatchNorm1d(10),
            qnn.QuantReLU(act_quant=q.Uint8ActPerTensorFixedPoint, bit_width=2),
            qnn.QuantLinear(10, 9, bias=False, weight_quant=q.SignedBinaryWeightPerTensorConst,
                            weight_scaling_const=0.25),
            nn.BatchNorm1d(9),
            qnn.QuantIdentity(act_quant=q.SignedBinaryActPerTensorConst),
            qnn.QuantLinear(9, 8, bias=True, weight_quant=q.SignedTernaryWeightPerTensorConst,
                            weight_scaling_const=0.5),
            qnn.QuantIdentity(act_quant=q.Int8ActPerTensorFixedPoint, bit_width=8),
            qnn.QuantLinear(8, 5, bias=False, weight_quant=q.Int8WeightPerTensorFixedPoint,
                            weight_bit_width=8))

    def forward(self, x):
        return self.layers(x)


class EveryLayerCNN(nn.Module):
    """QuantConv2d (4-bit per-channel, padded; ternary), QuantReLU 3-bit, max-pool,
    QuantIdentity 5-bit, flatten, QuantLinear 6-bit."""

    def __init__(self):
        import brevitas.nn as qnn

        q = quantizers()
        super().__init__()
        self.layers = nn.Sequential(
            qnn.QuantIdentity(act_quant=q.Uint8ActPerTensorFixedPoint, bit_width=6),
            qnn.QuantConv2d(2, 6, 3, padding=1, bias=False,
                            weight_quant=q.Int8WeightPerTensorFixedPoint, weight_bit_width=4,
                            weight_scaling_per_output_channel=True),
            nn.BatchNorm2d(6),
            qnn.QuantReLU(act_quant=q.Uint8ActPerTensorFixedPoint, bit_width=3),
            nn.MaxPool2d(2),
            qnn.QuantConv2d(6, 4, 2, bias=False, weight_quant=q.SignedTernaryWeightPerTensorConst,
                            weight_scaling_const=0.25),
            nn.BatchNorm2d(4),
            qnn.QuantIdentity(act_quant=q.Int8ActPerTensorFixedPoint, bit_width=5),
            nn.Flatten(),
            qnn.QuantLinear(4, 3, bias=False,
                            weight_quant=q.Int8WeightPerTensorFixedPoint, weight_bit_width=6))

    def forward(self, x):
        return self.layers(x)


def exported(module: nn.Module, shape, path):
    """Random weights and batch-norm statistics, calibrated, exported with Brevitas."""
    from brevitas.export import export_qonnx

    torch.manual_seed(0)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(-1.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            elif hasattr(m, "weight") and m.weight is not None and m.weight.dim() > 1:
                m.weight.normal_(0, 0.5)
        module.train()
        for _ in range(8):                          # statistics-based scales settle
            module(torch.randn(32, *shape) * 2)
    module.eval()
    export_qonnx(module, args=torch.zeros(1, *shape), export_path=str(path))
    return import_qonnx(path)


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("brevitas")
    return {"mlp": (exported(EveryLayerMLP(), (12,), folder / "mlp.onnx"), (12,)),
            "cnn": (exported(EveryLayerCNN(), (2, 5, 5), folder / "cnn.onnx"), (2, 5, 5))}


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["mlp", "cnn"]), st.floats(0.5, 4), st.integers(0, 10**6))
def test_every_brevitas_layer_matches_execute_onnx(networks, kind, spread, seed):
    net, shape = networks[kind]
    graph = run_passes(net.graph)
    x = (np.random.default_rng(seed).normal(0, spread, (32, *shape))).astype(np.float32)
    ours = net.scores(execute(graph, net.input_codes(x)), graph)
    assert np.array_equal(ours, net.run_source(x).reshape(32, -1))


def test_layer_kinds_became_their_ir_types(networks):
    graph = run_passes(networks["mlp"][0].graph)
    assert [str(mv.weight_type) for mv in graph.compute_nodes()] == [
        "int3", "bipolar", "ternary", "int8"]
    assert str(graph.input_info.dtype) == "int4"
    cnn = run_passes(networks["cnn"][0].graph)
    assert [n.op_type for n in cnn.ordered_nodes()] == [
        "SlidingWindow", "MatVec", "MaxPool", "SlidingWindow", "MatVec", "Reshape", "MatVec"]


@pytest.mark.parametrize("name", sorted(IMPORTED_EXAMPLES))
def test_shipped_examples_match_execute_onnx_on_the_test_split(name):
    example = load_example(name)
    net = example.imported
    graph = run_passes(net.graph)
    ours = net.scores(execute(graph, net.input_codes(example.x_test)), graph)
    theirs = net.run_source(example.x_test).reshape(len(example.x_test), -1)
    assert len(example.x_test) == 450 and np.array_equal(ours, theirs)
    accuracy = float(np.mean(np.argmax(ours, axis=1) == example.y_test))
    assert accuracy > 0.93
