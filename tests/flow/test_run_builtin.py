"""`codesign run` on the built-in example: the whole test split, bit-exact, every contract."""

import json
import subprocess
import sys

import numpy as np
import pytest

from codesign.cli import main
from codesign.flow import compile_model
from codesign.reference import predict as reference_predict


@pytest.mark.slow
def test_builtin_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--no-baseline", "--out", str(out)]) == 0
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
    # the fill: issue, read, terms, adder tree, accumulator, then one threshold level for a
    # bipolar output (fc0, fc1), none for the integer scores (fc2); the output register
    fills = {"fc0": 7, "fc1": 7, "fc2": 5}
    for layer in summary["layers"]:
        assert layer["kind"] == "mvu"
        ideal = summary["frames"] * (layer["mh"] // layer["pe"]) * (layer["mw"] // layer["simd"])
        assert layer["formula_cycles"] == ideal
        assert layer["fill_cycles"] == fills[layer["name"]]
        assert layer["measured_cycles"] == ideal + fills[layer["name"]]
    bottleneck = summary["bottleneck_cycles_per_frame"]
    assert bottleneck <= summary["cycles_per_frame"] <= bottleneck * 1.05
    for name in ("report.md", "cycles.png", "energy.png", "verilog/codesign_top.v"):
        assert (out / name).stat().st_size > 0
    assert "module codesign_top" in (out / "verilog" / "codesign_top.v").read_text()


def test_python_api_compile_and_reference(tmp_path):
    from quant_models.catalog import SPLIT_PARAMS
    from quant_models.data import load_digits_split
    from quant_models.train import predict
    from quant_models.zoo import builtin_binarized_mlp

    model, _ = builtin_binarized_mlp()
    split = load_digits_split(**SPLIT_PARAMS)
    design = compile_model(model, folding={"fc2": (10, 4)}, target_cycles=256)
    assert [(layer.pe, layer.simd) for layer in design.stages][-1] == (10, 4)
    assert all(layer.cycles_per_frame <= 256 for layer in design.stages)
    assert np.array_equal(reference_predict(design.graph, split.x_test),
                          predict(model, split.x_test))


@pytest.mark.parametrize("args, message", [
    (["run", "no-such-example"], "unknown example 'no-such-example'; available: binarized-mlp"),
    (["run", "--fold", "fc0=3,8"], "layer 'fc0': PE=3 does not divide MH=128"),
    (["run", "--fold", "fcX=1,1"], "folding names unknown layer(s) ['fcX']"),
    (["run", "--frames", "0"], "frames=0: simulate at least 1 frame"),
    (["run", "--frames", "-3"], "frames=-3: simulate at least 1 frame"),
    (["study", "--frames", "0"], "frames=0: simulate at least 1 frame"),
    (["study", "--frames", "-3"], "frames=-3: simulate at least 1 frame"),
    (["study", "--runs", "reports"], "--runs: only for codesign study compression"),
    (["study", "compression", "--runs", "/no/such/dir"],
     "--runs /no/such/dir: not a directory (the parent of the examples' run directories"),
    (["run", "--target-cycles", "0"], "target_cycles=0: give a whole number of cycles"),
    (["run", "--fifo-depth", "0"], "fifo_depth=0: a FIFO between stages needs at least 2"),
    (["run", "--fifo-depth", "1"], "fifo_depth=1: a FIFO between stages needs at least 2"),
    (["run", "--family", "fcX=mac"], "families names unknown layer(s) ['fcX']"),
    (["run", "--family", "fc0=dsp"], "layer 'fc0': unknown PE family 'dsp'"),
    (["run", "--family", "fc0=xnor_popcount"], "layer 'fc0': family 'xnor_popcount' cannot "
                                               "run bipolar x uint5"),
])
def test_cli_errors_are_clear(args, message, tmp_path, capsys):
    assert main([*args, "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]         # progress lines first, then one error line
    assert last.startswith("error: ") and message in last
    assert "Traceback" not in err


@pytest.fixture
def run_arguments(monkeypatch) -> dict:
    """The keyword arguments the CLI passes to ``run_example`` (which then stops with an
    error, so nothing runs)."""
    import codesign.flow
    from codesign.errors import OptionError

    seen: dict = {}

    def run_example(name, **kwargs):
        seen.update(kwargs)
        raise OptionError("stopped before the run")

    monkeypatch.setattr(codesign.flow, "run_example", run_example)
    return seen


@pytest.mark.parametrize("value", [None, "lanes", "luts"])
def test_cli_folding_objective_reaches_the_options(value, tmp_path, run_arguments):
    """--folding-objective is passed to the run, whose options carry it (unset: the
    default)."""
    import codesign.flow
    from codesign.examples import load_example

    seen = run_arguments
    flag = [] if value is None else ["--folding-objective", value]
    assert main(["run", *flag, "--out", str(tmp_path / "r")]) == 1
    assert seen["folding_objective"] == value
    options = codesign.flow.example_options(load_example("binarized-mlp"),
                                            folding_objective=seen["folding_objective"])
    assert (options.folding_objective, options.objective) == (value, value or "lanes")


@pytest.mark.parametrize("value", [None, "values"])
def test_cli_weight_types_reach_the_frontend(value, tmp_path, run_arguments):
    """--weight-types is passed to the run; the example's graph then types TTQ's weights by
    each layer's declared range (the default) or by its trained levels."""
    import codesign.flow
    from codesign.examples import load_example
    from codesign.ir import IntType
    from quant_models.protocol import IntegerLayer

    seen = run_arguments
    flag = [] if value is None else ["--weight-types", value]
    assert main(["run", "ternary-mlp-ttq", *flag, "--out", str(tmp_path / "r")]) == 1
    assert seen["weight_types"] == (value or "declared")
    example = load_example("ternary-mlp-ttq")
    layers = [m for m in example.model.modules() if isinstance(m, IntegerLayer)]
    graph = codesign.flow.example_graph(example, seen["weight_types"])
    expected = [IntType.for_range(*layer.weight_range()) if value is None else
                IntType.for_range(int(layer.integer_weight()[0].min()),
                                  int(layer.integer_weight()[0].max()))
                for layer in layers]
    assert [node.weight_type for node in graph.compute_nodes()] == expected


def test_cli_refuses_an_unknown_folding_objective(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--folding-objective", "area", "--out", str(tmp_path / "r")])
    assert info.value.code == 2
    assert "argument --folding-objective: invalid choice: 'area' (choose from " \
        in capsys.readouterr().err


def test_an_unknown_folding_objective_fails_before_any_work(tmp_path):
    from codesign.errors import OptionError
    from codesign.flow import run_example

    with pytest.raises(OptionError, match=r"^folding_objective='area': give 'lanes' or "
                                          r"'luts' \(or leave it unset for the default\)$"):
        run_example("binarized-mlp", out_dir=tmp_path / "r", folding_objective="area")


def test_bad_output_directory_fails_before_any_work(tmp_path, capsys):
    import time

    start = time.perf_counter()
    assert main(["run", "--out", "/dev/null/sub"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: output directory '/dev/null/sub' cannot be written")
    assert err.count("\n") == 1
    assert time.perf_counter() - start < 5          # no training, no simulation


def test_cli_bad_fold_syntax():
    result = subprocess.run([sys.executable, "-m", "codesign.cli", "run", "--fold", "fc0"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "expected LAYER=PE,SIMD" in result.stderr


def test_family_override_runs_bit_exact(tmp_path):
    """A hidden XNOR layer moved onto the MAC engine: the passes keep its dot product."""
    out = tmp_path / "run"
    assert main(["run", "--family", "fc1=mac", "--frames", "12", "--no-baseline",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bit_exact"] and summary["analytical_match"]
    assert [layer["family"] for layer in summary["layers"]] == [
        "binary_weight", "mac", "xnor_popcount"]
