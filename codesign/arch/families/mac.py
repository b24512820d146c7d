"""Fixed-point multiply-accumulate: intN/uintN weights (2..16 bits, either signedness) x any
activations. Binary and ternary weights run here too, stored as 2-bit integers."""

from __future__ import annotations

import math

from codesign.arch.families.base import Family, LaneCost, operand, operand_bits
from codesign.bits import range_bits
from codesign.energy import EnergyTable
from codesign.ir import IntType
from hdl.lanes import MacLane

MAC_MAX_BITS = 16
"""The MAC engine takes weights and activations of up to 16 bits."""


def mac_energy(weight_bits: int, input_bits: int, table: EnergyTable) -> float:
    """A w x x multiplier (quadratic: energy ~ w_bits * x_bits) and its adder-tree share."""
    return table.mult(math.sqrt(weight_bits * input_bits)) + table.add(weight_bits + input_bits)


def mac_cost(weights: tuple[int, int], x: IntType, simd: int) -> LaneCost:
    """SIMD multipliers of a weight in range ``weights`` by ``x`` (DSPs or LUTs) into an
    adder tree of product-wide adds."""
    return LaneCost({"lane_mac_tree": simd * (range_bits(*weights)[0] + operand_bits(x))},
                    ((operand(x), weights),) * simd)


class _MacFamily(Family):
    def weight_storage(self, weight_type: IntType) -> IntType:
        if weight_type.kind in ("bipolar", "ternary"):
            return IntType.int_(2)
        return weight_type


FAMILY = _MacFamily(
    name="mac",
    lane_summary="multiply-accumulate",
    weight_kinds=frozenset({"int", "uint", "ternary", "bipolar"}),
    input_kinds=frozenset({"bipolar", "ternary", "int", "uint"}),
    rank=4,
    zero_weights=True,
    accumulates="dot",
    max_bits=MAC_MAX_BITS,
    make_lane=lambda node, w, x: MacLane(w.bits, w.signed, x.bits, x.signed,
                                          x.kind == "bipolar"),
    lane_energy=lambda node, w, x, table: mac_energy(w.bits, x.bits, table),
    # SIMD multipliers (DSPs or LUTs) into an adder tree of product-wide adds
    lane_cost=lambda node, w, x, simd: mac_cost(operand(w), x, simd),
)
