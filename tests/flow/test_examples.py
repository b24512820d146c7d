"""Every built-in example: loaded from the shipped weights, the integer reference agrees with
torch prediction by prediction, and the mixed-precision network runs bit-exactly through
`codesign run`."""

import json

import numpy as np
import pytest

import quant_models.cache as cache
import quant_models.techniques as techniques
from codesign.cli import main
from codesign.examples import EXAMPLES, load_example
from codesign.flow import compile_model
from codesign.reference import execute
from quant_models.catalog import example as catalog_example
from quant_models.train import evaluate, predict


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_examples_load_the_shipped_weights_without_training(name, empty_cache, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} was trained")

    monkeypatch.setattr(cache, "train_classifier", fail)
    monkeypatch.setattr(techniques, "train_classifier", fail)
    example = load_example(name)
    entry = catalog_example(name)
    shipped = cache.read_weights(cache.shipped_path(name)).report
    baseline = cache.read_weights(cache.shipped_path(entry.baseline)).report
    assert example.float_accuracy == baseline.test_accuracy
    assert evaluate(example.model, example.x_test, example.y_test) == shipped.test_accuracy
    assert (example.description, example.target_cycles, example.sparse) == (
        entry.description, entry.target_cycles, entry.sparse)
    assert len(example.x_test) == 450 and not (empty_cache / "models").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_reference_equals_torch_on_whole_test_split(name):
    example = load_example(name)
    design = compile_model(example.model, name=name, target_cycles=example.target_cycles,
                           sparse=example.sparse)
    scores = execute(design.graph, example.x_test)
    assert np.array_equal(np.argmax(scores, axis=1), predict(example.model, example.x_test))
    families = {layer.family.name for layer in design.engines}
    expected = {
        "binarized-mlp": {"binary_weight", "xnor_popcount"},
        "ternary-mlp-twn": {"ternary"},
        "mixed-mlp": {"mac", "xnor_popcount", "ternary"},
    }.get(name)
    if expected is not None:
        assert families == expected
    if name.startswith("pruned"):
        assert all(layer.kind == "sparse_mvu" for layer in design.engines)


@pytest.mark.slow
def test_mixed_network_through_codesign_run(tmp_path):
    out = tmp_path / "mixed"
    assert main(["run", "mixed-mlp", "--frames", "60", "--no-baseline", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bit_exact"] and summary["mismatches"] == 0
    assert summary["analytical_match"] is True
    assert [layer["family"] for layer in summary["layers"]] == [
        "mac", "xnor_popcount", "ternary", "mac", "mac"]
    assert [layer["input_type"] for layer in summary["layers"]][:3] == [
        "uint5", "bipolar", "bipolar"]
    for layer in summary["layers"]:
        assert layer["measured_cycles"] == layer["formula_cycles"] + layer["fill_cycles"]


@pytest.mark.slow
def test_sparse_example_skips_zero_weights(tmp_path):
    out = tmp_path / "pruned"
    assert main(["run", "pruned-mlp-0.9", "--frames", "20", "--no-baseline",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bit_exact"] and summary["analytical_match"]
    for layer in summary["layers"]:
        assert layer["sparse"] and layer["kind"] == "sparse_mvu"
        counters = layer["counters"]
        zeros = round(layer["weight_sparsity"] * layer["mw"] * layer["mh"])
        assert counters["skipped_weights"] == 20 * zeros       # no cycle, no MAC energy
        # issued steps follow the non-zeros of the busiest PE, far below the dense count
        dense = 20 * (layer["mh"] // layer["pe"]) * (layer["mw"] // layer["simd"])
        assert counters["issue"] < dense


@pytest.mark.slow
@pytest.mark.parametrize("name", ["binary-cnn", pytest.param("depthwise-separable-cnn",
                                                            marks=pytest.mark.extended)])
def test_cnn_through_codesign_run(name, tmp_path):
    out = tmp_path / name
    assert main(["run", name, "--frames", "30", "--no-baseline", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bit_exact"] and summary["mismatches"] == 0
    assert summary["analytical_match"] is True
    kinds = [layer["kind"] for layer in summary["layers"]]
    assert {"window", "pool"} <= set(kinds) and {"mvu", "sparse_mvu"} & set(kinds)
    for layer in summary["layers"]:
        # every stage issues at one step per cycle: formula + its own fill
        assert layer["measured_cycles"] == layer["formula_cycles"] + layer["fill_cycles"]
    if name == "depthwise-separable-cnn":
        sparse = [layer for layer in summary["layers"] if layer.get("sparse")]
        assert sparse and all(layer["weight_sparsity"] > 0.8 for layer in sparse)


DAG_EXAMPLES = {
    "resnet-w4a4": {"fork", "add", "global_pool"},
    "binary-resnet": {"fork", "add", "global_pool"},
    "squeezenet-w4a4": {"fork", "concat", "global_pool"},
    "nin-w4a4": {"pool", "global_pool"},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", [name if name == "resnet-w4a4" else
                                  pytest.param(name, marks=pytest.mark.extended)
                                  for name in sorted(DAG_EXAMPLES)])
def test_dag_example_through_codesign_run(name, tmp_path):
    """Forks, joins and average pools bit-exact through `codesign run`, every stage at its
    formula plus fill, and the design's steady state at its bottleneck's rate."""
    from codesign.generate import generate_verilog
    from codesign.simulate import simulate

    out = tmp_path / name
    assert main(["run", name, "--frames", "16", "--no-baseline", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bit_exact"] and summary["analytical_match"]
    assert DAG_EXAMPLES[name] <= {layer["kind"] for layer in summary["layers"]}
    for layer in summary["layers"]:
        assert layer["measured_cycles"] == layer["formula_cycles"] + layer["fill_cycles"]
    joins = [f for f in summary["fifos"] if f["join"]]
    assert bool(joins) == (name != "nin-w4a4")
    assert summary["join_fifo_bits"] == sum(f["depth"] * f["width"] for f in joins)
    example = load_example(name)
    design = compile_model(example.model, name=name, target_cycles=example.target_cycles)
    artefact = generate_verilog(design)
    runs = [simulate(design, example.x_test[:n], artefact=artefact).total_cycles
            for n in (8, 16)]
    assert (runs[1] - runs[0]) / 8 == design.cycles_per_frame
