"""Design points: one value of every axis of a sweep, with a stable key.

The key is a hash of the point's axis values only, so the same point in a rerun (or in
another sweep file over the same axes) finds its stored result and is not evaluated again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from codesign.arch.options import Folding
from codesign.dse.spec import Family, MemoryStyle, Sparse, SweepSpec


@dataclass(frozen=True)
class Point:
    """One design point of a sweep."""

    example: str
    target_cycles: int | None
    folding: tuple[tuple[str, Folding], ...]
    family: Family
    sparse: Sparse
    fifo_depth: int
    memory_style: MemoryStyle
    folding_objective: str | None = None

    def axes(self) -> dict[str, Any]:
        """The axis values as plain data (what the results table stores)."""
        return {
            "example": self.example,
            "target_cycles": self.target_cycles,
            "folding": {layer: [f.pe, f.simd] for layer, f in self.folding} or None,
            "family": (dict(self.family) if isinstance(self.family, tuple) else self.family),
            "sparse": list(self.sparse) if isinstance(self.sparse, tuple) else self.sparse,
            "fifo_depth": self.fifo_depth,
            "memory_style": (dict(self.memory_style) if isinstance(self.memory_style, tuple)
                             else self.memory_style),
            "folding_objective": self.folding_objective,
        }

    @property
    def key(self) -> str:
        """16 hex digits of a hash of the axis values."""
        text = json.dumps(self.axes(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @property
    def family_label(self) -> str:
        """The family choice in a word (for tables and plot colours)."""
        if self.family is None:
            return "default"
        if isinstance(self.family, str):
            return self.family
        return ",".join(f"{layer}={fam}" for layer, fam in self.family)

    def label(self) -> str:
        """A short description: the example and the choices that are not the defaults."""
        parts = [self.example]
        if self.target_cycles is not None:
            parts.append(f"target {self.target_cycles}")
        if self.folding:
            parts.append("fold " + " ".join(f"{k}={f.pe},{f.simd}" for k, f in self.folding))
        if self.family is not None:
            parts.append(f"family {self.family_label}")
        if self.sparse is not None:
            sparse = (",".join(self.sparse) if isinstance(self.sparse, tuple)
                      else str(self.sparse))
            parts.append(f"sparse {sparse}")
        parts.append(f"fifo {self.fifo_depth}")
        if self.memory_style is not None:
            style = (self.memory_style if isinstance(self.memory_style, str) else
                     ",".join(f"{k}={v}" for k, v in self.memory_style))
            parts.append(f"memory {style}")
        if self.folding_objective is not None:
            parts.append(f"fewest {self.folding_objective}")
        return ", ".join(parts)


def expand(spec: SweepSpec) -> list[Point]:
    """The cartesian product of the spec's axes, examples outermost (a worker then meets
    the points of one network together and lowers it once)."""
    return [Point(*values) for values in itertools.product(
        spec.examples, spec.target_cycles, spec.foldings, spec.families, spec.sparse,
        spec.fifo_depth, spec.memory_styles, spec.folding_objective)]
