"""Run bulk streaming jobs through a stream-in/stream-out DUT in Verilator.

High level: :func:`run_stream` builds (cached) and runs one job. Lower level:
:class:`StreamTestbench` holds one build and runs any number of independent jobs on it, each in
a fresh simulator process (start-up cost is a fraction of a second; see ``benchmarks``).

Two backends share the same wrapper and DUT Verilog: ``"cocotb"`` (the default; the cocotb test
in :mod:`sim.cocotb_stream_test` reads the results through VPI) and ``"cpp"`` (Verilator's own
C++ main, no Python inside the simulator; the speed ceiling, see :mod:`sim.cpp_harness`).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sim.beats import (
    MAX_BEATS,
    check_beats,
    check_count,
    decode_outputs,
    encode_inputs,
    out_beat_bytes,
)
from sim.build import BuildKind, BuiltModel, build_model
from sim.errors import MemoryImageError, SimulationError, SimulationStuck
from sim.memory_images import loader_failure, write_memory_images
from sim.toolchain import ensure_verilator
from sim.wrapper import TB_NAME

Backend = Literal["cocotb", "cpp"]

CLOCK_PERIOD_NS = 10
RESET_CYCLES = 4
_NONE = (1 << 64) - 1  # the wrapper's "no such cycle" marker


@dataclass(frozen=True)
class StreamRun:
    """Outcome of one streaming job."""

    out_beats: list[int]
    """Captured output payloads, in order (exactly ``n_out_beats`` of them)."""
    counters: list[int]
    """The DUT's ``perf`` counters when the last output beat was taken."""
    total_cycles: int
    """Cycles from reset release through the cycle of the last output handshake."""
    first_in_cycle: int
    """Cycle (0 = first cycle out of reset) of the first input handshake; -1 if none."""
    last_out_cycle: int
    """Cycle of the last output handshake; -1 if none."""
    wall_seconds: float
    """Time for the job excluding the build: file preparation, simulator process, parsing."""
    build_seconds: float
    """Time this call spent building or fetching the cached build."""
    sim_cycles_per_second: float
    """``total_cycles`` divided by the simulator process's wall time (start-up included)."""
    in_beats_accepted: int = 0
    """Input beats the DUT accepted (it may legitimately leave some unread)."""
    process_seconds: float = 0.0
    """Wall time of the simulator process alone."""
    backend: str = "cocotb"


