"""Model structure (the order the compiler relies on) and integer-valued intermediate results."""

from __future__ import annotations

import torch
from torch import nn

from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.models import BinarizedMLP, FloatMLP


def test_binarized_mlp_layer_order() -> None:
    model = BinarizedMLP(in_features=64, hidden=(32, 16), num_classes=10)
    kinds = [type(m) for m in model.layers]
    assert kinds == [
        IntegerInput,
        BinaryLinear,
        nn.BatchNorm1d,
        SignActivation,
        BinaryLinear,
        nn.BatchNorm1d,
        SignActivation,
        BinaryLinear,
        LogitScale,
    ]
    shapes = [(m.in_features, m.out_features) for m in model.layers if isinstance(m, BinaryLinear)]
    assert shapes == [(64, 32), (32, 16), (16, 10)]
    assert [m.num_features for m in model.layers if isinstance(m, nn.BatchNorm1d)] == [32, 16]
    assert (model.layers[0].bits, model.layers[0].signed) == (5, False)


def test_binarized_mlp_config_rebuilds_identical_model() -> None:
    torch.manual_seed(0)
    model = BinarizedMLP(
        in_features=20, hidden=(16,), num_classes=3, input_bits=4, input_signed=True
    )
    rebuilt = BinarizedMLP(**model.config)
    rebuilt.load_state_dict(model.state_dict())
    assert model.config == {
        "in_features": 20,
        "hidden": [16],
        "num_classes": 3,
        "input_bits": 4,
        "input_signed": True,
    }
    x = torch.randint(-8, 8, (5, 20)).float()
    model.eval()
    rebuilt.eval()
    assert torch.equal(model(x), rebuilt(x))


def test_binarized_mlp_intermediates_are_on_integer_grid() -> None:
    torch.manual_seed(1)
    model = BinarizedMLP(hidden=(32, 48))
    model.train()
    model(torch.randint(0, 17, (64, 64)).float())  # give batch norm non-trivial statistics
    model.eval()
    x = torch.randint(0, 17, (16, 64)).float()
    with torch.no_grad():
        h = model.layers[:4](x)
        assert set(h.unique().tolist()) <= {-1.0, 1.0}
        scores = model.layers[:-1](x)
    assert torch.equal(scores, scores.round())
    assert float(scores.abs().max()) <= 48
    # A sum of 48 terms of +-1 is even.
    assert torch.equal(torch.remainder(scores, 2), torch.zeros_like(scores))
    logits = model(x)
    assert torch.equal(logits.argmax(1), scores.argmax(1))


def test_float_mlp_structure_and_input_scaling() -> None:
    model = FloatMLP(hidden=(32, 32))
    kinds = [type(m) for m in model.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.Linear]
    model.eval()
    x = torch.randint(0, 17, (4, 64)).float()
    with torch.no_grad():
        assert torch.allclose(model(x), model.layers(x / 16))
    assert model(x).shape == (4, 10)
