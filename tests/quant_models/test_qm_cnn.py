"""Example CNNs: topology, integer tensors at every boundary, FINN's CNV, the CNN zoo entries."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import quant_models.cache as cache
import quant_models.catalog as catalog
import quant_models.cnn_zoo as cnn_zoo
import quant_models.zoo as zoo
from quant_models.cnn import (
    CNVW1A1,
    BinaryCNN,
    DepthwiseSeparableCNN,
    FixedPointCNN,
    FloatCNN,
    TernaryCNN,
    cnv_w1a1,
    layer_shapes,
    random_cnv_w1a1,
)
from quant_models.conv import BinaryConv2d, IntegerConv2d, QuantConv2d, TernaryConv2d
from quant_models.data import load_digits_split
from quant_models.fixed_point import IntegerLinear, QuantAct
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.models import integer_signature
from quant_models.train import evaluate, predict, train_classifier


@pytest.fixture(scope="module")
def split() -> Any:
    return load_digits_split(**catalog.SPLIT_PARAMS)


INTEGER_LAYERS = (BinaryConv2d, IntegerConv2d, BinaryLinear, IntegerLinear)


def integer_walk(model: nn.Module, x: Tensor) -> list[tuple[str, Tensor]]:
    """Run ``model.layers`` module by module, checking the integer contract at each boundary.

    Returns ``(kind, accumulator)`` of every integer layer, in order.
    """
    signatures = integer_signature(model)
    accumulators: list[tuple[str, Tensor]] = []
    previous: nn.Module | None = None
    h = x
    with torch.no_grad():
        for (_, m), sig in zip(model.layers.named_children(), signatures, strict=True):
            out = m(h)
            if isinstance(m, IntegerInput):
                assert torch.equal(out, torch.round(out))
                assert m.min_value <= float(out.min()) and float(out.max()) <= m.max_value
            elif isinstance(m, INTEGER_LAYERS):
                if isinstance(m, BinaryLinear):
                    acc = F.linear(h, m.binary_weight())
                    assert torch.equal(out, acc)
                else:
                    acc = m.accumulate(h)
                    assert torch.equal(out, m.scale_accumulator(acc))
                assert torch.equal(acc, torch.round(acc))
                assert sig.lo is not None and sig.hi is not None
                assert sig.lo <= float(acc.min()) and float(acc.max()) <= sig.hi
                accumulators.append((type(m).__name__, acc))
            elif isinstance(m, QuantAct):
                assert torch.equal(out, torch.round(out))
                assert m.min_value <= float(out.min()) and float(out.max()) <= m.max_value
            elif isinstance(m, SignActivation):
                assert bool(((out == 1) | (out == -1)).all())
            elif isinstance(m, nn.MaxPool2d):
                # pooling runs on integer codes, after the activation quantizer
                assert isinstance(previous, (SignActivation, QuantAct))
                assert m.padding == 0
                assert torch.equal(out, torch.round(out))
            elif isinstance(m, nn.Flatten):
                assert torch.equal(out, h.reshape(h.shape[0], -1))
            elif isinstance(m, LogitScale):
                assert torch.equal(out.argmax(dim=1), accumulators[-1][1].argmax(dim=1))
            else:
                assert isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)), type(m).__name__
            previous = m
            h = out
    return accumulators


DIGITS_MODELS = {
    "binary": lambda: BinaryCNN(),
    "binary-hidden": lambda: BinaryCNN(channels=(8, 8, 8), hidden=(16,)),
    "ternary-twn": lambda: TernaryCNN(),
    "ternary-ttq": lambda: TernaryCNN(method="ttq", hidden=(16,)),
    "fixed-w4a4": lambda: FixedPointCNN(),
    "fixed-w8a8": lambda: FixedPointCNN(weight_bits=8, act_bits=8),
    "depthwise": lambda: DepthwiseSeparableCNN(),
}


@pytest.mark.parametrize("name", sorted(DIGITS_MODELS))
def test_digits_cnn_tensors_are_integers_of_their_types(name: str, split: Any) -> None:
    torch.manual_seed(0)
    model = DIGITS_MODELS[name]()
    # one short epoch so batch norms and activation scales hold realistic values
    train_classifier(model, split, epochs=1, lr=3e-3, batch_size=128, seed=0)
    x = torch.as_tensor(split.x_test[:64], dtype=torch.float32)
    accs = integer_walk(model, x.view(-1, 1, 8, 8))
    assert len(accs) == sum(isinstance(m, INTEGER_LAYERS) for m in model.layers)
    with torch.no_grad():
        assert torch.equal(model(x), model(x.view(-1, 1, 8, 8)))
    assert np.array_equal(predict(model, x), accs[-1][1].argmax(dim=1).numpy())


def test_digits_topology_and_padding(split: Any) -> None:
    model = BinaryCNN()
    convs = [m for m in model.layers if isinstance(m, BinaryConv2d)]
    assert [c.pad_value for c in convs] == [0, 1, 1]  # pixels pad with 0, bipolar codes with +1
    assert [tuple(c.padding) for c in convs] == [(1, 1), (1, 1), (0, 0)]
    shapes = [s.shape for s in layer_shapes(model)]
    assert shapes[0] == (1, 8, 8)
    assert (16, 8, 8) in shapes and (32, 4, 4) in shapes and (32, 2, 2) in shapes
    assert (128,) in shapes and shapes[-1] == (10,)
    for cls in (TernaryCNN, FixedPointCNN):
        m = cls()
        assert all(c.pad_value == 0 for c in m.layers if isinstance(c, IntegerConv2d))
        assert [s.shape for s in layer_shapes(m)] == [s.shape for s in layer_shapes(model)]
    float_shapes = [s.shape for s in layer_shapes(FloatCNN())]
    assert float_shapes == [s.shape for s in layer_shapes(model)][1:-1]  # no input/LogitScale
    with pytest.raises(ValueError):
        BinaryCNN(channels=(8, 8))
    with pytest.raises(ValueError):
        DepthwiseSeparableCNN(blocks=(8,))


def test_scale_links_and_depthwise_structure() -> None:
    model = DepthwiseSeparableCNN()
    convs = [m for m in model.layers if isinstance(m, QuantConv2d)]
    assert [c.is_depthwise for c in convs] == [False, True, False, True, False]
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3), (1, 1), (3, 3), (1, 1)]
    modules = list(model.layers)
    for i, m in enumerate(modules):
        if isinstance(m, (IntegerConv2d, IntegerLinear)):
            source = next(
                (p for p in reversed(modules[:i]) if isinstance(p, (QuantAct, IntegerInput))),
                None,
            )
            expected = source if isinstance(source, QuantAct) else None
            assert m.input_quant is expected
    ternary = TernaryCNN()
    tconvs = [m for m in ternary.layers if isinstance(m, TernaryConv2d)]
    assert tconvs[0].input_quant is None and all(c.input_quant is not None for c in tconvs[1:])
    last = [m for m in ternary.layers if isinstance(m, IntegerLinear)][-1]
    assert last.input_quant is not None


def test_signature_reports_convolutions() -> None:
    sigs = integer_signature(BinaryCNN())
    kinds = [s.kind for s in sigs]
    assert kinds[:4] == ["IntegerInput", "BinaryConv2d", "BatchNorm2d", "SignActivation"]
    first = sigs[1]
    assert first.lo is not None and -9 * 31 <= first.lo < 0 < first.hi <= 9 * 31
    pool = sigs[kinds.index("MaxPool2d")]
    assert pool.output == "bipolar {-1,+1}" and (pool.lo, pool.hi) == (-1, 1)
    flat = sigs[kinds.index("Flatten")]
    assert flat.output == "bipolar {-1,+1}"
    # the +1-padded second layer multiplies 16 * 9 bipolar values
    second = sigs[kinds.index("BinaryConv2d", 2)]
    assert (second.lo, second.hi) == (-144, 144) and "value 1" in second.detail


# -- FINN's CNV-W1A1 ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnv() -> CNVW1A1:
    return random_cnv_w1a1(seed=0)


def test_cnv_shapes(cnv: CNVW1A1) -> None:
    shapes = layer_shapes(cnv)
    spatial = [s.shape for s in shapes if s.kind in ("BinaryConv2d", "MaxPool2d")]
    assert spatial == [
        (64, 30, 30),
        (64, 28, 28),
        (64, 14, 14),
        (128, 12, 12),
        (128, 10, 10),
        (128, 5, 5),
        (256, 3, 3),
        (256, 1, 1),
    ]
    assert [s.shape for s in shapes if s.kind in ("Flatten", "BinaryLinear")] == [
        (256,),
        (512,),
        (512,),
        (10,),
    ]
    convs = [m for m in cnv.layers if isinstance(m, BinaryConv2d)]
    assert all(tuple(c.padding) == (0, 0) and tuple(c.kernel_size) == (3, 3) for c in convs)
    first = cnv.layers[0]
    assert isinstance(first, IntegerInput) and (first.bits, first.signed) == (8, False)
    n_bn = sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in cnv.layers)
    n_sign = sum(isinstance(m, SignActivation) for m in cnv.layers)
    assert n_bn == n_sign == 8  # after every conv/FC except the last
    assert isinstance(cnv.layers[-1], LogitScale) and isinstance(cnv.layers[-2], BinaryLinear)
    assert cnv_w1a1(num_classes=4).layers[-2].out_features == 4


def test_cnv_accumulators_are_integers_and_signs_are_mixed(cnv: CNVW1A1) -> None:
    assert not cnv.training
    gen = torch.Generator().manual_seed(123)
    x = torch.randint(0, 256, (3, 3, 32, 32), generator=gen).to(torch.float32)
    accs = integer_walk(cnv, x)
    assert [kind for kind, _ in accs] == ["BinaryConv2d"] * 6 + ["BinaryLinear"] * 3
    assert float(accs[0][1].abs().max()) <= 27 * 255
    with torch.no_grad():
        h = x
        for m in cnv.layers:
            h = m(h)
            if isinstance(m, SignActivation):
                positive = float((h > 0).float().mean())
                assert 0.05 < positive < 0.95  # neither all +1 nor all -1
    gammas = torch.cat([m.weight for m in cnv.modules() if isinstance(m, nn.BatchNorm2d)])
    assert bool((gammas < 0).any()) and bool((gammas > 0).any())


def test_random_cnv_is_deterministic() -> None:
    a = random_cnv_w1a1(seed=7, calibration_images=2).state_dict()
    b = random_cnv_w1a1(seed=7, calibration_images=2).state_dict()
    c = random_cnv_w1a1(seed=8, calibration_images=2).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(ValueError):
        random_cnv_w1a1(negative_gamma_fraction=2.0)


# -- zoo ------------------------------------------------------------------------------------


@pytest.fixture
def tiny_cnns(monkeypatch: pytest.MonkeyPatch, empty_cache: Path) -> list[dict[str, Any]]:
    """Tiny CNN zoo entries trained for one epoch, and a record of every training call."""
    small = {"channels": [4, 4, 4]}
    one = {"epochs": 1}
    for config, training in (
        ("FLOAT_CNN_CONFIG", "FLOAT_CNN_TRAINING"),
        ("BINARY_CNN_CONFIG", "BINARY_CNN_TRAINING"),
        ("TERNARY_CNN_CONFIG", "TERNARY_CNN_TRAINING"),
        ("FIXED_POINT_CNN_CONFIG", "FIXED_POINT_CNN_TRAINING"),
    ):
        monkeypatch.setattr(catalog, config, {**getattr(catalog, config), **small})
        monkeypatch.setattr(catalog, training, {**getattr(catalog, training), **one})
    monkeypatch.setattr(
        catalog,
        "DEPTHWISE_CNN_CONFIG",
        {**catalog.DEPTHWISE_CNN_CONFIG, "stem": 4, "blocks": [4, 4]},
    )
    monkeypatch.setattr(
        catalog, "DEPTHWISE_CNN_TRAINING", {**catalog.DEPTHWISE_CNN_TRAINING, **one}
    )
    monkeypatch.setattr(catalog, "COMPRESSED_CNNS", ())   # recipes have tests of their own
    calls: list[dict[str, Any]] = []
    real = cache.train_classifier

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append({**kwargs, "threads": torch.get_num_threads()})
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "train_classifier", recording)
    return calls


def _forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("cached model was retrained")

    monkeypatch.setattr(cache, "train_classifier", fail)


def test_cnn_zoo_cache_round_trip(
    tiny_cnns: list[dict[str, Any]],
    empty_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    split: Any,
) -> None:
    model, report = zoo.builtin_example("binary-cnn")
    assert isinstance(model, BinaryCNN) and not model.training
    assert len(tiny_cnns) == 1 and tiny_cnns[0]["threads"] == cache.TRAINING_THREADS
    files = list((empty_cache / "models").glob("binary-cnn-*.pt.xz"))
    assert len(files) == 1
    _forbid_training(monkeypatch)
    again, again_report = cnn_zoo.builtin_binary_cnn()
    assert again_report == report
    assert np.array_equal(predict(model, split.x_test), predict(again, split.x_test))
    assert evaluate(again, split.x_test, split.y_test) == report.test_accuracy


def test_cnn_zoo_names_train_all_and_cli(
    tiny_cnns: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = cnn_zoo.builtin_cnn_names()
    assert names == [
        "float-cnn",
        "binary-cnn",
        "ternary-cnn-twn",
        "ternary-cnn-ttq",
        "fixed-point-cnn-w4a4",
        "depthwise-separable-cnn",
        "deep-compression-cnn",
        "resnet-w4a4",
        "binary-resnet",
        "squeezenet-w4a4",
        "nin-w4a4",
    ]
    assert not set(names) & set(zoo.builtin_example_names())
    assert zoo.main(["--cnn"]) == 0
    assert capsys.readouterr().out.split() == zoo.builtin_example_names() + names
    with pytest.raises(ValueError):
        cnn_zoo.builtin_ternary_cnn("bwn")
    with pytest.raises(catalog.UnknownExampleError, match="'no-such-cnn'; available: .*float-cnn"):
        zoo.builtin_example("no-such-cnn")
    cnns = tuple(entry for entry in catalog.examples() if entry.kind == "cnn")
    monkeypatch.setattr(catalog, "examples", lambda: cnns)  # the MLPs have their own tests
    out = io.StringIO()
    reports = zoo.train_all(stream=out, cnn=True)
    # the Deep Compression example is trained by its own pipeline, not one classifier run;
    # the networks that are not chains keep their configurations, so their shipped weights
    # still match and load
    dag = ("resnet-w4a4", "binary-resnet", "squeezenet-w4a4", "nin-w4a4")
    trained_once = [n for n in names
                    if catalog.example(n).compression is None and n not in dag]
    assert list(reports) == names and len(tiny_cnns) == len(trained_once)
    assert "depthwise-separable-cnn" in out.getvalue()
    kinds = {name: type(zoo.builtin_example(name)[0]) for name in ("float-cnn", "ternary-cnn-ttq")}
    assert kinds == {"float-cnn": FloatCNN, "ternary-cnn-ttq": TernaryCNN}
    assert zoo.builtin_example("ternary-cnn-ttq")[0].config["method"] == "ttq"
    assert zoo.builtin_example("fixed-point-cnn-w4a4")[0].config["weight_bits"] == 4


# -- trained examples (slow) ----------------------------------------------------------------

CNN_FLOORS = [
    ("float-cnn", 0.98),
    ("binary-cnn", 0.96),
    ("ternary-cnn-twn", 0.97),
    ("ternary-cnn-ttq", 0.97),
    ("fixed-point-cnn-w4a4", 0.98),
    ("depthwise-separable-cnn", 0.96),
]
"""The shipped weights on the seed-0 split: 99.8, 97.1, 99.6, 98.9, 99.3 and 98.9% test
accuracy."""


@pytest.mark.slow
@pytest.mark.parametrize(("name", "floor"), CNN_FLOORS)
def test_builtin_cnn_reaches_its_accuracy(name: str, floor: float, split: Any) -> None:
    model, report = zoo.builtin_example(name)
    assert report.test_accuracy >= floor
    assert evaluate(model, split.x_test, split.y_test) == report.test_accuracy
    if not isinstance(model, FloatCNN):
        x = torch.as_tensor(split.x_test, dtype=torch.float32).view(-1, 1, 8, 8)
        accs = integer_walk(model, x)
        assert np.array_equal(predict(model, x), accs[-1][1].argmax(dim=1).numpy())


@pytest.mark.slow
def test_compressed_cnns_stay_close_to_the_float_baseline() -> None:
    baseline = cnn_zoo.builtin_float_cnn()[1].test_accuracy
    for name in ("binary-cnn", "ternary-cnn-twn", "fixed-point-cnn-w4a4"):
        accuracy = zoo.builtin_example(name)[1].test_accuracy
        assert accuracy >= baseline - 0.03, name
