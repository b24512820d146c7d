"""Small arithmetic building blocks shared by the PE lanes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amaranth import Const, Mux, Shape, Value, signed, unsigned

from codesign.bits import range_bits
from hdl.errors import HardwareConfigError


def adder_tree(values: Sequence[Value]) -> Value:
    """Sum ``values`` as a balanced tree (log depth; Amaranth widens each add by one bit)."""
    if not values:
        raise HardwareConfigError("adder_tree needs at least one value")
    level = list(values)
    while len(level) > 1:
        paired = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def shape_for_range(lo: int, hi: int) -> Shape:
    """Amaranth shape holding every integer in [lo, hi] (see :func:`codesign.bits.range_bits`)."""
    bits, is_signed = range_bits(lo, hi)
    return signed(bits) if is_signed else unsigned(bits)


@dataclass(frozen=True)
class ElementType:
    """How a stream element's storage code maps to its integer value.

    ``bipolar``: one bit, 1 = +1, 0 = -1; ``signed``: two's complement (ternary included);
    otherwise unsigned.
    """

    bits: int
    signed: bool = False
    bipolar: bool = False

    def __post_init__(self) -> None:
        if self.bits < 1 or (self.bipolar and (self.bits != 1 or self.signed)):
            raise HardwareConfigError(f"element of {self.bits} bits (signed={self.signed}, "
                                      f"bipolar={self.bipolar}) is not a valid element type")

    @property
    def min(self) -> int:
        if self.bipolar:
            return -1
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        if self.bipolar:
            return 1
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def value(self, code: Value) -> Value:
        """The element's integer value from its ``bits``-bit code."""
        if self.bipolar:
            return Mux(code[0], Const(1, signed(2)), Const(-1, signed(2)))
        return code.as_signed() if self.signed else code.as_unsigned()

    def elements(self, word: Value, count: int) -> list[Value]:
        """The values of ``count`` elements packed in ``word`` (element j at bits
        [j*bits, (j+1)*bits))."""
        return [self.value(word.word_select(j, self.bits)) for j in range(count)]


def wrap_increment(counter: Value, modulus: int) -> Value:
    """``counter + 1`` modulo ``modulus`` (for 0 <= counter < modulus)."""
    return Mux(counter == modulus - 1, 0, counter + 1)
