"""The ``codesign`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from codesign.arch.options import FOLDING_OBJECTIVES
from codesign.errors import CodesignError
from codesign.examples import DEFAULT_EXAMPLE, EXAMPLES, IMPORTED_EXAMPLES, RUNNABLE
from codesign.frontends.torch import WEIGHT_TYPES

STUDY_DIR = "deep-compression"
"""Where ``codesign study`` writes the Deep Compression study, under its --out."""


def _folding(text: str) -> tuple[str, tuple[int, int]]:
    try:
        layer, values = text.split("=", 1)
        pe, simd = (int(v) for v in values.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--fold {text!r}: expected LAYER=PE,SIMD, e.g. fc0=16,4") from None
    return layer, (pe, simd)


def _family(text: str) -> tuple[str, str]:
    layer, sep, family = text.partition("=")
    if not sep or not layer or not family:
        raise argparse.ArgumentTypeError(
            f"--family {text!r}: expected LAYER=FAMILY, e.g. fc0=mac")
    return layer, family


def _memory_style(text: str) -> tuple[str, str]:
    layer, sep, style = text.partition("=")
    if not sep or not layer or not style:
        raise argparse.ArgumentTypeError(
            f"--memory-style {text!r}: expected LAYER=STYLE, e.g. fc0=block "
            "(auto, block, distributed, registers)")
    return layer, style


def _sparse(text: str) -> list[str] | float:
    if text == "none":
        return []
    try:
        value = float(text)
    except ValueError:
        return [name for name in text.split(",") if name]
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--sparse {text}: a sparsity must be in 0..1")
    return value


def _fifo_depth(text: str) -> int | str:
    """``auto`` or a whole number; anything else goes on to the option's own check."""
    try:
        return int(text)
    except ValueError:
        return text


