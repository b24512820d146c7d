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
    (rf"- frames simulated: (?P<frames>{NUMBER}), outputs "
     rf"(?:bit-exact|(?P<mismatches>{NUMBER}) MISMATCHES) against the integer reference"
     r"(?: \(first: (?P<first>.*)\))?",
     {"frames": "frames", "mismatches": "mismatches", "first": "first_mismatch"}),
    (rf"- accuracy: float baseline (?P<float>{NUMBER}), torch \(compressed\) "
     rf"(?P<torch>{NUMBER}), hardware (?P<hw>{NUMBER}); reference and torch agree on "
     rf"(?P<agree>{NUMBER}) of (?P<frames>{NUMBER}) predictions",
     {"float": "accuracy_float", "torch": "accuracy_torch", "hw": "accuracy_hw",
      "agree": "torch_reference_agreement", "frames": "frames"}),
    (rf"- throughput \((?P<org>\S+) organisation\): (?P<cpf>{NUMBER}) cycles/frame over "
     rf"the run \(bottleneck stage (?P<bottleneck>{NUMBER}) issue cycles/frame\); first "
     rf"input to last output (?P<total>{NUMBER}) cycles",
     {"org": "organisation", "cpf": "cycles_per_frame",
      "bottleneck": "bottleneck_cycles_per_frame", "total": "total_cycles"}),
    (rf"- energy: (?P<energy>{NUMBER}) pJ per frame \((?P<table>[^,]+), (?P<node>[^)]+)\)",
     {"energy": "energy_pj_per_frame", "table": "energy_table", "node": "technology_node"}),
    (rf"- FIFOs between stages: (?P<fifo>{NUMBER}) bits, (?P<join>{NUMBER}) of them on the "
     r"paths into joins", {"fifo": "fifo_bits", "join": "join_fifo_bits"}),
    (r"- analytical model: every stall-independent counter of every stage predicted "
     r"(?P<match>exactly|WITH DIFFERENCES \(see summary.json\))",
     {"match": lambda s: "exactly" if s["analytical_match"] else
      "WITH DIFFERENCES (see summary.json)"}),
    (rf"- compression against (?P<baseline>\S+) \((?P<params>{NUMBER}) float weights\): "
     rf"alpha (?P<alpha>{NUMBER}) \((?P<weights>{NUMBER}) weights stored\), beta "
     rf"(?P<beta>{NUMBER}); in bits alpha (?P<alpha_bits>{NUMBER}) \((?P<bits>{NUMBER}) "
     r"parameter bits stored\)",
     {"baseline": lambda s: s["compression"]["baseline"],
      "params": lambda s: s["compression"]["baseline_weights"],
      "alpha": lambda s: s["compression"]["alpha"],
      "weights": lambda s: s["compression"]["weights"],
      "beta": lambda s: s["compression"]["beta"],
      "alpha_bits": lambda s: s["compression"]["alpha_bits"],
      "bits": lambda s: s["compression"]["stored_bits_total"]}),
    (rf"- (?:speedup not measured: (?:the run is not bit-exact|skipped \(--no-baseline\))|"
     rf"speedup against "
     rf"(?P<baseline>\S+) as a dense 8-bit design with at most (?P<lanes>{NUMBER}) lanes "
     rf"\((?P<used>{NUMBER}) used\): delta (?P<delta>{NUMBER}) \((?P<cpf>{NUMBER}) "
     r"cycles/frame in RTL, bit-exact\))",
     {"baseline": lambda s: _measured(s, s["compression"]["baseline"]),
      "lanes": lambda s: _measured(s, s["compression"]["lanes"]),
      "used": lambda s: _baseline(s, "lanes"),
      "delta": lambda s: s["compression"]["delta"],
      "cpf": lambda s: _baseline(s, "cycles_per_frame")}),
    (r"", {}),
    (r"\| stage \| hardware \| inputs → outputs \| formula cycles \| measured cycles \| "
     r"fill \| stall in \| stall out \| pJ/frame \|", {}),
    (r"(?:\|---){9}\|", {}),
]

def _measured(summary: dict[str, Any], value: Any) -> Any:
    """``value`` where the run measured its speedup, else None."""
    return None if summary["compression"]["delta"] is None else value


def _baseline(summary: dict[str, Any], key: str) -> Any:
    design = summary["compression"]["baseline_design"]
    return None if design is None else design[key]


STAGE_ROW = re.compile(
    r"\| (?P<name>\S+) \| (?P<hardware>[^|]+) \| "
    r"(?P<input_type>\S+) → (?P<output_type>\S+) \| "
    rf"(?P<formula_cycles>{NUMBER}) \| (?P<measured_cycles>{NUMBER}) \| "
    rf"(?P<fill_cycles>{NUMBER}) \| (?P<stall_in_cycles>{NUMBER}) \| "
    rf"(?P<stall_out_cycles>{NUMBER}) \| (?P<energy_pj_per_frame>{NUMBER}) \|")

FOOTER_LINES = [
    (r"", {}),
    (r"Measured cycles are the stage's active span less the cycles it waited for input or was "
     r"blocked by its consumer, read from its counters; they equal the formula plus the "
     r"stage's fixed fill when it issues at one step per cycle\.", {}),
    (r"", {}),
    (r"!\[cycles\]\(cycles.png\)", {}),
    (r"", {}),
    (r"!\[energy\]\(energy.png\)", {}),
    (r"", {}),
    (r"## This machine", {}),
    (r"", {}),
    (rf"- simulation: (?P<speed>{NUMBER}) M cycles/s \(Verilator via cocotb\), build "
     rf"(?P<build>{NUMBER}) s",
     {"speed": lambda s: s["machine"]["sim_cycles_per_second"] / 1e6,
      "build": lambda s: s["machine"]["build_seconds"]}),
    (r"", {}),
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
    footer = lines[len(HEADER_LINES) + len(layers):]
    for line, (pattern, fields) in zip([*lines[:len(HEADER_LINES)], *footer],
                                       [*HEADER_LINES, *FOOTER_LINES], strict=True):
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
        match = STAGE_ROW.fullmatch(line)
        assert match is not None, line
        for group, text in match.groupdict().items():
            assert_printed(text, layer[group], f"{line!r}: {group}")
