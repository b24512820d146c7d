"""The Deep Compression study: storage per stage, and the codebook engine against 8-bit MACs.

For every example trained by the Deep Compression recipe (a catalog record with
``compression``), this writes one section of ``reports/deep-compression/README.md``:

- the paper's per-stage table (:func:`quant_models.deep_compression.compression_table`):
  weights stored, bits and the compression rate alpha against the float32 weights of the
  same topology after pruning, after sharing and after Huffman coding, with the accuracy
  of each stage, and the per-layer breakdown;
- the hardware the shared network runs on, as ``codesign run`` maps it (codebook engines,
  zero-skipping where the layer is sparse enough), against the same integer graph at the
  same folding on codebook engines without skipping, and on MAC engines storing every
  weight as its 8-bit value (zero-skipping, and dense: the 8-bit engine of the same
  folding). Every variant is simulated in RTL on the same frames and verified
  bit-exactly; cycles are measured per frame over the run and energy comes from the
  counters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from codesign.arch import MappingOptions, build_design
from codesign.arch.design import Design
from codesign.energy import EnergyTable
from codesign.evaluate import evaluate
from codesign.examples import EXAMPLES, load_example
from codesign.flow import compile_model
from codesign.paths import atomic_write_text
from codesign.reference import check_inputs, execute_all
from quant_models.catalog import example as catalog_example
from quant_models.deep_compression import compression_table

VARIANTS: tuple[tuple[str, str, bool], ...] = (
    ("codebook, dense", "codebook", False),
    ("8-bit MAC, zero-skipping", "mac", True),
    ("8-bit MAC, dense", "mac", False),
)
"""(label, family, zero-skipping where the run skips) of the engines compared with the run."""


def compression_examples() -> list[str]:
    """The examples ``codesign run`` knows that the Deep Compression recipe trains."""
    return [name for name in EXAMPLES if catalog_example(name).compression is not None]


def _variant(design: Design, family: str, skipping: bool) -> Design:
    """The run's graph and folding on other engines."""
    engines = design.engines
    options = MappingOptions.create(
        {e.name: (e.pe, e.simd) for e in engines},
        sparse=[e.name for e in engines if e.kind == "sparse_mvu"] if skipping else [],
        fifo_depth=design.options.fifo_depth,
        families={e.name: family for e in engines})
    return build_design(design.graph, options)


def _hardware_row(label: str, design: Design, evaluation) -> dict[str, Any]:
    engines = design.engines
    return {
        "variant": label,
        "engines": ", ".join(f"{e.family.name}{' sparse' if e.kind == 'sparse_mvu' else ''}"
                             f" {e.weight_storage}" for e in engines),
        "weight_memory_bits": sum(e.weight_memory_bits for e in engines),
        "cycles_per_frame": evaluation.cycles_per_frame,
        "energy_pj_per_frame": evaluation.energy_pj_per_frame,
        "energy_pj_by_component": _by_component(evaluation),
        "bit_exact": bool(evaluation.bit_exact),
        "analytical_match": evaluation.analytical_match,
    }


def _by_component(evaluation) -> dict[str, float]:
    totals: dict[str, float] = {}
    for stage in evaluation.stages:
        for component, pj in stage.energy_pj.items():
            totals[component] = totals.get(component, 0.0) + pj / evaluation.frames
    return dict(sorted(totals.items()))