def _hardware_options(command: argparse.ArgumentParser) -> None:
    """The options every command that builds and runs hardware takes."""
    command.add_argument("--out", type=Path, default=None,
                         help="run directory (default runs/<name>-<timestamp>)")
    command.add_argument("--frames", type=int, default=None,
                         help="simulate only the first N test frames, N >= 1 (default: all)")
    command.add_argument("--data", type=Path, default=None, metavar="DIR",
                         help="test on the data set in DIR instead of digits: MNIST (its IDX "
                              "files) or CIFAR-10 (its python batches); frames are raw pixels "
                              "0..255 and must fit the model's input")
    command.add_argument("--energy-table", type=Path, default=None,
                         help="YAML energy table (default: 45 nm, Horowitz ISSCC 2014)")
    command.add_argument("--no-baseline", dest="baseline", action="store_false",
                         help="do not measure the speedup delta against the float baseline's "
                              "dense 8-bit design (saves building and simulating it)")
    command.add_argument("--fold", type=_folding, action="append", default=[],
                         metavar="LAYER=PE,SIMD",
                         help="override one layer's folding (repeatable)")
    command.add_argument("--target-cycles", type=int, default=None,
                         help="cycles per frame the automatic folding aims for, N >= 1 "
                              "(default: the example's)")
    command.add_argument("--folding-objective", choices=FOLDING_OBJECTIVES, default=None,
                         help="what each automatically folded engine minimises among the "
                              "foldings meeting its cycles: lanes (then PE and SIMD balanced) "
                              "or LUTs by the resource model (default: lanes for a cycle "
                              "target, luts with a budget or --target-fps)")
    command.add_argument("--fifo-depth", type=_fifo_depth, default=None, metavar="N|auto",
                         help="smallest FIFO between stages in beats, N >= 2 (default 4; "
                              "deeper FIFOs let nearly balanced stages reach the slowest one's "
                              "throughput), or auto: every FIFO sized from the stages' "
                              "schedules to reach the slowest stage's throughput")
    command.add_argument("--family", type=_family, action="append", default=[],
                         metavar="LAYER=FAMILY",
                         help="run a layer on another PE family that computes it exactly "
                              "(xnor_popcount, binary_weight, ternary, codebook, mac; "
                              "repeatable)")
    command.add_argument("--sparse", type=_sparse, default=None,
                         metavar="LAYERS|SPARSITY|none",
                         help="zero-skipping engines: comma-separated layer names, or every "
                              "ternary/fixed-point layer with at least this weight sparsity, "
                              "or none (default: the example's choice)")
    command.add_argument("--memory-style", type=_memory_style, action="append", default=[],
                         metavar="LAYER=STYLE",
                         help="where a stage's memories go: auto (by size), block, "
                              "distributed or registers (repeatable; default auto)")
    budget = command.add_argument_group(
        "resource-aware folding (counted by the resource model, calibrated on xc7)")
    budget.add_argument("--lut-budget", type=int, default=None, metavar="N",
                        help="fastest automatic folding within N LUTs")
    budget.add_argument("--dsp-budget", type=int, default=None, metavar="N",
                        help="... within N DSPs")
    budget.add_argument("--bram-budget", type=int, default=None, metavar="N",
                        help="... within N 18-Kbit block RAMs (a RAMB36 counts 2)")
    budget.add_argument("--target-fps", type=float, default=None, metavar="F",
                        help="cheapest automatic folding reaching F frames/s at --fmax-mhz")
    budget.add_argument("--fmax-mhz", type=float, default=None, metavar="M",
                        help="clock frequency --target-fps is met at")
    synth = command.add_argument_group("synthesis")
    synth.add_argument("--synth", action="store_true",
                       help="synthesise the design (Yosys, whole and per stage) and place and "
                            "route it for Fmax (nextpnr); adds resources, fmax_mhz, "
                            "frames_per_second and frames_per_joule to summary.json")
    _synth_target_args(synth)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codesign",
        description="Hardware-software codesign of compressed neural networks: train or load, "
                    "lower to integer IR, generate Verilog, simulate bit-exactly, report.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an example end to end (default: the built-in MLP)")
    run.add_argument("example", nargs="?", default=DEFAULT_EXAMPLE,
                     help=f"example name ({', '.join(RUNNABLE)}); default {DEFAULT_EXAMPLE}")
    run.add_argument("--retrain", action="store_true",
                     help="train the example again (ignoring the shipped and cached weights)")
    _hardware_options(run)
    run.add_argument("--weight-types", choices=WEIGHT_TYPES, default="declared",
                     help="type the network's weights by the range each layer's quantizer "
                          "declares (default: re-trained weights keep the hardware and its "
                          "simulation build) or by the trained values (the narrowest "
                          "multipliers and accumulators for these weights)")
    imp = sub.add_parser(
        "import", help="import a QONNX model (e.g. Brevitas's export) and run it end to end",
        description="Import MODEL.onnx through the QONNX frontend (Quant, BipolarQuant, Trunc, "
                    "MultiThreshold, Conv, Gemm/MatMul, BatchNormalization, Relu, MaxPool, "
                    "Reshape/Flatten, Mul/Add by constants), streamline it into an integer "
                    "graph, map it onto hardware, simulate the test split in RTL, check every "
                    "output against the integer reference and the reference against the "
                    "model's own outputs (QONNX's execute_onnx), and write a run directory. "
                    "The model takes raw pixels: 8x8 digits (0..16) by default, or the frames "
                    "of --data DIR. Needs the onnx extra: pip install 'codesign[onnx]'.")
    imp.add_argument("model", type=Path, help="the QONNX model file (.onnx)")
    _hardware_options(imp)
    sub.add_parser("examples", help="list the built-in examples")
    synth_cmd = sub.add_parser("synth", help="synthesise a Verilog file or a run directory "
                                             "(its verilog/codesign_top_synth.v)")
    synth_cmd.add_argument("source", type=Path, help="FILE.v or a run directory")
    synth_cmd.add_argument("--top", default=None,
                           help="top module (default: codesign_top, or the file's only module)")
    synth_cmd.add_argument("--fmax", action="store_true",
                           help="also place and route for Fmax (ECP5 for xc7)")
    _synth_target_args(synth_cmd)
    compress = sub.add_parser(
        "compress", help="run a compression recipe (YAML), then its network end to end")
    compress.add_argument("recipe", type=Path, help="recipe file (see quant_models/recipes/)")
    compress.add_argument("--out", type=Path, default=None,
                          help="run directory (default runs/<recipe name>-<timestamp>)")
    compress.add_argument("--frames", type=int, default=None,
                          help="simulate only the first N test frames, N >= 1 (default: all)")
    compress.add_argument("--retrain", action="store_true",
                          help="run the recipe again (ignoring the cached result)")
    compress.add_argument("--energy-table", type=Path, default=None,
                          help="YAML energy table (default: 45 nm, Horowitz ISSCC 2014)")
    study = sub.add_parser("study", help="run every built-in example and write an index and "
                                         "the compression study (regenerates reports/)")
    study.add_argument("part", nargs="?", choices=("all", "compression"), default="all",
                       help="all (default): every example, the index and the compression "
                            "study in OUT/compression; compression: the study alone in OUT")
    study.add_argument("--out", type=Path, default=None,
                       help="output directory (default reports, or reports/compression)")
    study.add_argument("--frames", type=int, default=None,
                       help="simulate only the first N test frames of each example, N >= 1")
    study.add_argument("--examples", type=_names, default=None, metavar="NAMES",
                       help="run only these examples (comma-separated); the index lists every "
                            "run directory under --out, the Deep Compression study "
                            f"({STUDY_DIR}/) is written when its examples run and the "
                            "compression study when every example runs")
    study.add_argument("--runs", type=Path, default=None, metavar="DIR",
                       help="compression: take each example's run from DIR/<example>/ where "
                            "its summary.json exists (a study regenerated after a model change "
                            "that leaves the runs as they are), run the others")
    sweep = sub.add_parser(
        "sweep", help="evaluate a design-space sweep (YAML) on Dask, find its Pareto front, "
                      "verify the front in RTL and write a report",
        description="Evaluate every point of the sweep file's axes (examples, target_cycles "
                    "or foldings, families, sparse, fifo_depth, memory_styles, "
                    "folding_objective) with the "
                    "analytical model, the integer reference and the resource model; find the "
                    "Pareto front over accuracy, cycles, energy and LUTs; simulate the front "
                    "in RTL. Results are appended to DIR/points.csv as points finish, so a "
                    "rerun resumes.")
    sweep.add_argument("sweep_file", type=Path, help="the sweep file (YAML)")
    sweep.add_argument("--out", type=Path, default=None,
                       help="output directory (default runs/sweep-<file name>)")
    sweep.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="a running Dask scheduler (e.g. tcp://host:8786; default: a local "
                            "cluster of --workers processes)")
    sweep.add_argument("--workers", type=int, default=2,
                       help="worker processes of the local cluster (default 2)")
    sweep.add_argument("--rtl-front", action=argparse.BooleanOptionalAction, default=None,
                       help="verify the Pareto front in RTL (default: the sweep file's "
                            "rtl_front, true unless it says otherwise)")
    return parser


