"""PE lanes: what one PE row computes from SIMD activations and SIMD weights per cycle.

The matrix-vector engine (:mod:`hdl.mvu`) is the same for every PE family; only the lane
arithmetic differs. A lane turns the SIMD-wide activation word and one PE's SIMD-wide
weight word into SIMD *terms* (an XNOR bit, +-x, a product); the engine registers the terms,
sums them in an adder tree (registered again) and accumulates the sum, one pipeline stage
each (:mod:`hdl.datapath`). Lanes whose weights can be zero also report
how many lanes were gated by a zero weight (no add happens; the cycle does).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Const, Mux, Value

from hdl.arith import adder_tree


def _element(word: Value, index: int, bits: int, is_signed: bool,
             bipolar: bool = False) -> Value:
    """Element ``index`` of a packed word; a bipolar element (1 bit) decodes to +1 / -1."""
    value = word.word_select(index, bits)
    if bipolar:
        return Mux(value[0], 1, -1)
    return value.as_signed() if is_signed else value


@dataclass(frozen=True)
class XnorPopcountLane:
    """Bipolar x bipolar: XNOR each bit pair, popcount the SIMD results (no multipliers)."""

    family = "xnor_popcount"
    input_bits = 1
    input_signed = False
    weight_bits = 1
    has_zero_weights = False

    def terms(self, x: Value, w: Value, simd: int) -> list[Value]:
        return [~(x[j] ^ w[j]) for j in range(simd)]


@dataclass(frozen=True)
class BinaryWeightLane:
    """Bipolar weights x fixed-point activations: add x where w = +1, subtract where w = -1."""

    input_bits: int
    input_signed: bool
    input_bipolar: bool = False
    family = "binary_weight"
    weight_bits = 1
    has_zero_weights = False

    def terms(self, x: Value, w: Value, simd: int) -> list[Value]:
        terms = []
        for j in range(simd):
            xj = _element(x, j, self.input_bits, self.input_signed, self.input_bipolar)
            terms.append(Mux(w[j], xj, -xj))
        return terms


@dataclass(frozen=True)
class TernaryLane:
    """Ternary weights {-1, 0, +1} (2-bit two's complement) x fixed-point activations.

    Add, subtract or skip: no multiplier. A zero weight gates its lane.
    """

    input_bits: int
    input_signed: bool
    input_bipolar: bool = False
    family = "ternary"
    weight_bits = 2
    has_zero_weights = True

    def terms(self, x: Value, w: Value, simd: int) -> list[Value]:
        terms = []
        for j in range(simd):
            xj = _element(x, j, self.input_bits, self.input_signed, self.input_bipolar)
            wj = w.word_select(j, 2)
            # 01 = +1, 11 = -1, 00 = 0 (10 never stored)
            terms.append(Mux(wj[0], Mux(wj[1], -xj, xj), 0))
        return terms

    def zero_weight_count(self, w: Value, simd: int) -> Value:
        return adder_tree([~w.word_select(j, 2)[0] for j in range(simd)])

    def zero_activation_count(self, x: Value, w: Value, simd: int) -> Value:
        """Lanes with a non-zero weight and a zero activation: the add is gated."""
        if self.input_bipolar:
            return Const(0, 1)          # a bipolar activation is never zero
        return adder_tree([w.word_select(j, 2)[0] & (x.word_select(j, self.input_bits) == 0)
                           for j in range(simd)])


@dataclass(frozen=True)
class MacLane:
    """Fixed-point weights x fixed-point activations (2..16 bits each, either signedness)."""

    weight_bits: int
    weight_signed: bool
    input_bits: int
    input_signed: bool
    input_bipolar: bool = False
    family = "mac"
    has_zero_weights = True

    def terms(self, x: Value, w: Value, simd: int) -> list[Value]:
        products = []
        for j in range(simd):
            xj = _element(x, j, self.input_bits, self.input_signed, self.input_bipolar)
            wj = _element(w, j, self.weight_bits, self.weight_signed)
            products.append(xj * wj)
        return products

    def zero_weight_count(self, w: Value, simd: int) -> Value:
        return adder_tree([w.word_select(j, self.weight_bits) == 0 for j in range(simd)])

    def zero_activation_count(self, x: Value, w: Value, simd: int) -> Value:
        """Lanes with a non-zero weight and a zero activation: the multiplier is gated."""
        if self.input_bipolar:
            return Const(0, 1)          # a bipolar activation is never zero
        return adder_tree([(w.word_select(j, self.weight_bits) != 0)
                           & (x.word_select(j, self.input_bits) == 0) for j in range(simd)])


Lane = XnorPopcountLane | BinaryWeightLane | TernaryLane | MacLane
