"""Compiler passes over the IR, and the one pipeline every frontend's graph goes through.

The pipeline is a visible list: each entry is a named, exact rewrite in its own module
(:mod:`codesign.passes.lower`, :mod:`codesign.passes.streamline`). After it the graph is
integer-only, every convolution is a sliding window feeding a matrix-vector product, and
every epilogue is fused into its engine: exactly what the hardware organisations map.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from codesign.errors import GraphError
from codesign.ir import Graph
from codesign.passes.lower import absorb_flatten, fuse_epilogues, lower_convolutions
from codesign.passes.streamline import fold_float_maps, streamline, to_xnor_popcount


@dataclass(frozen=True)
class PassContext:
    """What a pass may need to know beyond the graph."""

    keep_dot: frozenset[str] = frozenset()
    """Bipolar x bipolar layers that keep dot-product accumulation (their requested engine
    family computes dot products)."""


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Graph, PassContext], Graph]
    doc: str


PIPELINE: tuple[Pass, ...] = (
    Pass("lower_convolutions", lambda g, c: lower_convolutions(g),
         "Conv -> SlidingWindow + MatVec"),
    Pass("absorb_flatten", lambda g, c: absorb_flatten(g),
         "(C, H, W) Flatten -> Reshape, permutation into the next weight columns"),
    Pass("fold_float_maps", lambda g, c: fold_float_maps(g),
         "float scales, batch-norm and activation quantizers -> integer thresholds (an "
         "exact Requantize where the map is a requantization and one reproduces them)"),
    Pass("to_xnor_popcount", lambda g, c: to_xnor_popcount(g, c.keep_dot),
         "bipolar x bipolar accumulation as popcount, 2P - K folded away"),
    Pass("fuse_epilogues", lambda g, c: fuse_epilogues(g),
         "thresholds / requantization fused into their MatVec"),
)
"""The default pipeline, in order."""


def run_passes(graph: Graph, *, keep_dot: Collection[str] = (),
               passes: tuple[Pass, ...] = PIPELINE) -> Graph:
    """Run ``passes`` in order; the result is validated and integer-only."""
    context = PassContext(frozenset(keep_dot))
    for step in passes:
        graph = step.run(graph, context)
    left = [node.describe() for node in graph.nodes if not node.integer]
    if left:
        raise GraphError("the pass pipeline left non-integer nodes: " + ", ".join(left))
    graph.validate()
    return graph


__all__ = ["PIPELINE", "Pass", "PassContext", "absorb_flatten", "fold_float_maps",
           "fuse_epilogues", "lower_convolutions", "run_passes", "streamline",
           "to_xnor_popcount"]
