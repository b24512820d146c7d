"""Streamlined integer graph == torch model, on random binarized networks."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from codesign.errors import UnsupportedLayerError
from codesign.frontends import from_quant_model
from codesign.ir import MatVec, MultiThreshold
from codesign.passes import streamline
from codesign.reference import execute
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.models import BinarizedMLP


def randomize(model: BinarizedMLP, seed: int, gamma_mode: str) -> BinarizedMLP:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, BinaryLinear):
                module.weight.uniform_(-1, 1, generator=gen)
            if isinstance(module, nn.BatchNorm1d):
                c = module.num_features
                module.running_mean.copy_(torch.randn(c, generator=gen) * 8)
                module.running_var.copy_(torch.rand(c, generator=gen) * 30 + 0.1)
                gamma = torch.randn(c, generator=gen)
                if gamma_mode == "positive":
                    gamma = gamma.abs() + 0.05
                elif gamma_mode == "with_zero":
                    gamma[::3] = 0.0
                module.weight.copy_(gamma)
                module.bias.copy_(torch.randn(c, generator=gen))
    return model.eval()


def torch_hidden_signs(model: BinarizedMLP, x: np.ndarray) -> list[np.ndarray]:
    """Every SignActivation output of the torch model, in order."""
    captured: list[np.ndarray] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: captured.append(out.numpy().copy()))
             for m in model.modules() if isinstance(m, SignActivation)]
    with torch.no_grad():
        model(torch.as_tensor(x, dtype=torch.float32))
    for hook in hooks:
        hook.remove()
    return captured


@settings(max_examples=40, deadline=None)
@given(in_features=st.sampled_from([4, 9, 16, 33]),
       hidden=st.lists(st.integers(1, 24), min_size=1, max_size=3),
       classes=st.integers(2, 7), input_bits=st.integers(2, 8), signed=st.booleans(),
       seed=st.integers(0, 2**31), gamma_mode=st.sampled_from(["positive", "any", "with_zero"]))
def test_reference_matches_torch(in_features, hidden, classes, input_bits, signed, seed,
                                 gamma_mode):
    model = randomize(BinarizedMLP(in_features, hidden, classes, input_bits, signed), seed,
                      gamma_mode)
    graph = streamline(from_quant_model(model))
    rng = np.random.default_rng(seed)
    lo, hi = graph.input_info.dtype.min, graph.input_info.dtype.max
    x = rng.integers(lo, hi + 1, size=(64, in_features))
    values = execute(graph, x, keep_all=True)
    thresholds = [n for n in graph.nodes if isinstance(n, MultiThreshold)]
    hidden_torch = torch_hidden_signs(model, x)
    assert len(thresholds) == len(hidden_torch) == len(hidden)
    for node, expected in zip(thresholds, hidden_torch, strict=True):
        assert np.array_equal(values[node.outputs[0]], expected.astype(np.int64)), node.name
    out = values[graph.output]
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32)).numpy()
    assert np.array_equal(np.argmax(out, axis=1), np.argmax(logits, axis=1))
    np.testing.assert_allclose(out * graph.output_scale + graph.output_offset, logits,
                               rtol=1e-5, atol=1e-5)


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


def test_xnor_layers_use_popcount():
    model = randomize(BinarizedMLP(8, (16, 16), 4), 3, "any")
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
