"""Ternary weights {-1, 0, +1} x any activations: add, subtract or skip (no multiplier).

A zero weight gates its lane (no add; the cycle is still spent). Bipolar weights run here
too, stored as ternary codes.
"""

from __future__ import annotations

from codesign.arch.families.base import Family, LaneCost, operand_bits
from codesign.ir import IntType
from hdl.lanes import TernaryLane


class _TernaryFamily(Family):
    def weight_storage(self, weight_type: IntType) -> IntType:
        return IntType.ternary()


FAMILY = _TernaryFamily(
    name="ternary",
    lane_summary="add, subtract or skip (a zero weight gates its lane)",
    weight_kinds=frozenset({"ternary", "bipolar"}),
    input_kinds=frozenset({"bipolar", "ternary", "int", "uint"}),
    rank=2,
    zero_weights=True,
    accumulates="dot",
    make_lane=lambda node, w, x: TernaryLane(x.bits, x.signed, x.kind == "bipolar"),
    lane_energy=lambda node, w, x, table: table.add(x.bits + 1),
    # +x, -x or 0 per lane into an adder tree
    lane_cost=lambda node, w, x, simd: LaneCost(
        {"lane_ternary": simd * (operand_bits(x) + 1)}),
)
