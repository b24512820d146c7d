"""The end-to-end flow: model -> IR -> design -> Verilog -> RTL run -> verification -> report.

Each step is a function callable on its own (see README's Python API); :func:`compile_model`
chains the frontend, the pass pipeline and the mapping, and :func:`run_example` chains the
rest for ``codesign run`` and returns the summary it writes. The reference runs once per
run; verification and the activation-dependent counters take its values.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from codesign.arch import Design, MappingOptions, build_design
from codesign.arch.families import get_family
from codesign.energy import EnergyTable
from codesign.errors import MismatchError, OptionError
from codesign.evaluate import Evaluation, evaluate
from codesign.examples import DEFAULT_EXAMPLE, LoadedExample, load_example
from codesign.frontends import from_quant_model
from codesign.generate import generate_verilog
from codesign.passes import run_passes
from codesign.paths import check_output_dir
from codesign.reference import check_inputs, execute_all
from codesign.report import write_run_directory

Say = Callable[[str], None]


def compile_model(model: nn.Module, options: MappingOptions | None = None, *,
                  name: str = "network", **option_args: Any) -> Design:
    """quant_models network -> integer graph (the pass pipeline) -> design.

    ``options`` or the keyword arguments of :meth:`MappingOptions.create` (``folding``,
    ``target_cycles``, ``sparse``, ``fifo_depth``, ``families``) choose the hardware.
    """
    if options is None:
        options = MappingOptions.create(**option_args)
    elif option_args:
        raise OptionError("give either options= or its keyword arguments, not both")
    # a bipolar x bipolar layer asked onto a dot-product engine keeps dot accumulation
    keep_dot = [layer for layer, family in options.families
                if get_family(family, layer).accumulates == "dot"]
    graph = run_passes(from_quant_model(model, name=name), keep_dot=keep_dot)
    return build_design(graph, options)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Steps:
    """Numbered, timed progress lines for the long steps."""

    def __init__(self, total: int, say: Say) -> None:
        self.total, self.say, self.index = total, say, 0
        self.timings: dict[str, float] = {}
        self._name = ""
        self._start = 0.0

    def begin(self, name: str, what: str) -> None:
        self.index += 1
        self._name, self._start = name, time.perf_counter()
        self.say(f"[{self.index}/{self.total}] {what} ...")

    def end(self, detail: str = "") -> None:
        elapsed = time.perf_counter() - self._start
        self.timings[self._name] = round(elapsed, 3)
        self.say(f"      done in {elapsed:.1f} s{': ' + detail if detail else ''}")


def check_frames(frames: int | None) -> None:
    """``frames`` is None (the whole test split) or a whole number >= 1."""
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int)
                               or frames < 1):
        raise OptionError(f"frames={frames!r}: simulate at least 1 frame (or leave it unset "
                          "for the whole test split)")


def stage_records(evaluation: Evaluation) -> list[dict[str, Any]]:
    """Per-stage summary entries: the stage's own fields, then its measured figures."""
    n = evaluation.frames
    records = []
    for s in evaluation.stages:
        counters = s.counters
        records.append({
            **s.record,
            "formula_cycles": s.formula_cycles,
            "measured_cycles": s.measured_cycles,
            "fill_cycles": s.fill_cycles,
            "span_cycles": counters["span"],
            "stall_in_cycles": counters["stall_in"],
            "stall_out_cycles": counters["stall_out"],
            "counters": counters,
            "predicted_counters": s.predicted,
            "analytical_mismatches": s.analytical_mismatches,
            "energy_pj_per_frame": sum(s.energy_pj.values()) / n,
            "energy_pj_by_component": {k: v / n for k, v in s.energy_pj.items()},
        })
    return records


def summarize(example: LoadedExample, design: Design, evaluation: Evaluation,
              y_test: np.ndarray, ref_pred: np.ndarray, torch_pred: np.ndarray,
              table: EnergyTable, machine: dict[str, Any]) -> dict[str, Any]:
    """summary.json: results first, machine timings apart under ``machine``."""
    verification = evaluation.verification
    assert verification is not None and evaluation.outputs is not None
    first = verification.first
    hw_pred = np.argmax(evaluation.outputs, axis=1)
    records = stage_records(evaluation)
    fifos = design.organisation.buffers(design)
    return {
        "example": example.name,
        "description": example.description,
        "bit_exact": verification.bit_exact,
        "frames": evaluation.frames,
        "mismatches": verification.mismatches,
        "first_mismatch": None if first is None else first.describe(),
        "accuracy_float": float(example.float_accuracy),
        "accuracy_torch": float(np.mean(torch_pred == y_test)),
        "accuracy_reference": float(np.mean(ref_pred == y_test)),
        "accuracy_hw": float(np.mean(hw_pred == y_test)),
        "torch_reference_agreement": int(np.count_nonzero(ref_pred == torch_pred)),
        "organisation": design.organisation.name,
        "cycles_per_frame": evaluation.cycles_per_frame,
        "bottleneck_cycles_per_frame": evaluation.bottleneck_cycles_per_frame,
        "total_cycles": evaluation.total_cycles,
        "energy_pj_per_frame": evaluation.energy_pj_per_frame,
        "energy_table": table.name,
        "technology_node": table.technology_node,
        "fifo_depth": design.options.fifo_depth,
        "fifos": fifos,
        "fifo_bits": sum(f["bits"] for f in fifos),
        "join_fifo_bits": sum(f["bits"] for f in fifos if f["join"]),
        "layers": records,
        "analytical_match": evaluation.analytical_match,
        "machine": machine,
    }