def _sweep(args: argparse.Namespace) -> int:
    from codesign.dse import run_sweep

    out = args.out or Path("runs") / f"sweep-{args.sweep_file.stem}"
    start = time.perf_counter()
    try:
        result = run_sweep(args.sweep_file, out, scheduler=args.scheduler, workers=args.workers,
                           rtl_front=args.rtl_front, say=_stderr_line)
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed = sum(r["status"] == "failed" for r in result.rows)
    designs = {r["design"] for r in result.front}
    exact = {r["design"] for r in result.front if r.get("rtl_status") == "bit-exact"}
    print(f"{len(result.rows)} points ({failed} failed), front of {len(result.front)} points "
          f"({len(designs)} designs), {len(exact)} designs verified bit-exact in RTL "
          f"({time.perf_counter() - start:.1f} s) -> {out / 'README.md'}")
    return 0


def synth_source(source: Path, *, target: str = "xc7", top: str | None = None,
                 fmax: bool = False, part: str | None = None, seeds: int = 3) -> str:
    """``codesign synth``: synthesise a Verilog file, or a run directory's synthesised
    Verilog (``verilog/codesign_top_synth.v``; a run made without --synth has only the
    simulated Verilog, performance counters included, which is used and said so)."""
    import re

    from codesign.errors import OptionError
    from codesign.report import SYNTH_VERILOG
    from codesign.synth import design_fmax, get_target, synthesize

    spec = get_target(target)
    note = ""
    path = source
    if source.is_dir():
        path = source / "verilog" / SYNTH_VERILOG
        if not path.is_file():
            path = source / "verilog" / "codesign_top.v"
            note = " (the run's simulated Verilog: performance counters included)"
        if not path.is_file():
            raise OptionError(f"{str(source)!r} is not a run directory: it has no "
                              f"verilog/{SYNTH_VERILOG} or verilog/codesign_top.v")
    elif not path.is_file():
        raise OptionError(f"{str(source)!r}: no such Verilog file or run directory")
    text = path.read_text(errors="replace")
    modules = re.findall(r"^\s*module\s+\\?([A-Za-z_][\w$.]*)", text, flags=re.MULTILINE)
    if top is None:
        top = "codesign_top" if "codesign_top" in modules else (
            modules[0] if len(modules) == 1 else None)
        if top is None:
            raise OptionError(f"{str(path)!r} has modules {', '.join(modules) or 'none'}; "
                              "name the top one with --top")
    elif top not in modules:
        raise OptionError(f"--top {top!r} is not a module of {str(path)!r}; modules: "
                          + ", ".join(modules))
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise OptionError(f"--seeds {seeds!r}: place and route needs at least 1 seed")
    say = _stderr_line
    result = synthesize(text, top, spec.name, say=say)
    lines = [f"{path}{note}: {top} on {spec.name}: {result.resources.describe()}, "
             f"{result.resources.carry} carry cells"
             + (" (cached)" if result.cached else f" ({result.seconds:.0f} s)")]
    if fmax:
        placed = result if spec.pnr is not None else synthesize(text, top, "ecp5", say=say)
        payload_bits = _port_bits(text, top) - 4    # less valid/ready of both streams
        timing = design_fmax(placed, payload_bits, part=part, seeds=tuple(range(1, seeds + 1)),
                             say=say)
        lines.append(f"Fmax {timing.fmax_mhz:.1f} MHz on {timing.part} (median of seeds "
                     + ", ".join(f"{s}: {f:.1f}" for s, f in timing.seeds.items()) + ")")
    return "\n".join(lines)


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _port_bits(text: str, top: str) -> int:
    """Bits of the top module's input and output ports except clock and reset."""
    import re

    body = text.split(f"module {top}", 1)[-1].split("endmodule", 1)[0]
    bits = 0
    for match in re.finditer(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?"
                             r"(?:\[(\d+):(\d+)\]\s*)?(\\?[\w$.]+)", body, flags=re.MULTILINE):
        if match.group(4) in ("clk", "rst"):
            continue
        hi, lo = match.group(2), match.group(3)
        bits += abs(int(hi) - int(lo)) + 1 if hi is not None else 1
    return bits


