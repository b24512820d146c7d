"""Streamlined integer graph == torch model, on random networks of every layer type."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from codesign.errors import UnsupportedLayerError
from codesign.frontends import from_quant_model
from codesign.ir import (
    FloatMap,
    Graph,
    IntType,
    MatVec,
    MultiThreshold,
    TensorInfo,
)
from codesign.passes import lower_convolutions, run_passes, streamline
from codesign.reference import execute
from netgen import (
    LayerSpec,
    NetSpec,
    assert_matches_torch,
    quant_net_specs,
    random_model_inputs,
    random_quant_model,
)
from quant_models.conv import QuantConv2d, TernaryConv2d
from quant_models.fixed_point import QuantAct, QuantLinear, Requant
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.models import BinarizedMLP
from quant_models.ternary import TernaryLinear


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The threshold search evaluates tiny batches: fastest on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@settings(max_examples=150, deadline=None)
@given(quant_net_specs(), st.integers(0, 2**31))
def test_random_networks_match_torch_on_every_activation(spec, seed):
    """Any mix of layer types, random weights and batch-norm statistics (negative and zero
    gammas, zero variances): the integer graph equals torch element by element."""
    model = random_quant_model(spec, seed)
    graph = run_passes(from_quant_model(model))
    assert_matches_torch(model, graph, random_model_inputs(spec, 48, seed))


def test_narrow_requant_saturates_like_torch():
    """int4 narrow: torch saturates at -7, so must the integer graph."""
    model = nn.Sequential(IntegerInput(4, True), BinaryLinear(6, 3),
                          Requant(1, 0, bits=4, signed=True, narrow_range=True),
                          QuantLinear(3, 2, per_channel=False)).eval()
    graph = run_passes(from_quant_model(model))
    x = np.array([[-8, 7, -8, 7, -8, 7], [-8, -8, -8, -8, -8, -8]])
    hidden = execute(graph, x, keep_all=True)[graph.compute_nodes()[0].output]
    with torch.no_grad():
        expected = model[:3](torch.as_tensor(x, dtype=torch.float32)).numpy()
    assert expected.min() == -7
    assert np.array_equal(hidden, expected)


def test_threshold_tie_is_plus_one():
    """batch-norm exactly 0 at an integer accumulator: sign(0) = +1, so T is that integer."""
    model = BinarizedMLP(4, (1,), 2, input_bits=3, input_signed=False).eval()
    with torch.no_grad():
        model.layers[1].weight.fill_(0.5)          # all +1 weights: acc = sum(x)
        bn = model.layers[2]
        bn.running_mean.fill_(6.0)
        bn.running_var.fill_(1.0 - bn.eps)         # sqrt(var + eps) == 1 exactly
        bn.weight.fill_(1.0)
        bn.bias.fill_(0.0)
    graph = streamline(from_quant_model(model))
    th = next(n for n in graph.nodes if isinstance(n, MultiThreshold))
    assert th.thresholds.tolist() == [[6]]
    x = np.array([[1, 1, 2, 2], [1, 1, 2, 1]])    # sums 6 and 5
    hidden = execute(graph, x, keep_all=True)[th.outputs[0]]
    assert hidden.tolist() == [[1], [-1]]


def test_negative_gamma_flips_weight_row():
    model = BinarizedMLP(4, (2,), 2, input_bits=3, input_signed=True).eval()
    with torch.no_grad():
        model.layers[1].weight.copy_(torch.tensor([[0.5, -0.5, 0.5, 0.5]] * 2))
        bn = model.layers[2]
        bn.weight.copy_(torch.tensor([1.0, -1.0]))
    graph = streamline(from_quant_model(model))
    mv = next(n for n in graph.nodes if isinstance(n, MatVec))
    assert mv.weight.tolist() == [[1, -1, 1, 1], [-1, 1, -1, -1]]


NEGATIVE_GAMMA_LAYERS = {
    # integer weights read uint8 pixels: the int4 dot range [-8*255*K, 7*255*K] is not
    # symmetric even though the narrow weights are -7..7
    "quant-linear-int4-narrow": (lambda: QuantLinear(6, 4, weight_bits=4), "int4", "int4"),
    # unsigned weights negate to -15..0: the row needs a signed type
    "quant-linear-uint4": (lambda: QuantLinear(6, 4, weight_bits=4, weight_signed=False,
                                               narrow_range=False), "uint4", "int5"),
    # TTQ levels {+4, 0, -16}: the negated row holds +16
    "ttq-linear": (lambda: TernaryLinear(6, 4, method="ttq", ratio_frac_bits=2), "int5", "int6"),
    "twn-linear": (lambda: TernaryLinear(6, 4), "ternary", "ternary"),
    "quant-conv-int3": (lambda: QuantConv2d(2, 4, 3, padding=1, weight_bits=3), "int3", "int3"),
    "ttq-depthwise-conv": (lambda: TernaryConv2d(2, 2, 3, padding=1, groups=2,
                                                 method="ttq", ratio_frac_bits=2), "int5", "int6"),
}


@pytest.mark.parametrize("name", sorted(NEGATIVE_GAMMA_LAYERS))
@pytest.mark.parametrize("act", ["sign", "uint3"])
def test_negative_gamma_after_integer_weights(name, act):
    """A decreasing channel of any integer-weight family on uint8 inputs: the row is
    negated, the weight type re-derived from the negated values, and every hidden
    activation still equals torch's."""
    build, before, after = NEGATIVE_GAMMA_LAYERS[name]
    torch.manual_seed(1)
    layer = build()
    spatial = isinstance(layer, nn.Conv2d)
    channels = layer.out_channels if spatial else layer.out_features
    with torch.no_grad():
        if getattr(layer, "method", None) == "ttq":
            layer.wn.copy_(layer.wp * 4)          # R = 16 with f = 2
    rng = np.random.default_rng(0)
    shape = (200, 4, 4, 2) if spatial else (200, 6)
    x = rng.integers(0, 256, shape)
    x[0], x[1] = 0, 255                             # both ends of the accumulator range
    torch_x = torch.as_tensor(x.transpose(0, 3, 1, 2) if spatial else x, dtype=torch.float32)
    bn = (nn.BatchNorm2d if spatial else nn.BatchNorm1d)(channels)
    gamma = torch.tensor([1.0, -1.5, 0.5, -0.25][:channels])
    with torch.no_grad():   # centred on the layer's outputs: no channel is constant
        bn.running_mean.copy_(layer(torch_x).transpose(0, 1).reshape(channels, -1).mean(1))
        bn.running_var.fill_(100.0)
        bn.weight.copy_(gamma)
        bn.bias.copy_(torch.linspace(-0.3, 0.4, channels))
    activation = SignActivation() if act == "sign" else QuantAct(3, init_scale=0.4)
    modules = [IntegerInput(8, False), layer, bn, activation]
    if spatial:
        modules += [nn.Flatten(), QuantLinear(channels * 16, 3, per_channel=False)]
    else:
        modules.append(QuantLinear(channels, 3, per_channel=False))
    model = nn.Sequential(*modules).eval()
    graph = from_quant_model(model, input_shape=(4, 4, 2) if spatial else None)
    lowered = lower_convolutions(graph).compute_nodes()[0]
    assert lowered.weight_type == IntType.parse(before)
    streamlined = run_passes(graph)
    matvec = streamlined.compute_nodes()[0]
    original = lowered.weight
    flips = np.where(gamma.numpy() < 0, -1, 1)
    assert np.array_equal(matvec.weight, original * flips[:, None])
    assert matvec.weight_type == IntType.parse(after)
    hidden = execute(streamlined, x, keep_all=True)[matvec.output]   # thresholds fused
    with torch.no_grad():
        expected = model[:4](torch_x).numpy()
    if spatial:
        expected = expected.transpose(0, 2, 3, 1)
    assert np.array_equal(hidden, expected.astype(np.int64))


