"""Networks that are not chains through the frontend and the passes: forks, residual joins,
concatenation and average pooling; reference == torch on every hidden activation of random
blocks; a user's own forward traced; bad input named."""

import numpy as np
import pytest
import torch
from blocknets import (
    assert_block_net_matches_torch,
    block_inputs,
    block_net_specs,
    random_block_net,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from codesign.errors import GraphError, UnsupportedLayerError
from codesign.frontends import from_quant_model
from codesign.ir import Add, Concat, GlobalSumPool, MatVec, SumPool
from codesign.passes import run_passes
from quant_models.conv import BinaryConv2d, QuantConv2d
from quant_models.fixed_point import QuantAct
from quant_models.layers import IntegerInput, SignActivation
from quant_models.pooling import QuantGlobalAvgPool2d
from quant_models.residual import BinaryResidualBlock, ResidualAdd


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The threshold search evaluates tiny batches: fastest on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block_net_specs(), st.integers(0, 10**6))
def test_random_blocks_equal_torch_on_every_hidden_activation(spec, seed):
    model = random_block_net(spec, seed)
    graph = run_passes(from_quant_model(model))
    compared = assert_block_net_matches_torch(model, graph, block_inputs(spec, 24, seed))
    assert compared >= 2             # the stem's codes, and every block's


class UserResidual(nn.Module):
    """A user's own network: a 1x1 branch added to its input with ``+``, a second branch on
    the sum, both branches' codes concatenated and summed over the map."""

    def __init__(self):
        super().__init__()
        self.input_shape = (2, 3, 3)
        self.inp = IntegerInput(3, False)
        self.conv = QuantConv2d(2, 2, 1, weight_bits=3)
        self.bn = nn.BatchNorm2d(2)
        self.act = QuantAct(3, init_scale=0.7)
        self.conv2 = QuantConv2d(2, 3, 1, weight_bits=3)
        self.bn2 = nn.BatchNorm2d(3)
        self.act2 = QuantAct(3, init_scale=1.5)
        self.pool = QuantGlobalAvgPool2d(9)

    def forward(self, x):
        x = self.inp(x)
        y = self.act(self.bn(self.conv(x)))
        z = self.act2(self.bn2(self.conv2(x + y)))
        return self.pool(torch.cat([y, z], 1))


def test_a_users_forward_is_traced_into_a_dag():
    torch.manual_seed(0)
    model = UserResidual().eval()
    graph = run_passes(from_quant_model(model))
    kinds = [type(n) for n in graph.ordered_nodes()]
    assert {Add, Concat, GlobalSumPool} <= set(kinds)
    add = next(n for n in graph.nodes if isinstance(n, Add))
    assert add.weights == (1, 1) and add.inputs[0] == "input"
    x = np.random.default_rng(0).integers(0, 8, (20, 3, 3, 2))
    with torch.no_grad():
        out = model(torch.as_tensor(x.transpose(0, 3, 1, 2), dtype=torch.float32)).numpy()
    from codesign.reference import execute

    assert np.array_equal(execute(graph, x), out)


