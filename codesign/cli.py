"""The ``codesign`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from codesign.errors import CodesignError
from codesign.examples import DEFAULT_EXAMPLE, EXAMPLES, IMPORTED_EXAMPLES, RUNNABLE


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
    command.add_argument("--fold", type=_folding, action="append", default=[],
                         metavar="LAYER=PE,SIMD",
                         help="override one layer's folding (repeatable)")
    command.add_argument("--target-cycles", type=int, default=None,
                         help="cycles per frame the automatic folding aims for, N >= 1 "
                              "(default: the example's)")
    command.add_argument("--fifo-depth", type=int, default=None,
                         help="smallest FIFO between stages in beats, N >= 2 (default 4; "
                              "deeper FIFOs let nearly balanced stages reach the slowest one's "
                              "throughput)")
    command.add_argument("--family", type=_family, action="append", default=[],
                         metavar="LAYER=FAMILY",
                         help="run a layer on another PE family that computes it exactly "
                              "(xnor_popcount, binary_weight, ternary, mac; repeatable)")
    command.add_argument("--sparse", type=_sparse, default=None,
                         metavar="LAYERS|SPARSITY|none",
                         help="zero-skipping engines: comma-separated layer names, or every "
                              "ternary/fixed-point layer with at least this weight sparsity, "
                              "or none (default: the example's choice)")


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
    study = sub.add_parser("study", help="run every built-in example and write an index "
                                         "(regenerates reports/)")
    study.add_argument("--out", type=Path, default=Path("reports"))
    study.add_argument("--frames", type=int, default=None,
                       help="simulate only the first N test frames of each example, N >= 1")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "examples":
        for name, description in EXAMPLES.items():
            print(f"{name}: {description}")
        for name, description in IMPORTED_EXAMPLES.items():
            print(f"{name}: {description} (needs the onnx extra)")
        return 0
    from codesign.flow import check_frames, run_example

    if args.command == "study":
        from codesign.paths import atomic_write_text
        from codesign.report import render_index

        summaries = []
        try:
            check_frames(args.frames)
            for name in EXAMPLES:
                summaries.append(run_example(name, out_dir=args.out / name,
                                             frames=args.frames))
        except CodesignError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        atomic_write_text(args.out / "README.md", render_index(summaries))
        print(f"{len(summaries)} examples -> {args.out / 'README.md'}")
        return 0

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
                              families=dict(args.family) or None, data=args.data,
                              onnx_model=args.model if importing else None)
    except CodesignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    source = {"qonnx": "onnx", "torch_ao": "torch"}.get(summary["source"], "torch")
    print(f"{summary['example']}: {summary['frames']} frames, "
          f"{'bit-exact' if summary['bit_exact'] else 'MISMATCH'}"
          + ("" if summary["source_bit_exact"] is None else
             f" (reference {'=' if summary['source_bit_exact'] else '!='} {source} on every "
             "element)") + ", "
          f"accuracy {source} {summary['accuracy_torch']:.4f} / hw {summary['accuracy_hw']:.4f}, "
          f"{summary['cycles_per_frame']:.1f} cycles/frame, "
          f"{summary['energy_pj_per_frame']:.1f} pJ/frame "
          f"({time.perf_counter() - start:.1f} s) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
