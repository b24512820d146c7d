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
from codesign.arch.options import FifoDepth
from codesign.energy import EnergyTable
from codesign.errors import MismatchError, OptionError, UnknownTargetError
from codesign.evaluate import Evaluation, evaluate
from codesign.examples import DEFAULT_EXAMPLE, LoadedExample, load_example
from codesign.frontends import from_quant_model
from codesign.frontends.torch import WeightTypes
from codesign.generate import generate_verilog
from codesign.ir import Graph
from codesign.passes import run_passes
from codesign.paths import check_output_dir
from codesign.reference import check_inputs, execute_all
from codesign.report import write_run_directory
from codesign.synth import DEFAULT_SEEDS, DesignSynthesis, get_target, synthesize_design

Say = Callable[[str], None]


def compile_model(model: nn.Module, options: MappingOptions | None = None, *,
                  name: str = "network", weight_types: WeightTypes = "declared",
                  **option_args: Any) -> Design:
    """quant_models network -> integer graph (the pass pipeline) -> design.

    ``options`` or the keyword arguments of :meth:`MappingOptions.create` (``folding``,
    ``target_cycles``, ``sparse``, ``fifo_depth``, ``families``) choose the hardware;
    ``weight_types`` how the frontend types the weights (:data:`WEIGHT_TYPES`).
    """
    return compile_graph(from_quant_model(model, name=name, weight_types=weight_types),
                         options, **option_args)


def compile_graph(graph: Graph, options: MappingOptions | None = None,
                  **option_args: Any) -> Design:
    """Any frontend's IR graph -> the pass pipeline -> design (options as
    :func:`compile_model`)."""
    if options is None:
        options = MappingOptions.create(**option_args)
    elif option_args:
        raise OptionError("give either options= or its keyword arguments, not both")
    return build_design(run_passes(graph, keep_dot=dot_layers(options)), options)


def dot_layers(options: MappingOptions) -> tuple[str, ...]:
    """Layers whose IR keeps dot-product accumulation: a bipolar x bipolar layer asked onto
    a dot-product engine (the pass pipeline's ``keep_dot``; equal tuples give equal graphs,
    so a sweep lowers a network once per tuple)."""
    return tuple(layer for layer, family in options.families
                 if get_family(family, layer).accumulates == "dot")


def example_options(example: LoadedExample, folding: Mapping[str, Any] | None = None, *,
                    target_cycles: int | None = None,
                    sparse: Sequence[str] | float | None = None,
                    fifo_depth: int | None = None, families: Mapping[str, str] | None = None,
                    **aims: Any) -> MappingOptions:
    """The options of a run of ``example``: the example's folding, throughput target and
    sparse choice wherever the arguments leave them unset (no target when a budget or a
    frame rate chooses the folding)."""
    chooses = aims.get("target_fps") is not None or any(
        aims.get(b) is not None for b in ("lut_budget", "dsp_budget", "bram_budget"))
    return MappingOptions.create(
        {**example.folding, **dict(folding or {})},
        target_cycles=target_cycles or (None if chooses else example.target_cycles),
        sparse=example.sparse if sparse is None else sparse,
        fifo_depth=fifo_depth, families=families, **aims)


def example_graph(example: LoadedExample, weight_types: WeightTypes = "declared") -> Graph:
    """The frontend's graph of an example (a quant_models network, its weights typed as
    ``weight_types`` says, or an imported one, typed by its quantizers)."""
    if example.imported is not None:
        return example.imported.graph
    assert example.model is not None
    return from_quant_model(example.model, name=example.name, weight_types=weight_types)


def example_inputs(example: LoadedExample, graph: Graph, x: np.ndarray) -> np.ndarray:
    """The example's test frames ``x`` as the graph's checked integer inputs."""
    if example.imported is not None:
        return check_inputs(graph, example.imported.input_codes(x))
    return check_inputs(graph, x)


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


def synthesis_fields(design: Design, synthesis: DesignSynthesis, cycles_per_frame: float,
                     energy_pj_per_frame: float) -> dict[str, Any]:
    """summary.json's synthesis results: ``resources`` (Yosys per stage and total, with the
    resource model's estimate beside them where the target is calibrated), ``fmax_mhz``,
    ``frames_per_second`` = Fmax / cycles per frame and ``frames_per_joule``."""
    resources = synthesis.record()
    try:
        resources["model"] = {
            "total": design.estimate_resources(synthesis.target).as_dict(),
            "stages": {stage.name: stage.estimate_resources(synthesis.target).as_dict()
                       for stage in design.stages}}
    except UnknownTargetError:
        pass
    fmax = synthesis.timing.fmax_mhz if synthesis.timing is not None else None
    fps = fmax * 1e6 / cycles_per_frame if fmax is not None else None
    return {"resources": resources, "fmax_mhz": fmax, "frames_per_second": fps,
            "frames_per_joule": 1e12 / energy_pj_per_frame if energy_pj_per_frame else None}


