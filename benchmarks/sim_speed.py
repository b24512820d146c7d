"""Simulation speed: cocotb + Verilator streaming testbench against a plain Verilator C++ main.

Both run the same wrapper, the same DUT Verilog and the same input file, so their ratio is the
price of having Python (cocotb) in the simulator. Usage::

    python benchmarks/sim_speed.py                          # the built-in binarized MLP
    python benchmarks/sim_speed.py --design popcount        # a small XNOR-popcount unit
    python benchmarks/sim_speed.py --cycles 3e6 --repeat 3
    python benchmarks/sim_speed.py --design mypkg.bench:network_design
    python benchmarks/sim_speed.py --build-timing           # cold/warm builds, with/without sccache

``--design MODULE:FUNCTION`` names a zero-argument function returning a :class:`BenchDesign`,
so any stream design (e.g. the full network) can be measured the same way; from Python, call
:func:`benchmark` with a ``BenchDesign``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sim.build import build_model
from sim.cpp_harness import SpeedComparison, compare_backends
from sim.toolchain import OBJCACHE_ENV, ensure_verilator


@dataclass(frozen=True)
class BenchDesign:
    """A stream design plus how to feed it.

    ``make_inputs(n, rng)`` returns ``n`` input beats, ``n_out_for(n)`` how many output beats
    they produce, and ``cycles_per_in_beat`` roughly how many cycles one input beat occupies at
    full rate (used to size the job to the requested cycle count).
    """

    name: str
    verilog: str
    top: str
    in_width: int
    out_width: int
    n_counters: int
    make_inputs: Callable[[int, random.Random], list[int]]
    n_out_for: Callable[[int], int]
    cycles_per_in_beat: float = 1.0
    reference: Callable[[list[int]], list[int]] | None = None


def popcount_design(weight_seed: int = 2024) -> BenchDesign:
    """16 neurons x 64-lane XNOR-popcount with a pipeline register, 4 beats per output."""
    from sim.examples import XnorPopcountAccumulator, to_verilog

    unit = XnorPopcountAccumulator(lanes=64, neurons=16, group=4, weight_seed=weight_seed)
    verilog, top = to_verilog(unit, "xnor_popcount_acc")
    return BenchDesign(
        name="xnor-popcount 16x64 (group 4)",
        verilog=verilog,
        top=top,
        in_width=unit.lanes,
        out_width=unit.out_width,
        n_counters=unit.N_COUNTERS,
        make_inputs=lambda n, rng: [rng.getrandbits(unit.lanes) for _ in range(n)],
        n_out_for=lambda n: n // unit.group,
        reference=unit.reference,
    )


def network_design() -> BenchDesign:
    """The built-in binarized MLP as `codesign run` generates it, fed digits test frames."""
    import numpy as np

    from codesign.flow import compile_model
    from codesign.generate import generate_verilog
    from codesign.reference import execute
    from codesign.streams import pack_beats, unpack_beats
    from quant_models.catalog import SPLIT_PARAMS
    from quant_models.data import load_digits_split
    from quant_models.zoo import builtin_binarized_mlp

    model, _ = builtin_binarized_mlp()
    design = compile_model(model, name="binarized-mlp", target_cycles=128)
    artefact = generate_verilog(design)
    first, last = design.stages[0], design.stages[-1]
    x_test = load_digits_split(**SPLIT_PARAMS).x_test
    beats_per_frame = first.in_beats_per_frame

    def frames_for(n_beats: int) -> np.ndarray:
        count = max(1, n_beats // beats_per_frame)
        return np.resize(x_test, (count, x_test.shape[1]))

    def reference(beats: list[int]) -> list[int]:
        frames = unpack_beats(beats, first.input_type, first.simd, first.mw)
        return pack_beats(execute(design.graph, frames), last.output_type, last.pe)

    return BenchDesign(
        name=f"built-in binarized MLP ({design.cycles_per_frame} cycles/frame)",
        verilog=artefact.text, top=artefact.top, in_width=artefact.in_width,
        out_width=artefact.out_width, n_counters=len(artefact.counters),
        make_inputs=lambda n, rng: pack_beats(frames_for(n), first.input_type, first.simd),
        n_out_for=lambda n: max(1, n // beats_per_frame) * last.nf,
        cycles_per_in_beat=design.cycles_per_frame / beats_per_frame,
        reference=reference)


def load_design(spec: str) -> BenchDesign:
    """Import ``MODULE:FUNCTION`` and call it."""
    module_name, _, function = spec.partition(":")
    if not function:
        raise SystemExit(f"--design must look like MODULE:FUNCTION, got {spec!r}")
    design = getattr(importlib.import_module(module_name), function)()
    if not isinstance(design, BenchDesign):
        raise SystemExit(f"{spec} returned {type(design).__name__}, not BenchDesign")
    return design


def benchmark(
    design: BenchDesign,
    *,
    cycles: int = 1_000_000,
    repeat: int = 3,
    in_valid_prob: int = 256,
    out_ready_prob: int = 256,
    seed: int = 1,
    check: bool = True,
) -> tuple[SpeedComparison, dict[str, float]]:
    """Run ``design`` for about ``cycles`` cycles on both backends; return timings."""
    n_in = max(1, int(cycles / design.cycles_per_in_beat))
    beats = design.make_inputs(n_in, random.Random(seed))
    n_out = design.n_out_for(n_in)
    comparison = compare_backends(
        design.verilog,
        design.top,
        in_width=design.in_width,
        out_width=design.out_width,
        n_counters=design.n_counters,
        in_beats=beats,
        n_out_beats=n_out,
        repeat=repeat,
        in_valid_prob=in_valid_prob,
        out_ready_prob=out_ready_prob,
        seed=seed,
    )
    if check and design.reference is not None:
        if comparison.cocotb.out_beats != design.reference(beats):
            raise AssertionError("simulated outputs differ from the design's reference model")
    c, p = comparison.cocotb, comparison.cpp
    figures = {
        "cycles": float(c.total_cycles),
        "in_beats": float(n_in),
        "out_beats": float(n_out),
        "cocotb_cycles_per_s": c.sim_cycles_per_second,
        "cpp_cycles_per_s": p.sim_cycles_per_second,
        "ratio": comparison.ratio,
        "cocotb_steady_cycles_per_s": comparison.steady_rate(c, comparison.cocotb_startup_seconds),
        "cpp_steady_cycles_per_s": comparison.steady_rate(p, comparison.cpp_startup_seconds),
        "steady_ratio": comparison.steady_ratio,
        "cocotb_process_s": c.process_seconds,
        "cpp_process_s": p.process_seconds,
        "cocotb_startup_s": comparison.cocotb_startup_seconds,
        "cpp_startup_s": comparison.cpp_startup_seconds,
        "cocotb_wall_s": c.wall_seconds,
        "cpp_wall_s": p.wall_seconds,
    }
    return comparison, figures


def build_timing(design: BenchDesign, other: BenchDesign) -> dict[str, float]:
    """Build times in throw-away cache roots: cold/warm, with and without sccache.

    ``other`` is a different design with the same ports: building it after ``design`` shows what
    sccache saves for a new design (Verilator runtime objects hit, design objects miss).
    """
    results: dict[str, float] = {}
    saved = {key: os.environ.get(key) for key in ("CODESIGN_CACHE", OBJCACHE_ENV)}

    def build(d: BenchDesign, kind: str) -> float:
        model = build_model(
            d.verilog,
            d.top,
            in_width=d.in_width,
            out_width=d.out_width,
            n_counters=d.n_counters,
            kind=kind,  # type: ignore[arg-type]
        )
        return model.seconds

    try:
        for kind in ("cocotb", "cpp"):
            with tempfile.TemporaryDirectory(prefix="codesign-bt-") as tmp:
                os.environ["CODESIGN_CACHE"] = str(Path(tmp) / "nocache")
                os.environ[OBJCACHE_ENV] = ""
                ensure_verilator(refresh=True)
                results[f"{kind}_cold_no_sccache_s"] = build(design, kind)
                results[f"{kind}_warm_hit_s"] = build(design, kind)
                results[f"{kind}_other_design_no_sccache_s"] = build(other, kind)

                os.environ["CODESIGN_CACHE"] = str(Path(tmp) / "sccache")
                os.environ.pop(OBJCACHE_ENV)
                info = ensure_verilator(refresh=True)
                if info.objcache is None:
                    print("sccache not found: skipping the sccache measurements")
                    continue
                results[f"{kind}_cold_empty_sccache_s"] = build(design, kind)
                shutil.rmtree(Path(tmp) / "sccache" / "verilator")
                results[f"{kind}_rebuild_warm_sccache_s"] = build(design, kind)
                results[f"{kind}_other_design_warm_sccache_s"] = build(other, kind)
                info.stop_objcache()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        ensure_verilator(refresh=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--design", help="MODULE:FUNCTION returning a BenchDesign, or "
                        "'popcount' for the small popcount unit (default: the built-in network)")
    parser.add_argument("--cycles", type=float, default=1e6, help="cycles per run (default 1e6)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per backend; best counts")
    parser.add_argument("--in-prob", type=int, default=256, help="input valid prob (1/256)")
    parser.add_argument("--out-prob", type=int, default=256, help="output ready prob (1/256)")
    parser.add_argument("--build-timing", action="store_true", help="measure build times")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    if args.design == "popcount":
        design = popcount_design()
    elif args.design:
        design = load_design(args.design)
    else:
        design = network_design()
    print(f"design: {design.name} ({design.top}, {len(design.verilog) / 1e3:.0f} kB Verilog)")
    figures: dict[str, float] = {}
    if args.build_timing:
        other = popcount_design(weight_seed=7) if args.design == "popcount" else design
        start = time.perf_counter()
        figures.update(build_timing(design, other))
        for key, value in figures.items():
            print(f"  {key:38s} {value:8.2f} s")
        print(f"  (build timing took {time.perf_counter() - start:.0f} s)")

    _, speed = benchmark(
        design,
        cycles=int(args.cycles),
        repeat=args.repeat,
        in_valid_prob=args.in_prob,
        out_ready_prob=args.out_prob,
    )
    figures.update(speed)
    print(
        f"cycles per run: {speed['cycles']:.0f} ({speed['in_beats']:.0f} input beats, "
        f"{speed['out_beats']:.0f} output beats)"
    )
    print(
        f"cocotb path : {speed['cocotb_cycles_per_s'] / 1e6:7.3f} M cycles/s "
        f"(process {speed['cocotb_process_s']:.3f} s, start-up {speed['cocotb_startup_s']:.3f} s)"
    )
    print(
        f"plain C++   : {speed['cpp_cycles_per_s'] / 1e6:7.3f} M cycles/s "
        f"(process {speed['cpp_process_s']:.3f} s, start-up {speed['cpp_startup_s']:.3f} s)"
    )
    print(f"ratio cocotb/C++            : {speed['ratio']:.2f} (goal >= 0.5)")
    print(
        f"ratio without start-up      : {speed['steady_ratio']:.2f} "
        f"({speed['cocotb_steady_cycles_per_s'] / 1e6:.3f} vs "
        f"{speed['cpp_steady_cycles_per_s'] / 1e6:.3f} M cycles/s)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
