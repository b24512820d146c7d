"""The compression study: every compression technique against the float baselines, in RTL.

One table (``README.md`` and ``study.json``) and its plots: for the float baselines (run as
their dense 8-bit designs) and every compressed example, accuracy (torch = RTL, the runs
are bit-exact), the seeds' alpha, beta and delta (:mod:`codesign.metrics`), energy per
frame; the goals of the combined pipeline and of distillation, measured; and the
sensitivity analysis of one CNN (:mod:`quant_models.sensitivity`). Each example's own run
directory holds its report. ``codesign study`` regenerates it beside the examples' reports
(reusing their runs); ``codesign study compression`` alone runs what it needs.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from codesign.energy import EnergyTable
from codesign.metrics import FLOAT_BITS, measure_baseline
from codesign.paths import atomic_write_bytes, atomic_write_text

__all__ = [
    "COMBINED",
    "CONTEXT",
    "DISTILLED",
    "MAX_SENSITIVITY_LOSS",
    "SENSITIVITY_EXAMPLE",
    "run_compression_study",
    "study_examples",
]

Say = Callable[[str], None]
RunFn = Callable[[str, Path], dict[str, Any]]
"""``run(example, out_dir)``: a ``codesign run`` of one example, returning its summary."""

COMBINED = "compressed-cnn"
"""The combined pipeline; its goals: at most 1 point below the float CNN, alpha >= 10,
delta >= 3."""
DISTILLED = ("distilled-binarized-mlp", "binarized-mlp")
"""The distilled binarized MLP and the same network trained without a teacher."""
CONTEXT = ("fixed-point-mlp-w4a4", "binarized-mlp", "fixed-point-cnn-w4a4")
"""Uncompressed-topology examples the compressed ones start from, shown for context."""
SENSITIVITY_EXAMPLE = "fixed-point-cnn-w4a4"
MAX_SENSITIVITY_LOSS = 0.01
GOALS = {"accuracy_drop": 0.01, "alpha": 10.0, "delta": 3.0}


def study_examples() -> list[str]:
    """The examples the table shows: context first, then every compressed example."""
    from quant_models.catalog import COMPRESSED_CNNS, COMPRESSED_MLPS

    return [*CONTEXT, *COMPRESSED_MLPS, *COMPRESSED_CNNS]


def _technique(name: str) -> str:
    """A short description of what made an example (its recipe's steps)."""
    from quant_models.catalog import example

    entry = example(name)
    if entry.recipe is None:
        return "base (uncompressed topology)"
    parts = []
    for step in entry.recipe["steps"]:
        technique = step["technique"]
        if technique == "channel_pruning":
            schedule = "AGP" if "schedule" in step else "one-shot"
            parts.append(f"channel pruning ({step.get('criterion', 'l1')}, {schedule})")
        elif technique == "low_rank":
            methods = sorted({spec["method"] for spec in step["layers"].values()})
            parts.append(f"low rank ({', '.join(methods)})")
        else:
            parts.append(technique.replace("_", " "))
    if entry.recipe.get("teacher"):
        parts.append(f"distilled from {entry.recipe['teacher']}")
    return " + ".join(parts)


RESOURCE_TARGET = "xc7"
"""The target whose calibrated resource model estimates each design's LUTs in the table."""


def _model_resources(design: Any) -> dict[str, int] | None:
    """The resource model's LUT/FF/BRAM18/DSP estimate of ``design`` on
    :data:`RESOURCE_TARGET` (None where a stage kind has no calibrated coefficients)."""
    from codesign.errors import UnknownTargetError

    try:
        total = design.estimate_resources(RESOURCE_TARGET)
    except UnknownTargetError:
        return None
    return {"lut": total.lut, "ff": total.ff, "bram18": 2 * total.bram36 + total.bram18,
            "dsp": total.dsp}


def _example_resources(name: str) -> dict[str, int] | None:
    """:func:`_model_resources` of the design ``codesign run NAME`` builds (recompiled: the
    mapping is deterministic, so it is the design that ran)."""
    from codesign.examples import load_example
    from codesign.flow import compile_graph, example_graph, example_options

    example = load_example(name)
    return _model_resources(compile_graph(example_graph(example), example_options(example)))


def _row(name: str, summary: Mapping[str, Any], link: str) -> dict[str, Any]:
    c = summary["compression"]
    return {
        "example": name,
        "link": link,
        "technique": _technique(name),
        "baseline": c["baseline"],
        "accuracy_float": summary["accuracy_float"],
        "accuracy_torch": summary["accuracy_torch"],
        "accuracy_hw": summary["accuracy_hw"],
        "bit_exact": summary["bit_exact"],
        "frames": summary["frames"],
        "weights": c["weights"],
        "alpha": c["alpha"],
        "beta": c["beta"],
        "alpha_bits": c["alpha_bits"],
        "lanes": c["lanes"],
        "cycles_per_frame": summary["cycles_per_frame"],
        "baseline_cycles_per_frame": (None if c["baseline_design"] is None
                                      else c["baseline_design"]["cycles_per_frame"]),
        "delta": c["delta"],
        "energy_pj_per_frame": summary["energy_pj_per_frame"],
        "analytical_match": summary["analytical_match"],
        "recipe": summary.get("recipe"),
        "resources": _example_resources(name),
    }


def _float_rows(frames: int | None, table: EnergyTable, say: Say) -> list[dict[str, Any]]:
    """The float baselines: float accuracy, and their dense 8-bit designs in RTL."""
    from quant_models.catalog import SPLIT_PARAMS, example
    from quant_models.data import load_digits_split
    from quant_models.structure import weight_count
    from quant_models.train import evaluate
    from quant_models.zoo import builtin_example

    split = load_digits_split(**SPLIT_PARAMS)
    x, y = split.x_test, split.y_test
    if frames is not None:
        x, y = x[:frames], y[:frames]
    rows = []
    for name, kin in (("float-mlp", "fixed-point-mlp-w4a4"),
                      ("float-cnn", "fixed-point-cnn-w4a4")):
        model, _ = builtin_example(name)
        target = example(kin).target_cycles
        say(f"{name}: its dense 8-bit design at {target} cycles/frame, in RTL")
        base = measure_baseline(name, model, None, x, table, target_cycles=target)
        weights = weight_count(model)
        accuracy = evaluate(model, x, y)
        record = base.record()
        rows.append({
            "example": name, "link": "", "technique": "float baseline (as a dense w8a8 "
            "design in hardware)", "baseline": name, "accuracy_float": accuracy,
            "accuracy_torch": accuracy, "accuracy_hw": float(np.mean(base.predictions == y)),
            "bit_exact": base.bit_exact, "frames": base.frames, "weights": weights,
            "alpha": 1.0, "beta": 0.0,
            "alpha_bits": FLOAT_BITS * weights / record["stored_bits_total"],
            "lanes": record["lanes"], "cycles_per_frame": base.cycles_per_frame,
            "baseline_cycles_per_frame": base.cycles_per_frame, "delta": 1.0,
            "energy_pj_per_frame": base.energy_pj_per_frame, "analytical_match": None,
            "recipe": None, "resources": _model_resources(base.design)})
    return rows


def _goals(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    combined = rows.get(COMBINED)
    goals: dict[str, Any] = {}
    if combined is not None:
        drop = combined["accuracy_float"] - combined["accuracy_hw"]
        goals["combined"] = {
            "example": COMBINED, "accuracy_float": combined["accuracy_float"],
            "accuracy": combined["accuracy_hw"], "accuracy_drop": drop,
            "alpha": combined["alpha"], "delta": combined["delta"],
            "met": {"accuracy_drop": drop <= GOALS["accuracy_drop"] + 1e-12,
                    "alpha": combined["alpha"] >= GOALS["alpha"],
                    "delta": combined["delta"] is not None
                    and combined["delta"] >= GOALS["delta"]}}
    distilled, plain = (rows.get(name) for name in DISTILLED)
    if distilled is not None and plain is not None:
        recipe = distilled["recipe"] or {}
        goals["distillation"] = {
            "example": DISTILLED[0], "accuracy": distilled["accuracy_hw"],
            "accuracy_without_teacher": plain["accuracy_hw"],
            "margin": distilled["accuracy_hw"] - plain["accuracy_hw"],
            "recipe_accuracy_without_teacher": recipe.get("test_accuracy_without_teacher")}
    return goals


def _sensitivity(out: Path, say: Say) -> dict[str, Any]:
    """Sensitivity curves of the CNN on the training split, its plot and its proposal."""
    import torch

    from quant_models.catalog import SPLIT_PARAMS
    from quant_models.data import load_digits_split
    from quant_models.sensitivity import (
        apply_proposal,
        bits_sensitivity,
        channel_sensitivity,
        plot_sensitivity,
        proposal_steps,
        propose,
    )
    from quant_models.train import evaluate
    from quant_models.zoo import builtin_example

    say(f"sensitivity analysis of {SENSITIVITY_EXAMPLE}")
    model, _ = builtin_example(SENSITIVITY_EXAMPLE)
    split = load_digits_split(**SPLIT_PARAMS)
    x, y = split.x_train, split.y_train
    reference = evaluate(model, x, y)
    curves = [*channel_sensitivity(model, x, y),
              *bits_sensitivity(model, x, y)]
    proposal = propose(curves, reference, MAX_SENSITIVITY_LOSS)
    combined = apply_proposal(model, proposal, sample=torch.as_tensor(x[:512],
                                                                      dtype=torch.float32))
    atomic_write_bytes(out / "sensitivity.png", plot_sensitivity(
        curves, reference, MAX_SENSITIVITY_LOSS,
        f"{SENSITIVITY_EXAMPLE}: accuracy on the training split, one layer compressed"))
    return {"example": SENSITIVITY_EXAMPLE, "data": "training split",
            "reference_accuracy": reference, "max_loss": MAX_SENSITIVITY_LOSS,
            "curves": [c.record() for c in curves], "proposal": proposal,
            "proposal_accuracy_train": evaluate(combined, x, y),
            "proposal_accuracy_test": evaluate(combined, split.x_test, split.y_test),
            "proposal_steps": proposal_steps(proposal)}


def _plot_tradeoffs(rows: list[dict[str, Any]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for ax, (key, label, log) in zip(axes, (("alpha", "alpha (float weights / weights)", True),
                                            ("delta", "delta (RTL speedup, same lanes)", True),
                                            ("energy_pj_per_frame", "nJ per frame", True)),
                                     strict=True):
        for row in rows:
            value = row[key]
            if value is None:
                continue
            value = value / 1000 if key == "energy_pj_per_frame" else value
            marker = "s" if row["technique"].startswith("float") else "o"
            ax.scatter(value, row["accuracy_hw"], marker=marker)
            ax.annotate(row["example"], (value, row["accuracy_hw"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy (RTL, test split)")
    fig.suptitle("Compression against accuracy: every technique, bit-exact in RTL")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def _resource_cells(resources: Mapping[str, int] | None) -> str:
    if resources is None:
        return "- | - | - | -"
    return " | ".join(str(resources[key]) for key in ("lut", "ff", "bram18", "dsp"))


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_study(rows: list[dict[str, Any]], goals: Mapping[str, Any],
                 sensitivity: Mapping[str, Any] | None) -> str:
    """README.md of the study: the table, the goals, the plots and the sensitivity."""
    lines = [
        "# Compression study",
        "",
        "Regenerate with `codesign study compression --out reports/compression` (or with the "
        "whole `codesign study`). Every compressed row is a `codesign run` of the example, "
        "bit-exact in RTL on the frames shown; the float baselines run in hardware as their "
        "dense 8-bit twins (post-training quantized).",
        "",
        "- alpha = float weights of the baseline / weights the design stores (every weight of "
        "a dense engine, the non-zeros of a zero-skipping one); beta = alpha - 1; alpha in "
        "bits = 32-bit float weights / every parameter bit stored (weight codes, sparse "
        "indices, thresholds, requantization multipliers).",
        "- delta = cycles per frame of the baseline / cycles per frame of the design, both "
        "measured in RTL on the same frames; the baseline is the float topology as a dense "
        "8-bit design with no more lanes (PE x SIMD over all engines) than the design has.",
        f"- LUT, FF, BRAM18 and DSP: the resource model's estimate of each design for "
        f"{RESOURCE_TARGET} (calibrated against Yosys `synth_xilinx`, out of context, "
        "counters off; `python benchmarks/resources.py` prints its error); `codesign run "
        "EXAMPLE --synth` synthesises a design instead.",
        "",
        "| example | technique | float acc. | accuracy (torch = RTL) | weights | alpha | "
        "beta | alpha (bits) | lanes | cycles/frame | baseline cycles/frame | delta | "
        "nJ/frame | LUT | FF | BRAM18 | DSP |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = f"[{row['example']}]({row['link']})" if row["link"] else row["example"]
        lines.append(
            f"| {name} | {row['technique']} | {row['accuracy_float']:.4f} | "
            f"{row['accuracy_torch']:.4f} = {row['accuracy_hw']:.4f} | {row['weights']} | "
            f"{row['alpha']:.2f} | {row['beta']:.2f} | {row['alpha_bits']:.2f} | "
            f"{row['lanes']} | {row['cycles_per_frame']:.1f} | "
            f"{_fmt(row['baseline_cycles_per_frame'], 1)} | {_fmt(row['delta'])} | "
            f"{row['energy_pj_per_frame'] / 1000:.2f} | {_resource_cells(row['resources'])} |")
    lines += ["", "![tradeoffs](tradeoffs.png)", "", "## Goals", ""]
    combined = goals.get("combined")
    if combined is not None:
        met = combined["met"]
        lines.append(
            f"- combined pipeline (`{combined['example']}`): accuracy {combined['accuracy']:.4f}"
            f" against the float CNN's {combined['accuracy_float']:.4f} "
            f"({100 * combined['accuracy_drop']:.2f} points below; goal <= 1: "
            f"{'met' if met['accuracy_drop'] else 'missed'}), alpha {combined['alpha']:.2f} "
            f"(goal >= 10: {'met' if met['alpha'] else 'missed'}), delta "
            f"{_fmt(combined['delta'])} (goal >= 3: {'met' if met['delta'] else 'missed'})")
    distillation = goals.get("distillation")
    if distillation is not None:
        lines.append(
            f"- distillation: `{distillation['example']}` reaches "
            f"{distillation['accuracy']:.4f}, the same network trained the same way without "
            f"the teacher (`binarized-mlp`) {distillation['accuracy_without_teacher']:.4f}: "
            f"a margin of {100 * distillation['margin']:+.2f} points")
    recipes = [row for row in rows if row["recipe"] and "teacher" in row["recipe"]]
    for row in recipes:
        recipe = row["recipe"]
        lines.append(f"- `{row['example']}` with its teacher ({recipe['teacher']}): "
                     f"{recipe['test_accuracy']:.4f}; the same recipe without it: "
                     f"{recipe['test_accuracy_without_teacher']:.4f}")
    if sensitivity is not None:
        lines += [
            "", "## Sensitivity analysis", "",
            f"Each layer of `{sensitivity['example']}` compressed alone, no fine-tuning, "
            f"accuracy on the {sensitivity['data']} (reference "
            f"{sensitivity['reference_accuracy']:.4f}): left, a fraction of its filters "
            "removed (L1 norm); right, its weights requantized.", "",
            "![sensitivity](sensitivity.png)", "",
            f"Proposal for at most {100 * sensitivity['max_loss']:.0f} point of loss per "
            "layer (the most compressed setting whose accuracy, and every milder one's, "
            "stays within it):", ""]
        for kind, layers in sensitivity["proposal"].items():
            settings = ", ".join(f"{layer}: {value:g}" for layer, value in layers.items())
            lines.append(f"- {kind}: {settings}")
        lines += [
            "",
            f"All of it at once, before fine-tuning: {sensitivity['proposal_accuracy_train']:.4f}"
            f" on the training split, {sensitivity['proposal_accuracy_test']:.4f} on the test "
            "split; as recipe steps (which fine-tune):", "", "```yaml",
            _yaml(sensitivity["proposal_steps"]).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump({"steps": data}, sort_keys=False, default_flow_style=None)


def run_compression_study(out: Path, run: RunFn, *, frames: int | None = None,
                          energy_table: str | Path | None = None,
                          runs: Mapping[str, tuple[Path, dict[str, Any]]] | None = None,
                          sensitivity: bool = True, say: Say = print) -> dict[str, Any]:
    """Write the study into ``out`` and return it. ``runs`` maps examples already run to
    (run directory, summary); the others are run by ``run(name, out / name)``."""
    out.mkdir(parents=True, exist_ok=True)
    table = EnergyTable.load(energy_table)
    done = dict(runs or {})
    rows = _float_rows(frames, table, say)
    for name in study_examples():
        if name not in done:
            done[name] = (out / name, run(name, out / name))
        directory, summary = done[name]
        link = os.path.relpath(directory / "report.md", out)
        rows.append(_row(name, summary, link))
    by_name = {row["example"]: row for row in rows}
    goals = _goals(by_name)
    analysis = _sensitivity(out, say) if sensitivity else None
    atomic_write_bytes(out / "tradeoffs.png", _plot_tradeoffs(rows))
    study = {"rows": rows, "goals": goals, "sensitivity": analysis, "frames": frames}
    atomic_write_text(out / "study.json", json.dumps(study, indent=2) + "\n")
    atomic_write_text(out / "README.md", render_study(rows, goals, analysis))
    return study
