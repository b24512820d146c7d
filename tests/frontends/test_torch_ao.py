"""torch.ao int8 import: the integer reference equals torch's quantized kernels on every
element (fbgemm, x86, qnnpack; per-tensor and per-channel weights; zero points; fused and
separate ReLU; ties and saturation).

fbgemm and x86 add pairs of uint8 x int8 products in saturating 16-bit arithmetic (AVX2
``vpmaddubsw``), which is why their default activation observers use 7 bits
(``reduce_range``): with every activation code at most 127 no pair saturates and the kernel
computes exact dot products. Those engines are compared on such frames (every frame the
random models see, bar the rare one whose activations leave the calibrated range).
"""

import numpy as np
import pytest
import torch
import torch.ao.quantization as tq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.ao.nn import quantized as nnq

from codesign.errors import UnsupportedLayerError
from codesign.frontends.torch_ao import import_torch_ao
from codesign.ir import MultiThreshold, Requantize
from codesign.passes import run_passes
from codesign.reference import execute

ENGINES = [e for e in ("fbgemm", "x86", "qnnpack")
           if e in torch.backends.quantized.supported_engines]


@pytest.fixture(autouse=True)
def restore_engine():
    previous = torch.backends.quantized.engine
    yield
    torch.backends.quantized.engine = previous


def converted(layers: list[nn.Module], fuse: list[list[str]], shape, engine: str,
              per_channel: bool, seed: int) -> nn.Module:
    """QuantStub, layers, DeQuantStub: calibrated on random data, converted for engine."""
    torch.backends.quantized.engine = engine
    torch.manual_seed(seed)
    model = nn.Sequential(tq.QuantStub(), *layers, tq.DeQuantStub()).eval()
    if fuse:
        model = tq.fuse_modules(model, fuse)
    qconfig = tq.get_default_qconfig(engine)
    weight = (tq.default_per_channel_weight_observer if per_channel
              else tq.default_weight_observer)
    model.qconfig = tq.QConfig(activation=qconfig.activation, weight=weight)
    tq.prepare(model, inplace=True)
    with torch.no_grad():
        model(torch.randn(256, *shape) * 2 + 0.3)
    tq.convert(model, inplace=True)
    return model


def exact_domain(graph, x_codes: np.ndarray, engine: str) -> np.ndarray:
    """Frames on which the engine's kernels compute exact dot products: every activation code
    a matrix-vector product reads is at most 127 (fbgemm, x86), or all frames (qnnpack)."""
    if engine == "qnnpack":
        return np.ones(len(x_codes), dtype=bool)
    values = execute(graph, x_codes, keep_all=True)
    ok = np.ones(len(x_codes), dtype=bool)
    for node in graph.compute_nodes():
        ok &= values[node.inputs[0]].reshape(len(x_codes), -1).max(axis=1) <= 127
    return ok


def assert_matches_torch(model: nn.Module, shape, seed: int, frames: int = 64):
    net = import_torch_ao(model, shape)
    graph = run_passes(net.graph)
    rng = np.random.default_rng(seed)
    x = (rng.normal(0.3, 2.0, (frames, *shape))).astype(np.float32)
    codes = net.input_codes(x)
    keep = exact_domain(graph, codes, torch.backends.quantized.engine)
    assert keep.mean() >= 0.5
    ours = net.scores(execute(graph, codes[keep]), graph)
    theirs = net.run_source(x[keep]).reshape(int(keep.sum()), -1)
    assert np.array_equal(ours, theirs), int((ours != theirs).sum())
    return graph


@st.composite
def mlp_layers(draw):
    widths = [draw(st.integers(1, 24)) for _ in range(draw(st.integers(2, 4)))]
    layers, fuse = [], []
    index = 1
    for k, (a, b) in enumerate(zip(widths, widths[1:], strict=False)):
        layers.append(nn.Linear(a, b, bias=draw(st.booleans())))
        relu = k < len(widths) - 2 and draw(st.booleans())
        if relu:
            layers.append(nn.ReLU())
            if draw(st.booleans()):
                fuse.append([str(index), str(index + 1)])
            index += 1
        index += 1
    return layers, fuse, (widths[0],)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mlp_layers(), st.sampled_from(ENGINES), st.booleans(), st.integers(0, 10**6))
def test_random_linear_models_match_torch(spec, engine, per_channel, seed):
    layers, fuse, shape = spec
    model = converted(layers, fuse, shape, engine, per_channel, seed)
    assert_matches_torch(model, shape, seed)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ENGINES), st.booleans(), st.integers(1, 3), st.integers(0, 1),
       st.integers(1, 2), st.booleans(), st.integers(0, 10**6))