def predictions(example: LoadedExample, graph: Graph, outputs: np.ndarray) -> np.ndarray:
    """Class predictions of integer outputs of ``graph``: the argmax of the integer scores,
    or of the imported model's real outputs (its output edge applied for reporting)."""
    if example.imported is not None:
        return example.imported.predict(outputs, graph)
    return np.argmax(outputs.reshape(len(outputs), -1), axis=1)


def summarize(example: LoadedExample, design: Design, evaluation: Evaluation,
              y_test: np.ndarray, ref_pred: np.ndarray, torch_pred: np.ndarray,
              table: EnergyTable, machine: dict[str, Any],
              source_bit_exact: bool | None = None) -> dict[str, Any]:
    """summary.json: results first, machine timings apart under ``machine``."""
    verification = evaluation.verification
    assert verification is not None and evaluation.outputs is not None
    first = verification.first
    hw_pred = predictions(example, design.graph, evaluation.outputs)
    records = stage_records(evaluation)
    fifos = design.organisation.buffers(design)
    return {
        "example": example.name,
        "description": example.description,
        "source": "quant_models" if example.imported is None else example.imported.source,
        "data": example.data,
        "bit_exact": verification.bit_exact,
        "source_bit_exact": source_bit_exact,
        "frames": evaluation.frames,
        "mismatches": verification.mismatches,
        "first_mismatch": None if first is None else first.describe(),
        "accuracy_float": (None if example.float_accuracy is None
                           else float(example.float_accuracy)),
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


def check_run_options(out_dir: Path, frames: int | None, energy_table: str | Path | None,
                      folding: Mapping[str, Any] | None = None, target_cycles: int | None = None,
                      sparse: Sequence[str] | float | None = None,
                      fifo_depth: FifoDepth | None = None,
                      families: Mapping[str, str] | None = None, *, synth: bool = False,
                      synth_target: str = "xc7", part: str | None = None,
                      seeds: int = len(DEFAULT_SEEDS), **aims: Any) -> tuple[Path, EnergyTable]:
    """Check every option of a run (and make its directory) before any long step."""
    check_frames(frames)
    out_dir = check_output_dir(out_dir)
    table = EnergyTable.load(energy_table)
    if synth:
        get_target(synth_target).part(part if part != "auto" else None)
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise OptionError(f"seeds={seeds!r}: place and route needs at least 1 seed")
    MappingOptions.create(folding, target_cycles=target_cycles, sparse=sparse,
                          fifo_depth=fifo_depth, families=families, **aims)
    return out_dir, table


def run_example(name: str = DEFAULT_EXAMPLE, *, out_dir: Path, frames: int | None = None,
                retrain: bool = False, energy_table: str | Path | None = None,
                folding: Mapping[str, Any] | None = None,
                target_cycles: int | None = None,
                sparse: Sequence[str] | float | None = None,
                fifo_depth: FifoDepth | None = None,
                families: Mapping[str, str] | None = None,
                memory_styles: Mapping[str, str] | None = None,
                lut_budget: int | None = None, dsp_budget: int | None = None,
                bram_budget: int | None = None, target_fps: float | None = None,
                fmax_mhz: float | None = None, folding_objective: str | None = None,
                synth: bool = False, synth_target: str = "xc7", part: str | None = None,
                seeds: int = len(DEFAULT_SEEDS),
                data: str | Path | None = None, baseline: bool = True,
                onnx_model: str | Path | None = None, weight_types: WeightTypes = "declared",
                say: Say = _stderr, example: LoadedExample | None = None) -> dict[str, Any]:
    """Train or load, compile, simulate the test split, verify, measure the speedup against
    the float baseline's dense 8-bit design (:mod:`codesign.metrics`), (synthesise,) report.

    ``name`` is a built-in or imported example; ``onnx_model`` (instead) a QONNX file to
    import; ``example`` (instead) an example loaded already (a recipe's result); ``data`` a
    directory with MNIST or CIFAR-10 whose test split replaces digits. Every option is
    checked, and the output directory made, before any long step; a failure after the
    simulation still writes the run directory (summary and report). With ``synth`` the
    design (without counters) is synthesised for ``synth_target``, whole and stage by stage,
    and placed and routed for its Fmax (median of ``seeds`` seeds). The speedup is measured
    only for examples with a float baseline (not for imported networks), and not at all
    without ``baseline`` (which saves building and simulating a second design).
    ``weight_types`` types a quant_models network's weights by their declared ranges or by
    their trained values (:data:`codesign.frontends.torch.WEIGHT_TYPES`).
    """
    from codesign.examples import load_onnx_model
    from codesign.metrics import compression_metrics, measure_baseline
    from quant_models.train import predict

    aims = dict(memory_styles=memory_styles, lut_budget=lut_budget, dsp_budget=dsp_budget,
                bram_budget=bram_budget, target_fps=target_fps, fmax_mhz=fmax_mhz,
                folding_objective=folding_objective)
    out_dir, table = check_run_options(out_dir, frames, energy_table, folding, target_cycles,
                                       sparse, fifo_depth, families, synth=synth,
                                       synth_target=synth_target, part=part, seeds=seeds,
                                       **aims)
    steps = _Steps(7 if synth else 6, say)

    what = (f"importing {str(onnx_model)!r}" if onnx_model else
            f"loading example {name if example is None else example.name!r}")
    steps.begin("model", what + ("" if data is None else f" and the data set in {data}"))

    def train_progress(epoch: int, epochs: int, loss: float) -> None:
        if epoch == epochs or epoch % 10 == 0:
            say(f"      epoch {epoch}/{epochs} loss {loss:.4f}")

    if example is None and onnx_model is not None:
        example = load_onnx_model(onnx_model, data=data)
    elif example is None:
        example = load_example(name, retrain=retrain, progress=train_progress, data=data)
    x_test, y_test = example.x_test, example.y_test
    if frames is not None:
        x_test, y_test = x_test[:frames], y_test[:frames]
    steps.end(f"{len(x_test)} test frames")

    steps.begin("compile", "lowering to the integer IR, running the passes, mapping")
    options = example_options(example, folding, target_cycles=target_cycles, sparse=sparse,
                              fifo_depth=fifo_depth, families=families, **aims)
    source_bit_exact = None
    design = compile_graph(example_graph(example, weight_types), options)
    x_checked = example_inputs(example, design.graph, x_test)
    values = execute_all(design.graph, x_checked)
    reference_outputs = values[design.graph.output]
    ref_pred = predictions(example, design.graph, reference_outputs)
    if example.imported is not None:
        # the source framework's own outputs, element by element through the output edge
        source = np.asarray(example.imported.run_source(x_test)).reshape(len(x_test), -1)
        source_bit_exact = bool(np.array_equal(
            example.imported.scores(reference_outputs, design.graph), source))
        torch_pred = np.argmax(source, axis=1)
    else:
        torch_pred = predict(example.model, x_test)
    agreement = int(np.count_nonzero(ref_pred == torch_pred))
    source_name = "torch" if example.imported is None else example.imported.source
    steps.end(f"{len(design.stages)} stages; reference agrees with {source_name} on "
              f"{agreement}/{len(x_test)} predictions"
              + ("" if source_bit_exact is None else
                 f", {'equals' if source_bit_exact else 'DIFFERS from'} its outputs on every "
                 "element"))

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

    baseline_model = example.baseline_model
    compression = None
    if baseline_model is None:
        steps.begin("baseline", "speedup not measured: the network has no float baseline")
        steps.end()
    else:
        measure = None
        unmeasured = ("skipped (--no-baseline)" if not baseline else
                      "the run is not bit-exact")
        if verification.bit_exact and baseline:
            def measure(lanes: int) -> Any:
                return measure_baseline(example.baseline_name, baseline_model, lanes,
                                        x_checked, table)
        steps.begin("baseline", f"measuring the speedup: {example.baseline_name} as a dense "
                    "8-bit design with the same lanes, in RTL" if measure is not None else
                    f"speedup not measured: {unmeasured}")
        compression = compression_metrics(design, evaluation.cycles_per_frame,
                                          example.baseline_name, baseline_model, measure,
                                          unmeasured)
        steps.end("" if compression["delta"] is None else
                  f"alpha {compression['alpha']:.2f}, delta {compression['delta']:.2f}")

    steps.begin("energy", f"costing counted events with {table.name} ({table.technology_node})")
    steps.end(f"{evaluation.energy_pj_per_frame:.1f} pJ/frame")

    synthesis = None
    if synth:
        steps.begin("synth", f"synthesising for {synth_target} (Yosys: the whole design and "
                    "each stage) and placing and routing for Fmax (nextpnr, median of "
                    f"{seeds} seeds)")
        synthesis = synthesize_design(design, synth_target, fmax=True, part=part,
                                      seeds=tuple(range(1, seeds + 1)), say=say)
        assert synthesis.timing is not None
        steps.end(f"{synthesis.total.resources.describe()}; Fmax "
                  f"{synthesis.timing.fmax_mhz:.1f} MHz on {synthesis.timing.part}")

    steps.begin("report", f"writing {out_dir}")
    machine = {**{k: round(v, 3) if k.endswith("seconds") else v
                  for k, v in evaluation.timings.items()}, "step_seconds": steps.timings}
    summary = summarize(example, design, evaluation, y_test, ref_pred, torch_pred, table,
                        machine, source_bit_exact)
    if compression is not None:
        summary["compression"] = compression
    history = getattr(example.model, "history", None)
    if isinstance(history, dict):
        summary["recipe"] = history
    synth_verilog = None
    if synthesis is not None:
        summary.update(synthesis_fields(design, synthesis, evaluation.cycles_per_frame,
                                        evaluation.energy_pj_per_frame))
        synth_verilog = generate_verilog(design, counters=False).text
    write_run_directory(out_dir, summary, artefact.text, synth_verilog)
    steps.end()
    if not verification.bit_exact:
        raise MismatchError(f"hardware differs from the reference: {summary['first_mismatch']}"
                            f" ({verification.mismatches} elements); report in {out_dir}")
    return summary
