"""The ``codesign`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from codesign.errors import CodesignError
from codesign.examples import DEFAULT_EXAMPLE, EXAMPLES


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codesign",
        description="Hardware-software codesign of compressed neural networks: train or load, "
                    "lower to integer IR, generate Verilog, simulate bit-exactly, report.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an example end to end (default: the built-in MLP)")
    run.add_argument("example", nargs="?", default=DEFAULT_EXAMPLE,
                     help=f"example name ({', '.join(EXAMPLES)}); default {DEFAULT_EXAMPLE}")
    run.add_argument("--out", type=Path, default=None,
                     help="run directory (default runs/<example>-<timestamp>)")
    run.add_argument("--frames", type=int, default=None,
                     help="simulate only the first N test frames, N >= 1 (default: all)")
    run.add_argument("--retrain", action="store_true",
                     help="train the example again (ignoring the shipped and cached weights)")
    run.add_argument("--energy-table", type=Path, default=None,
                     help="YAML energy table (default: 45 nm, Horowitz ISSCC 2014)")
    run.add_argument("--fold", type=_folding, action="append", default=[],
                     metavar="LAYER=PE,SIMD", help="override one layer's folding (repeatable)")
    run.add_argument("--target-cycles", type=int, default=None,
                     help="cycles per frame the automatic folding aims for, N >= 1 (default: "
                          "the example's)")
    run.add_argument("--fifo-depth", type=int, default=None,
                     help="smallest FIFO between stages in beats, N >= 2 (default 4; deeper "
                          "FIFOs let nearly balanced stages reach the slowest one's "
                          "throughput)")
    run.add_argument("--family", type=_family, action="append", default=[],
                     metavar="LAYER=FAMILY",
                     help="run a layer on another PE family that computes it exactly "
                          "(xnor_popcount, binary_weight, ternary, mac; repeatable)")
    run.add_argument("--sparse", type=_sparse, default=None, metavar="LAYERS|SPARSITY|none",
                     help="zero-skipping engines: comma-separated layer names, or every "
                          "ternary/fixed-point layer with at least this weight sparsity, or "
                          "none (default: the example's choice)")
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
    sub.add_parser("examples", help="list the built-in examples")
    study = sub.add_parser("study", help="run every built-in example and write an index and "
                                         "the compression study (regenerates reports/)")
    study.add_argument("part", nargs="?", choices=("all", "compression"), default="all",
                       help="all (default): every example, the index and the compression "
                            "study in OUT/compression; compression: the study alone in OUT")
    study.add_argument("--out", type=Path, default=None,
                       help="output directory (default reports, or reports/compression)")
    study.add_argument("--frames", type=int, default=None,
                       help="simulate only the first N test frames of each example, N >= 1")
    return parser


def _study(part: str, out: Path | None, frames: int | None) -> int:
    from codesign.compression_study import run_compression_study
    from codesign.flow import check_frames, run_example
    from codesign.paths import atomic_write_text
    from codesign.report import render_index

    def run(name: str, directory: Path) -> dict:
        return run_example(name, out_dir=directory, frames=frames)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        check_frames(frames)
        if part == "compression":
            out = out or Path("reports") / "compression"
            run_compression_study(out, run, frames=frames, say=say)
            print(f"compression study -> {out / 'README.md'}")
            return 0
        out = out or Path("reports")
        runs = {}
        for name in EXAMPLES:
            runs[name] = (out / name, run(name, out / name))
        atomic_write_text(out / "README.md", render_index([s for _, s in runs.values()]))
        run_compression_study(out / "compression", run, frames=frames, runs=runs, say=say)
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(runs)} examples -> {out / 'README.md'}; compression study -> "
          f"{out / 'compression' / 'README.md'}")
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
    delta = summary["compression"]["delta"]
    print(f"{summary['example']}: {summary['frames']} frames, "
          f"{'bit-exact' if summary['bit_exact'] else 'MISMATCH'}, "
          f"accuracy torch {summary['accuracy_torch']:.4f} / hw {summary['accuracy_hw']:.4f}, "
          f"{summary['cycles_per_frame']:.1f} cycles/frame, "
          f"{summary['energy_pj_per_frame']:.1f} pJ/frame, "
          f"alpha {summary['compression']['alpha']:.2f}, "
          f"delta {'-' if delta is None else f'{delta:.2f}'} ({seconds:.1f} s) -> {out}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "examples":
        for name, description in EXAMPLES.items():
            print(f"{name}: {description}")
        return 0
    if args.command == "study":
        return _study(args.part, args.out, args.frames)
    if args.command == "compress":
        return _compress(args)
    from codesign.flow import run_example

    out = args.out or Path("runs") / f"{args.example}-{time.strftime('%Y%m%d-%H%M%S')}"
    start = time.perf_counter()
    try:
        summary = run_example(args.example, out_dir=out, frames=args.frames,
                              retrain=args.retrain, energy_table=args.energy_table,
                              folding=dict(args.fold), target_cycles=args.target_cycles,
                              sparse=args.sparse, fifo_depth=args.fifo_depth,
                              families=dict(args.family) or None)
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_summary(summary, out, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
