"""Fast bulk-streaming simulation of stream-in/stream-out designs with Verilator.

``run_stream`` builds a DUT's Verilog together with a testbench wrapper (cached by content hash),
streams input beats through it in one simulator process and returns the output beats, the DUT's
performance counters and cycle counts. ``StreamTestbench`` keeps one build for many jobs.
Read-only memories' initial images are loaded when a job starts rather than built in
(:mod:`sim.memory_images`), so DUTs that differ only in them share one build.

DUT contract: a Verilog module with ports ``clk``, ``rst`` (synchronous, active high),
``i__valid``/``i__ready``/``i__payload[W_IN-1:0]`` (input stream), ``o__valid``/``o__ready``/
``o__payload[W_OUT-1:0]`` (output stream) and, if it has ``NC > 0`` counters,
``perf[32*NC-1:0]`` with counter ``k`` at bits ``[32k+31:32k]``. This is exactly what
``amaranth.back.verilog.convert`` emits for a component with ``i: In(stream.Signature(W_IN))``,
``o: Out(stream.Signature(W_OUT))`` and ``perf: Out(32 * NC)``.

Cycle numbering: cycle 0 is the first clock cycle after reset is released. The wrapper holds
reset for 4 cycles, then offers input beats from cycle 0 on.
"""

from sim.errors import MemoryImageError, SimulationError, SimulationStuck, ToolchainError
from sim.stream_sim import StreamRun, StreamTestbench, run_stream
from sim.toolchain import VerilatorInfo, ensure_verilator

__all__ = [
    "MemoryImageError",
    "SimulationError",
    "SimulationStuck",
    "StreamRun",
    "StreamTestbench",
    "ToolchainError",
    "VerilatorInfo",
    "ensure_verilator",
    "run_stream",
]
