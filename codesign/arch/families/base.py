"""The record every PE family fills in: what it accepts, how its lane is built and costed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from codesign.bits import range_bits
from codesign.energy import EnergyTable, EventCost
from codesign.ir import AccumulatorMode, Codebook, IntType, MatVec
from hdl.lanes import Lane

_DOMAIN = {"dot": "dot products", "xnor_popcount": "popcounts P = (dot + K) / 2"}


@dataclass(frozen=True)
class LaneCost:
    """The hardware of one PE row of SIMD lanes, for the resource model.

    ``lut`` are LUT features (name -> units) the calibration prices; ``multipliers`` the
    (a range, b range) of each multiplier of the row: it goes to DSPs or, when the target
    keeps it in LUTs, adds its ``mult_lut`` units (a x b partial-product bits).
    """

    lut: dict[str, float] = field(default_factory=dict)
    multipliers: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = ()

    @property
    def mult_lut(self) -> float:
        return float(sum(range_bits(*a)[0] * range_bits(*b)[0] for a, b in self.multipliers))


def operand(t: IntType) -> tuple[int, int]:
    """Value range of an operand as a lane decodes it (a bipolar code becomes +1/-1)."""
    if t.kind == "bipolar":
        return -1, 1
    return t.min, t.max


def operand_bits(t: IntType) -> int:
    return range_bits(*operand(t))[0]


@dataclass(frozen=True)
class Family:
    """One PE family: the lane arithmetic of a matrix-vector engine and its limits.

    ``weight_kinds``/``input_kinds`` are the operand type kinds the lane computes exactly;
    ``max_bits`` bounds intN/uintN operands; ``zero_weights`` says whether the lane holds a
    zero weight (it gates it, and a zero-skipping engine can skip it); ``accumulates`` is the
    accumulator domain the IR must use (``xnor_popcount`` keeps P = popcount, everything
    else the dot product); ``rank`` orders families by cost, so a layer's default family is
    the cheapest one that accepts its types; ``shared`` says whether the family stores a
    codebook's indices (it then runs only layers with a codebook).
    """

    name: str
    lane_summary: str
    weight_kinds: frozenset[str]
    input_kinds: frozenset[str]
    rank: int
    zero_weights: bool
    accumulates: AccumulatorMode
    make_lane: Callable[[MatVec, IntType, IntType], Lane]
    """(layer, weight storage type, input type) -> the hdl lane."""
    lane_energy: Callable[[MatVec, IntType, IntType, EnergyTable], float]
    """(layer, weight storage type, input type, table) -> pJ of one effective lane
    operation."""
    lane_cost: Callable[[MatVec, IntType, IntType, int], LaneCost]
    """(layer, weight storage type, input type, SIMD) -> the hardware of one PE row."""
    max_bits: int | None = None
    shared: bool = False

    def refusal(self, weight_type: IntType, input_type: IntType,
                accumulation: AccumulatorMode = "dot", codebook: Codebook | None = None
                ) -> str | None:
        """Why this family cannot run these operands exactly, or ``None`` if it can.

        ``accumulation`` is what the layer's IR accumulates (a bipolar x bipolar layer
        streamlined for the XNOR engine accumulates popcounts, which only that engine does);
        ``codebook`` is the layer's shared-weight table, if any.
        """
        if self.shared and codebook is None:
            return (f"the {self.name} family stores indices into a layer's codebook; this "
                    "layer's weights are not shared through one")
        if weight_type.kind not in self.weight_kinds or input_type.kind not in self.input_kinds:
            return (f"the {self.name} family takes {'/'.join(sorted(self.weight_kinds))} "
                    f"weights x {'/'.join(sorted(self.input_kinds))} inputs, not "
                    f"{weight_type} x {input_type}")
        if self.max_bits is not None:
            for what, t in (("weights", weight_type), ("inputs", input_type)):
                if t.kind in ("int", "uint") and t.bits > self.max_bits:
                    return (f"{t} {what} are wider than the {self.name} engine's "
                            f"{self.max_bits} bits; requantize to at most {self.max_bits} bits")
        if accumulation != self.accumulates:
            return (f"the {self.name} family accumulates {_DOMAIN[self.accumulates]}, the "
                    f"layer's IR {_DOMAIN[accumulation]}")
        return None

    def weight_storage(self, weight_type: IntType) -> IntType:
        """The type the engine stores weights as (their codes' width and encoding).

        Bipolar weights keep their 1-bit code on lanes made for them; a lane that reads
        two's-complement weights stores bipolar and ternary values as 2-bit integers.
        """
        return weight_type

    # ---- what an engine asks about one layer (a shared family answers from its codebook) --
    def stored_type(self, node: MatVec) -> IntType:
        """The type of one stored weight code of ``node`` on this family's engine."""
        return self.weight_storage(node.weight_type)

    def weight_codes(self, node: MatVec) -> np.ndarray:
        """The storage codes of ``node``'s weights [MH, MW]; code 0 is a zero weight."""
        return self.stored_type(node).encode(node.weight)

    def lane(self, node: MatVec, input_type: IntType) -> Lane:
        return self.make_lane(node, self.stored_type(node), input_type)

    def lane_op_energy(self, node: MatVec, input_type: IntType, table: EnergyTable) -> float:
        return self.lane_energy(node, self.stored_type(node), input_type, table)

    def extra_events(self, counters: Mapping[str, int]) -> dict[str, int]:
        """Events of this family's lanes derived from the engine's counters (none here)."""
        return {}

    def extra_costs(self, node: MatVec, input_type: IntType, table: EnergyTable
                    ) -> dict[str, EventCost]:
        """What each of :meth:`extra_events` costs (none here)."""
        return {}
