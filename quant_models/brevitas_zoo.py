"""Train the Brevitas examples on digits and export them to QONNX (the shipped files).

``python -m quant_models.brevitas_zoo --export-dir quant_models/weights`` trains every
imported example of :func:`quant_models.catalog.imported_examples` (one torch thread, seeded)
and writes ``<name>.onnx`` and ``<name>.json`` (test accuracy, epochs, seconds, the training
configuration) there. Needs the ``onnx`` extra (Brevitas).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from quant_models.catalog import SPLIT_PARAMS, ImportedExample, imported_examples
from quant_models.data import load_digits_split
from quant_models.train import train_classifier


def train_and_export(entry: ImportedExample, out_dir: Path) -> dict:
    """Train ``entry`` and write its QONNX export and report to ``out_dir``."""
    from brevitas.export import export_qonnx

    torch.set_num_threads(1)
    split = load_digits_split(**SPLIT_PARAMS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(entry.training["seed"]))
        model = entry.build()
    report = train_classifier(model, split, **entry.training)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / entry.onnx_file
    export_qonnx(model, args=torch.zeros(1, 64), export_path=str(path))
    _single_file(path)
    record = {"name": entry.name, "test_accuracy": report.test_accuracy,
              "train_accuracy": report.train_accuracy, "epochs": report.epochs,
              "seconds": round(report.seconds, 1), "config": entry.config,
              "training": entry.training, "split": SPLIT_PARAMS,
              "torch": torch.__version__.split("+")[0]}
    (out_dir / f"{entry.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _single_file(path: Path) -> None:
    """Rewrite an export whose weights went to ``<file>.data`` as one self-contained file."""
    import onnx

    model = onnx.load(str(path))                    # reads the external data too
    onnx.save(model, str(path), save_as_external_data=False)
    data = path.with_name(path.name + ".data")
    if data.exists():
        data.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", type=Path, required=True)
    parser.add_argument("names", nargs="*", help="examples to train (default: all)")
    args = parser.parse_args(argv)
    for entry in imported_examples():
        if args.names and entry.name not in args.names:
            continue
        record = train_and_export(entry, args.export_dir)
        print(f"{entry.name}: test accuracy {record['test_accuracy']:.4f} "
              f"({record['seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
