"""Small arithmetic building blocks shared by the PE lanes."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Shape, Value, signed, unsigned

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
