"""PE lanes: what one PE row computes from SIMD activations and SIMD weights per cycle.

The matrix-vector engine (:mod:`hdl.mvu`) is the same for every PE family; only the lane
arithmetic differs. A lane turns the SIMD-wide activation word and one PE's SIMD-wide
weight word into SIMD *terms* (an XNOR bit, +-x, a product); the engine registers the terms,
sums them in an adder tree (registered again) and accumulates the sum, one pipeline stage
each (:mod:`hdl.datapath`). Lanes whose weights can be zero also report
how many lanes were gated by a zero weight (no add happens; the cycle does).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Self

from amaranth import Const, Module, Mux, Shape, Value
from amaranth.lib.memory import Memory

from hdl.arith import adder_tree, shape_for_range
from hdl.errors import HardwareConfigError


def _element(word: Value, index: int, bits: int, is_signed: bool,
             bipolar: bool = False) -> Value:
    """Element ``index`` of a packed word; a bipolar element (1 bit) decodes to +1 / -1."""
    value = word.word_select(index, bits)
    if bipolar:
        return Mux(value[0], 1, -1)
    return value.as_signed() if is_signed else value


class _StatelessLane:
    """What a lane without state of its own does when an engine instance uses it."""

    def bind(self, m: Module) -> Self:
        """The lane as the engine being built in ``m`` uses it: these lanes are pure
        arithmetic, so the configuration itself (a lane with a table places it in ``m``)."""
        return self


@dataclass(frozen=True)
class XnorPopcountLane(_StatelessLane):
    """Bipolar x bipolar: XNOR each bit pair, popcount the SIMD results (no multipliers)."""

    family = "xnor_popcount"
    input_bits = 1
    input_signed = False
    weight_bits = 1
    has_zero_weights = False

    def terms(self, x: Value, w: Value, simd: int) -> list[Value]:
        return [~(x[j] ^ w[j]) for j in range(simd)]


@dataclass(frozen=True)
class BinaryWeightLane(_StatelessLane):
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
class TernaryLane(_StatelessLane):
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
class MacLane(_StatelessLane):
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


@dataclass(frozen=True)
class _TableReader:
    """A bound codebook lane's table: a read-only memory in the engine's module, read
    combinationally through one port per lookup."""

    module: Module
    memory: Memory

    def read(self, index: Value) -> Value:
        port = self.memory.read_port(domain="comb")
        self.module.d.comb += port.addr.eq(index)
        return port.data


@dataclass(frozen=True)
class CodebookLane:
    """Shared weights: a b-bit index into the layer's table of integer values, looked up and
    multiplied by a fixed-point activation.

    The engine stores indices; the table (``values``, entry 0 the zero weight) is held once
    per engine and every lane reads it through its own 2^b-to-1 multiplexer, then
    multiplies. Looking up and multiplying keeps the engine's schedule, memories and cycle
    formula those of every other family (only the lane differs), so the dense and the
    zero-skipping engine take it unchanged. The alternative, accumulating the activations
    per table entry and multiplying once per entry, needs 2^b accumulators per PE and a
    final pass of 2^b multiplies per output, which changes the engine's schedule; it pays
    only when a row has many more weights than entries. Index 0 gates the lane as a zero
    weight does on the MAC lane (no lookup, no multiply; the cycle is spent), and the
    zero-skipping engine pads with it.

    The table is a read-only memory of ``2^b`` words of the layer's declared value range
    (``value_range``; the values' own range when none is declared), so it is part of the
    weights, not of the logic: a simulation loads it at run time like the weight memory,
    and synthesis, which sees it initialised, folds it into each lane's multiplexer.
    """

    values: tuple[int, ...]
    index_bits: int
    input_bits: int
    input_signed: bool
    input_bipolar: bool = False
    value_range: tuple[int, int] | None = None
    """Bounds of any table value (the lane's multiplier width); ``None``: the values'."""
    table: _TableReader | None = field(default=None, compare=False, repr=False)
    """The engine's table once :meth:`bind` placed it; ``None`` in a configuration."""
    family = "codebook"
    has_zero_weights = True

    def __post_init__(self) -> None:
        if not self.values or self.values[0] != 0 or len(self.values) > 1 << self.index_bits:
            raise HardwareConfigError(
                f"codebook lane: a table of {len(self.values)} values with the zero weight first"
                f" and at most 2^{self.index_bits} entries is needed, got {list(self.values)}")
        lo, hi = self.value_bounds
        if not lo <= min(self.values) <= max(self.values) <= hi:
            raise HardwareConfigError(
                f"codebook lane: the values {list(self.values)} leave the declared value range "
                f"[{lo}, {hi}]")

    @property
    def weight_bits(self) -> int:
        """Bits of a stored weight: its index."""
        return self.index_bits

    @property
    def value_bounds(self) -> tuple[int, int]:
        """Bounds of a table entry: the declared range, else the values' own."""
        return self.value_range or (min(self.values), max(self.values))

    @property
    def value_shape(self) -> Shape:
        """Shape of a table entry (and of the multiplier's weight operand)."""
        return shape_for_range(*self.value_bounds)

    def bind(self, m: Module) -> CodebookLane:
        """The lane with the engine's table placed in ``m`` (once per engine)."""
        memory = Memory(shape=self.value_shape, depth=1 << self.index_bits,
                        init=list(self.values))
        m.submodules.codebook = memory
        return replace(self, table=_TableReader(m, memory))

    def lookup(self, index: Value) -> Value:
        """The table value at ``index`` (entries past the table hold zero and are never
        stored).

        Bound, a read of the engine's table. Unbound (a configuration asked for the
        shapes of its terms), the table as one packed constant read by a part-select."""
        if self.table is not None:
            return self.table.read(index)
        shape = self.value_shape
        mask = (1 << shape.width) - 1
        packed = sum((v & mask) << (i * shape.width) for i, v in enumerate(self.values))
        value = Const(packed, shape.width << self.index_bits).word_select(index, shape.width)
        return value.as_signed() if shape.signed else value

    def terms(self, x: Value, w: Value, simd: int) -> list[Value]:
        products = []
        for j in range(simd):
            xj = _element(x, j, self.input_bits, self.input_signed, self.input_bipolar)
            products.append(xj * self.lookup(w.word_select(j, self.index_bits)))
        return products

    def zero_weight_count(self, w: Value, simd: int) -> Value:
        return adder_tree([w.word_select(j, self.index_bits) == 0 for j in range(simd)])

    def zero_activation_count(self, x: Value, w: Value, simd: int) -> Value:
        """Lanes with a non-zero index and a zero activation: the multiplier is gated."""
        if self.input_bipolar:
            return Const(0, 1)          # a bipolar activation is never zero
        return adder_tree([(w.word_select(j, self.index_bits) != 0)
                           & (x.word_select(j, self.input_bits) == 0) for j in range(simd)])


Lane = XnorPopcountLane | BinaryWeightLane | TernaryLane | MacLane | CodebookLane
