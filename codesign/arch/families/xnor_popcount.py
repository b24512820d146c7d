"""Bipolar x bipolar: XNOR each bit pair and popcount (no multipliers, no adders per lane).

The engine accumulates P = popcount(XNOR(w, x)); the IR's ``xnor_popcount`` accumulation
folds the back-transform 2P - K into the thresholds, so it costs no hardware.
"""

from __future__ import annotations

from codesign.arch.families.base import Family, LaneCost
from hdl.lanes import XnorPopcountLane

FAMILY = Family(
    name="xnor_popcount",
    lane_summary="XNOR + popcount tree",
    weight_kinds=frozenset({"bipolar"}),
    input_kinds=frozenset({"bipolar"}),
    rank=0,
    zero_weights=False,
    accumulates="xnor_popcount",
    make_lane=lambda node, w, x: XnorPopcountLane(),
    # an XNOR gate and a 1-bit share of the popcount adder tree
    lane_energy=lambda node, w, x, table: table.xnor_gate + table.add(1),
    # SIMD XNORs feeding a popcount tree
    lane_cost=lambda node, w, x, simd: LaneCost({"lane_popcount": simd}),
)