class StreamTestbench:
    """One built testbench model that can run many independent jobs without rebuilding.

    The build happens on first use (or an explicit :meth:`build`) and is looked up in the
    content-hashed cache, so constructing a testbench for Verilog that was built before costs
    only the hash.
    """

    def __init__(
        self,
        verilog: str,
        top: str,
        *,
        in_width: int,
        out_width: int,
        n_counters: int,
        backend: Backend = "cocotb",
        extra_flags: Sequence[str] = (),
    ) -> None:
        if backend not in ("cocotb", "cpp"):
            raise ValueError(f"backend must be 'cocotb' or 'cpp', got {backend!r}")
        self.verilog = verilog
        self.top = top
        self.in_width = in_width
        self.out_width = out_width
        self.n_counters = n_counters
        self.backend: Backend = backend
        self.extra_flags = tuple(extra_flags)
        self._model: BuiltModel | None = None

    def build(self) -> BuiltModel:
        """Build the model (or fetch it from the cache); repeated calls return the same one."""
        if self._model is None:
            kind: BuildKind = self.backend
            self._model = build_model(
                self.verilog,
                self.top,
                in_width=self.in_width,
                out_width=self.out_width,
                n_counters=self.n_counters,
                kind=kind,
                extra_flags=self.extra_flags,
            )
        return self._model

    def run(
        self,
        in_beats: Sequence[int],
        n_out_beats: int,
        *,
        liveness_cycles: int = 10_000,
        in_valid_prob: int = 256,
        out_ready_prob: int = 256,
        seed: int = 1,
        timeout_seconds: float | None = None,
        keep_dir: str | os.PathLike[str] | None = None,
        settle: Sequence[tuple[int, int]] = (),
        counter_labels: Sequence[str] = (),
    ) -> StreamRun:
        """Stream ``in_beats`` into the DUT and collect ``n_out_beats`` output beats.

        Args:
            in_beats: input payloads, each an int in ``[0, 2**in_width)``.
            n_out_beats: output beats to wait for (at least 1).
            liveness_cycles: cycles without a handshake on either stream before giving up.
            in_valid_prob: chance in 1/256 steps that the source offers a beat in a cycle
                (256 = every cycle). Once offered, a beat is held until accepted.
            out_ready_prob: chance in 1/256 steps that the sink is ready in a cycle.
            seed: seed of the wrapper's gap/backpressure generators (0 is allowed).
            timeout_seconds: wall-clock limit for the simulator process (None: none).
            keep_dir: keep the job's files (inputs, outputs, logs) in this new directory
                instead of deleting them; useful for debugging.
            settle: (counter index, value) pairs: after the last output beat, keep running
                (inputs still offered) until every listed counter holds its value (mod 2^32),
                then read the counters. A design whose output ends before its stages are idle
                (trailing data dropped by a pool) is then measured whole.
            counter_labels: a name per counter, used in error messages.

        Raises:
            ValueError: an argument is out of range or a payload does not fit its width.
            SimulationStuck: the liveness watchdog fired.
            SimulationError: the simulator failed or timed out.
        """
        params = _check_run_args(
            n_out_beats, liveness_cycles, in_valid_prob, out_ready_prob, seed, timeout_seconds
        )
        beats = check_beats(in_beats, _positive_width(self.in_width, "in_width"))
        settle_pairs = _check_settle(settle, self.n_counters)
        built_before = self._model is not None
        model = self.build()
        build_seconds = 0.0 if built_before else model.seconds

        start = time.perf_counter()
        if keep_dir is not None:
            workdir = Path(keep_dir)
            workdir.mkdir(parents=True, exist_ok=False)
        else:
            workdir = Path(tempfile.mkdtemp(prefix="codesign-sim-"))
        try:
            result, process_seconds = _execute(model, workdir, beats, params, timeout_seconds,
                                               settle_pairs)
            out_count = int(result["out_count"])
            in_count = int(result["in_count"])
            n_out = params["n_out"]
            if result["stuck"]:
                partial = _read_outputs(workdir, model, out_count)
                counters = [int(c) for c in result["counters"]]  # type: ignore[union-attr]
                unsettled = [counter_labels[k] if k < len(counter_labels) else str(k)
                             for k, v in settle_pairs if counters[k] != v % 2**32]
                what = (f"did not settle after its last output: counters {unsettled} did not "
                        "reach their expected values" if out_count == n_out and unsettled else
                        f"produced {out_count} of {n_out} expected output beats")
                raise SimulationStuck(
                    f"simulation stuck: no handshake on either stream for {params['liveness']} "
                    f"cycles (liveness_cycles) at cycle {result['cycle']}; the DUT accepted "
                    f"{in_count} of {len(beats)} input beats and {what}",
                    in_accepted=in_count,
                    n_in=len(beats),
                    out_produced=out_count,
                    n_out=n_out,
                    liveness_cycles=params["liveness"],
                    cycle=int(result["cycle"]),
                    partial_out_beats=partial,
                    counters=counters,
                )
            if out_count != n_out:  # pragma: no cover - the wrapper stops exactly at n_out
                raise SimulationError(
                    f"simulation ended with {out_count} of {n_out} output beats and no stall"
                )
            out_beats = _read_outputs(workdir, model, out_count)
        finally:
            if keep_dir is None:
                shutil.rmtree(workdir, ignore_errors=True)
        total = int(result["total_cycles"])
        return StreamRun(
            out_beats=out_beats,
            counters=[int(c) for c in result["counters"]],
            total_cycles=total,
            first_in_cycle=_cycle(result["first_in_cycle"]),
            last_out_cycle=_cycle(result["last_out_cycle"]),
            wall_seconds=time.perf_counter() - start,
            build_seconds=build_seconds,
            sim_cycles_per_second=total / process_seconds if process_seconds > 0 else 0.0,
            in_beats_accepted=in_count,
            process_seconds=process_seconds,
            backend=self.backend,
        )


def run_stream(
    verilog: str,
    top: str,
    *,
    in_width: int,
    out_width: int,
    n_counters: int,
    in_beats: Sequence[int],
    n_out_beats: int,
    liveness_cycles: int = 10_000,
    in_valid_prob: int = 256,
    out_ready_prob: int = 256,
    seed: int = 1,
    backend: Backend = "cocotb",
    timeout_seconds: float | None = None,
    settle: Sequence[tuple[int, int]] = (),
    counter_labels: Sequence[str] = (),
) -> StreamRun:
    """Build (cached) and run one streaming job; see :meth:`StreamTestbench.run`.

    Calling this again with the same Verilog reuses the cached build, so independent jobs cost
    one simulator process each.
    """
    bench = StreamTestbench(
        verilog,
        top,
        in_width=in_width,
        out_width=out_width,
        n_counters=n_counters,
        backend=backend,
    )
    return bench.run(
        in_beats,
        n_out_beats,
        liveness_cycles=liveness_cycles,
        in_valid_prob=in_valid_prob,
        out_ready_prob=out_ready_prob,
        seed=seed,
        timeout_seconds=timeout_seconds,
        settle=settle,
        counter_labels=counter_labels,
    )


