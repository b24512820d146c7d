"""Design + integer inputs -> cycle-accurate RTL simulation results.

Takes the design's Verilog artefact (generated here if not given), packs every frame into
stream beats, streams them all through the Verilator model in one run (Python does not act
per cycle), and unpacks the outputs and every stage's performance counters. The counters are
read once every stage has consumed and produced all its beats (the run settles past the
last output when a pool drops trailing data), so a stage's cycles are measured whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.arch.design import Design
from codesign.generate import VerilogArtefact, generate_verilog
from codesign.reference import check_inputs
from codesign.streams import pack_beats, unpack_beats
from hdl.perf import Counter


@dataclass(frozen=True)
class SimTiming:
    """How long the run took on this machine (kept apart from the results)."""

    wall_seconds: float
    build_seconds: float
    sim_cycles_per_second: float


@dataclass
class SimResult:
    """What one RTL run produced: outputs, counters and cycles."""

    outputs: np.ndarray
    frames: int
    stage_counters: dict[str, dict[Counter, int]]
    """Every counter of every stage (empty when the artefact has no counters)."""
    total_cycles: int
    """First input accepted through the last output produced, inclusive."""
    timing: SimTiming

    def measured_cycles(self, stage: str) -> int:
        """Cycles the stage needed on its own: its active span less the stalls it suffered.

        The counters account for every cycle of the span (issue + stall_in + stall_out +
        fill), so this equals the stage's formula + fill exactly when it issues at one step
        per cycle.
        """
        c = self.stage_counters[stage]
        return c[Counter.SPAN] - c[Counter.STALL_IN] - c[Counter.STALL_OUT]


def settle_targets(design: Design, artefact: VerilogArtefact, frames: int
                   ) -> list[tuple[int, int]]:
    """Every stage's final input and output beat counts: the run is over when all are met."""
    if not artefact.counters:
        return []
    targets = []
    for stage in design.stages:
        for counter, per_frame in ((Counter.IN_BEATS, stage.in_beats_per_frame),
                                   (Counter.OUT_BEATS, stage.out_beats_per_frame)):
            targets.append((artefact.counter_index(stage.name, counter), frames * per_frame))
    return targets


def _by_stage(design: Design, artefact: VerilogArtefact, values: list[int]
              ) -> dict[str, dict[Counter, int]]:
    """The counters read from the ``perf`` port, by stage and name."""
    counters: dict[str, dict[Counter, int]] = {stage.name: {} for stage in design.stages}
    for (stage, counter), value in zip(artefact.counters, values, strict=False):
        counters[stage][counter] = int(value)
    return counters


def run_rtl(design: Design, frames: np.ndarray, artefact: VerilogArtefact, *,
            liveness_cycles: int | None = None, in_valid_prob: int = 256,
            out_ready_prob: int = 256, seed: int = 1) -> SimResult:
    """Stream already-checked int64 ``frames`` [N, *input shape] through ``artefact``."""
    from sim.errors import SimulationStuck
    from sim.stream_sim import run_stream

    n = frames.shape[0]
    fin, fout = design.input_format, design.output_format
    beats = pack_beats(frames.reshape(n, -1), fin.dtype, fin.elems)
    try:
        run = run_stream(artefact.text, artefact.top, in_width=artefact.in_width,
                         out_width=artefact.out_width, n_counters=len(artefact.counters),
                         in_beats=beats, n_out_beats=n * fout.size // fout.elems,
                         liveness_cycles=(liveness_cycles
                                          or design.organisation.liveness_cycles(design)),
                         in_valid_prob=in_valid_prob, out_ready_prob=out_ready_prob, seed=seed,
                         settle=settle_targets(design, artefact, n),
                         counter_labels=[f"{stage}.{counter}" for stage, counter
                                         in artefact.counters])
    except SimulationStuck as stuck:
        where = design.organisation.explain_stuck(
            design, _by_stage(design, artefact, stuck.counters), n)
        if where is None:
            raise
        raise SimulationStuck(f"{stuck}; {where}", in_accepted=stuck.in_accepted,
                              n_in=stuck.n_in, out_produced=stuck.out_produced,
                              n_out=stuck.n_out, liveness_cycles=stuck.liveness_cycles,
                              cycle=stuck.cycle, partial_out_beats=stuck.partial_out_beats,
                              counters=stuck.counters) from None
    outputs = unpack_beats(run.out_beats, fout.dtype, fout.elems, fout.size)
    counters = _by_stage(design, artefact, run.counters)
    return SimResult(outputs=outputs, frames=n, stage_counters=counters,
                     total_cycles=int(run.last_out_cycle - run.first_in_cycle + 1),
                     timing=SimTiming(run.wall_seconds, run.build_seconds,
                                      run.sim_cycles_per_second))


def simulate(design: Design, inputs: np.ndarray, *, artefact: VerilogArtefact | None = None,
             liveness_cycles: int | None = None, in_valid_prob: int = 256,
             out_ready_prob: int = 256, seed: int = 1) -> SimResult:
    """Stream every frame of ``inputs`` [N, *input shape] through the design's RTL.

    ``artefact`` defaults to the design's Verilog with counters. ``in_valid_prob`` and
    ``out_ready_prob`` (in 1/256) insert random input gaps and output backpressure, to
    exercise stalls; the defaults stream at full rate.
    """
    frames = check_inputs(design.graph, inputs)
    if artefact is None:
        artefact = generate_verilog(design, counters=True)
    return run_rtl(design, frames, artefact, liveness_cycles=liveness_cycles,
                   in_valid_prob=in_valid_prob, out_ready_prob=out_ready_prob, seed=seed)
