"""Small arithmetic building blocks shared by the PE lanes."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Value


def adder_tree(values: Sequence[Value]) -> Value:
    """Sum ``values`` as a balanced tree (log depth; Amaranth widens each add by one bit)."""
    if not values:
        raise ValueError("adder_tree needs at least one value")
    level = list(values)
    while len(level) > 1:
        paired = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def range_bits(lo: int, hi: int) -> tuple[int, bool]:
    """(bits, signed) of the narrowest two's-complement/unsigned integer holding [lo, hi]."""
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if lo >= 0:
        return max(1, int(hi).bit_length()), False
    return max(int(-lo - 1).bit_length(), int(max(hi, 0)).bit_length()) + 1, True
