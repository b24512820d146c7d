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


def _plot_resources(summary: dict[str, Any]) -> bytes:
    """Per-stage resources from synthesis (the resource model's estimate hatched beside)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    resources = summary["resources"]
    names = list(resources["stages"])
    model = resources.get("model", {}).get("stages", {})
    panels = (("LUT", lambda r: r["lut"]), ("FF", lambda r: r["ff"]),
              ("BRAM (18 Kbit)", lambda r: 2 * r["bram36"] + r["bram18"] + r["bram4"] / 4.5),
              ("DSP", lambda r: r["dsp"]))
    fig, axes = plt.subplots(1, 4, figsize=(11, 3.5))
    xs = range(len(names))
    width = 0.4 if model else 0.8
    for ax, (label, get) in zip(axes, panels, strict=True):
        ax.bar([x - (width / 2 if model else 0) for x in xs],
               [get(resources["stages"][n]) for n in names], width, label="Yosys")
        if model:
            ax.bar([x + width / 2 for x in xs], [get(model[n]) for n in names], width,
                   hatch="//", fill=False, label="model")
        ax.set_xticks(list(xs), names, rotation=60, fontsize=7)
        ax.set_title(label)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Resources per stage ({resources['target']}, out of context, counters off)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def _resource_lines(summary: dict[str, Any]) -> list[str]:
    """The report's synthesis section (only for runs that synthesised)."""
    resources = summary["resources"]
    total = resources["total"]
    timing = resources.get("timing")
    model = resources.get("model", {})
    fps = summary.get("frames_per_second")
    lines = [
        "## Synthesis",
        "",
        f"- {resources['target']} (Yosys, flattened, out of context, counters off): "
        f"{total['lut']} LUT ({total['lutram']} as memory), {total['ff']} FF, "
        f"{total['bram36']} RAMB36 + {total['bram18']} 18-Kbit + {total['bram4']} 4-Kbit "
        f"block RAM, {total['dsp']} DSP",
    ]
    if timing is not None:
        lines.append(f"- Fmax {summary['fmax_mhz']:.1f} MHz on {timing['part']} (nextpnr, "
                     f"median of {len(timing['seeds'])} seeds) -> {fps:,.0f} frames/s at "
                     f"{summary['cycles_per_frame']:.1f} cycles/frame")
    if summary.get("frames_per_joule"):
        lines.append(f"- {summary['frames_per_joule']:,.0f} frames per joule (the energy "
                     "model's pJ per frame)")
    lines += ["", "| stage | memory style | LUT | FF | BRAM36 | BRAM18 | DSP | model LUT | "
              "model BRAM36/18 | model DSP |", "|---|---|---|---|---|---|---|---|---|---|"]
    styles = {stage["name"]: stage.get("memory_style", "auto") for stage in summary["layers"]}
    for name, r in resources["stages"].items():
        m = model.get("stages", {}).get(name)
        est = (f"{m['lut']} | {m['bram36']}/{m['bram18']} | {m['dsp']}" if m else "- | - | -")
        lines.append(f"| {name} | {styles.get(name, '')} | {r['lut']} | {r['ff']} | "
                     f"{r['bram36']} | {r['bram18']} | {r['dsp']} | {est} |")
    chain = resources["chain"]
    lines += [f"| FIFOs, converters | | {chain['lut']} | {chain['ff']} | {chain['bram36']} | "
              f"{chain['bram18']} | {chain['dsp']} | | | |", "",
              "![resources](resources.png)", ""]

def compression_lines(summary: dict[str, Any]) -> list[str]:
    """The seeds' metrics against the float baseline, and a recipe's accuracies."""
    c = summary["compression"]
    lines = [
        f"- compression against {c['baseline']} ({c['baseline_weights']} float weights): "
        f"alpha {c['alpha']:.2f} ({c['weights']} weights stored), beta {c['beta']:.2f}; in "
        f"bits alpha {c['alpha_bits']:.2f} ({c['stored_bits_total']} parameter bits stored)"]
    base = c["baseline_design"]
    if c["delta"] is None or base is None:
        lines.append("- speedup not measured: "
                     + c.get("speedup_not_measured", "the run is not bit-exact"))
    else:
        lines.append(
            f"- speedup against {c['baseline']} as a dense 8-bit design with at most "
            f"{c['lanes']} lanes ({base['lanes']} used): delta {c['delta']:.2f} "
            f"({base['cycles_per_frame']:.1f} cycles/frame in RTL, "
            f"{'bit-exact' if base['bit_exact'] else 'MISMATCHING'})")
    recipe = summary.get("recipe")
    if recipe is not None:
        line = f"- recipe: test accuracy {recipe['test_accuracy']:.4f}"
        if "teacher" in recipe:
            line += (f" distilled from {recipe['teacher']}, "
                     f"{recipe['test_accuracy_without_teacher']:.4f} without the teacher")
        lines.append(line)
    return lines


def _data(summary: dict[str, Any]) -> str:
    data = summary.get("data", "digits")
    return "" if data == "digits" else f" ({data} test split)"


