"""Every figure report.md prints equals summary.json's, to the precision it is printed with.

The report of each shared run (binarized-mlp through the CLI with a custom energy table and
with a faulty engine, binarized-mlp and binary-cnn through run_example) is parsed line by
line: every line must match its pattern in full, so no number can hide outside a compared
field.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

RUNS = ["mlp-custom-table", "mlp-faulty", "binarized-mlp", "binary-cnn"]

NUMBER = r"-?\d+(?:\.\d+)?"

HEADER_LINES = [
    (r"# (?P<example>\S+): RTL run report", {"example": "example"}),
    (r"", {}),
    (rf"- frames simulated: (?P<frames>{NUMBER}) \([^)\d]*\), outputs "
     rf"(?:bit-exact|(?P<mismatches>{NUMBER}) MISMATCHES) against the integer reference",
     {"frames": "frames", "mismatches": "mismatches"}),
    (rf"- accuracy: float baseline (?P<float>{NUMBER}), torch \(compressed\) "
     rf"(?P<torch>{NUMBER}), hardware (?P<hw>{NUMBER}); reference and torch agree on "
     rf"(?P<agree>{NUMBER}) of (?P<frames>{NUMBER}) predictions",
     {"float": "accuracy_float", "torch": "accuracy_torch", "hw": "accuracy_hw",
      "agree": "torch_reference_agreement", "frames": "frames"}),
    (rf"- throughput: (?P<cpf>{NUMBER}) cycles/frame over the run \(bottleneck layer "
     rf"(?P<bottleneck>{NUMBER}) issue cycles/frame\); first input to last output "
     rf"(?P<total>{NUMBER}) cycles",
     {"cpf": "cycles_per_frame", "bottleneck": "bottleneck_cycles_per_frame",
      "total": "total_cycles"}),
    (rf"- energy: (?P<energy>{NUMBER}) pJ per frame \((?P<table>[^,]+), (?P<node>[^)]+)\)",
     {"energy": "energy_pj_per_frame", "table": "energy_table", "node": "technology_node"}),
    (rf"- simulation: (?P<speed>{NUMBER}) M cycles/s \(Verilator via cocotb\)",
     {"speed": lambda s: s["sim_cycles_per_second"] / 1e6}),
    (r"- analytical model: every stall-independent counter of every layer predicted "
     r"(?P<match>exactly|WITH DIFFERENCES \(see summary.json\))",
     {"match": lambda s: "exactly" if s["analytical_match"] else
      "WITH DIFFERENCES (see summary.json)"}),
    (r"", {}),
    (r"\| layer \| engine \| weights × inputs → outputs \| MW×MH \| PE \| SIMD \| formula "
     r"cycles \| measured cycles \| fill \| stall in \| stall out \| pJ/frame \|", {}),
    (r"(?:\|---){12}\|", {}),
]

LAYER_ROW = re.compile(
    rf"\| (?P<name>\S+) \| (?P<family>\S+)(?: sparse \((?P<zeros>{NUMBER})% zeros\))? \| "
    r"(?P<weight_type>\S+) × (?P<input_type>\S+) → (?P<output_type>\S+) \| "
    rf"(?P<mw>{NUMBER})×(?P<mh>{NUMBER}) \| (?P<pe>{NUMBER}) \| (?P<simd>{NUMBER}) \| "
    rf"(?P<formula_cycles>{NUMBER}) \| (?P<measured_cycles>{NUMBER}) \| "
    rf"(?P<fill_cycles>{NUMBER}) \| (?P<stall_in_cycles>{NUMBER}) \| "
    rf"(?P<stall_out_cycles>{NUMBER}) \| (?P<energy_pj_per_frame>{NUMBER}) \|")

FOOTER_LINES = [
    "",
    "Measured cycles are the layer's active span less the cycles it waited for input or was "
    "blocked by its consumer, read from the engine's counters; they equal the formula plus "
    "the engine's fixed fill when it issues at one step per cycle.",
    "",
    "![cycles](cycles.png)",
    "",
    "![energy](energy.png)",
    "",
]


def assert_printed(text: str | None, value: Any, where: str) -> None:
    """``text`` as printed equals ``value``: integers exactly, decimals to their precision."""
    if isinstance(value, str) or value is None:
        assert text == value, where
        return
    assert text is not None, where
    if "." in text:
        decimals = len(text.split(".")[1])
        assert abs(float(text) - value) <= 0.5 * 10**-decimals + 1e-12, (where, text, value)
    else:
        assert isinstance(value, int) and not isinstance(value, bool), (where, value)
        assert int(text) == value, (where, text, value)


@pytest.fixture
def run(request):
    name = request.param
    if name == "mlp-custom-table":
        return request.getfixturevalue("mlp_custom_table_run")
    if name == "mlp-faulty":
        return request.getfixturevalue("faulty_run")
    return request.getfixturevalue("example_runs")[name]


@pytest.mark.parametrize("run", RUNS, indirect=True)
def test_every_report_figure_equals_the_summary(run):
    summary = run.summary
    lines = run.report.split("\n")
    layers = summary["layers"]
    assert len(lines) == len(HEADER_LINES) + len(layers) + len(FOOTER_LINES)
    for line, (pattern, fields) in zip(lines, HEADER_LINES, strict=False):
        match = re.fullmatch(pattern, line)
        assert match is not None, line
        assert set(match.groupdict()) == set(fields), line
        for group, key in fields.items():
            value = key(summary) if callable(key) else summary[key]
            if group == "mismatches" and summary["bit_exact"]:
                value = None                        # printed as "bit-exact"
            assert_printed(match[group], value, f"{line!r}: {group}")
    rows = lines[len(HEADER_LINES):len(HEADER_LINES) + len(layers)]
    for line, layer in zip(rows, layers, strict=True):
        match = LAYER_ROW.fullmatch(line)
        assert match is not None, line
        for group, text in match.groupdict().items():
            if group == "zeros":
                if layer["sparse"]:
                    assert abs(float(text) / 100 - layer["weight_sparsity"]) <= 0.005, line
                else:
                    assert text is None, line
                continue
            assert_printed(text, layer[group], f"{line!r}: {group}")
    assert lines[len(HEADER_LINES) + len(layers):] == FOOTER_LINES
