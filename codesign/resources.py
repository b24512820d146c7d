"""FPGA resource counts: what synthesis reports and the resource model predicts, typed.

One record for every target family, so budgets, reports and the model compare like with like:

- ``lut``: look-up tables, logic and memory together (Xilinx LUT6s, including LUTs used as
  distributed RAM or shift registers; ECP5 and iCE40 LUT4s, an ECP5 carry cell counting as
  its two LUT4s); ``lutram`` is the memory part of ``lut``;
- ``ff``: flip-flops;
- ``bram36``, ``bram18``, ``bram4``: block RAMs of 36 Kbit (RAMB36E1), 18 Kbit (RAMB18E1,
  ECP5 DP16KD) and 4 Kbit (iCE40 SB_RAM40_4K);
- ``dsp``: multiplier blocks (DSP48E1, MULT18X18D, SB_MAC16);
- ``carry``: carry-chain cells (CARRY4, CCU2C, SB_CARRY).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

BRAM_FIELDS = ("bram36", "bram18", "bram4")


@dataclass(frozen=True)
class Resources:
    """Resource counts of one design or stage on one target."""

    lut: int = 0
    ff: int = 0
    bram36: int = 0
    bram18: int = 0
    bram4: int = 0
    dsp: int = 0
    carry: int = 0
    lutram: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                            for f in fields(self)})

    def __sub__(self, other: Resources) -> Resources:
        return Resources(**{f.name: getattr(self, f.name) - getattr(other, f.name)
                            for f in fields(self)})

    @property
    def bram_kbits(self) -> int:
        """Block RAM capacity used, in Kbit."""
        return 36 * self.bram36 + 18 * self.bram18 + 4 * self.bram4

    @property
    def bram18_equivalent(self) -> float:
        """Block RAMs in 18-Kbit units (a RAMB36 counts two), the unit of BRAM budgets."""
        return 2 * self.bram36 + self.bram18 + self.bram4 / 4.5

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Resources:
        return Resources(**{f.name: int(data.get(f.name, 0)) for f in fields(Resources)})

    def describe(self) -> str:
        brams = ", ".join(f"{getattr(self, name)} {label}" for name, label in
                          (("bram36", "RAMB36"), ("bram18", "BRAM18"), ("bram4", "BRAM4K"))
                          if getattr(self, name))
        return (f"{self.lut} LUT, {self.ff} FF, {brams or '0 BRAM'}, {self.dsp} DSP")


def total(parts: list[Resources]) -> Resources:
    """The sum of ``parts``, field by field (summed in one pass: a design's total adds a
    part per stage, FIFO and converter)."""
    return Resources(**{name: sum(getattr(part, name) for part in parts)
                        for name in _FIELD_NAMES})


_FIELD_NAMES = tuple(f.name for f in fields(Resources))