def study_example(name: str, summary: Mapping[str, Any], *, frames: int | None = None,
                  table: EnergyTable | None = None, say: Callable[[str], None] = print
                  ) -> dict[str, Any]:
    """One example's section: its compression table and the engine comparison.

    ``summary`` is the example's ``codesign run`` summary (its hardware row); the other
    variants are mapped, simulated and verified here.
    """
    from quant_models.zoo import builtin_example

    table = table or EnergyTable.load()
    example = load_example(name)
    model, report = builtin_example(name)
    storage = compression_table(model, report, example.float_accuracy)
    design = compile_model(example.model, name=name, target_cycles=example.target_cycles,
                           sparse=example.sparse)
    # shared layers and engines come in the same (module) order
    names = {s.name: f"{e.name} ({s.name})" for s, e in zip(storage.layers, design.engines,
                                                          strict=True)}
    x = example.x_test if frames is None else example.x_test[:frames]
    x = check_inputs(design.graph, x)
    values = execute_all(design.graph, x)
    rows = [{
        "variant": "codebook, as run", "engines": ", ".join(
            f"{s['family']}{' sparse' if s['sparse'] else ''} {s['weight_storage']}"
            for s in summary["layers"] if "family" in s),
        "weight_memory_bits": sum(e.weight_memory_bits for e in design.engines),
        "cycles_per_frame": summary["cycles_per_frame"],
        "energy_pj_per_frame": summary["energy_pj_per_frame"],
        "energy_pj_by_component": _sum_components(summary),
        "bit_exact": summary["bit_exact"], "analytical_match": summary["analytical_match"]}]
    for label, family, skipping in VARIANTS:
        say(f"  {name}: {label} at the same folding")
        variant = _variant(design, family, skipping)
        rows.append(_hardware_row(label, variant, evaluate(variant, x, values, table,
                                                           checked=True)))
    return {
        "example": name,
        "description": example.description,
        "frames": int(x.shape[0]),
        "folding": {e.name: [e.pe, e.simd] for e in design.engines},
        "stages": [{"stage": r.stage, "weights": r.weights, "bits": r.bits,
                    "accuracy": r.accuracy, "alpha": r.alpha} for r in storage.rows],
        "training_stages": [{**t, "empty_clusters": {names[k]: v for k, v in
                                                     t.get("empty_clusters", {}).items()}}
                            if "empty_clusters" in t else dict(t) for t in report.stages],
        "layers": [{
            "layer": names[s.name], "weights": s.weights, "nonzero": s.nonzero,
            "index_bits": s.index_bits, "codebook_entries": s.codebook_entries,
            "sparse": s.sparse, "gap_bits": s.gap_bits, "entries": s.entries,
            "index_stream_bits": s.index_stream_bits, "gap_stream_bits": s.gap_stream_bits,
            "codebook_bits": s.codebook_bits,
            "table_bits": s.index_table_bits + s.gap_table_bits,
            "float_bits": s.float_bits, "pruned_bits": s.pruned_bits,
            "shared_bits": s.shared_bits, "huffman_bits": s.huffman_bits}
            for s in storage.layers],
        "hardware": rows,
    }