def run_example(name: str = DEFAULT_EXAMPLE, *, out_dir: Path, frames: int | None = None,
                retrain: bool = False, energy_table: str | Path | None = None,
                folding: Mapping[str, Any] | None = None,
                target_cycles: int | None = None,
                sparse: Sequence[str] | float | None = None,
                fifo_depth: int | None = None,
                families: Mapping[str, str] | None = None,
                say: Say = _stderr) -> dict[str, Any]:
    """Train or load, compile, simulate the test split, verify, report.

    Every option is checked, and the output directory made, before any long step; a
    failure after the simulation still writes the run directory (summary and report).
    """
    from quant_models.train import predict

    check_frames(frames)
    out_dir = check_output_dir(out_dir)
    table = EnergyTable.load(energy_table)
    MappingOptions.create(folding, target_cycles=target_cycles, sparse=sparse,
                          fifo_depth=fifo_depth, families=families)   # fail fast
    steps = _Steps(5, say)

    steps.begin("model", f"loading example {name!r}")

    def train_progress(epoch: int, epochs: int, loss: float) -> None:
        if epoch == epochs or epoch % 10 == 0:
            say(f"      epoch {epoch}/{epochs} loss {loss:.4f}")

    example = load_example(name, retrain=retrain, progress=train_progress)
    x_test, y_test = example.x_test, example.y_test
    if frames is not None:
        x_test, y_test = x_test[:frames], y_test[:frames]
    steps.end(f"{len(x_test)} test frames")

    steps.begin("compile", "lowering to the integer IR, running the passes, mapping")
    options = MappingOptions.create(
        {**example.folding, **dict(folding or {})},
        target_cycles=target_cycles or example.target_cycles,
        sparse=example.sparse if sparse is None else sparse,
        fifo_depth=fifo_depth, families=families)
    design = compile_model(example.model, options, name=example.name)
    x_checked = check_inputs(design.graph, x_test)
    values = execute_all(design.graph, x_checked)
    ref_pred = np.argmax(values[design.graph.output], axis=1)
    torch_pred = predict(example.model, x_test)
    agreement = int(np.count_nonzero(ref_pred == torch_pred))
    steps.end(f"{len(design.stages)} stages; reference agrees with torch on "
              f"{agreement}/{len(x_test)} predictions")

    steps.begin("simulate", "generating Verilog, simulating every frame in RTL (Verilator; "
                "the first build compiles the model) and verifying every output")
    artefact = generate_verilog(design, counters=True)
    evaluation = evaluate(design, x_checked, values, table, rtl=True, artefact=artefact,
                          checked=True)
    verification = evaluation.verification
    assert verification is not None
    steps.end(f"{evaluation.total_cycles} cycles, "
              f"{evaluation.timings['sim_cycles_per_second'] / 1e6:.2f} M cycles/s; "
              + ("bit-exact" if verification.bit_exact else
                 f"{verification.mismatches} mismatching elements, first at "
                 f"{verification.first.describe() if verification.first else '?'}"))

    steps.begin("energy", f"costing counted events with {table.name} ({table.technology_node})")
    steps.end(f"{evaluation.energy_pj_per_frame:.1f} pJ/frame")

    steps.begin("report", f"writing {out_dir}")
    machine = {**{k: round(v, 3) if k.endswith("seconds") else v
                  for k, v in evaluation.timings.items()}, "step_seconds": steps.timings}
    summary = summarize(example, design, evaluation, y_test, ref_pred, torch_pred, table,
                        machine)
    write_run_directory(out_dir, summary, artefact.text)
    steps.end()
    if not verification.bit_exact:
        raise MismatchError(f"hardware differs from the reference: {summary['first_mismatch']}"
                            f" ({verification.mismatches} elements); report in {out_dir}")
    return summary
