"""Bipolar weights x fixed-point activations: add the activation where w = +1, subtract where
w = -1 (BinaryConnect-style layers and binarized networks' first layers)."""

from __future__ import annotations

from codesign.arch.families.base import Family, LaneCost, operand_bits
from hdl.lanes import BinaryWeightLane

FAMILY = Family(
    name="binary_weight",
    lane_summary="add or subtract",
    weight_kinds=frozenset({"bipolar"}),
    input_kinds=frozenset({"bipolar", "ternary", "int", "uint"}),
    rank=1,
    zero_weights=False,
    accumulates="dot",
    make_lane=lambda node, w, x: BinaryWeightLane(x.bits, x.signed, x.kind == "bipolar"),
    # an add/subtract of the activation width (plus the sign)
    lane_energy=lambda node, w, x, table: table.add(x.bits + 1),
    # +x or -x per lane into an adder tree: an add/subtract of the operand width per lane
    lane_cost=lambda node, w, x, simd: LaneCost(
        {"lane_addsub": simd * (operand_bits(x) + 1)}),
)
