"""Design + integer inputs -> cycle-accurate RTL simulation results.

Generates the Verilog, packs every frame into stream beats, streams them all through the
Verilator model in one run (Python does not act per cycle), and unpacks outputs and the
per-engine performance counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.generate import TOP_NAME, generate_verilog
from codesign.mapping import Design, pack_beats, unpack_beats
from codesign.reference import check_inputs
from hdl.mvu import FILL_CYCLES


@dataclass
class SimResult:
    """What one RTL run produced: outputs, counters and timing."""

    outputs: np.ndarray
    frames: int
    layer_counters: dict[str, dict[str, int]]
    total_cycles: int
    wall_seconds: float
    build_seconds: float
    sim_cycles_per_second: float
    verilog: str = field(repr=False)

    def measured_cycles(self, layer: str) -> int:
        """Cycles the layer needed on its own: its active span less the stalls it suffered.

        The counters account for every cycle of the span (issue + stall_in + stall_out +
        fill), so this equals N * NF * SF + FILL exactly when the engine issues at
        initiation interval 1.
        """
        c = self.layer_counters[layer]
        return c["span"] - c["stall_in"] - c["stall_out"]


def default_liveness(design: Design) -> int:
    """No handshake for this many cycles means the design is stuck."""
    return 64 * max(layer.cycles_per_frame for layer in design.layers) + 10_000


def simulate(design: Design, inputs: np.ndarray, *, liveness_cycles: int | None = None,
             in_valid_prob: int = 256, out_ready_prob: int = 256, seed: int = 1,
             verilog: str | None = None) -> SimResult:
    """Stream every frame of ``inputs`` [N, MW0] through the design's RTL.

    ``in_valid_prob``/``out_ready_prob`` (in 1/256) insert random input gaps and output
    backpressure, to exercise stalls; the defaults stream at full rate.
    """
    from sim.stream_sim import run_stream

    frames = check_inputs(design.graph, inputs)
    n = frames.shape[0]
    first, last = design.layers[0], design.layers[-1]
    top, text = generate_verilog(design)
    if verilog is not None:
        text = verilog
    out_size = design.graph.tensor(last.output_tensor).size
    beats = pack_beats(frames.reshape(n, -1), first.input_type, first.in_elems)
    run = run_stream(text, TOP_NAME, in_width=len(top.i.payload), out_width=len(top.o.payload),
                     n_counters=len(top.counter_names), in_beats=beats,
                     n_out_beats=n * out_size // last.out_elems,
                     liveness_cycles=liveness_cycles or default_liveness(design),
                     in_valid_prob=in_valid_prob, out_ready_prob=out_ready_prob, seed=seed)
    outputs = unpack_beats(run.out_beats, last.output_type, last.out_elems, out_size)
    counters: dict[str, dict[str, int]] = {layer.name: {} for layer in design.layers}
    for (engine, counter), value in zip(top.counter_names, run.counters, strict=True):
        counters[engine][counter] = int(value)
    return SimResult(outputs=outputs, frames=n, layer_counters=counters,
                     total_cycles=int(run.last_out_cycle - run.first_in_cycle + 1),
                     wall_seconds=run.wall_seconds, build_seconds=run.build_seconds,
                     sim_cycles_per_second=run.sim_cycles_per_second, verilog=text)


__all__ = ["FILL_CYCLES", "SimResult", "default_liveness", "simulate"]
