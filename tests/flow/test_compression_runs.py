"""Compressed networks through the command line: `codesign compress` fails on a bad recipe in
a line, before training; a compressed example and a recipe file run bit-exactly in RTL with
the seeds' metrics measured (slow)."""

from __future__ import annotations

import json

import pytest
import yaml

import quant_models.techniques as techniques
from codesign.cli import main

TINY = {
    "name": "tiny-svd-mlp",
    "description": "fc1 of the 4-bit MLP by truncated SVD, one epoch",
    "base": "fixed-point-mlp-w4a4",
    "steps": [{"technique": "low_rank", "layers": {"fc1": {"method": "svd", "rank": 8}},
               "epochs": 1}],
}


def test_a_bad_recipe_is_one_line_before_any_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(techniques, "train_classifier", lambda *a, **k: 1 / 0)
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({**TINY, "steps": [
        {"technique": "low_rank", "layers": {"fc9": {"method": "svd", "rank": 8}}}]}))
    assert main(["compress", str(recipe), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: {recipe}: step 1 (low_rank): unknown layer 'fc9'; layers: fc0, "
                   "fc1, fc2\n")


def _check_run(summary):
    assert summary["bit_exact"] and summary["mismatches"] == 0
    assert summary["analytical_match"] is True
    assert summary["torch_reference_agreement"] == summary["frames"]
    for layer in summary["layers"]:
        assert layer["measured_cycles"] == layer["formula_cycles"] + layer["fill_cycles"]
    compression = summary["compression"]
    assert compression["baseline_design"]["bit_exact"] is True
    assert compression["delta"] == (compression["baseline_design"]["cycles_per_frame"]
                                    / summary["cycles_per_frame"])
    assert compression["baseline_design"]["lanes"] <= compression["lanes"]
    return compression


@pytest.mark.slow
def test_the_combined_pipeline_runs_bit_exactly_with_its_metrics(tmp_path):
    out = tmp_path / "combined"
    assert main(["run", "compressed-cnn", "--frames", "8", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    compression = _check_run(summary)
    assert compression["baseline"] == "float-cnn" and compression["alpha"] >= 10
    kinds = [layer["kind"] for layer in summary["layers"]]
    assert kinds.count("mvu") > 4 and "window" in kinds
    epilogues = {layer["epilogue"] for layer in summary["layers"] if layer["kind"] == "mvu"}
    assert "Requantize" in epilogues                      # the factor chains
    assert "distilled from float-cnn" in (out / "report.md").read_text()


@pytest.mark.slow
def test_a_recipe_file_runs_end_to_end(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "tiny"
    assert main(["compress", str(recipe), "--frames", "6", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    _check_run(summary)
    assert summary["example"] == "tiny-svd-mlp"
    assert [step["technique"] for step in summary["recipe"]["steps"]] == ["low_rank"]
    assert [layer["name"] for layer in summary["layers"]] == ["fc0", "fc1", "fc2", "fc3"]
