"""The table of built-in examples, what reads it, and the package's import graph."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import quant_models
import quant_models.catalog as catalog
import quant_models.cnn_zoo as cnn_zoo
import quant_models.zoo as zoo
from codesign.cli import main as codesign_main
from codesign.errors import CodesignError
from codesign.examples import DEFAULT_EXAMPLE, EXAMPLES, RUNNABLE, load_example
from quant_models.architecture import SequentialNet
from quant_models.cnn import FloatCNN
from quant_models.models import FloatMLP

DAG_NAMES = ("resnet-w4a4", "binary-resnet", "squeezenet-w4a4", "nin-w4a4")
ALL_NAMES = [
    "float-mlp",
    "binarized-mlp",
    "ternary-mlp-twn",
    "ternary-mlp-ttq",
    "fixed-point-mlp-w4a4",
    "fixed-point-mlp-w8a8",
    "pruned-mlp-0.5",
    "pruned-mlp-0.75",
    "pruned-mlp-0.9",
    "mixed-mlp",
    "deep-compression-mlp",
    "svd-mlp",
    "distilled-binarized-mlp",
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
    "filter-pruned-cnn-0.5",
    "filter-pruned-cnn-0.75",
    "slimmed-cnn",
    "thinet-cnn",
    "tucker-cnn",
    "compressed-cnn",
]


def test_the_table_has_every_example_once() -> None:
    table = catalog.examples()
    names = [entry.name for entry in table]
    assert names == ALL_NAMES
    assert max(Counter(names).values()) == 1
    assert zoo.builtin_example_names() + cnn_zoo.builtin_cnn_names() == ALL_NAMES
    assert [catalog.example(name) for name in names] == list(table)


def test_codesign_examples_prints_every_hardware_example_of_the_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert codesign_main(["examples"]) == 0
    lines = capsys.readouterr().out.splitlines()
    hardware = [entry for entry in catalog.examples() if entry.target_cycles is not None]
    imported = [f"{entry.name}: {entry.description} (needs the onnx extra)"
                for entry in catalog.imported_examples()]
    assert lines == [f"{entry.name}: {entry.description}" for entry in hardware] + imported
    assert list(EXAMPLES) == [entry.name for entry in hardware]
    assert set(ALL_NAMES) - set(EXAMPLES) == {"float-mlp", "float-cnn", "ternary-cnn-ttq"}
    assert DEFAULT_EXAMPLE == "binarized-mlp" and DEFAULT_EXAMPLE in EXAMPLES


def test_records_are_consistent() -> None:
    for entry in catalog.examples():
        assert entry.kind in ("mlp", "cnn"), entry.name
        # the convolutional networks that are not chains keep their own names
        assert ("cnn" in entry.name or entry.name in DAG_NAMES) == (entry.kind == "cnn"), \
            entry.name
        assert entry.description and "\n" not in entry.description
        if entry.baseline is None:
            assert entry.model in (FloatMLP, FloatCNN) and entry.target_cycles is None
        else:
            baseline = catalog.example(entry.baseline)
            assert baseline.baseline is None and baseline.kind == entry.kind, entry.name
        if entry.target_cycles is not None:
            assert entry.baseline is not None and entry.target_cycles > 0
        assert (entry.pruning is not None) == entry.name.startswith("pruned-mlp-")
        if entry.recipe is not None:
            # made by its recipe from an example of the same kind; no untrained network
            assert entry.model is SequentialNet and entry.config == entry.training == {}
            base = catalog.example(entry.recipe["base"])
            assert (base.kind, base.baseline) == (entry.kind, entry.baseline), entry.name
            with pytest.raises(CodesignError, match=f"example '{entry.name}' is made by its "
                                                    "recipe"):
                entry.build()
            continue
        model = entry.build()
        assert type(model) is entry.model


def test_parametric_records_match_the_table() -> None:
    assert catalog.fixed_point_mlp(8, 8) == catalog.example("fixed-point-mlp-w8a8")
    assert catalog.pruned_mlp(0.9) == catalog.example("pruned-mlp-0.9")
    assert catalog.pruned_mlp(0.9).pruning == {**catalog.PRUNED_MLP_SCHEDULE,
                                               "final_sparsity": 0.9}
    other = catalog.fixed_point_mlp(3, 5)
    assert other.name == "fixed-point-mlp-w3a5" and other.name not in ALL_NAMES
    assert other.config == {**catalog.FIXED_POINT_MLP_CONFIG, "weight_bits": 3, "act_bits": 5}


def test_unknown_names_are_named_errors_listing_the_choices() -> None:
    with pytest.raises(catalog.UnknownExampleError) as info:
        catalog.example("no-such-model")
    assert isinstance(info.value, CodesignError)
    assert str(info.value) == "unknown example 'no-such-model'; available: " + ", ".join(
        ALL_NAMES
    )
    with pytest.raises(catalog.UnknownExampleError) as info:
        load_example("float-mlp")  # in the table, but not an example codesign runs
    assert str(info.value) == "unknown example 'float-mlp'; available: " + ", ".join(RUNNABLE)
    with pytest.raises(ValueError, match="method must be 'twn' or 'ttq', got 'bwn'"):
        catalog.ternary_cnn("bwn")
    with pytest.raises(ValueError, match=r"sparsity must be in \(0, 1\), got 1"):
        catalog.pruned_mlp(1)


# -- imports ----------------------------------------------------------------------------------


def _module_imports(path: Path, package: Path) -> set[str]:
    """quant_models modules a file imports anywhere (top level or inside functions)."""
    modules = {f"quant_models.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules or name == "quant_models"}


def test_no_import_cycle_in_quant_models() -> None:
    package = Path(quant_models.__file__).parent
    graph = {
        ("quant_models" if p.stem == "__init__" else f"quant_models.{p.stem}"):
        _module_imports(p, package)
        for p in package.glob("*.py")
    }
    for name in graph:
        graph[name].discard(name)
    assert "quant_models.catalog" in graph["quant_models.zoo"]  # the walk sees imports
    # Every submodule imports the package first: only the package's own edges matter there.
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == "quant_models":
                continue
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path, nxt])
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_cnn_zoo_imports_first_in_a_fresh_interpreter() -> None:
    """Today's cycle-free graph also means no import order can find a half-built module."""
    code = "import quant_models.cnn_zoo, quant_models.zoo; quant_models.zoo.builtin_example_names()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
