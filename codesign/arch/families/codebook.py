"""Shared weights (Deep Compression): b-bit indices into a per-layer table of integers.

The engine's weight memory holds each weight's index into the layer's codebook
(:class:`codesign.ir.Codebook`, entry 0 the zero weight); the engine holds the table and
each lane looks its weight up, then multiplies (:class:`hdl.lanes.CodebookLane`, which says
why it looks up rather than accumulating per entry). Runs dense or zero-skipping: index 0
is the zero weight the sparse engine skips and pads with.

Energy: an index read is a weight-memory word of ``b`` bits per lane (the engine prices its
weight memory by the stored width); every lane with a non-zero index reads the table (a
``2^b``-to-1 multiplexer of the value width: ``b`` levels of 2:1 multiplexers along the
selected path, each bit a gate toggle); every effective lane operation is a multiply of
the value width by the activation width and its adder-tree share, as on the MAC lane.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from codesign.arch.families.base import Family, LaneCost
from codesign.arch.families.mac import mac_cost, mac_energy
from codesign.energy import EnergyTable, EventCost
from codesign.errors import GraphError
from codesign.ir import AccumulatorMode, Codebook, IntType, MatVec
from hdl.lanes import CodebookLane
from hdl.perf import Counter

MAX_INDEX_BITS = 8
"""Widest index the codebook lane takes (a table of 256 entries)."""
MAX_VALUE_BITS = 16
"""Widest table value (the lane's multiplier, as the MAC engine's)."""

TABLE_READS = "table_reads"
"""Derived event: lanes that look their weight up (lane operations less zero indices)."""


def _codebook(node: MatVec) -> Codebook:
    if node.codebook is None:
        raise GraphError(f"{node.describe()}: the codebook family needs the layer's codebook")
    return node.codebook


def _lane_cost(node: MatVec, simd: int, x: IntType) -> LaneCost:
    """A MAC lane on the table's values, plus each lane's table: a multiplexer of its
    entries, value-wide."""
    codebook = _codebook(node)
    values = (min(min(codebook.values), 0), max(max(codebook.values), 0))
    cost = mac_cost(values, x, simd)
    table = simd * len(codebook.values) * node.weight_type.bits
    return LaneCost({**cost.lut, "lane_table_mux": table}, cost.multipliers)


class _CodebookFamily(Family):
    def refusal(self, weight_type: IntType, input_type: IntType,
                accumulation: AccumulatorMode = "dot", codebook: Codebook | None = None
                ) -> str | None:
        why = super().refusal(weight_type, input_type, accumulation, codebook)
        if why is None and codebook is not None and codebook.index_bits > MAX_INDEX_BITS:
            return (f"its {codebook.index_bits}-bit codebook indices are wider than the "
                    f"codebook lane's {MAX_INDEX_BITS} bits")
        return why

    def stored_type(self, node: MatVec) -> IntType:
        return IntType.uint(_codebook(node).index_bits)

    def weight_codes(self, node: MatVec) -> np.ndarray:
        return _codebook(node).indices(node.weight)

    def extra_events(self, counters: Mapping[str, int]) -> dict[str, int]:
        return {TABLE_READS: counters[Counter.LANE_OPS] - counters[Counter.ZERO_WEIGHT_LANES]}

    def extra_costs(self, node: MatVec, input_type: IntType, table: EnergyTable
                    ) -> dict[str, EventCost]:
        codebook = _codebook(node)
        mux_toggles = codebook.index_bits * node.weight_type.bits
        return {TABLE_READS: EventCost("codebook table", mux_toggles * table.xnor_gate)}


FAMILY = _CodebookFamily(
    name="codebook",
    lane_summary="table lookup of a b-bit index, multiply-accumulate",
    weight_kinds=frozenset({"int", "uint"}),
    input_kinds=frozenset({"bipolar", "ternary", "int", "uint"}),
    rank=3,
    zero_weights=True,
    accumulates="dot",
    max_bits=MAX_VALUE_BITS,
    shared=True,
    make_lane=lambda node, w, x: CodebookLane(_codebook(node).values, w.bits, x.bits, x.signed,
                                              x.kind == "bipolar",
                                              (node.weight_type.min, node.weight_type.max)),
    lane_energy=lambda node, w, x, table: mac_energy(node.weight_type.bits, x.bits, table),
    lane_cost=lambda node, w, x, simd: _lane_cost(node, simd, x),
)
