"""Run reports: summary.json, a Markdown report and its plots, all written atomically."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from codesign.paths import atomic_write_bytes, atomic_write_text


def _plot_cycles(summary: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = summary["layers"]
    names = [layer["name"] for layer in layers]
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.4
    ax.bar([x - width / 2 for x in xs], [layer["formula_cycles"] for layer in layers], width,
           label="formula (issue cycles at full rate)")
    ax.bar([x + width / 2 for x in xs], [layer["measured_cycles"] for layer in layers], width,
           label="measured (RTL counters)")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel(f"cycles for {summary['frames']} frames")
    ax.set_title("Per-stage cycles: measured vs formula")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def _plot_energy(summary: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = summary["layers"]
    names = [layer["name"] for layer in layers]
    components = sorted({c for layer in layers for c in layer["energy_pj_by_component"]})
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bottom = [0.0] * len(layers)
    for component in components:
        values = [layer["energy_pj_by_component"].get(component, 0.0) for layer in layers]
        ax.bar(names, values, bottom=bottom, label=component)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("pJ per frame")
    ax.set_title(f"Energy by stage ({summary['energy_table']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def render_markdown(summary: dict[str, Any]) -> str:
    """report.md: the run's figures (every number is a summary.json value) and its plots."""
    status = "bit-exact" if summary["bit_exact"] else f"{summary['mismatches']} MISMATCHES"
    machine = summary.get("machine", {})
    lines = [
        f"# {summary['example']}: RTL run report",
        "",
        f"- frames simulated: {summary['frames']}, outputs {status} against the integer "
        "reference" + ("" if summary["first_mismatch"] is None
                       else f" (first: {summary['first_mismatch']})"),
        f"- accuracy: float baseline {summary['accuracy_float']:.4f}, torch (compressed) "
        f"{summary['accuracy_torch']:.4f}, hardware {summary['accuracy_hw']:.4f}; "
        f"reference and torch agree on {summary['torch_reference_agreement']} of "
        f"{summary['frames']} predictions",
        f"- throughput ({summary['organisation']} organisation): "
        f"{summary['cycles_per_frame']:.1f} cycles/frame over the run "
        f"(bottleneck stage {summary['bottleneck_cycles_per_frame']} issue cycles/frame); "
        f"first input to last output {summary['total_cycles']} cycles",
        f"- energy: {summary['energy_pj_per_frame']:.1f} pJ per frame "
        f"({summary['energy_table']}, {summary['technology_node']})",
        f"- FIFOs between stages: {summary.get('fifo_bits', 0)} bits, "
        f"{summary.get('join_fifo_bits', 0)} of them on the paths into joins",
        f"- analytical model: every stall-independent counter of every stage predicted "
        f"{'exactly' if summary['analytical_match'] else 'WITH DIFFERENCES (see summary.json)'}",
        "",
        "| stage | hardware | inputs → outputs | formula cycles | measured cycles | fill | "
        "stall in | stall out | pJ/frame |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for stage in summary["layers"]:
        lines.append(
            f"| {stage['name']} | {stage['hardware']} | {stage['input_type']} → "
            f"{stage['output_type']} | {stage['formula_cycles']} | "
            f"{stage['measured_cycles']} | {stage['fill_cycles']} | "
            f"{stage['stall_in_cycles']} | {stage['stall_out_cycles']} | "
            f"{stage['energy_pj_per_frame']:.1f} |")
    lines += [
        "",
        "Measured cycles are the stage's active span less the cycles it waited for input "
        "or was blocked by its consumer, read from its counters; they equal the formula "
        "plus the stage's fixed fill when it issues at one step per cycle.",
        "",
        "![cycles](cycles.png)",
        "",
        "![energy](energy.png)",
        "",
    ]
    if machine:
        lines += [
            "## This machine",
            "",
            f"- simulation: {machine.get('sim_cycles_per_second', 0.0) / 1e6:.2f} M cycles/s "
            f"(Verilator via cocotb), build {machine.get('build_seconds', 0.0):.1f} s",
            "",
        ]
    return "\n".join(lines)


def write_run_directory(out_dir: Path, summary: dict[str, Any], verilog: str) -> dict[str, Path]:
    """Write summary.json, report.md, the plots and the Verilog; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "verilog": atomic_write_text(out_dir / "verilog" / "codesign_top.v", verilog),
        "cycles_plot": atomic_write_bytes(out_dir / "cycles.png", _plot_cycles(summary)),
        "energy_plot": atomic_write_bytes(out_dir / "energy.png", _plot_energy(summary)),
        "report": atomic_write_text(out_dir / "report.md", render_markdown(summary)),
    }
    paths["summary"] = atomic_write_text(out_dir / "summary.json",
                                         json.dumps(summary, indent=2) + "\n")
    return paths


def render_index(summaries: list[dict[str, Any]]) -> str:
    """reports/README.md: one row per example run, linking to its report."""
    lines = [
        "# Results of the built-in examples",
        "",
        "Regenerate with `codesign study --out reports`. Every row is an RTL simulation of the",
        "whole digits test split whose outputs matched the integer reference bit-exactly.",
        "",
        "| example | engines | float acc. | compressed acc. (torch = RTL) | bit-exact | "
        "cycles/frame | nJ/frame | analytical model |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for summary in summaries:
        engines = ", ".join(
            f"{stage['family']}{' sparse' if stage['sparse'] else ''}"
            for stage in summary["layers"] if "family" in stage)
        lines.append(
            f"| [{summary['example']}]({summary['example']}/report.md) | {engines} | "
            f"{summary['accuracy_float']:.4f} | {summary['accuracy_torch']:.4f} = "
            f"{summary['accuracy_hw']:.4f} | {'yes' if summary['bit_exact'] else 'NO'} "
            f"({summary['frames']} frames) | {summary['cycles_per_frame']:.1f} | "
            f"{summary['energy_pj_per_frame'] / 1000:.2f} | "
            f"{'exact' if summary['analytical_match'] else 'differs'} |")
    return "\n".join(lines) + "\n"
