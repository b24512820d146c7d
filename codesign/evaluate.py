"""Evaluate a design on inputs: cycles, counters, energy and the analytical check, typed.

``evaluate(..., rtl=True)`` simulates the Verilog and verifies every output against the
reference values it is given (the reference runs once per run, by the caller);
``rtl=False`` answers from the analytical model alone, in milliseconds, for sweeps. Either
way the stages are asked, never switched on: their counters, formulas and event costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.analytical import compare_counters, predict_design
from codesign.arch.design import Design
from codesign.arch.stage import Stage
from codesign.energy import EnergyTable, stage_energy
from codesign.generate import VerilogArtefact, generate_verilog
from codesign.reference import check_inputs
from codesign.simulate import SimResult, run_rtl
from codesign.verify import Verification, compare
from hdl.perf import Counter


@dataclass
class StageEvaluation:
    """One stage's figures for a run of ``frames`` frames."""

    name: str
    kind: str
    record: dict[str, Any]
    """The stage's own fields (see :meth:`codesign.arch.stage.Stage.record`)."""
    formula_cycles: int
    """Issue cycles of the whole run as the stage's model predicts them (dense engine:
    N·(MH/PE)·(MW/SIMD); sparse engine: its busiest PEs' steps; window: output beats; pool:
    input beats up to the last window)."""
    fill_cycles: int
    counters: dict[str, int]
    """Measured (RTL) or, without RTL, predicted counters."""
    predicted: dict[str, int]
    analytical_mismatches: dict[str, tuple[int, int]]
    energy_pj: dict[str, float]
    """Energy of the whole run by component."""

    @property
    def measured_cycles(self) -> int:
        """Active span less stalls: formula + fill for a stage issuing every cycle."""
        c = self.counters
        return c[Counter.SPAN] - c[Counter.STALL_IN] - c[Counter.STALL_OUT]


@dataclass
class Evaluation:
    """Figures of one design on one input set."""

    rtl: bool
    frames: int
    stages: list[StageEvaluation]
    bottleneck_cycles_per_frame: int
    energy_pj_per_frame: float
    analytical_match: bool
    outputs: np.ndarray | None = None
    """Hardware outputs [N, elements] (RTL only)."""
    verification: Verification | None = None
    total_cycles: int | None = None
    """First input to last output in RTL (None without RTL)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Machine timings (build, simulation speed): not results, kept apart."""

    @property
    def cycles_per_frame(self) -> float:
        """Measured cycles per frame over the run in RTL, the bottleneck's without."""
        if self.total_cycles is not None:
            return self.total_cycles / self.frames
        return float(self.bottleneck_cycles_per_frame)

    @property
    def bit_exact(self) -> bool | None:
        return None if self.verification is None else self.verification.bit_exact


StageModel = Callable[[Stage], StageEvaluation]
"""A stage -> its figures from the analytical model alone, on one run's frames and table."""


def model_stage(stage: Stage, frames: int, reference_values: Mapping[str, np.ndarray],
                table: EnergyTable) -> StageEvaluation:
    """A stage's figures on ``frames`` frames from the analytical model alone: its predicted
    counters (the activation-dependent ones from the reference's values of its input),
    priced by ``table``. They depend on nothing but the stage, the frames and the table, so
    a sweep evaluating many designs on the same frames computes them once per stage."""
    guess = {str(k): v for k, v in stage.predict_counters(
        frames, reference_values[stage.input_tensor]).items()}
    return _stage_evaluation(stage, guess, guess, {}, table)


def _stage_evaluation(stage: Stage, guess: dict[str, int], counters: dict[str, int],
                      mismatches: dict[str, tuple[int, int]], table: EnergyTable
                      ) -> StageEvaluation:
    return StageEvaluation(
        name=stage.name, kind=stage.kind, record=stage.record(),
        formula_cycles=guess["issue"], fill_cycles=stage.fill_cycles,
        counters=counters, predicted=guess, analytical_mismatches=mismatches,
        energy_pj=stage_energy(stage, counters, table))


def evaluate(design: Design, inputs: np.ndarray, reference_values: Mapping[str, np.ndarray],
             table: EnergyTable, *, rtl: bool = True, artefact: VerilogArtefact | None = None,
             localize: bool = True, checked: bool = False,
             stage_model: StageModel | None = None) -> Evaluation:
    """The design's figures on ``inputs`` (``reference_values``: every tensor of the
    reference on the same inputs, :func:`codesign.reference.execute_all`).

    ``checked=True`` says ``inputs`` already passed :func:`codesign.reference.check_inputs`.
    Without RTL, each stage's figures are ``stage_model(stage)`` when it is given (what
    :func:`model_stage` answers for these inputs and table, from a sweep's memo).
    """
    frames = inputs if checked else check_inputs(design.graph, inputs)
    n = frames.shape[0]
    timings: dict[str, float] = {}
    if not rtl:
        model = stage_model or (lambda stage: model_stage(stage, n, reference_values, table))
        return _summary(design, n, [model(stage) for stage in design.stages], False, timings)
    predicted = predict_design(design, n, reference_values)
    start = time.perf_counter()
    artefact = artefact or generate_verilog(design, counters=True)
    timings["generate_seconds"] = time.perf_counter() - start
    sim = run_rtl(design, frames, artefact)
    timings.update(build_seconds=sim.timing.build_seconds,
                   sim_seconds=sim.timing.wall_seconds,
                   sim_cycles_per_second=sim.timing.sim_cycles_per_second)
    stages = []
    for stage in design.stages:
        guess = {str(k): v for k, v in predicted[stage.name].items()}
        counters = {str(k): v for k, v in sim.stage_counters[stage.name].items()}
        stages.append(_stage_evaluation(
            stage, guess, counters, compare_counters(guess, counters, in_network=True), table))
    evaluation = _summary(design, n, stages, True, timings)
    evaluation.outputs = sim.outputs
    evaluation.total_cycles = sim.total_cycles
    evaluation.verification = _verify(design, frames, reference_values, sim, localize)
    return evaluation


def _summary(design: Design, n: int, stages: list[StageEvaluation], rtl: bool,
             timings: dict[str, float]) -> Evaluation:
    """The design's figures from its stages' (RTL results are added by the caller)."""
    total_pj = sum(sum(s.energy_pj.values()) for s in stages)
    return Evaluation(
        rtl=rtl, frames=n, stages=stages,
        bottleneck_cycles_per_frame=design.cycles_per_frame,
        energy_pj_per_frame=total_pj / n,
        analytical_match=all(not s.analytical_mismatches for s in stages),
        timings=timings)


def _verify(design: Design, frames: np.ndarray, values: Mapping[str, np.ndarray],
            sim: SimResult, localize: bool) -> Verification:
    """Compare the outputs; on a mismatch, let the organisation name the first stage."""
    verification = compare(design, values[design.graph.output], sim.outputs)
    if verification.bit_exact or not localize:
        return verification

    def simulate_prefix(sub: Design, x: np.ndarray) -> np.ndarray:
        return run_rtl(sub, x, generate_verilog(sub, counters=False)).outputs

    located = design.organisation.localize_mismatch(design, frames, dict(values),
                                                    simulate_prefix)
    if located is None:
        return verification
    return Verification(verification.frames, verification.elements, verification.mismatches,
                        located)