def test_negated_row_outside_its_type_widens_weights_and_accumulator():
    """A row holding int4's -8 negates to +8: int5 weights, the accumulator tensor widened
    to the new dot range, thresholds searched over it; exact on every input. A channel
    that is constant wherever its accumulator can be stays constant over the wider range
    (its map only falls at acc <= -200, below the old range's -168)."""
    weight = np.array([[-8, 7, 3], [1, 2, 3], [1, 1, 1]])
    gain = np.array([-1.0, 1.0, -1.0])
    edge = np.array([-10.0, 20.0, -200.0])

    def evaluate(acc):   # +1 where acc <= -10, acc >= 20, acc <= -200
        return np.where(gain * (acc - edge) >= 0, 1, -1)

    tensors = {"x": TensorInfo("x", (3,), IntType.uint(3)),
               "acc": TensorInfo("acc", (3,), IntType.int_(9)),
               "y": TensorInfo("y", (3,), IntType.bipolar())}
    nodes = [MatVec("fc", ["x"], ["acc"], weight=weight, weight_type=IntType.int_(4)),
             FloatMap("act", ["acc"], ["y"], evaluate=evaluate, out_type=IntType.bipolar())]
    graph = Graph("g", "x", "y", tensors, nodes)
    graph.validate()
    result = streamline(graph)
    matvec, thresholds = result.nodes
    assert matvec.weight.tolist() == [[8, -7, -3], [1, 2, 3], [1, 1, 1]]
    assert matvec.weight_type == IntType.int_(5)
    assert result.tensor("acc").dtype == IntType.int_(10)     # [-16*7*3, 15*7*3]
    assert graph.tensor("acc").dtype == IntType.int_(9)       # the input graph is untouched
    assert thresholds.thresholds.tolist() == [[10], [20], [316]]
    x = np.stack(np.meshgrid(*[np.arange(8)] * 3), axis=-1).reshape(-1, 3)
    assert np.array_equal(execute(result, x), evaluate(x @ weight.T))