def _sum_components(summary: Mapping[str, Any]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for layer in summary["layers"]:
        for component, pj in layer["energy_pj_by_component"].items():
            totals[component] = totals.get(component, 0.0) + pj
    return dict(sorted(totals.items()))


_STAGE_NAMES = {"float32": "float32 weights (baseline)", "pruned": "pruned (AGP)",
                "shared": "+ shared (k-means, fine-tuned)", "huffman": "+ Huffman coded"}


def render_study(sections: list[dict[str, Any]], command: str) -> str:
    """README.md of the study directory (every number is a value of its summary.json)."""
    lines = [
        "# Deep Compression: pruning, weight sharing, Huffman coding, on codebook engines",
        "",
        f"Regenerate with `{command}`.",
        "",
        "Han et al.'s pipeline (prune with AGP, cluster each layer's weights into a codebook "
        "by k-means with linear initialisation, fine-tune the centroids, Huffman-code the "
        "stored streams) on the digits examples. Bits count the weight storage as the paper "
        "does: float32 values; after pruning, float32 values plus fixed-width relative "
        "indices (the distance to the previous non-zero, with filler entries for longer "
        "gaps); after sharing, fixed-width codebook indices plus relative indices plus each "
        "layer's codebook (its grid values and float32 step); after Huffman coding, the "
        "encoded index and relative-index streams plus codebooks and code tables, decoded "
        "again and checked before they are counted. alpha = float32 bits / bits.",
        "",
    ]
    for section in sections:
        lines += _render_section(section)
    lines += [
        "## Notes",
        "",
        "- The codebook lane looks its weight up in the layer's table and multiplies: the "
        "engine's schedule, memories and cycle formula stay those of every other family, so "
        "the dense and the zero-skipping engine take it unchanged. Accumulating activations "
        "per table entry and multiplying once per entry would need 2^b accumulators per PE "
        "and a multiply pass per output; it changes the schedule and pays only for rows much "
        "longer than the table.",
        "- Code 0 is the zero weight in every table: the dense engine gates it, the "
        "zero-skipping engine never issues it and pads with it.",
        "- A table lookup is costed as a 2^b-to-1 multiplexer of the value width (b levels "
        "of 2:1 multiplexers on the selected path, one gate toggle per bit); the weight "
        "memory is read b bits per lane instead of 8.",
        "- Hardware rows: RTL simulations of the same integer graph at the same folding, "
        "outputs verified against the integer reference on every frame; cycles per frame "
        "measured over the run (first input to last output).",
        "",
    ]
    return "\n".join(lines)


def _render_section(s: dict[str, Any]) -> list[str]:
    lines = [f"## {s['example']}", "", s["description"] + ".", "",
             "| stage | weights stored | bits | KB | alpha | test accuracy |",
             "|---|---|---|---|---|---|"]
    for row in s["stages"]:
        acc = "" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        lines.append(f"| {_STAGE_NAMES[row['stage']]} | {row['weights']} | {row['bits']} | "
                     f"{row['bits'] / 8192:.2f} | {row['alpha']:.1f}x | {acc} |")
    shared = next(t for t in s["training_stages"] if t["stage"] == "shared")
    lines += ["", f"Test accuracy right after clustering, before fine-tuning: "
              f"{shared['test_accuracy']:.4f} (empty clusters, left unused: "
              + ", ".join(f"{k} {v}" for k, v in shared["empty_clusters"].items()) + ").", "",
              "| layer | weights | non-zero | index bits (entries used) | stored as | "
              "bits after P+Q | bits after P+Q+H | alpha P+Q+H |",
              "|---|---|---|---|---|---|---|---|"]
    for layer in s["layers"]:
        stored = (f"sparse, {layer['gap_bits']}-bit relative index" if layer["sparse"]
                  else "dense")
        lines.append(
            f"| {layer['layer']} | {layer['weights']} | "
            f"{layer['nonzero']} ({layer['nonzero'] / layer['weights']:.1%}) | "
            f"{layer['index_bits']} ({layer['codebook_entries']}) | {stored} | "
            f"{layer['shared_bits']} | {layer['huffman_bits']} | "
            f"{layer['float_bits'] / layer['huffman_bits']:.1f}x |")
    folding = ", ".join(f"{k} {pe}x{simd}" for k, (pe, simd) in s["folding"].items())
    lines += ["", f"Hardware at the same folding (PE x SIMD: {folding}), {s['frames']} test "
              "frames in RTL:", "",
              "| engines | on-chip weight bits | cycles/frame | nJ/frame | lanes | codebook "
              "table | weight memory | bit-exact |", "|---|---|---|---|---|---|---|---|"]
    for row in s["hardware"]:
        parts = row["energy_pj_by_component"]
        lines.append(
            f"| {row['variant']}: {row['engines']} | {row['weight_memory_bits']} | "
            f"{row['cycles_per_frame']:.1f} | {row['energy_pj_per_frame'] / 1000:.2f} | "
            f"{parts.get('lanes', 0.0) / 1000:.2f} | "
            f"{parts.get('codebook table', 0.0) / 1000:.3f} | "
            f"{parts.get('weight memory', 0.0) / 1000:.2f} | "
            f"{'yes' if row['bit_exact'] else 'NO'} |")
    return lines + [""]


def write_study(out_dir: Path, summaries: Mapping[str, Mapping[str, Any]], *,
                frames: int | None = None, command: str = "codesign study --out reports",
                say: Callable[[str], None] = print) -> Path:
    """Write ``out_dir/README.md`` and ``out_dir/summary.json`` for the compression examples
    among ``summaries`` (example name -> ``codesign run`` summary)."""
    sections = [study_example(name, summaries[name], frames=frames, say=say)
                for name in compression_examples() if name in summaries]
    atomic_write_text(out_dir / "summary.json", json.dumps(sections, indent=2) + "\n")
    return atomic_write_text(out_dir / "README.md", render_study(sections, command))