def _synth_target_args(parser) -> None:
    parser.add_argument("--target", default="xc7",
                        help="FPGA family: xc7 (Xilinx 7-series, default), ecp5, ice40")
    parser.add_argument("--part", default=None,
                        help="part to place on (ecp5: 12k, 25k, 45k, 85k; ice40: hx8k, up5k; "
                             "auto: the smallest that fits; default: 25k / hx8k, or the "
                             "smallest that fits)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="place-and-route seeds; Fmax is their median (default 3)")


def _names(text: str) -> list[str]:
    names = [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in EXAMPLES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"--examples {text!r}: unknown example(s) {unknown}; examples: "
            + ", ".join(EXAMPLES))
    return names


def _study(part: str, out: Path | None, frames: int | None, names: list[str] | None,
           runs_dir: Path | None = None) -> int:
    """Run the examples, the Deep Compression study, the compression study, then the index
    of every run under ``out`` (or, for ``part`` compression, the compression study alone,
    with the runs found in ``runs_dir`` reused)."""
    import json

    from codesign.compression_study import run_compression_study
    from codesign.deep_compression_study import compression_examples, write_study
    from codesign.errors import OptionError
    from codesign.flow import check_frames, run_example
    from codesign.paths import atomic_write_text
    from codesign.report import render_index

    def run(name: str, directory: Path) -> dict:
        return run_example(name, out_dir=directory, frames=frames)

    summaries: dict[str, dict] = {}
    try:
        check_frames(frames)
        if runs_dir is not None and part != "compression":
            raise OptionError("--runs: only for codesign study compression (codesign study all "
                              "runs every example)")
        if part == "compression":
            out = out or Path("reports") / "compression"
            reused = {}
            if runs_dir is not None:
                if not runs_dir.is_dir():
                    raise OptionError(f"--runs {runs_dir}: not a directory (the parent of "
                                      "the examples' run directories, e.g. reports)")
                reused = {name: (runs_dir / name,
                                 json.loads((runs_dir / name / "summary.json").read_text()))
                          for name in EXAMPLES if (runs_dir / name / "summary.json").is_file()}
            run_compression_study(out, run, frames=frames, runs=reused, say=_stderr_line)
            print(f"compression study -> {out / 'README.md'}")
            return 0
        out = out or Path("reports")
        for name in names or EXAMPLES:
            summaries[name] = run(name, out / name)
        if any(name in summaries for name in compression_examples()):
            command = f"codesign study --out {out}" + ("" if names is None else
                                                        " --examples " + ",".join(names))
            write_study(out / STUDY_DIR, summaries, frames=frames, command=command)
        if names is None:
            runs = {name: (out / name, summary) for name, summary in summaries.items()}
            run_compression_study(out / "compression", run, frames=frames, runs=runs,
                                  say=_stderr_line)
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name in EXAMPLES:
        path = out / name / "summary.json"
        if name not in summaries and path.is_file():
            summaries[name] = json.loads(path.read_text())
    ordered = [summaries[name] for name in EXAMPLES if name in summaries]
    atomic_write_text(out / "README.md", render_index(ordered))
    print(f"{len(ordered)} examples -> {out / 'README.md'}")
    return 0


def _compress(args: argparse.Namespace) -> int:
    from codesign.examples import load_recipe_example
    from codesign.flow import check_run_options, run_example

    start = time.perf_counter()
    out = args.out or Path("runs") / f"{args.recipe.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        check_run_options(out, args.frames, args.energy_table, None, None, None, None, None)
        example = load_recipe_example(
            args.recipe, retrain=args.retrain,
            say=lambda message: print(message, file=sys.stderr, flush=True))
        summary = run_example(example.name, out_dir=out, frames=args.frames,
                              energy_table=args.energy_table, example=example)
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_summary(summary, out, time.perf_counter() - start)
    return 0


def _print_summary(summary: dict, out: Path, seconds: float) -> None:
    """One line: the run's results (and its compression and synthesis figures, if any)."""
    source = {"qonnx": "onnx", "torch_ao": "torch"}.get(summary.get("source", ""), "torch")
    compression = summary.get("compression")
    parts = [f"{summary['example']}: {summary['frames']} frames, "
             f"{'bit-exact' if summary['bit_exact'] else 'MISMATCH'}"
             + ("" if summary.get("source_bit_exact") is None else
                f" (reference {'=' if summary['source_bit_exact'] else '!='} {source} on every "
                "element)"),
             f"accuracy {source} {summary['accuracy_torch']:.4f} / hw "
             f"{summary['accuracy_hw']:.4f}",
             f"{summary['cycles_per_frame']:.1f} cycles/frame",
             f"{summary['energy_pj_per_frame']:.1f} pJ/frame"]
    if compression is not None:
        delta = compression["delta"]
        parts += [f"alpha {compression['alpha']:.2f}",
                  f"delta {'-' if delta is None else f'{delta:.2f}'}"]
    if "resources" in summary:
        parts += [f"{summary['resources']['total']['lut']} LUT",
                  f"Fmax {summary['fmax_mhz']:.1f} MHz",
                  f"{summary['frames_per_second']:,.0f} frames/s"]
    print(", ".join(parts) + f" ({seconds:.1f} s) -> {out}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "examples":
        for name, description in EXAMPLES.items():
            print(f"{name}: {description}")
        for name, description in IMPORTED_EXAMPLES.items():
            print(f"{name}: {description} (needs the onnx extra)")
        return 0
    if args.command == "synth":
        try:
            print(synth_source(args.source, target=args.target, top=args.top,
                               fmax=args.fmax, part=args.part, seeds=args.seeds))
        except CodesignError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "study":
        return _study(args.part, args.out, args.frames, args.examples, args.runs)
    if args.command == "compress":
        return _compress(args)
    if args.command == "sweep":
        return _sweep(args)
    from codesign.flow import run_example

    importing = args.command == "import"
    label = args.model.stem if importing else args.example
    out = args.out or Path("runs") / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    start = time.perf_counter()
    try:
        summary = run_example(args.example if not importing else DEFAULT_EXAMPLE, out_dir=out,
                              frames=args.frames, retrain=getattr(args, "retrain", False),
                              energy_table=args.energy_table,
                              folding=dict(args.fold), target_cycles=args.target_cycles,
                              sparse=args.sparse, fifo_depth=args.fifo_depth,
                              families=dict(args.family) or None,
                              memory_styles=dict(args.memory_style) or None,
                              lut_budget=args.lut_budget, dsp_budget=args.dsp_budget,
                              bram_budget=args.bram_budget, target_fps=args.target_fps,
                              fmax_mhz=args.fmax_mhz,
                              folding_objective=args.folding_objective, synth=args.synth,
                              synth_target=args.target, part=args.part, seeds=args.seeds,
                              data=args.data, baseline=args.baseline,
                              weight_types=getattr(args, "weight_types", "declared"),
                              onnx_model=args.model if importing else None)
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_summary(summary, out, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
