"""Compressed example models: structure, integer types, and agreement with an integer reference.

The reference below is what a compiler does with these models: integer matmuls with the
exported integer weights, and every ``scale -> BatchNorm1d -> activation`` turned into
per-channel integer thresholds found by evaluating the torch modules on candidate integer
accumulators. It must agree with the torch model element by element on every hidden
activation and prediction by prediction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from quant_models.data import load_digits_split
from quant_models.fixed_point import IntegerLinear, QuantAct, QuantLinear
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.models import (
    FixedPointMLP,
    MixedMLP,
    TernaryMLP,
    integer_signature,
)
from quant_models.ternary import TernaryLinear
from quant_models.train import predict, train_classifier


def _weights(m: nn.Module) -> np.ndarray:
    if isinstance(m, BinaryLinear):
        return np.where(m.binary_weight().numpy() >= 0, 1, -1).astype(np.int64)
    assert isinstance(m, IntegerLinear)
    return m.integer_weight()[0].numpy()


def _levels(act: nn.Module) -> np.ndarray:
    if isinstance(act, SignActivation):
        return np.array([-1, 1])
    assert isinstance(act, QuantAct)
    return np.arange(act.min_value, act.max_value + 1)


def _thresholds(
    f: Callable[[Tensor], Tensor], direction: np.ndarray, levels: np.ndarray, lo: int, hi: int
) -> np.ndarray:
    """[L-1, C]: smallest a' in [lo, hi + 1] with f(direction * a') >= levels[k] (per level k)."""
    targets = levels[1:, None]
    shape = (targets.shape[0], direction.size)
    low = np.full(shape, lo, dtype=np.int64)
    high = np.full(shape, hi + 1, dtype=np.int64)
    while np.any(low < high):
        mid = (low + high) // 2
        with torch.no_grad():
            values = f(torch.as_tensor(direction * mid, dtype=torch.float32)).numpy()
        ok = values >= targets
        active = low < high
        high = np.where(active & ok, mid, high)
        low = np.where(active & ~ok, mid + 1, low)
    return low


def integer_reference(model: nn.Module, x: np.ndarray) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Integer-only execution: activations by module index, and the final integer scores."""
    mods = list(model.layers)
    h = np.asarray(x, dtype=np.int64)
    outputs: dict[int, np.ndarray] = {}
    scores = None
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, IntegerInput):
            h = np.clip(h, m.min_value, m.max_value)
            i += 1
        elif isinstance(m, (BinaryLinear, IntegerLinear)):
            w = _weights(m)
            lo_in, hi_in = int(h.min()), int(h.max())
            acc = h @ w.T
            if i + 2 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm1d):
                bn, act = mods[i + 1], mods[i + 2]
                scale = m.scale_accumulator if isinstance(m, IntegerLinear) else (lambda a: a)

                def f(a: Tensor, scale=scale, bn=bn, act=act) -> Tensor:
                    return act(bn(scale(a)))

                gain = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
                direction = np.where(gain.numpy() < 0, -1, 1)
                bound = int(np.abs(w).sum(axis=1).max()) * max(abs(lo_in), abs(hi_in))
                levels = _levels(act)
                t = _thresholds(f, direction, levels, -bound, bound)
                steps = np.diff(levels)[:, None, None]
                above = (direction[None, None, :] * acc[None]) >= t[:, None, :]
                h = levels[0] + (above * steps).sum(axis=0)
                outputs[i + 2] = h
                i += 3
            else:
                scores = acc
                outputs[i] = acc
                i += 1
        elif isinstance(m, LogitScale):
            i += 1
        else:
            raise AssertionError(f"unexpected module {type(m).__name__} at {i}")
    assert scores is not None
    return outputs, scores


def _torch_outputs(model: nn.Module, x: np.ndarray) -> list[Tensor]:
    model.eval()
    h = torch.as_tensor(x, dtype=torch.float32)
    outs = []
    with torch.no_grad():
        for m in model.layers:
            h = m(h)
            outs.append(h)
    return outs


def assert_matches_reference(model: nn.Module, x: np.ndarray) -> None:
    ref, scores = integer_reference(model, x)
    outs = _torch_outputs(model, x)
    mods = list(model.layers)
    for index, values in ref.items():
        torch_values = outs[index].numpy()
        if index == len(mods) - 2:  # last linear layer: scaled integer scores
            m = mods[index]
            expected = m.scale_accumulator(torch.as_tensor(values, dtype=torch.float32))
            assert np.array_equal(torch_values, expected.detach().numpy())
        else:
            assert np.array_equal(torch_values, values.astype(np.float32)), f"layer {index}"
    assert np.array_equal(predict(model, x), scores.argmax(axis=1))


def _short_trained(build: Callable[[], nn.Module], epochs: int = 2) -> nn.Module:
    torch.manual_seed(0)
    model = build()
    train_classifier(model, load_digits_split(), epochs=epochs, lr=3e-3, batch_size=64, seed=0)
    return model


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "ternary-twn": lambda: TernaryMLP(hidden=(32, 16)),
    "ternary-ttq": lambda: TernaryMLP(hidden=(32, 16), method="ttq", act_bits=3),
    "fixed-w4a4": lambda: FixedPointMLP(hidden=(32, 16), weight_bits=4, act_bits=4),
    "fixed-w8a8": lambda: FixedPointMLP(hidden=(32,), weight_bits=8, act_bits=8),
    "fixed-w2a2": lambda: FixedPointMLP(hidden=(16,), weight_bits=2, act_bits=2),
    "mixed": lambda: MixedMLP(
        input_width=32, binary_widths=(32,), ternary_width=16, fixed_width=16
    ),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_model_agrees_with_integer_reference(name: str) -> None:
    model = _short_trained(BUILDERS[name])
    split = load_digits_split()
    assert_matches_reference(model, split.x_test)
    # a negative batch-norm scale flips the channel's staircase; still exact
    with torch.no_grad():
        for bn in (m for m in model.layers if isinstance(m, nn.BatchNorm1d)):
            bn.weight[::3] *= -1
    assert_matches_reference(model, split.x_test[:100])


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_activations_are_integers_of_their_type(name: str) -> None:
    model = _short_trained(BUILDERS[name], epochs=1)
    outs = _torch_outputs(model, load_digits_split().x_test)
    for m, out in zip(model.layers, outs, strict=True):
        if isinstance(m, QuantAct):
            assert torch.equal(out, out.round())
            assert out.min() >= m.min_value and out.max() <= m.max_value
            assert m.scale.item() > 0
        elif isinstance(m, SignActivation):
            assert set(out.unique().tolist()) <= {-1.0, 1.0}


