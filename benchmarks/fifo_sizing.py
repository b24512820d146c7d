"""Automatic FIFO sizing on FINN's CNV-W1A1 at FINN's folding: sizing time, total FIFO bits
(automatic vs the uniform 256-beat setting vs the default 4-beat minimum) and the RTL cycles
per frame the automatically sized design reaches.

    python benchmarks/fifo_sizing.py [--frames 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

from codesign.arch import build_design
from codesign.arch.options import DEFAULT_FIFO_DEPTH, MappingOptions
from codesign.flow import compile_model
from codesign.reference import execute
from codesign.simulate import simulate
from codesign.verify import compare


def _cnv_setup():
    path = Path(__file__).parent / "cnv_throughput.py"
    spec = importlib.util.spec_from_file_location("cnv_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fifo_bits(design) -> int:
    return sum(f["bits"] for f in design.organisation.buffers(design))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from quant_models.cnn import random_cnv_w1a1

    bench = _cnv_setup()
    design = compile_model(random_cnv_w1a1(args.seed), name="cnv-w1a1",
                           folding=bench.FINN_CNV_FOLDING, fifo_depth="auto")
    start = time.perf_counter()
    plan = design.organisation.wiring(design)
    sizing = time.perf_counter() - start

    def variant(depth: int):
        options = MappingOptions.create(bench.FINN_CNV_FOLDING, fifo_depth=depth)
        return build_design(design.graph, options)

    bits = {"auto": fifo_bits(design), "uniform 256": fifo_bits(variant(256)),
            f"default {DEFAULT_FIFO_DEPTH}": fifo_bits(variant(DEFAULT_FIFO_DEPTH))}
    print(f"CNV-W1A1, FINN folding: automatic sizing of {len(plan.edges)} FIFOs took "
          f"{sizing:.2f} s")
    for buffer in design.organisation.buffers(design):
        print(f"  {buffer['producer']:>14} -> {buffer['consumer']:<14} depth {buffer['depth']:>5}"
              f" x {buffer['width']:>3} bits = {buffer['bits']:>6}")
    for name, total in bits.items():
        print(f"total FIFO bits, {name:>12}: {total:>7}")
    rng = np.random.default_rng(args.seed)
    totals = {}
    for frames in (args.frames, 2 * args.frames):
        x = rng.integers(0, 256, (frames, 32, 32, 3))
        result = simulate(design, x)
        if not compare(design, execute(design.graph, x), result.outputs).bit_exact:
            raise AssertionError(f"the {frames}-frame run differs from the reference")
        totals[frames] = result.total_cycles
    steady = (totals[2 * args.frames] - totals[args.frames]) / args.frames
    print(f"RTL (bit-exact): {steady:.1f} cycles per frame in steady state "
          f"(({totals[2 * args.frames]} - {totals[args.frames]}) / {args.frames} frames); "
          f"bottleneck {design.cycles_per_frame}, FINN expects {bench.FINN_EXPECTED_CYCLES}")


if __name__ == "__main__":
    main()
