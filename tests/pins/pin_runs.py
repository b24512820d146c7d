"""What the pin tests share: the custom energy table, the runs' frames, the fault, and a
``codesign run`` through the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENERGY_TABLE_YAML = """\
# Distinctive round numbers, so every figure computed from them can be told apart.
name: pin-table
technology_node: 28nm-pin
units: pJ
int_add:
  4: 0.2
  8: 0.6
  32: 2.0
int_mult:
  4: 1.0
  16: 20.0
sram_read_64b: 8.0
sram_write_64b: 12.0
xnor_gate: 0.01
"""
"""An energy table in the format of codesign/data/energy_45nm.yaml."""

PIN_FRAMES = 20
"""Frames of every shared run."""


@dataclass
class Run:
    """A finished ``codesign run``: its directory, exit code, stderr and summary."""

    out: Path
    code: int = 0
    stderr: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> str:
        return (self.out / "report.md").read_text()


def cli_run(args: list[str], out: Path) -> Run:
    """``codesign run ARGS --frames PIN_FRAMES --out OUT`` through codesign.cli.main."""
    import contextlib
    import io

    from codesign.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["run", *args, "--frames", str(PIN_FRAMES), "--out", str(out)])
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return Run(out, code, err.getvalue(), summary)


FAULT_LAYER = "fc1"
"""The layer of binarized-mlp whose hardware gets one weight wrong in the faulty run."""

FAULT_FIFO_DEPTH = 32
"""The faulty run's --fifo-depth: deeper than every FIFO binarized-mlp gets by default."""


def first_visible_fault(graph, inputs) -> tuple[int, int]:
    """(row, column) of the first weight of FAULT_LAYER, row-major from row 1, whose negation
    changes that layer's output first in a frame other than 0 of ``inputs`` (so neither the
    frame nor the element that shows it is 0).

    fc1 is XNOR-popcount: P = (x.w + K) / 2 agreements, out = +1 iff P >= T. Negating w[r, c]
    moves P of row r by -w[r, c] * x[c], so row r flips in the frames where that crosses T.
    """
    import numpy as np

    from codesign.reference import execute

    matvec = graph.node(FAULT_LAYER)
    threshold = matvec.post.thresholds[:, 0]          # the fused epilogue
    x = execute(graph, inputs, keep_all=True)[matvec.inputs[0]]
    w = matvec.weight
    agreements = (x @ w.T + matvec.mw) // 2
    for row in range(1, w.shape[0]):
        before = agreements[:, row, None] >= threshold[row]
        after = agreements[:, row, None] - w[row] * x >= threshold[row]   # [frames, columns]
        changed = before != after
        for col in range(w.shape[1]):
            frames = np.flatnonzero(changed[:, col])
            if frames.size and frames[0] > 0:
                return row, col
    raise AssertionError("no weight of fc1 changes its output in these frames")


