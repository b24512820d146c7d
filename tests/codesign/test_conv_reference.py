"""Sliding window + matrix-vector and max-pool in the reference == torch's own conv2d and
max_pool2d on the same integers (torch is the outside referee)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.errors import GraphError
from codesign.ir import Graph, IntType, MatVec, MaxPool, SlidingWindow, TensorInfo
from codesign.reference import execute


def conv_graph(h, w, c, cout, k, stride, pads, pad_value, weight, x_type):
    window = SlidingWindow("swg", ["x"], ["win"], kernel=(k, k), stride=(stride, stride),
                           padding=pads, pad_value=pad_value)
    oh, ow = window.output_hw(h, w)
    mv = MatVec("conv", ["win"], ["acc"], weight=weight, weight_type=IntType.int_(4))
    lo, hi = mv.output_range(x_type)
    tensors = {"x": TensorInfo("x", (h, w, c), x_type),
               "win": TensorInfo("win", (oh, ow, k * k * c), x_type),
               "acc": TensorInfo("acc", (oh, ow, cout), IntType.for_range(lo, hi))}
    graph = Graph("conv", "x", "acc", tensors, [window, mv])
    graph.validate()
    return graph


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 5), st.integers(1, 4),
       st.integers(1, 4), st.integers(1, 3), st.data(), st.integers(0, 10**6))
def test_window_matvec_equals_torch_conv2d(h, w, c, cout, k, stride, data, seed):
    pad = data.draw(st.integers(0, k - 1))
    if h + 2 * pad < k or w + 2 * pad < k:
        return
    rng = np.random.default_rng(seed)
    weight_t = rng.integers(-8, 8, (cout, c, k, k))
    # torch layout [Cout, Cin, kh, kw] -> [Cout, kh*kw*Cin] in window order (ky, kx, c)
    weight = weight_t.transpose(0, 2, 3, 1).reshape(cout, k * k * c)
    x_type = IntType.int_(5)
    pad_value = int(data.draw(st.integers(-16, 15)))
    graph = conv_graph(h, w, c, cout, k, stride, (pad, pad, pad, pad), pad_value, weight, x_type)
    x = rng.integers(-16, 16, (3, h, w, c))
    got = execute(graph, x)
    xt = torch.as_tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64)
    xt = F.pad(xt, (pad, pad, pad, pad), value=pad_value)
    expected = F.conv2d(xt, torch.as_tensor(weight_t, dtype=torch.float64), stride=stride)
    assert np.array_equal(got, expected.numpy().transpose(0, 2, 3, 1).astype(np.int64))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 10), st.integers(2, 10), st.integers(1, 4), st.integers(2, 3),
       st.integers(1, 3), st.booleans(), st.integers(0, 10**6))
def test_max_pool_equals_torch(h, w, c, k, stride, bipolar, seed):
    if h < k or w < k:
        return
    rng = np.random.default_rng(seed)
    x_type = IntType.bipolar() if bipolar else IntType.int_(6)
    x = rng.choice([-1, 1], (2, h, w, c)) if bipolar else rng.integers(-32, 32, (2, h, w, c))
    pool = MaxPool("pool", ["x"], ["y"], kernel=k, stride=stride)
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    graph = Graph("pool", "x", "y", {"x": TensorInfo("x", (h, w, c), x_type),
                                     "y": TensorInfo("y", (oh, ow, c), x_type)}, [pool])
    graph.validate()
    expected = F.max_pool2d(torch.as_tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64), k,
                            stride).numpy().transpose(0, 2, 3, 1)
    assert np.array_equal(execute(graph, x), expected.astype(np.int64))


def test_window_errors_are_named():
    weight = np.ones((2, 9 * 1), dtype=np.int64)
    with pytest.raises(GraphError, match=r"feature map 2x2 \(padded 2x2\) is smaller than the "
                                         r"3x3 kernel"):
        conv_graph(2, 2, 1, 2, 3, 1, (0, 0, 0, 0), 0, weight, IntType.int_(4))
    with pytest.raises(GraphError, match="padding .* must be 0..kernel-1"):
        conv_graph(5, 5, 1, 2, 3, 1, (3, 0, 0, 0), 0, weight, IntType.int_(4))
    with pytest.raises(GraphError, match="pad value 0 is not a bipolar value"):
        conv_graph(5, 5, 1, 2, 3, 1, (1, 1, 1, 1), 0, weight, IntType.bipolar())