def _accuracy(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _source(summary: dict[str, Any]) -> str:
    """How the compressed model's own accuracy was computed."""
    return {"qonnx": "execute_onnx (imported QONNX)",
            "torch_ao": "torch (int8 kernels)"}.get(summary.get("source", ""),
                                                    "torch (compressed)")


def _source_exact(summary: dict[str, Any]) -> str:
    exact = summary.get("source_bit_exact")
    if exact is None:
        return ""
    return ("; the reference equals the imported model's outputs on every element"
            if exact else "; the reference DIFFERS from the imported model's outputs")


def render_markdown(summary: dict[str, Any]) -> str:
    """report.md: the run's figures (every number is a summary.json value) and its plots."""
    status = "bit-exact" if summary["bit_exact"] else f"{summary['mismatches']} MISMATCHES"
    machine = summary.get("machine", {})
    lines = [
        f"# {summary['example']}: RTL run report",
        "",
        f"- frames simulated: {summary['frames']}{_data(summary)}, outputs {status} against "
        "the integer "
        "reference" + ("" if summary["first_mismatch"] is None
                       else f" (first: {summary['first_mismatch']})"),
        f"- accuracy: float baseline {_accuracy(summary['accuracy_float'])}, "
        f"{_source(summary)} {summary['accuracy_torch']:.4f}, hardware "
        f"{summary['accuracy_hw']:.4f}; reference and {_source(summary).split(' ')[0]} agree on "
        f"{summary['torch_reference_agreement']} of {summary['frames']} predictions"
        + _source_exact(summary),
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
        *(compression_lines(summary) if "compression" in summary else []),
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
    if "resources" in summary:
        lines += _resource_lines(summary)
    if machine:
        lines += [
            "## This machine",
            "",
            f"- simulation: {machine.get('sim_cycles_per_second', 0.0) / 1e6:.2f} M cycles/s "
            f"(Verilator via cocotb), build {machine.get('build_seconds', 0.0):.1f} s",
            "",
        ]
    return "\n".join(lines)


SYNTH_VERILOG = "codesign_top_synth.v"
"""The run directory's synthesised Verilog (counters off), beside the simulated one."""


def write_run_directory(out_dir: Path, summary: dict[str, Any], verilog: str,
                        synth_verilog: str | None = None) -> dict[str, Path]:
    """Write the Verilog (and, for a run that synthesised, the synthesised Verilog),
    summary.json, report.md and the plots; returns their paths.

    The results go first, so a failure while plotting loses nothing already computed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "verilog": atomic_write_text(out_dir / "verilog" / "codesign_top.v", verilog),
    }
    if synth_verilog is not None:
        paths["synth_verilog"] = atomic_write_text(out_dir / "verilog" / SYNTH_VERILOG,
                                                   synth_verilog)
    paths["summary"] = atomic_write_text(out_dir / "summary.json",
                                         json.dumps(summary, indent=2) + "\n")
    paths["report"] = atomic_write_text(out_dir / "report.md", render_markdown(summary))
    paths["cycles_plot"] = atomic_write_bytes(out_dir / "cycles.png", _plot_cycles(summary))
    paths["energy_plot"] = atomic_write_bytes(out_dir / "energy.png", _plot_energy(summary))
    if "resources" in summary:
        paths["resources_plot"] = atomic_write_bytes(out_dir / "resources.png",
                                                     _plot_resources(summary))
    return paths


def _delta(summary: dict[str, Any]) -> str:
    delta = summary["compression"]["delta"]
    return "-" if delta is None else f"{delta:.2f}"


def render_index(summaries: list[dict[str, Any]]) -> str:
    """reports/README.md: one row per example run, linking to its report."""
    lines = [
        "# Results of the built-in examples",
        "",
        "Regenerate with `codesign study --out reports`. Every row is an RTL simulation of the",
        "whole digits test split whose outputs matched the integer reference bit-exactly.",
        "",
        "| example | engines | float acc. | compressed acc. (torch = RTL) | bit-exact | "
        "cycles/frame | nJ/frame | alpha | delta | analytical model |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for summary in summaries:
        engines = ", ".join(
            f"{stage['family']}{' sparse' if stage['sparse'] else ''}"
            for stage in summary["layers"] if "family" in stage)
        lines.append(
            f"| [{summary['example']}]({summary['example']}/report.md) | {engines} | "
            f"{_accuracy(summary['accuracy_float'])} | {summary['accuracy_torch']:.4f} = "
            f"{summary['accuracy_hw']:.4f} | {'yes' if summary['bit_exact'] else 'NO'} "
            f"({summary['frames']} frames) | {summary['cycles_per_frame']:.1f} | "
            f"{summary['energy_pj_per_frame'] / 1000:.2f} | "
            f"{summary['compression']['alpha']:.2f} | {_delta(summary)} | "
            f"{'exact' if summary['analytical_match'] else 'differs'} |")
    return "\n".join(lines) + "\n"
