"""The end-to-end flow: model -> IR -> Verilog -> RTL simulation -> verification -> report.

Each step is a function callable on its own (see README's Python API); :func:`run_example`
chains them for ``codesign run`` and returns the summary it writes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from codesign.analytical import compare_counters, predict_counters, predict_stream_stage
from codesign.energy import EnergyTable, stage_energy
from codesign.errors import MismatchError
from codesign.examples import DEFAULT_EXAMPLE, load_example
from codesign.frontend import from_quant_model
from codesign.ir import Graph
from codesign.mapping import Design, Folding, Layer, PoolStage, WindowStage, build_design
from codesign.passes import streamline
from codesign.reference import execute
from codesign.report import write_run_directory
from codesign.simulate import SimResult, simulate
from codesign.verify import compare, localize_mismatch
from hdl.mvu import FILL_CYCLES

Say = Callable[[str], None]


def compile_model(model: nn.Module, *, name: str = "network",
                  folding: Mapping[str, Folding | tuple[int, int]] | None = None,
                  target_cycles: int | None = None,
                  families: Mapping[str, str] | None = None,
                  sparse: Sequence[str] | float | None = None,
                  fifo_depth: int = 4) -> Design:
    """quant_models network -> streamlined integer graph -> folded design."""
    graph = streamline(from_quant_model(model, name=name))
    return build_design(graph, folding, target_cycles=target_cycles, families=families,
                        sparse=sparse, fifo_depth=fifo_depth)


def reference_scores(graph: Graph, inputs: np.ndarray) -> np.ndarray:
    """Integer output scores of the reference interpreter."""
    scores = execute(graph, inputs)
    assert isinstance(scores, np.ndarray)
    return scores


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


def _measured_fields(name: str, sim: SimResult, predicted: dict[str, int], *, fill: int,
                     energy: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Cycles, counters, the analytical check and energy of one stage of a run."""
    counters = sim.layer_counters[name]
    return {
        "formula_cycles": predicted["issue"],
        "measured_cycles": sim.measured_cycles(name),
        "fill_cycles": fill,
        "span_cycles": counters["span"],
        "stall_in_cycles": counters["stall_in"],
        "stall_out_cycles": counters["stall_out"],
        "counters": counters,
        "predicted_counters": predicted,
        "analytical_mismatches": compare_counters(predicted, counters, in_network=True),
        "energy_pj_per_frame": sum(energy[name].values()) / sim.frames,
        "energy_pj_by_component": {k: v / sim.frames for k, v in energy[name].items()},
    }