def test_binary_join_absorbs_the_popcount():
    """acc + w * x after an XNOR layer: the layer accumulates P and the join computes
    2P - K + w * x, its multiplier doubled and K folded into its bias."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_shape = (1, 4, 4)
            self.inp = IntegerInput(2, False)
            self.stem = BinaryConv2d(1, 2, 3, padding=1, pad_value=0)
            self.bn = nn.BatchNorm2d(2)
            self.sign = SignActivation()
            self.block = BinaryResidualBlock(2, shortcut_weight=3)

        def forward(self, x):
            return self.block(self.sign(self.bn(self.stem(self.inp(x)))))

    torch.manual_seed(3)
    model = Net().eval()
    graph = run_passes(from_quant_model(model))
    add = next(n for n in graph.nodes if isinstance(n, Add))
    conv2 = graph.producer(add.inputs[1])
    assert isinstance(conv2, MatVec) and conv2.acc == "xnor_popcount"
    assert add.weights == (3, 2) and add.bias == -conv2.mw
    x = np.random.default_rng(1).integers(0, 4, (16, 4, 4, 1))
    with torch.no_grad():
        out = model(torch.as_tensor(x.transpose(0, 3, 1, 2), dtype=torch.float32))
    from codesign.reference import execute

    assert np.array_equal(execute(graph, x), out.numpy().transpose(0, 2, 3, 1))


def test_untraceable_forward_is_named():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_shape = (1, 3, 3)
            self.inp = IntegerInput(3, False)

        def forward(self, x):
            x = self.inp(x)
            return x if x.sum() > 0 else -x

    with pytest.raises(UnsupportedLayerError, match=r"the forward of Branchy cannot be traced "
                                                    r"by torch.fx \(TraceError: .*\); write it "
                                                    r"without data-dependent control flow"):
        from_quant_model(Branchy().eval())


def test_bad_joins_are_named():
    class Joins(nn.Module):
        def __init__(self, kind):
            super().__init__()
            self.kind = kind
            self.input_shape = (2, 3, 3)
            self.inp = IntegerInput(3, False)
            self.conv = QuantConv2d(2, 2, 3, weight_bits=3)
            self.bn = nn.BatchNorm2d(2)
            self.act = QuantAct(3, signed=True, init_scale=0.5)
            self.add = ResidualAdd()

        def forward(self, x):
            x = self.inp(x)
            if self.kind == "shapes":
                return self.add(x, self.act(self.bn(self.conv(x))))
            if self.kind == "function":
                padded = nn.functional.pad(self.conv(x), (1, 1, 1, 1))
                return torch.cat([x, self.act(self.bn(padded))], 1)
            return self.add(x, self.bn(x))

    with pytest.raises(UnsupportedLayerError, match=r"layer 'add' \(ResidualAdd\) cannot be "
                                                    r"lowered: adds tensors of shapes \(3, 3, 2\)"
                                                    r" \('inp'\) and \(1, 1, 2\) \('act'\)"):
        from_quant_model(Joins("shapes").eval())
    with pytest.raises(UnsupportedLayerError, match=r"'pad' \(pad\) cannot be lowered"):
        from_quant_model(Joins("function").eval())
    with pytest.raises(UnsupportedLayerError, match=r"'bn' \(BatchNorm2d\) cannot be lowered: "
                                                    r"only follows an integer accumulator"):
        from_quant_model(Joins("float").eval())


def test_concat_of_different_types_is_named():
    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_shape = (1, 2, 2)
            self.inp = IntegerInput(3, False)
            self.conv = QuantConv2d(1, 1, 1, weight_bits=3)
            self.act = QuantAct(2, init_scale=0.5)

        def forward(self, x):
            x = self.inp(x)
            return torch.cat([x, self.act(self.conv(x))], 1)

    with pytest.raises(UnsupportedLayerError, match=r"concatenates codes of different types "
                                                    r"\(uint3 from 'inp', uint2 from 'act'\)"):
        from_quant_model(Cat().eval())


def test_a_falling_channel_after_a_join_is_refused():
    torch.manual_seed(0)
    model = BinaryResidualBlock(2, shortcut_weight=2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_shape = (2, 3, 3)
            self.inp = IntegerInput(1, False)
            self.stem = BinaryConv2d(2, 2, 1)
            self.bn = nn.BatchNorm2d(2)
            self.sign = SignActivation()
            self.block = model

        def forward(self, x):
            return self.block(self.sign(self.bn(self.stem(self.inp(x)))))

    net = Net().eval()
    with torch.no_grad():
        model.bn_out.weight[1] = -1.0
    with pytest.raises(GraphError, match=r"channel 1 decreases as the accumulator of Add "
                                         r"'add0' grows; only a MatVec's weight rows can be "
                                         r"negated"):
        run_passes(from_quant_model(net))


def test_average_pool_then_quantizer_fuses_into_the_pool():
    from quant_models.dag_cnn import NiN

    torch.manual_seed(0)
    model = NiN(channels=(4, 4)).eval()
    graph = run_passes(from_quant_model(model))
    pool = next(n for n in graph.nodes if isinstance(n, SumPool))
    assert pool.post is not None and pool.post.op_type == "MultiThreshold"
