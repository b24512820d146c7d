"""A sweep's report: ``README.md`` with the Pareto front's table, and its scatter plots.

``pareto_energy.png`` plots accuracy against energy per frame and ``pareto_luts.png`` cycles
per frame against LUTs; every evaluated point is a grey dot and the front's points are
coloured by the PE families their engines use (energy plot) or by example (LUT plot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from codesign.dse.spec import SweepSpec
from codesign.paths import atomic_write_text

ENERGY_PLOT = "pareto_energy.png"
LUT_PLOT = "pareto_luts.png"


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _choices(row: Mapping[str, Any]) -> str:
    parts = []
    if row.get("target_cycles") is not None:
        parts.append(f"target {row['target_cycles']}")
    if row.get("folding"):
        parts.append("fold " + " ".join(f"{k}={v[0]},{v[1]}" for k, v in row["folding"].items()))
    if row.get("sparse") is not None:
        sparse = row["sparse"]
        parts.append("sparse " + (",".join(sparse) if isinstance(sparse, list) else str(sparse)))
    if row.get("memory_style") is not None:
        parts.append(f"memory {row['memory_style']}")
    if row.get("folding_objective") is not None:
        parts.append(f"fewest {row['folding_objective']}")
    parts.append(f"fifo {row.get('fifo_depth')}")
    return ", ".join(parts)


def _rtl(row: Mapping[str, Any]) -> tuple[str, str]:
    status = row.get("rtl_status")
    if status is None:
        return "not verified", "-"
    if status == "failed":
        return f"failed ({row.get('rtl_error')})", "-"
    return (f"{status} ({row.get('rtl_frames')} frames)",
            _fmt(row.get("rtl_cycles_per_frame")))


def render_sweep_report(spec: SweepSpec, rows: Sequence[Mapping[str, Any]],
                        front: Sequence[Mapping[str, Any]]) -> str:
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "failed")}
    designs: dict[str, Mapping[str, Any]] = {}
    shared: dict[str, int] = {}
    for row in front:
        designs.setdefault(row["design"], row)
        shared[row["design"]] = shared.get(row["design"], 0) + 1
    lines = [
        f"# Sweep {spec.name}", "",
        *([spec.notes, ""] if spec.notes else []),
        f"{len(rows)} design points ({counts['ok']} evaluated, {counts['skipped']} skipped, "
        f"{counts['failed']} failed); every point is evaluated by the analytical model "
        "(cycles, energy), the integer reference on the whole test split (accuracy) and the "
        "xc7 resource model (LUTs; `-` where a stage kind has no calibrated model yet). "
        "The Pareto front maximises accuracy and minimises cycles per frame, energy per frame "
        "and LUTs (a point without a LUT estimate counts as the most expensive); "
        + (f"its designs are simulated in RTL on the first {spec.rtl_frames} test frames and "
           "every output is checked against the reference"
           + ("." if spec.rtl_limit is None else
              f" (at most {spec.rtl_limit} designs, fewest LUTs first, designs without a LUT "
              "estimate last; the others are marked not verified).")
           if spec.rtl_front else "it is not verified in RTL."),
        "", "All rows: `points.csv`; RTL checks: `rtl.csv`.", "",
        f"![accuracy vs energy]({ENERGY_PLOT})", "", f"![cycles vs LUTs]({LUT_PLOT})", "",
        "## Pareto front", "",
        f"{len(front)} points, {len(designs)} distinct designs (points whose choices build "
        "the same hardware share a row: *points* counts them, *choices* are the first's).", "",
        "| example | family | engines | choices | points | accuracy | cycles/frame | pJ/frame "
        "| LUT | FF | BRAM18 | DSP | RTL | RTL cycles/frame |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(designs.values(), key=lambda r: (r["example"], r["cycles_per_frame"])):
        status, cycles = _rtl(row)
        lines.append(
            f"| {row['example']} | {row.get('family_label') or 'default'} | "
            f"{row.get('engines') or '-'} | {_choices(row)} | {shared[row['design']]} | "
            f"{row['accuracy']:.4f} | "
            f"{_fmt(row['cycles_per_frame'])} | {_fmt(row['energy_pj_per_frame'])} | "
            f"{_fmt(row.get('lut'))} | {_fmt(row.get('ff'))} | {_fmt(row.get('bram18'))} | "
            f"{_fmt(row.get('dsp'))} | {status} | {cycles} |")
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed points", ""]
        lines += [f"- {r['example']}, {r.get('family_label') or 'default'}, {_choices(r)}: "
                  f"{r.get('error')}" for r in failed]
    return "\n".join(lines) + "\n"


def engine_families(row: Mapping[str, Any]) -> str:
    """The PE families a design's engines use (``/sparse``: zero-skipping), as one label."""
    return " + ".join(sorted(set(str(row.get("engines") or "none").split(","))))


def write_plots(out_dir: Path, rows: Sequence[Mapping[str, Any]],
                front: Sequence[Mapping[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    specs = ((ENERGY_PLOT, "energy_pj_per_frame", "accuracy", engine_families,
              "energy per frame (pJ, log)", "test accuracy"),
             (LUT_PLOT, "lut", "cycles_per_frame", lambda r: str(r["example"]),
              "LUTs (xc7 model, log)", "cycles per frame (log)"))
    for name, xkey, ykey, colour, xlabel, ylabel in specs:
        fig, ax = plt.subplots(figsize=(8, 5.5))
        pts = [r for r in ok if r.get(xkey) is not None]
        ax.scatter([r[xkey] for r in pts], [r[ykey] for r in pts], s=10, c="0.8",
                   label="evaluated points")
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for r in front:
            if r.get(xkey) is not None:
                groups.setdefault(colour(r), []).append(r)
        for label, members in sorted(groups.items()):
            ax.scatter([r[xkey] for r in members], [r[ykey] for r in members], s=36,
                       edgecolors="black", linewidths=0.5, label=label)
        ax.set_xscale("log")
        if ykey == "cycles_per_frame":
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title("Pareto front (coloured) among every evaluated point")
        ax.legend(fontsize=7, loc="best", ncol=2)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)


def write_sweep_report(out_dir: Path, spec: SweepSpec, rows: Sequence[Mapping[str, Any]],
                       front: Sequence[Mapping[str, Any]]) -> None:
    """``README.md`` and the two plots in ``out_dir``."""
    write_plots(out_dir, rows, front)
    atomic_write_text(out_dir / "README.md", render_sweep_report(spec, rows, front))
