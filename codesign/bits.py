"""How many bits an integer range needs: the one definition every layer of the project uses.

The IR derives tensor types from it, the hardware generators their signal shapes, the energy
model its operand widths and quant_models its accumulator types; they must never disagree.
The module imports nothing so that any package can depend on it.
"""

from __future__ import annotations


def range_bits(lo: int, hi: int) -> tuple[int, bool]:
    """(bits, signed) of the narrowest two's-complement/unsigned integer holding [lo, hi]."""
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if lo >= 0:
        return max(1, int(hi).bit_length()), False
    return max(int(-lo - 1).bit_length(), int(max(hi, 0)).bit_length()) + 1, True
