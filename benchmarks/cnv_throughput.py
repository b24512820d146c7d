"""FINN's CNV-W1A1 at FINN's published folding, simulated in RTL: cycles per frame.

The topology (3x3 convs 64, 64, pool, 128, 128, pool, 256, 256; FC 256-512-512-10;
32x32x3 uint8 input, binary weights and activations) with deterministic random weights,
lowered, generated and simulated on Verilator; every output is checked against the integer
reference. FINN expects at most 32,768 cycles per frame (plus fill) at this folding.

    python benchmarks/cnv_throughput.py [--frames 10]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from codesign.flow import compile_model
from codesign.reference import execute
from codesign.simulate import simulate
from codesign.verify import compare

# FINN CNV-W1A1 (PE, SIMD) per layer; the last layer's PE 4 does not divide its 10 outputs,
# so it runs at PE 5 (FINN pads that layer to 12 rows instead).
FINN_CNV_FOLDING = {
    "conv0": (16, 3), "conv1": (32, 32), "conv2": (16, 32), "conv3": (16, 32),
    "conv4": (4, 32), "conv5": (1, 32), "fc6": (1, 4), "fc7": (1, 8), "fc8": (5, 1),
}
FINN_EXPECTED_CYCLES = 32768
CNV_FIFO_DEPTH = 256
"""Inter-stage FIFO depth: CNV's stages run at nearly equal rates (conv0 32400, fc6/fc7
32768 cycles/frame), so bursts must be absorbed for the chain to reach its bottleneck;
with the default 4-beat minimum it settles about 1 % slower."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    from quant_models.cnn import random_cnv_w1a1

    model = random_cnv_w1a1(args.seed)
    design = compile_model(model, name="cnv-w1a1", folding=FINN_CNV_FOLDING,
                           fifo_depth=CNV_FIFO_DEPTH)
    rng = np.random.default_rng(args.seed)
    x = rng.integers(0, 256, (args.frames, 32, 32, 3))
    start = time.perf_counter()
    result = simulate(design, x)
    check = compare(design, execute(design.graph, x), result.outputs)
    print(f"CNV-W1A1, FINN folding, {args.frames} frames, bit_exact={check.bit_exact} "
          f"({check.mismatches} mismatches); build {result.timing.build_seconds:.0f} s, "
          f"total {time.perf_counter() - start:.0f} s")
    print(f"{'stage':>8} {'kind':>7} {'PE,SIMD':>8} {'cycles/frame (formula)':>23} "
          f"{'measured/frame':>15}")
    for stage in design.stages:
        fold = f"{getattr(stage, 'pe', '-')},{stage.simd}"
        print(f"{stage.name:>8} {stage.kind:>7} {fold:>8} {stage.cycles_per_frame:>23} "
              f"{result.measured_cycles(stage.name) / args.frames:>15.1f}")
    bottleneck = design.cycles_per_frame
    # steady state: the extra cycles a second batch of frames costs (pipeline latency cancels)
    x2 = rng.integers(0, 256, (2 * args.frames, 32, 32, 3))
    longer = simulate(design, x2)
    if not compare(design, execute(design.graph, x2), longer.outputs).bit_exact:
        raise AssertionError("the longer run differs from the reference")
    steady = (longer.total_cycles - result.total_cycles) / args.frames
    latency = result.total_cycles - (args.frames - 1) * steady
    print(f"bottleneck {bottleneck} cycles/frame (FINN expects <= {FINN_EXPECTED_CYCLES} plus "
          f"fill); measured steady state {steady:.1f} cycles/frame "
          f"(({longer.total_cycles} - {result.total_cycles}) / {args.frames} frames), "
          f"first-frame latency {latency:.0f} cycles; {longer.frames} frames bit-exact")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"frames": args.frames, "bit_exact": check.bit_exact,
                       "total_cycles": result.total_cycles, "bottleneck": bottleneck,
                       "steady_cycles_per_frame": steady, "latency_cycles": latency,
                       "per_stage": {s.name: result.measured_cycles(s.name)
                                     for s in design.stages}}, handle, indent=1)


if __name__ == "__main__":
    main()