# ---------------------------------------------------------------------------------------------


def _positive_width(value: object, name: str) -> int:
    return check_count(value, name, minimum=1, maximum=1 << 24)


def _check_run_args(
    n_out_beats: object,
    liveness_cycles: object,
    in_valid_prob: object,
    out_ready_prob: object,
    seed: object,
    timeout_seconds: float | None,
) -> dict[str, int]:
    params = {
        "n_out": check_count(n_out_beats, "n_out_beats", minimum=1, maximum=MAX_BEATS),
        "liveness": check_count(liveness_cycles, "liveness_cycles", minimum=1, maximum=2**32 - 2),
        "in_prob": check_count(in_valid_prob, "in_valid_prob", minimum=1, maximum=256),
        "out_prob": check_count(out_ready_prob, "out_ready_prob", minimum=1, maximum=256),
        "seed": check_count(seed, "seed", minimum=0, maximum=2**32 - 1),
    }
    if timeout_seconds is not None and not timeout_seconds > 0:
        raise ValueError(f"timeout_seconds must be positive or None, got {timeout_seconds!r}")
    return params


def _check_settle(settle: Sequence[tuple[int, int]], n_counters: int) -> list[tuple[int, int]]:
    pairs = []
    for entry in settle:
        try:
            index, value = (int(v) for v in entry)
        except (TypeError, ValueError):
            raise ValueError(f"settle entries are (counter index, value) pairs, got "
                             f"{entry!r}") from None
        if not 0 <= index < n_counters or value < 0:
            raise ValueError(f"settle counter {index} is not one of the DUT's {n_counters} "
                             f"counters, or its value {value} is negative")
        pairs.append((index, value))
    return pairs


def _plusargs(workdir: Path, n_in: int, params: dict[str, int]) -> list[str]:
    return [
        f"+in_file={workdir / 'in.bin'}",
        f"+out_file={workdir / 'out.bin'}",
        f"+n_in={n_in}",
        f"+n_out={params['n_out']}",
        f"+liveness={params['liveness']}",
        f"+in_prob={params['in_prob']}",
        f"+out_prob={params['out_prob']}",
        f"+seed={params['seed']}",
    ]


