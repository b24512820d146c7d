"""Plain Verilator C++ harness: the same wrapper and DUT, no cocotb, no VPI, no Python.

``verilator --binary`` compiles the wrapper and DUT with Verilator's own ``main`` (an event loop
that only advances time), the wrapper is told ``+finish`` so it ends itself, and the counters come
back through ``+summary_file``. Everything else (wrapper text, DUT text, input file, plusargs,
flags) is identical to the cocotb path, so the ratio of the two speeds is the cost of cocotb.

It is also a usable backend in its own right (``backend="cpp"``): bit-identical results, with
a few milliseconds of start-up instead of a few hundred.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sim.build import BuiltModel, build_model
from sim.errors import SimulationStuck
from sim.stream_sim import StreamRun, StreamTestbench


def build_cpp_model(
    verilog: str, top: str, *, in_width: int, out_width: int, n_counters: int
) -> BuiltModel:
    """Build (cached) the plain C++ simulator for a DUT."""
    return build_model(
        verilog, top, in_width=in_width, out_width=out_width, n_counters=n_counters, kind="cpp"
    )


@dataclass(frozen=True)
class SpeedComparison:
    """One job run on both backends."""

    cocotb: StreamRun
    cpp: StreamRun
    cocotb_startup_seconds: float
    """Process time of a one-beat job: the fixed cost of each cocotb run."""
    cpp_startup_seconds: float

    @property
    def ratio(self) -> float:
        """cocotb cycles/s over plain C++ cycles/s, whole processes (start-up included)."""
        return self.cocotb.sim_cycles_per_second / self.cpp.sim_cycles_per_second

    @property
    def steady_ratio(self) -> float:
        """The same ratio with each backend's start-up time subtracted."""
        return self.steady_rate(self.cocotb, self.cocotb_startup_seconds) / self.steady_rate(
            self.cpp, self.cpp_startup_seconds
        )

    @staticmethod
    def steady_rate(run: StreamRun, startup: float) -> float:
        """Cycles per second once the simulator is up."""
        return run.total_cycles / max(run.process_seconds - startup, 1e-9)


def compare_backends(
    verilog: str,
    top: str,
    *,
    in_width: int,
    out_width: int,
    n_counters: int,
    in_beats: Sequence[int],
    n_out_beats: int,
    repeat: int = 3,
    **run_kwargs: int,
) -> SpeedComparison:
    """Run one job on the cocotb and the C++ backends, check they agree, time both.

    Each backend runs ``repeat`` times and its fastest run counts (the machine is shared, so
    the minimum is the least noisy estimate).

    Raises:
        AssertionError: the two backends disagree on outputs, counters or cycle counts.
    """
    runs: dict[str, StreamRun] = {}
    startup: dict[str, float] = {}
    for backend in ("cocotb", "cpp"):
        bench = StreamTestbench(
            verilog,
            top,
            in_width=in_width,
            out_width=out_width,
            n_counters=n_counters,
            backend=backend,  # type: ignore[arg-type]
        )
        bench.build()
        best: StreamRun | None = None
        for _ in range(max(1, repeat)):
            run = bench.run(in_beats, n_out_beats, **run_kwargs)
            if best is None or run.process_seconds < best.process_seconds:
                best = run
        assert best is not None
        runs[backend] = best
        startup[backend] = _startup_seconds(bench, in_beats[:1], repeat)
    a, b = runs["cocotb"], runs["cpp"]
    if (a.out_beats, a.counters, a.total_cycles) != (b.out_beats, b.counters, b.total_cycles):
        raise AssertionError(
            "cocotb and C++ backends disagree: "
            f"cycles {a.total_cycles} vs {b.total_cycles}, counters {a.counters} vs {b.counters}, "
            f"outputs equal: {a.out_beats == b.out_beats}"
        )
    return SpeedComparison(
        cocotb=a,
        cpp=b,
        cocotb_startup_seconds=startup["cocotb"],
        cpp_startup_seconds=startup["cpp"],
    )


def _startup_seconds(bench: StreamTestbench, one_beat: Sequence[int], repeat: int) -> float:
    """Fastest process time of a job that ends almost at once (liveness of one cycle)."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        try:
            run = bench.run(one_beat, 1, liveness_cycles=64)
            seconds = run.process_seconds
        except SimulationStuck:  # one beat may produce no output: the call time is close
            seconds = time.perf_counter() - start
        best = min(best, seconds)
    return best