def stream_stage_record(stage: WindowStage | PoolStage, sim: SimResult,
                        energy: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A sliding-window or pooling stage: measured counters against its beat count."""
    predicted = predict_stream_stage(stage, sim.frames)
    return {
        "name": stage.name, "kind": stage.kind, "family": stage.kind, "sparse": False,
        "input_type": str(stage.input_type), "output_type": str(stage.output_type),
        "weight_type": "-", "weight_sparsity": 0.0, "empty_rows": 0,
        "in_shape": list(stage.in_shape), "simd": stage.simd, "pe": stage.simd,
        "mw": int(np.prod(stage.in_shape)), "mh": int(np.prod(stage.in_shape)),
        # one cycle: the read port (window) or the max register (pool) is the output register
        **_measured_fields(stage.name, sim, predicted, fill=1, energy=energy),
    }


def layer_records(design: Design, sim: SimResult, energy: dict[str, dict[str, float]],
                  values: dict[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Per-layer summary: folding, measured vs formula cycles, analytical check, energy."""
    records = []
    for layer in design.layers:
        if not isinstance(layer, Layer):
            records.append(stream_stage_record(layer, sim, energy))
            continue
        inputs = None if values is None else values[layer.matvec.inputs[0]]
        predicted = predict_counters(layer, sim.frames, inputs)
        records.append({
            "name": layer.name, "kind": "mvu", "family": layer.family, "sparse": layer.sparse,
            "input_type": str(layer.input_type), "output_type": str(layer.output_type),
            "weight_type": str(layer.matvec.weight_type),
            "weight_sparsity": layer.weight_sparsity,
            # rows with no non-zero weight: handled (acc = 0 goes through the epilogue)
            "empty_rows": int(np.count_nonzero(~layer.matvec.weight.any(axis=1))),
            "mw": layer.mw, "mh": layer.mh, "pe": layer.pe, "simd": layer.simd,
            # the engine's pipeline fill: a load-bound sparse engine's waits count as stall_in
            **_measured_fields(layer.name, sim, predicted, fill=FILL_CYCLES, energy=energy),
        })
    return records


def run_example(name: str = DEFAULT_EXAMPLE, *, out_dir: Path, frames: int | None = None,
                retrain: bool = False, energy_table: str | Path | None = None,
                folding: Mapping[str, tuple[int, int]] | None = None,
                target_cycles: int | None = None,
                sparse: Sequence[str] | float | None = None,
                fifo_depth: int | None = None,
                say: Say = _stderr) -> dict[str, Any]:
    """Train or load, lower, generate, simulate the test split, verify, report."""
    from quant_models.train import predict

    table = EnergyTable.load(energy_table)
    steps = _Steps(6, say)

    steps.begin("model", f"loading example {name!r} (training it once if not cached)")

    def train_progress(epoch: int, epochs: int, loss: float) -> None:
        if epoch == epochs or epoch % 10 == 0:
            say(f"      epoch {epoch}/{epochs} loss {loss:.4f}")

    example = load_example(name, retrain=retrain, progress=train_progress)
    x_test, y_test = example.x_test, example.y_test
    if frames is not None:
        x_test, y_test = x_test[:frames], y_test[:frames]
    steps.end(f"{len(x_test)} test frames")

    steps.begin("compile", "lowering to the integer IR, streamlining, folding")
    design = compile_model(example.model, name=example.name,
                           folding={**example.folding, **dict(folding or {})},
                           target_cycles=target_cycles or example.target_cycles,
                           sparse=example.sparse if sparse is None else sparse,
                           fifo_depth=fifo_depth or 4)
    values = execute(design.graph, x_test, keep_all=True)
    assert isinstance(values, dict)
    scores = values[design.graph.output]
    ref_pred = np.argmax(scores, axis=1)
    torch_pred = predict(example.model, x_test)
    agreement = int(np.count_nonzero(ref_pred == torch_pred))
    steps.end(f"{len(design.layers)} engines; reference agrees with torch on "
              f"{agreement}/{len(x_test)} predictions")

    steps.begin("simulate", "generating Verilog and simulating every frame in RTL "
                "(Verilator; first build compiles the model)")
    sim = simulate(design, x_test)
    steps.end(f"{sim.total_cycles} cycles, {sim.sim_cycles_per_second / 1e6:.2f} M cycles/s, "
              f"build {sim.build_seconds:.1f} s")

    steps.begin("verify", "comparing every output with the integer reference")
    verification = compare(design, x_test, sim.outputs)
    first = verification.first
    if first is not None:
        located = localize_mismatch(design, x_test)
        first = located or first
    steps.end("bit-exact" if verification.bit_exact else
              f"{verification.mismatches} mismatching elements; first at {first.describe()}")

    steps.begin("energy", f"costing counted events with {table.name} ({table.technology_node})")
    energy = {stage.name: stage_energy(stage, sim.layer_counters[stage.name], table)
              for stage in design.layers}
    total_pj = sum(sum(parts.values()) for parts in energy.values())
    steps.end(f"{total_pj / sim.frames:.1f} pJ/frame")

    steps.begin("report", f"writing {out_dir}")
    hw_pred = np.argmax(sim.outputs, axis=1)
    records = layer_records(design, sim, energy, values)
    summary: dict[str, Any] = {
        "example": example.name,
        "description": example.description,
        "bit_exact": verification.bit_exact,
        "frames": sim.frames,
        "mismatches": verification.mismatches,
        "first_mismatch": None if first is None else first.describe(),
        "accuracy_float": float(example.float_accuracy),
        "accuracy_torch": float(np.mean(torch_pred == y_test)),
        "accuracy_reference": float(np.mean(ref_pred == y_test)),
        "accuracy_hw": float(np.mean(hw_pred == y_test)),
        "torch_reference_agreement": agreement,
        "cycles_per_frame": sim.total_cycles / sim.frames,
        "bottleneck_cycles_per_frame": design.bottleneck_cycles,
        "total_cycles": sim.total_cycles,
        "energy_pj_per_frame": total_pj / sim.frames,
        "energy_table": table.name,
        "technology_node": table.technology_node,
        "sim_cycles_per_second": sim.sim_cycles_per_second,
        "build_seconds": sim.build_seconds,
        "layers": records,
        "analytical_match": all(not r["analytical_mismatches"] for r in records),
        "step_seconds": steps.timings,
    }
    write_run_directory(out_dir, summary, sim.verilog)
    steps.end()
    if not verification.bit_exact:
        raise MismatchError(f"hardware differs from the reference: {summary['first_mismatch']}"
                            f" ({verification.mismatches} elements); report in {out_dir}")
    return summary