def _execute(
    model: BuiltModel,
    workdir: Path,
    beats: list[int],
    params: dict[str, int],
    timeout_seconds: float | None,
    settle: list[tuple[int, int]],
) -> tuple[dict[str, object], float]:
    (workdir / "in.bin").write_bytes(encode_inputs(beats, model.ports.in_width))
    cmd = [str(model.executable), *_plusargs(workdir, len(beats), params),
           *write_memory_images(model.images, workdir)]
    if settle:
        settle_file = workdir / "settle.txt"
        settle_file.write_text("".join(f"{k} {v % 2**32}\n" for k, v in settle))
        cmd.append(f"+settle_file={settle_file}")
    if model.kind == "cocotb":
        result_file = workdir / "result.json"
        job_file = workdir / "job.json"
        job = {
            "result_file": str(result_file),
            "n_counters": model.ports.n_counters,
            "timeout_ns": _safety_timeout_ns(len(beats) + sum(v for _, v in settle), params),
        }
        job_file.write_text(json.dumps(job), encoding="utf-8")
        env = _cocotb_env(str(job_file), str(workdir / "results.xml"))
    else:
        result_file = workdir / "summary.txt"
        cmd += ["+finish", f"+summary_file={result_file}"]
        env = dict(os.environ)
    log = workdir / "sim.log"
    start = time.perf_counter()
    with log.open("wb") as handle:
        try:
            proc = subprocess.run(
                cmd,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SimulationError(
                f"simulation of {model.top!r} exceeded timeout_seconds={timeout_seconds}; "
                f"log tail:\n{_tail(log)}"
            ) from None
    seconds = time.perf_counter() - start
    failure = model.images and loader_failure(log.read_text(errors="replace"), model.images)
    if failure:
        raise MemoryImageError(f"simulation of {model.top!r} could not load a {failure}")
    if not result_file.is_file():
        raise SimulationError(
            f"simulation of {model.top!r} ({model.kind}) exited with code {proc.returncode} "
            f"without a result; log tail:\n{_tail(log)}"
        )
    if model.kind == "cocotb":
        result: dict[str, object] = json.loads(result_file.read_text(encoding="utf-8"))
        if result.get("timed_out") or not result.get("done"):
            raise SimulationError(
                f"simulation of {model.top!r} hit the simulated-time safety timeout before the "
                f"testbench finished (a wrapper bug, not a DUT stall); log tail:\n{_tail(log)}"
            )
    else:
        result = _parse_summary(result_file.read_text(encoding="utf-8"), model.ports.n_counters)
    if proc.returncode != 0:
        raise SimulationError(
            f"simulation of {model.top!r} exited with code {proc.returncode}; "
            f"log tail:\n{_tail(log)}"
        )
    return result, seconds


def _safety_timeout_ns(n_in: int, params: dict[str, int]) -> int:
    """A simulated-time bound the watchdog can never legitimately exceed (x2 margin).

    ``n_in`` counts every event that resets the watchdog besides output beats (input beats
    and settle-counter increments)."""
    cycles = (n_in + params["n_out"] + 2) * (params["liveness"] + 1) + RESET_CYCLES + 16
    return min(2 * cycles * CLOCK_PERIOD_NS, 2**62 // 1000)


def _parse_summary(text: str, n_counters: int) -> dict[str, object]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.strip().partition(" ")
        if name:
            values[name] = value.strip()
    try:
        perf = int(values.pop("perf"), 16)
        result: dict[str, object] = {name: int(value) for name, value in values.items()}
    except (KeyError, ValueError) as exc:
        raise SimulationError(f"unreadable summary from the C++ harness: {text!r}") from exc
    result["counters"] = [(perf >> (32 * k)) & 0xFFFFFFFF for k in range(n_counters)]
    result["done"] = 1
    return result


def _read_outputs(workdir: Path, model: BuiltModel, count: int) -> list[int]:
    path = workdir / "out.bin"
    data = path.read_bytes() if path.is_file() else b""
    expected = out_beat_bytes(model.ports.out_width) * count
    if len(data) != expected:
        raise SimulationError(
            f"output file has {len(data)} bytes, expected {expected} for {count} beats"
        )
    return decode_outputs(data, model.ports.out_width, count)


def _cycle(value: object) -> int:
    number = int(value)  # type: ignore[call-overload]
    return -1 if number == _NONE else number


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


@functools.lru_cache(maxsize=1)
def _cocotb_paths() -> tuple[str, str, str]:
    """libpython, cocotb's GPI entry point and its library directory (looked up once)."""
    import cocotb_tools.config
    import find_libpython

    libpython = os.environ.get("LIBPYTHON_LOC") or find_libpython.find_libpython()
    if libpython is None:
        raise SimulationError(
            "cannot find libpython for cocotb's embedded interpreter; set LIBPYTHON_LOC to the "
            "path of libpython3.11.so"
        )
    return (
        str(libpython),
        str(cocotb_tools.config.pygpi_entry_point()),
        str(cocotb_tools.config.libs_dir),
    )


def _cocotb_env(job_file: str, results_xml: str) -> dict[str, str]:
    """What cocotb's runner would export for a Verilator test run, plus the job file."""
    libpython, entry_point, libs_dir = _cocotb_paths()
    env = ensure_verilator().env()
    env["PATH"] = env.get("PATH", "") + os.pathsep + libs_dir
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYGPI_PYTHON_BIN"] = sys.executable
    env.setdefault("GPI_USERS", f"{libpython};{entry_point}")
    env["COCOTB_TOPLEVEL"] = TB_NAME
    env["TOPLEVEL_LANG"] = "verilog"
    env["COCOTB_TEST_MODULES"] = "sim.cocotb_stream_test"
    env.setdefault("COCOTB_TRUST_INERTIAL_WRITES", "1")
    env.setdefault("COCOTB_ANSI_OUTPUT", "0")
    for key in ("COCOTB_TEST_FILTER", "COCOTB_TESTCASE", "PYTEST_CURRENT_TEST"):
        env.pop(key, None)
    env["CODESIGN_SIM_JOB"] = job_file
    env["COCOTB_RESULTS_FILE"] = results_xml
    return env
