"""cocotb test module that runs one streaming job inside the simulator.

The wrapper does all per-cycle work in HDL, so this test only waits for ``done`` once (with a
simulated-time safety timeout), then reads the result counters through VPI handles and writes
them as JSON for the parent process. The job description comes from the JSON file named by
``$CODESIGN_SIM_JOB``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import cocotb
from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout

from codesign.paths import atomic_write_text

JOB_ENV = "CODESIGN_SIM_JOB"


def _read(handle: Any) -> int:
    value = handle.value
    to_unsigned = getattr(value, "to_unsigned", None)
    return int(to_unsigned() if to_unsigned is not None else value)


@cocotb.test()
async def stream_job(dut: Any) -> None:
    """Await the wrapper's ``done`` and report its counters."""
    job = json.loads(Path(os.environ[JOB_ENV]).read_text(encoding="utf-8"))
    start = time.perf_counter()
    timed_out = False
    try:
        await with_timeout(RisingEdge(dut.done), int(job["timeout_ns"]), "ns")
    except SimTimeoutError:
        timed_out = True
    loop_seconds = time.perf_counter() - start

    n_counters = int(job["n_counters"])
    perf = _read(dut.perf_final)
    result = {
        "timed_out": timed_out,
        "done": _read(dut.done),
        "stuck": _read(dut.stuck),
        "in_count": _read(dut.in_count),
        "out_count": _read(dut.out_count),
        "cycle": _read(dut.cycle),
        "total_cycles": _read(dut.total_cycles),
        "first_in_cycle": _read(dut.first_in_cycle),
        "last_out_cycle": _read(dut.last_out_cycle),
        "counters": [(perf >> (32 * k)) & 0xFFFFFFFF for k in range(n_counters)],
        "loop_seconds": loop_seconds,
    }
    atomic_write_text(job["result_file"], json.dumps(result))