def test_xnor_layers_use_popcount():
    spec = NetSpec("uint5", (LayerSpec("binary", 16), LayerSpec("binary", 16),
                             LayerSpec("binary", 4, act=None)), features=8, logit_scale=True)
    model = random_quant_model(spec, 3)
    graph = streamline(from_quant_model(model))
    accs = [n.acc for n in graph.nodes if isinstance(n, MatVec)]
    assert accs == ["dot", "xnor_popcount", "xnor_popcount"]
    assert graph.output_scale == pytest.approx(2 * model.layers[-1].scale)
    assert graph.output_offset == pytest.approx(-16 * model.layers[-1].scale)


def test_unsupported_layer_named():
    model = nn.Sequential(IntegerInput(4, False), BinaryLinear(4, 3), nn.Tanh(),
                          BinaryLinear(3, 2), LogitScale()).eval()
    with pytest.raises(UnsupportedLayerError, match=r"layer '2' \(Tanh\).*Supported layers"):
        from_quant_model(model)


def test_training_mode_refused():
    model = BinarizedMLP(4, (3,), 2)
    with pytest.raises(UnsupportedLayerError, match=r"training mode; call \.eval\(\)"):
        from_quant_model(model)


def test_missing_integer_input_named():
    model = nn.Sequential(BinaryLinear(4, 3), SignActivation()).eval()
    with pytest.raises(UnsupportedLayerError, match="must start with IntegerInput"):
        from_quant_model(model)


def test_batchnorm_without_sign_is_refused():
    model = nn.Sequential(IntegerInput(4, False), BinaryLinear(4, 3), nn.BatchNorm1d(3)).eval()
    with pytest.raises(UnsupportedLayerError, match="without a quantizer"):
        streamline(from_quant_model(model))
