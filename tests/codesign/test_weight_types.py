"""Weight types come from the range a layer declares, so re-training keeps the hardware.

The frontend types every layer's weights by its quantizer's declared range (or, asked to,
by the trained values); two trainings of one network then give the same Verilog once the
memory images are taken out, which is what one simulation build per architecture needs.
"""

from __future__ import annotations

import pytest
import torch

from codesign.errors import OptionError, UnsupportedLayerError
from codesign.flow import compile_graph
from codesign.frontends import from_quant_model
from codesign.generate import generate_verilog
from codesign.ir import IntType
from netgen import LayerSpec, NetSpec, random_quant_model
from quant_models.conv import QuantConv2d
from quant_models.fixed_point import FactorLinear, QuantLinear
from quant_models.layers import IntegerInput, LogitScale
from quant_models.sharing import SharedLinear
from quant_models.ternary import TernaryLinear
from sim.memory_images import split_memory_images


@pytest.mark.parametrize("layer, expected", [
    (QuantLinear(4, 3, weight_bits=4), (-7, 7)),
    (QuantLinear(4, 3, weight_bits=4, narrow_range=False), (-8, 7)),
    (QuantConv2d(1, 2, 3, weight_bits=5, weight_signed=False, narrow_range=False), (0, 31)),
    (FactorLinear(4, 3, weight_bits=6), (-31, 31)),
    (TernaryLinear(4, 3, method="twn"), (-1, 1)),
    (TernaryLinear(4, 3, method="ttq", ratio_frac_bits=2), (-16, 4)),
    (SharedLinear(4, 3, grid_bits=6), (-31, 31)),
], ids=["int4", "int4-wide", "uint5-conv", "factor", "twn", "ttq", "shared"])
def test_every_weight_layer_declares_its_quantizer_range(layer, expected):
    assert layer.weight_range() == expected


TTQ = NetSpec("uint3", (LayerSpec("ttq", 4, ratio_frac_bits=2, act=None, batch_norm=False,
                                  per_channel=False),), features=6)


def test_ttq_weights_take_the_declared_type_or_their_values():
    model = random_quant_model(TTQ, 0)
    levels = model.layers[1].integer_weight()[0]
    lo, hi = int(levels.min()), int(levels.max())
    assert (lo, hi) != (-16, 4)          # the trained levels do not span the declaration
    (declared,) = from_quant_model(model).compute_nodes()
    (narrow,) = from_quant_model(model, weight_types="values").compute_nodes()
    assert declared.weight_type == IntType.int_(5)               # [-16, 4]
    assert narrow.weight_type == IntType.for_range(min(lo, 0), max(hi, 0))


def test_a_shared_layer_is_typed_by_its_grid_not_its_table():
    layer = SharedLinear(6, 3, index_bits=3, grid_bits=8)
    assign = torch.randint(0, 3, layer.weight.shape, generator=torch.Generator().manual_seed(0))
    layer.set_codebook([-0.25, 0.5], assign, 0.25, where="fc0")       # values 0, -1, 2
    model = torch.nn.Sequential(IntegerInput(3, False), layer, LogitScale(1.0)).eval()
    graph = from_quant_model(model, input_shape=(6,))
    (node,) = graph.compute_nodes()
    assert node.codebook.values == (0, -1, 2)
    assert node.weight_type == IntType.int_(8)
    (narrow,) = from_quant_model(model, input_shape=(6,), weight_types="values").compute_nodes()
    assert narrow.weight_type == IntType.int_(3)


def test_weights_outside_the_declared_range_are_a_named_error():
    model = random_quant_model(TTQ, 0)
    model.layers[1].weight_range = lambda: (-2, 2)
    with pytest.raises(UnsupportedLayerError, match=r"^layer 'layers\.1' \(TernaryLinear\) "
                       r"cannot be lowered: its integer weights span \[-\d+, 4\], outside the "
                       r"range \[-2, 2\] its weight_range\(\) declares\."):
        from_quant_model(model)


def test_an_unknown_weight_typing_is_a_named_error():
    with pytest.raises(OptionError, match=r"^weight_types='bits': expected one of declared, "
                                          r"values$"):
        from_quant_model(random_quant_model(TTQ, 0), weight_types="bits")


RETRAINED = NetSpec("uint3", (
    LayerSpec("int4", 6, batch_norm=False, act="quant", act_type="uint2"),
    LayerSpec("twn", 5, batch_norm=False, act="quant", act_type="int3"),
    LayerSpec("ttq", 6, ratio_frac_bits=1, batch_norm=False, act="sign"),
    LayerSpec("uint3", 4, narrow=False, batch_norm=False, act="quant", act_type="uint2"),
    LayerSpec("binary", 3, act=None, batch_norm=False, per_channel=False),
), features=7)


def architecture(model, weight_types="declared") -> tuple[str, tuple]:
    """The Verilog a simulation build is keyed on, and the images it loads."""
    graph = from_quant_model(model, weight_types=weight_types)
    split = split_memory_images(generate_verilog(compile_graph(graph)).text)
    return split.verilog, split.images


def test_retrained_weights_keep_the_architecture():
    """Three trainings (random weights, scales and levels) of one network: one architecture
    with declared types, and only the images differ; typed by their values they differ."""
    models = [random_quant_model(RETRAINED, seed) for seed in (0, 1, 2)]
    declared = [architecture(model) for model in models]
    assert len({text for text, _ in declared}) == 1
    assert len({images for _, images in declared}) == 3
    assert len({architecture(model, "values")[0] for model in models}) > 1
