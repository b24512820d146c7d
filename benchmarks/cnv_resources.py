"""FINN's CNV-W1A1 at FINN's folding: what Yosys says it costs, and its Fmax on ECP5.

The network of ``benchmarks/cnv_throughput.py`` (deterministic random weights, FINN's
published folding, 256-beat FIFOs) generated without counters and synthesised with Yosys
``synth_xilinx`` (flattened, out of context): total LUT / FF / BRAM / DSP beside FINN's
published post-synthesis figures for the same network without the shell (Vivado: 21,135
LUT, 31,517 FF, 98 RAMB36 + 9 RAMB18, 0 DSP), each stage alone, and the resource model's
estimate. Then ``synth_ecp5`` and nextpnr-ecp5 (median of the seeds) on the smallest ECP5
part the design fits.

    python benchmarks/cnv_resources.py [--seeds 3] [--router router2] [--no-fmax] [--json FILE]

nextpnr's default router does not converge on the whole network within an hour on a 2-core
machine; ``--router router2`` routes it in minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from codesign.flow import compile_model
from codesign.synth import ROUTERS, synthesize_design

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cnv_throughput import CNV_FIFO_DEPTH, FINN_CNV_FOLDING  # noqa: E402

FINN = {"lut": 21135, "ff": 31517, "bram36": 98, "bram18": 9, "dsp": 0}
"""FINN cnv-w1a1, post-synthesis without the shell (Vivado)."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--router", default=None, choices=ROUTERS)
    parser.add_argument("--no-fmax", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from quant_models.cnn import random_cnv_w1a1

    design = compile_model(random_cnv_w1a1(args.seed), name="cnv-w1a1",
                           folding=FINN_CNV_FOLDING, fifo_depth=CNV_FIFO_DEPTH)
    start = time.perf_counter()
    result = synthesize_design(design, "xc7", fmax=not args.no_fmax, part="auto",
                               seeds=tuple(range(1, args.seeds + 1)), say=say,
                               router=args.router)
    total = result.total.resources
    model = design.estimate_resources("xc7")
    print(f"CNV-W1A1 at FINN's folding, xc7 (Yosys synth_xilinx), "
          f"{time.perf_counter() - start:.0f} s")
    print(f"{'':14} {'LUT':>7} {'FF':>7} {'RAMB36':>7} {'RAMB18':>7} {'DSP':>5}")
    for label, r in (("Yosys", total.as_dict()), ("model", model.as_dict()), ("FINN", FINN)):
        print(f"{label:14} {r['lut']:7} {r['ff']:7} {r['bram36']:7} {r['bram18']:7} "
              f"{r['dsp']:5}")
    print(f"LUT vs FINN: {total.lut / FINN['lut']:.2f}x; FF vs FINN: "
          f"{total.ff / FINN['ff']:.2f}x")
    print(f"\n{'stage':8} {'LUT':>7} {'FF':>7} {'RAMB36':>7} {'RAMB18':>7} {'DSP':>4} "
          f"{'model LUT':>9} {'model B36/B18':>13}")
    for stage in design.stages:
        r = result.stages[stage.name].resources
        m = stage.estimate_resources("xc7")
        print(f"{stage.name:8} {r.lut:7} {r.ff:7} {r.bram36:7} {r.bram18:7} {r.dsp:4} "
              f"{m.lut:9} {m.bram36:6}/{m.bram18:<6}")
    chain = result.chain
    print(f"{'FIFOs...':8} {chain.lut:7} {chain.ff:7} {chain.bram36:7} {chain.bram18:7} "
          f"{chain.dsp:4}")
    if result.timing is not None:
        t = result.timing
        print(f"\nECP5 Fmax: {t.fmax_mhz:.1f} MHz on {t.part} (nextpnr-ecp5, median of seeds "
              + ", ".join(f"{s}: {f:.1f}" for s, f in t.seeds.items()) + f"); at "
              f"{design.cycles_per_frame} cycles/frame: "
              f"{t.fmax_mhz * 1e6 / design.cycles_per_frame:,.0f} frames/s")
    if args.json:
        Path(args.json).write_text(json.dumps({**result.record(), "model": model.as_dict(),
                                               "finn": FINN}, indent=1))


if __name__ == "__main__":
    main()
