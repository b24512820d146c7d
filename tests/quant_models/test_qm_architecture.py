"""Architectures: every example's network rebuilds from its description with the same
outputs; what cannot be described is named."""

from __future__ import annotations

import pytest
import torch

from quant_models.architecture import ArchitectureError, SequentialNet, as_sequential, describe
from quant_models.catalog import examples
from quant_models.data import load_digits_split
from quant_models.zoo import builtin_example


@pytest.mark.parametrize("name", [e.name for e in examples()      # the DAGs are not sequential
                                  if e.baseline is not None and e.recipe is None
                                  and e.name not in ("resnet-w4a4", "binary-resnet",
                                                     "squeezenet-w4a4", "nin-w4a4")])
def test_every_example_rebuilds_from_its_architecture(name):
    model, _ = builtin_example(name)
    net = as_sequential(model)
    assert net.architecture == describe(model)
    x = torch.as_tensor(load_digits_split().x_test[:100], dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(model(x), net(x))
    again = SequentialNet(net.architecture)
    again.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert torch.equal(again.eval()(x), net(x))


def test_modules_without_a_description_are_named():
    float_cnn, _ = builtin_example("float-cnn")
    with pytest.raises(ArchitectureError, match=r"layer 'layers.0' \(Conv2d\) cannot be "
                                                r"described; supported: IntegerInput"):
        describe(float_cnn)
    with pytest.raises(ArchitectureError, match="unknown layer type 'Conv3d'"):
        SequentialNet({"input_shape": None, "layers": [{"type": "Conv3d", "args": {}}]})
