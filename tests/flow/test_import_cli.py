"""``codesign import`` and ``codesign run`` with imported models and ``--data``: the same run
directory as the built-in examples, RTL = reference, reference = the model's own outputs."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("qonnx")

from codesign.cli import main  # noqa: E402
from datafiles import write_mnist  # noqa: E402
from qonnxgen import LayerSpec, QonnxSpec, random_qonnx  # noqa: E402
from quant_models.cache import SHIPPED_DIR  # noqa: E402


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_import_shipped_qonnx_file_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["import", str(SHIPPED_DIR / "brevitas-tfc-w2a2.onnx"), "--frames", "12",
                 "--out", str(out)]) == 0
    summary = summary_of(out)
    assert summary["bit_exact"] and summary["source_bit_exact"] is True
    assert (summary["source"], summary["data"], summary["frames"]) == ("qonnx", "digits", 12)
    assert summary["accuracy_float"] is None and summary["analytical_match"]
    assert [layer["family"] for layer in summary["layers"]] == ["ternary"] * 4
    assert "reference = onnx on every element" in capsys.readouterr().out
    assert "execute_onnx (imported QONNX)" in (out / "report.md").read_text()


def test_import_with_mnist_data(tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    write_mnist(data, n_test=6)
    spec = QonnxSpec((784,), input_bits=8, layers=(
        LayerSpec(8, weight="int", weight_bits=2, act="quant", act_bits=2, batch_norm=True),
        LayerSpec(10, weight="ternary", act=None)))
    model = tmp_path / "mnist-mlp.onnx"
    onnx.save(random_qonnx(spec, 4), str(model))
    out = tmp_path / "run"
    assert main(["import", str(model), "--data", str(data), "--out", str(out)]) == 0
    summary = summary_of(out)
    assert summary["bit_exact"] and summary["source_bit_exact"] is True
    assert summary["data"].startswith("mnist") and summary["frames"] == 6


def test_data_that_does_not_fit_the_model_is_named(tmp_path, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    write_mnist(data)
    assert main(["run", "binarized-mlp", "--data", str(data), "--out",
                 str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "binarized-mlp takes frames of shape (64,) but" in err
    assert "mnist frames of shape (1, 28, 28)" in err and "codesign import" in err


def test_import_errors_are_one_line(tmp_path, capsys):
    assert main(["import", str(tmp_path / "none.onnx"), "--out", str(tmp_path / "r")]) == 1
    assert "error: ONNX model" in capsys.readouterr().err
    assert main(["run", "brevitas-tfc-w1a1", "--retrain", "--out", str(tmp_path / "s")]) == 1
    assert "ships as a QONNX file" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["brevitas-tfc-w1a1",
                                  pytest.param("brevitas-cnv-w2a2", marks=pytest.mark.extended)])
def test_imported_example_whole_split_through_codesign_run(name, tmp_path):
    out = tmp_path / name
    assert main(["run", name, "--out", str(out)]) == 0
    summary = summary_of(out)
    shipped = json.loads((SHIPPED_DIR / f"{name}.json").read_text())
    assert summary["frames"] == 450 and summary["bit_exact"] and summary["mismatches"] == 0
    assert summary["source_bit_exact"] is True and summary["analytical_match"]
    assert summary["accuracy_hw"] == summary["accuracy_reference"] == summary["accuracy_torch"]
    assert summary["accuracy_hw"] == pytest.approx(shipped["test_accuracy"])
    assert np.isclose(summary["torch_reference_agreement"], 450)
