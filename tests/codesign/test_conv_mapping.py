"""Convolutional graphs: stages, foldings and the errors a user meets."""

import pytest
import torch
from torch import nn

from codesign.arch import build_design
from codesign.errors import FoldingError, UnsupportedLayerError
from codesign.frontends import from_quant_model
from codesign.passes import run_passes
from netgen import random_cnn
from quant_models.conv import BinaryConv2d, QuantConv2d
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation

FOLDS = ("conv0", "conv1", "fc")


def _fold(*pairs):
    return {"folding": dict(zip(FOLDS, pairs, strict=True))}


def test_stages_and_window_simd_follow_the_engine():
    design = build_design(random_cnn(1), **_fold((2, 1), (3, 2), (3, 2)))
    kinds = [(stage.kind, stage.simd) for stage in design.stages]
    assert kinds == [("window", 1), ("mvu", 1), ("pool", 2), ("window", 2), ("mvu", 2),
                     ("mvu", 2)]
    conv = design.stages[1]
    assert conv.vectors == 8 * 8 and conv.cycles_per_frame == 64 * (4 // 2) * 9
    # a window's record states window fields only (no invented engine fields)
    record = design.stages[0].record()
    assert record["kind"] == "window" and "pe" not in record and "mw" not in record
    assert record["kernel"] == [3, 3] and record["simd"] == 1


def test_simd_must_divide_input_channels():
    with pytest.raises(FoldingError, match=r"layer 'conv1': SIMD=3 must divide the 4 input "
                                           r"channels of its sliding window \(valid SIMD: 1, "
                                           r"2, 4\)"):
        build_design(random_cnn(1), **_fold((2, 1), (3, 3), (3, 2)))


def _model(*layers, shape=(1, 6, 6)):
    model = nn.Sequential(*layers).eval()
    model.input_shape = shape
    return model


def test_feature_map_smaller_than_kernel_is_named():
    model = _model(IntegerInput(4, False), BinaryConv2d(1, 2, 5, pad_value=0),
                   nn.BatchNorm2d(2), SignActivation(), nn.MaxPool2d(2), nn.Flatten(),
                   BinaryLinear(2, 2), LogitScale(), shape=(1, 3, 3))
    with pytest.raises(UnsupportedLayerError, match=r"the 3x3 feature map is smaller than "
                                                    r"the 5x5 kernel"):
        from_quant_model(model)


def test_pad_value_must_be_a_value_of_the_map():
    model = _model(IntegerInput(4, False), BinaryConv2d(1, 2, 3, padding=1, pad_value=0),
                   nn.BatchNorm2d(2), SignActivation(),
                   BinaryConv2d(2, 2, 3, padding=1, pad_value=0), nn.BatchNorm2d(2),
                   SignActivation(), nn.Flatten(), BinaryLinear(72, 2), LogitScale())
    with pytest.raises(UnsupportedLayerError, match="pad value 0 is not a bipolar value"):
        from_quant_model(model)


def test_unsupported_pooling_is_named():
    model = _model(IntegerInput(4, False), QuantConv2d(1, 2, 3, weight_bits=4),
                   nn.BatchNorm2d(2), SignActivation(), nn.MaxPool2d(2, padding=1),
                   nn.Flatten(), BinaryLinear(8, 2), LogitScale())
    with pytest.raises(UnsupportedLayerError, match="no padding, dilation 1 and floor mode"):
        from_quant_model(model)


def test_dilation_is_refused_by_the_layer():
    with pytest.raises(ValueError, match="dilation"):
        QuantConv2d(1, 2, 3, dilation=2)


def test_depthwise_becomes_a_block_matrix_for_the_sparse_engine():
    conv = QuantConv2d(3, 3, 3, groups=3, weight_bits=4)
    model = _model(IntegerInput(4, False), conv, nn.BatchNorm2d(3), SignActivation(),
                   nn.Flatten(), BinaryLinear(48, 2), LogitScale(), shape=(3, 6, 6))
    with torch.no_grad():
        model[2].running_var.fill_(1.0)
    graph = run_passes(from_quant_model(model))
    mv = graph.node("conv0")
    assert mv.weight.shape == (3, 27)
    # row c only reads column (ky*3 + kx)*3 + c: every other weight is an exact zero
    for c in range(3):
        nonzero_cols = {j for j in range(27) if mv.weight[c, j] != 0}
        assert nonzero_cols <= {k * 3 + c for k in range(9)}
    design = build_design(graph, sparse=0.5)
    assert design.stage("conv0").kind == "sparse_mvu"