def test_ternary_mlp_structure() -> None:
    model = TernaryMLP(hidden=(32, 16), act_bits=2)
    assert [type(m) for m in model.layers] == [
        IntegerInput,
        TernaryLinear,
        nn.BatchNorm1d,
        QuantAct,
        TernaryLinear,
        nn.BatchNorm1d,
        QuantAct,
        TernaryLinear,
        LogitScale,
    ]
    acts = [m for m in model.layers if isinstance(m, QuantAct)]
    assert all((a.bits, a.signed) == (2, False) for a in acts)
    linears = [m for m in model.layers if isinstance(m, TernaryLinear)]
    assert [lin.input_quant for lin in linears] == [None, acts[0], acts[1]]
    rebuilt = TernaryMLP(**model.config)
    rebuilt.load_state_dict(model.state_dict())


def test_fixed_point_mlp_structure_and_last_layer_scale() -> None:
    model = FixedPointMLP(hidden=(32, 16), weight_bits=4, act_bits=3)
    kinds = [type(m) for m in model.layers]
    assert kinds == [IntegerInput] + [QuantLinear, nn.BatchNorm1d, QuantAct] * 2 + [
        QuantLinear,
        LogitScale,
    ]
    linears = [m for m in model.layers if isinstance(m, QuantLinear)]
    assert [lin.per_channel for lin in linears] == [True, True, False]
    assert linears[-1].integer_weight()[1].shape == ()
    assert all(lin.weight_bits == 4 for lin in linears)
    assert FixedPointMLP(**model.config).config == model.config


def test_mixed_mlp_types_at_every_boundary() -> None:
    model = _short_trained(lambda: MixedMLP(), epochs=1)
    sig = integer_signature(model)
    assert [s.kind for s in sig] == [
        "IntegerInput",
        "QuantLinear",
        "BatchNorm1d",
        "SignActivation",
        "BinaryLinear",
        "BatchNorm1d",
        "SignActivation",
        "TernaryLinear",
        "BatchNorm1d",
        "QuantAct",
        "QuantLinear",
        "BatchNorm1d",
        "QuantAct",
        "QuantLinear",
        "LogitScale",
    ]
    outputs = [s.output for s in sig]
    assert outputs[0] == "uint5"
    assert outputs[3] == outputs[6] == "bipolar {-1,+1}"
    assert outputs[9] == outputs[12] == "uint4"
    assert "int8 weights" in sig[1].detail and "int4 weights" in sig[10].detail
    # accumulator bounds: 64 inputs of at most 31 times |w| <= 127
    assert -64 * 31 * 127 <= sig[1].lo <= 0 <= sig[1].hi <= 64 * 31 * 127
    assert sig[4].lo >= -256 and sig[4].hi <= 256
    for s in sig:
        if s.output.startswith("acc"):
            assert abs(s.lo) < 2**24 and abs(s.hi) < 2**24
    # a binary layer must only see bipolar inputs
    for prev, cur in zip(sig, sig[1:], strict=False):
        if cur.kind == "BinaryLinear":
            assert prev.output == "bipolar {-1,+1}"


def test_hidden_widths_are_multiples_of_16_by_default() -> None:
    for model in (TernaryMLP(), FixedPointMLP(), MixedMLP()):
        for m in model.layers:
            if isinstance(m, nn.Linear) and m.out_features != 10:
                assert m.out_features % 16 == 0


ZOO_TARGETS = [
    ("ternary-mlp-twn", 0.85),
    ("ternary-mlp-ttq", 0.85),
    ("fixed-point-mlp-w4a4", 0.85),
    ("fixed-point-mlp-w8a8", 0.85),
    ("pruned-mlp-0.5", 0.85),
    ("pruned-mlp-0.75", 0.85),
    ("pruned-mlp-0.9", 0.85),
    ("mixed-mlp", 0.85),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "target"), ZOO_TARGETS)
def test_builtin_compressed_models(name: str, target: float) -> None:
    import quant_models.zoo as zoo
    from quant_models.catalog import SPLIT_PARAMS
    from quant_models.pruning import sparsity_report
    from quant_models.train import evaluate

    model, report = zoo.builtin_example(name)
    split = load_digits_split(**SPLIT_PARAMS)
    assert report.test_accuracy >= target
    assert evaluate(model, split.x_test, split.y_test) == report.test_accuracy
    assert_matches_reference(model, split.x_test)
    if name.startswith("pruned-mlp-"):
        sparsity = float(name.rsplit("-", 1)[1])
        masks = sparsity_report(model, "mask")
        assert masks and all(v == pytest.approx(sparsity, abs=1e-3) for v in masks.values())
        assert all(
            v >= s for v, s in zip(sparsity_report(model).values(), masks.values(), strict=True)
        )
