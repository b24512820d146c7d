"""`codesign run` on the built-in example: the whole test split, bit-exact, every contract."""

import json
import subprocess
import sys

import numpy as np
import pytest

from codesign.cli import main
from codesign.flow import compile_model
from codesign.reference import predict as reference_predict
from hdl.mvu import FILL_CYCLES


@pytest.mark.slow
def test_builtin_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bit_exact"] is True
    assert summary["mismatches"] == 0
    assert summary["frames"] == 450                      # the whole digits test split
    assert summary["accuracy_float"] >= 0.95
    assert summary["accuracy_torch"] >= 0.85
    assert summary["accuracy_hw"] == summary["accuracy_torch"]
    assert summary["torch_reference_agreement"] == summary["frames"]
    assert summary["energy_pj_per_frame"] > 0
    assert summary["analytical_match"] is True
    for layer in summary["layers"]:
        ideal = summary["frames"] * (layer["mh"] // layer["pe"]) * (layer["mw"] // layer["simd"])
        assert layer["formula_cycles"] == ideal
        assert layer["measured_cycles"] == ideal + FILL_CYCLES
    bottleneck = summary["bottleneck_cycles_per_frame"]
    assert bottleneck <= summary["cycles_per_frame"] <= bottleneck * 1.05
    for name in ("report.md", "cycles.png", "energy.png", "verilog/codesign_top.v"):
        assert (out / name).stat().st_size > 0
    assert "module codesign_top" in (out / "verilog" / "codesign_top.v").read_text()


def test_python_api_compile_and_reference(tmp_path):
    from quant_models.data import load_digits_split
    from quant_models.train import predict
    from quant_models.zoo import SPLIT_PARAMS, builtin_binarized_mlp

    model, _ = builtin_binarized_mlp()
    split = load_digits_split(**SPLIT_PARAMS)
    design = compile_model(model, folding={"fc2": (10, 4)}, target_cycles=256)
    assert [(layer.pe, layer.simd) for layer in design.layers][-1] == (10, 4)
    assert all(layer.cycles_per_frame <= 256 for layer in design.layers)
    assert np.array_equal(reference_predict(design.graph, split.x_test),
                          predict(model, split.x_test))


@pytest.mark.parametrize("args, message", [
    (["run", "no-such-example"], "unknown example 'no-such-example'; available: binarized-mlp"),
    (["run", "--fold", "fc0=3,8"], "layer 'fc0': PE=3 does not divide MH=128"),
    (["run", "--fold", "fcX=1,1"], "unknown layer"),
    (["run", "--frames", "0"], "--frames must be at least 1"),
])
def test_cli_errors_are_clear(args, message, tmp_path, capsys):
    assert main([*args, "--out", str(tmp_path / "r")]) != 0
    assert message in capsys.readouterr().err


def test_cli_bad_fold_syntax():
    result = subprocess.run([sys.executable, "-m", "codesign.cli", "run", "--fold", "fc0"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "expected LAYER=PE,SIMD" in result.stderr
