"""PE lanes: what one PE row computes from SIMD activations and SIMD weights per cycle.

The matrix-vector engine (:mod:`hdl.mvu`) is the same for every PE family; only the lane
arithmetic differs. A lane turns the SIMD-wide activation word and one PE's SIMD-wide
weight word into a partial sum that the engine accumulates.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Mux, Value

from hdl.arith import adder_tree


@dataclass(frozen=True)
class XnorPopcountLane:
    """Bipolar x bipolar: XNOR each bit pair, popcount the SIMD results (no multipliers)."""

    family = "xnor_popcount"
    input_bits = 1
    input_signed = False
    weight_bits = 1

    def partial_sum(self, x: Value, w: Value, simd: int) -> Value:
        return adder_tree([~(x[j] ^ w[j]) for j in range(simd)])


@dataclass(frozen=True)
class BinaryWeightLane:
    """Bipolar weights x fixed-point activations: add x where w = +1, subtract where w = -1."""

    input_bits: int
    input_signed: bool
    family = "binary_weight"
    weight_bits = 1

    def partial_sum(self, x: Value, w: Value, simd: int) -> Value:
        terms = []
        for j in range(simd):
            xj = x.word_select(j, self.input_bits)
            if self.input_signed:
                xj = xj.as_signed()
            terms.append(Mux(w[j], xj, -xj))
        return adder_tree(terms)


Lane = XnorPopcountLane | BinaryWeightLane