def test_random_conv_models_match_torch(engine, per_channel, kernel, padding, stride, pool,
                                        seed):
    padding = min(padding, kernel - 1)
    layers = [nn.Conv2d(2, 4, kernel, stride=stride, padding=padding), nn.ReLU()]
    size = (7 + 2 * padding - kernel) // stride + 1
    if pool:
        layers.append(nn.MaxPool2d(2))
        size //= 2
    layers += [nn.Flatten(), nn.Linear(4 * size * size, 3)]
    model = converted(layers, [["1", "2"]], (2, 7, 7), engine, per_channel, seed)
    assert_matches_torch(model, (2, 7, 7), seed, frames=16)


def hand_built(engine: str, x_scale: float, x_zero: int, w_codes: np.ndarray,
               w_scales: np.ndarray, bias: np.ndarray, y_scale: float, y_zero: int,
               relu: bool) -> nn.Module:
    """QuantStub -> Linear -> DeQuantStub with exactly these quantization parameters."""
    torch.backends.quantized.engine = engine
    out, inp = w_codes.shape
    weight = torch._make_per_channel_quantized_tensor(
        torch.as_tensor(w_codes, dtype=torch.int8), torch.as_tensor(w_scales, dtype=torch.float64),
        torch.zeros(out, dtype=torch.int64), 0)
    linear = (torch.ao.nn.intrinsic.quantized.LinearReLU(inp, out) if relu
              else nnq.Linear(inp, out))
    linear.set_weight_bias(weight, torch.as_tensor(bias, dtype=torch.float32))
    linear.scale, linear.zero_point = y_scale, y_zero
    return nn.Sequential(nnq.Quantize(x_scale, x_zero, torch.quint8), linear,
                         nnq.DeQuantize()).eval()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("relu", [False, True])
def test_ties_and_saturation(engine, relu):
    """Power-of-two scales make acc * m land exactly on halves; a small output scale
    saturates: round half to even and the clamp (at the zero point with ReLU) hold."""
    rng = np.random.default_rng(3)
    w = rng.integers(-127, 128, (6, 10))
    w_scales = 2.0 ** rng.integers(-6, -2, 6)
    bias = w_scales * 0.25 * rng.integers(-8, 9, 6)        # half steps of the output grid
    top = 255 if engine == "qnnpack" else 127             # see the module docstring
    model = hand_built(engine, 0.25, 131 * top // 255, w, w_scales, bias, 2.0 ** -1, 120, relu)
    x_zero = 131 * top // 255
    x = ((rng.integers(0, top + 1, (300, 10)) - x_zero) * 0.25).astype(np.float32)
    net = import_torch_ao(model, (10,))
    graph = run_passes(net.graph)
    ours = net.scores(execute(graph, net.input_codes(x)), graph)
    theirs = net.run_source(x)
    assert np.array_equal(ours, theirs)
    # ties happened, and both clamps were reached
    codes = net.input_codes(x) - x_zero
    acc = codes @ w.T
    exact = (acc + bias / (0.25 * w_scales)) * (0.25 * w_scales / 0.5)
    assert np.count_nonzero(exact - np.floor(exact) == 0.5) > 20
    out = np.rint(ours / 0.5).astype(int) + 120
    assert out.max() == 255 and out.min() == (120 if relu else 0)


def test_zero_points_and_requantize_nodes():
    model = converted([nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)], [["1", "2"]], (16,),
                      "qnnpack", True, 5)
    graph = assert_matches_torch(model, (16,), 5)
    posts = [mv.post for mv in graph.compute_nodes()]
    assert all(isinstance(p, (Requantize, MultiThreshold)) for p in posts)
    requants = [p for p in posts if isinstance(p, Requantize)]
    assert requants and any(np.any(p.offsets(p.multiplier.size) != 0) for p in requants)


def test_unsupported_module_is_named():
    model = converted([nn.Linear(4, 3)], [], (4,), ENGINES[0], False, 0)
    model.add_module("extra", nn.Linear(3, 2))       # a float layer after DeQuantStub
    with pytest.raises(UnsupportedLayerError, match=r"'extra' \(Linear\): follows DeQuantStub"):
        import_torch_ao(model, (4,))
    hard = converted([nn.Linear(4, 3)], [], (4,), ENGINES[0], False, 0)
    hard[1] = nnq.Hardswish(0.1, 3)
    with pytest.raises(UnsupportedLayerError, match=r"'1' \(Hardswish\).*Supported: QuantStub"):
        import_torch_ao(hard, (4,))


def test_padding_wider_than_the_kernel_is_named():
    model = converted([nn.Conv2d(1, 2, 1, padding=1)], [], (1, 4, 4), ENGINES[0], False, 0)
    with pytest.raises(UnsupportedLayerError, match=r"'1' \(Conv2d\): .*padding"):
        import_torch_ao(model, (1, 4, 4))


def test_unknown_engine_is_named():
    model = converted([nn.Linear(4, 3)], [], (4,), ENGINES[0], False, 0)
    with pytest.raises(UnsupportedLayerError, match="engine 'onednn'.*fbgemm, x86, qnnpack"):
        import_torch_ao(model, (4,), engine="onednn")
