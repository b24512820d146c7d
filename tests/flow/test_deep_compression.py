"""The Deep Compression examples: the storage goal per stage, and both networks bit-exact
through `codesign run` on codebook engines."""

import json

import pytest

from codesign.cli import main
from codesign.deep_compression_study import compression_examples
from quant_models.deep_compression import compression_table
from quant_models.zoo import builtin_example


def test_both_examples_are_in_the_study():
    assert compression_examples() == ["deep-compression-mlp", "deep-compression-cnn"]


def test_mlp_reaches_forty_times_at_under_a_point_of_accuracy():
    model, report = builtin_example("deep-compression-mlp")
    _, baseline = builtin_example("float-mlp")
    table = compression_table(model, report, baseline.test_accuracy)
    float_row, pruned, shared, huffman = table.rows
    assert [r.stage for r in table.rows] == ["float32", "pruned", "shared", "huffman"]
    assert float_row.bits == 32 * (64 * 128 + 128 * 128 + 128 * 10)
    assert 1.0 == float_row.alpha < pruned.alpha < shared.alpha < huffman.alpha
    assert huffman.alpha >= 40
    assert huffman.accuracy == report.test_accuracy >= baseline.test_accuracy - 0.01
    assert pruned.weights == shared.weights == sum(s.nonzero for s in table.layers)
    assert huffman.bits == sum(s.huffman_bits for s in table.layers)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["deep-compression-mlp",
                                  pytest.param("deep-compression-cnn", marks=pytest.mark.extended)])
def test_deep_compression_through_codesign_run(name, tmp_path):
    out = tmp_path / name
    assert main(["run", name, "--no-baseline", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 450 and summary["bit_exact"] and summary["mismatches"] == 0
    assert summary["analytical_match"] is True
    assert summary["torch_reference_agreement"] == 450
    assert summary["accuracy_hw"] == summary["accuracy_torch"]
    engines = [layer for layer in summary["layers"] if "family" in layer]
    assert engines and all(layer["family"] == "codebook" for layer in engines)
    assert all(layer["weight_storage"] == "uint4" for layer in engines)
    for layer in summary["layers"]:
        assert layer["measured_cycles"] == layer["formula_cycles"] + layer["fill_cycles"]


def test_study_refuses_unknown_examples(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["study", "--out", str(tmp_path), "--examples", "nope"])
    assert "--examples 'nope': unknown example(s) ['nope']" in capsys.readouterr().err
