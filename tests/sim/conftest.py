"""Shared builds for the simulation tests.

Builds are the slow part (seconds each, cold), so each design is built once per session and
reused by every test; the content-hashed cache makes later sessions start warm.
"""

from __future__ import annotations

import pytest

from sim import StreamTestbench
from sim.examples import StreamIncrementer, incrementer_verilog, never_valid_verilog

WIDE = 200


@pytest.fixture(scope="session")
def inc_bench() -> StreamTestbench:
    """200-bit registered incrementer with 3 counters, cocotb backend."""
    verilog, top = incrementer_verilog(WIDE)
    bench = StreamTestbench(
        verilog,
        top,
        in_width=WIDE,
        out_width=WIDE,
        n_counters=StreamIncrementer.N_COUNTERS,
    )
    bench.build()
    return bench


@pytest.fixture(scope="session")
def inc_bench_cpp() -> StreamTestbench:
    """The same design on the plain C++ backend."""
    verilog, top = incrementer_verilog(WIDE)
    bench = StreamTestbench(
        verilog,
        top,
        in_width=WIDE,
        out_width=WIDE,
        n_counters=StreamIncrementer.N_COUNTERS,
        backend="cpp",
    )
    bench.build()
    return bench


@pytest.fixture(scope="session")
def stuck_bench() -> StreamTestbench:
    """A DUT that swallows inputs and never answers; no perf port (n_counters=0)."""
    verilog, top = never_valid_verilog(8, 8)
    bench = StreamTestbench(verilog, top, in_width=8, out_width=8, n_counters=0)
    bench.build()
    return bench
