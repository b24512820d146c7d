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
           label="ideal N·(MH/PE)·(MW/SIMD)")
    ax.bar([x + width / 2 for x in xs], [layer["measured_cycles"] for layer in layers], width,
           label="measured (RTL counters)")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel(f"cycles for {summary['frames']} frames")
    ax.set_title("Per-layer cycles: measured vs ideal")
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
    ax.set_title(f"Energy by layer ({summary['energy_table']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def render_markdown(summary: dict[str, Any]) -> str:
    status = "bit-exact" if summary["bit_exact"] else f"{summary['mismatches']} MISMATCHES"
    lines = [
        f"# {summary['example']}: RTL run report",
        "",
        f"- frames simulated: {summary['frames']} (whole test split), outputs {status} "
        "against the integer reference",
        f"- accuracy: float baseline {summary['accuracy_float']:.4f}, torch (compressed) "
        f"{summary['accuracy_torch']:.4f}, hardware {summary['accuracy_hw']:.4f}; "
        f"reference and torch agree on {summary['torch_reference_agreement']} of "
        f"{summary['frames']} predictions",
        f"- throughput: {summary['cycles_per_frame']:.1f} cycles/frame over the run "
        f"(bottleneck layer {summary['bottleneck_cycles_per_frame']} issue cycles/frame); "
        f"first input to last output {summary['total_cycles']} cycles",
        f"- energy: {summary['energy_pj_per_frame']:.1f} pJ per frame "
        f"({summary['energy_table']}, {summary['technology_node']})",
        f"- simulation: {summary['sim_cycles_per_second'] / 1e6:.2f} M cycles/s "
        f"(Verilator via cocotb)",
        f"- analytical model: every stall-independent counter of every layer predicted "
        f"{'exactly' if summary['analytical_match'] else 'WITH DIFFERENCES (see summary.json)'}",
        "",
        "| layer | engine | weights × inputs → outputs | MW×MH | PE | SIMD | formula cycles | "
        "measured cycles | fill | stall in | stall out | pJ/frame |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layer in summary["layers"]:
        engine = layer["family"] + (
            f" sparse ({layer['weight_sparsity']:.0%} zeros)" if layer["sparse"] else "")
        lines.append(
            f"| {layer['name']} | {engine} | {layer['weight_type']} × {layer['input_type']} → "
            f"{layer['output_type']} | {layer['mw']}×{layer['mh']} | "
            f"{layer['pe']} | {layer['simd']} | {layer['formula_cycles']} | "
            f"{layer['measured_cycles']} | {layer['fill_cycles']} | "
            f"{layer['stall_in_cycles']} | {layer['stall_out_cycles']} | "
            f"{layer['energy_pj_per_frame']:.1f} |")
    lines += [
        "",
        "Measured cycles are the layer's active span less the cycles it waited for input "
        "or was blocked by its consumer, read from the engine's counters; they equal the "
        "formula plus the engine's fixed fill when it issues at one step per cycle.",
        "",
        "![cycles](cycles.png)",
        "",
        "![energy](energy.png)",
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
            f"{layer['family']}{' sparse' if layer['sparse'] else ''}"
            for layer in summary["layers"])
        lines.append(
            f"| [{summary['example']}]({summary['example']}/report.md) | {engines} | "
            f"{summary['accuracy_float']:.4f} | {summary['accuracy_torch']:.4f} = "
            f"{summary['accuracy_hw']:.4f} | {'yes' if summary['bit_exact'] else 'NO'} "
            f"({summary['frames']} frames) | {summary['cycles_per_frame']:.1f} | "
            f"{summary['energy_pj_per_frame'] / 1000:.2f} | "
            f"{'exact' if summary['analytical_match'] else 'differs'} |")
    return "\n".join(lines) + "\n"
