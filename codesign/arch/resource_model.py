"""The analytical resource model: LUT, FF, block RAM and DSP of a stage without synthesis.

Each stage kind describes its hardware as *structure* (:class:`Structure`, from
:meth:`codesign.arch.stage.Stage.resource_structure`): counts that follow from its
configuration (counter bits, accumulator bits, lanes, comparators, memories and their
styles) as named LUT and FF features, plus the parts that are counted exactly. The model
prices the features with per-target coefficients from a calibration table
(``codesign/data/resources_<target>.yaml``, fitted by ``benchmarks/resources.py
--calibrate`` to Yosys syntheses of a spread of stages) and adds the exact parts:

- block RAMs: the geometry Yosys's memory mapper picks for each memory placed in block RAM
  (:func:`xc7_block_rams`: the cheapest of the RAMB18/RAMB36 true- and simple-dual-port
  configurations, costed as ``memory_libmap`` costs them), and the read multiplexers
  between its cells' address blocks as a feature;
- a RAM without a ``ram_style`` (the FIFOs between stages): block RAM or LUT RAM, whichever
  the mapper's costs favour (:func:`xc7_unstyled_ram`);
- DSPs: the DSP48Es of every multiplier Yosys maps to DSPs (:func:`xc7_dsps`: a product
  whose value range needs at least 9 bits, split into 25x18 pieces);
- LUT RAM: LUTs of the RAM64M/RAM32M cells a distributed RAM takes;
- a read-only memory in logic: its distinct non-constant bit columns (Yosys folds constant
  columns and merges identical ones), priced as a feature of their depth class; one read
  combinationally by the LUTs it feeds is priced with them by its reader.

So the block RAM and DSP counts are exact by construction and the LUT and FF counts are as
good as the calibration (the benchmark prints the worst case).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources as package_files
from pathlib import Path

import numpy as np
import yaml

from codesign.bits import range_bits
from codesign.errors import UnknownTargetError
from codesign.resources import Resources
from hdl.memory import SHALLOW_ROM_DEPTH, MemorySpec, resolve_style

CALIBRATED_TARGETS = ("xc7",)

SRL_MIN_LENGTH = 3
"""Shortest flip-flop chain Yosys turns into a shift-register LUT (``xilinx_srl -minlen 3``)."""


@dataclass
class Structure:
    """A stage's hardware as the model sees it: LUT and FF features and exact counts."""

    lut: dict[str, float] = field(default_factory=dict)
    ff: dict[str, float] = field(default_factory=dict)
    exact: Resources = Resources()

    def add_lut(self, name: str, amount: float) -> None:
        if amount:
            self.lut[name] = self.lut.get(name, 0.0) + float(amount)

    def add_ff(self, name: str, amount: float) -> None:
        if amount:
            self.ff[name] = self.ff.get(name, 0.0) + float(amount)

    def add_exact(self, resources: Resources) -> None:
        self.exact = self.exact + resources

    def of_kind(self, kind: str) -> Structure:
        """The features named ``kind.feature``: each stage kind is priced by coefficients of
        its own (a counter bit of a sparse engine's front end need not cost what a dense
        one's does). A feature already qualified (``engine.acc_bits``: hardware several
        kinds build with the same code) keeps its name and its shared coefficient."""
        def qualify(features: dict[str, float]) -> dict[str, float]:
            return {k if "." in k else f"{kind}.{k}": v for k, v in features.items()}

        return Structure(qualify(self.lut), qualify(self.ff), self.exact)


PHYSICAL_FF = {"mem_read_reg": 1.0}
"""Flip-flop features that count flip-flops one for one (a memory's read register): a stage
kind whose calibration spread has no case with such a memory prices them at this rate
instead of refusing the estimate."""


@dataclass(frozen=True)
class Calibration:
    """LUTs and FFs per unit of each feature, for one target."""

    target: str
    lut: Mapping[str, float]
    ff: Mapping[str, float]
    source: str = ""

    def ff_rate(self, feature: str) -> float | None:
        """FFs per unit of ``feature``: its coefficient, else its physical count."""
        rate = self.ff.get(feature)
        return PHYSICAL_FF.get(feature.rsplit(".", 1)[-1]) if rate is None else rate

    def price(self, structure: Structure) -> Resources:
        ff_rates = {k: self.ff_rate(k) for k in structure.ff}
        unknown = sorted((set(structure.lut) - set(self.lut))
                         | {k for k, rate in ff_rates.items() if rate is None})
        if unknown:
            raise UnknownTargetError(f"the {self.target} resource calibration has no "
                                     f"coefficient for {', '.join(unknown)}; rerun "
                                     "benchmarks/resources.py --calibrate")
        lut = sum(self.lut[k] * v for k, v in structure.lut.items())
        ff = sum(ff_rates[k] * v for k, v in structure.ff.items())
        return structure.exact + Resources(lut=round(lut), ff=round(ff))


def calibration_path(target: str) -> Path:
    return Path(str(package_files.files("codesign.data").joinpath(f"resources_{target}.yaml")))


@cache
def load_calibration(target: str) -> Calibration:
    """The calibration table of ``target`` (a named error for a target without one)."""
    if target not in CALIBRATED_TARGETS:
        raise UnknownTargetError(f"the resource model is calibrated for "
                                 f"{', '.join(CALIBRATED_TARGETS)}, not {target!r}; synthesise "
                                 "instead (codesign synth --target ...)")
    data = yaml.safe_load(calibration_path(target).read_text())
    return Calibration(target, dict(data["lut"]), dict(data["ff"]), str(data.get("source", "")))


def estimate(structure: Structure, target: str) -> Resources:
    return load_calibration(target).price(structure)


# ---- memories ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _BramConfig:
    cell: str
    cost: int
    abits: int
    widths: tuple[int, ...]
    blocks: int = 1
    """Cells per replica (the cascade mode pairs two RAMB36)."""


_XC7_BRAMS = (
    # true dual port: HALF (RAMB18), FULL (RAMB36), CASCADE (two RAMB36, 64K x 1)
    _BramConfig("bram18", 129, 14, (1, 2, 4, 9, 18)),
    _BramConfig("bram36", 257, 15, (1, 2, 4, 9, 18, 36)),
    _BramConfig("bram36", 513, 16, (1, 2, 4, 9), blocks=2),
    # simple dual port (one read, one write port): twice the width
    _BramConfig("bram18", 129, 14, (1, 2, 4, 9, 18, 36)),
    _BramConfig("bram36", 257, 15, (1, 2, 4, 9, 18, 36, 72)),
)
_BYTE = 9


def xc7_block_rams(memory: MemorySpec, width: int | None = None) -> Resources:
    """RAMB18/RAMB36 of one memory in block RAM, as Yosys's memory mapper chooses them.

    For every configuration and data width: the memory needs ceil(depth / words) address
    blocks of ceil(width / data width) cells (a written memory's width rounded up to 9-bit
    bytes for widths of 9 and more); the cost is the cells' cost plus half a point per read
    bit multiplexed (and per address block written) between address blocks. The cheapest
    wins, the first of equals.
    """
    return _xc7_block_ram_choice(memory, memory.width if width is None else width)[1]


def _xc7_block_ram_choice(memory: MemorySpec, width: int) -> tuple[float, Resources, int]:
    """(memory_libmap's cost, the cells, the read bits multiplexed between address blocks)
    of the cheapest block RAM geometry of a memory."""
    if width == 0:
        return 0.0, Resources(), 0
    best: tuple[float, Resources, int] | None = None
    for config in _XC7_BRAMS:
        for index, unit in enumerate(config.widths):
            words = 1 << (config.abits - index)
            blocks_a = -(-memory.depth // words)
            byte = 1 if memory.rom else (_BYTE if unit >= _BYTE else unit)
            padded = -(-width // byte) * byte
            replicas = -(-(blocks_a * padded) // unit)
            cost = float(config.cost * replicas)
            cost += 0.5 * (blocks_a - 1) * width
            if memory.writable and blocks_a != 1:
                cost += 0.5 * blocks_a
            count = Resources(**{config.cell: replicas * config.blocks})
            if best is None or cost < best[0]:
                best = (cost, count, (blocks_a - 1) * width)
    assert best is not None
    return best


XC7_LUTRAM_COST = 8
"""memory_libmap's cost of one LUT RAM cell (RAM32M, RAM64M), scaled by the share of its
width a memory uses."""


def xc7_unstyled_ram(memory: MemorySpec) -> Resources:
    """Block RAM or LUT RAM of a written memory that carries no ``ram_style`` (the FIFOs
    between stages): Yosys takes the cheaper by its mapper's costs, LUT RAM at
    :data:`XC7_LUTRAM_COST` per cell in proportion to the bits it holds (32 x 6 or 64 x 3 a
    cell) plus half a point per read bit multiplexed between 64-word blocks, against the
    cheapest block RAM geometry (:func:`xc7_block_rams`). Checked against Yosys for FIFOs of
    1-32 bits and 32-1024 words (``benchmarks/resources.py``)."""
    if memory.depth <= 32:
        blocks, cell_width = 1, 6
    else:
        blocks, cell_width = -(-memory.depth // 64), 3
    lutram_cost = (XC7_LUTRAM_COST * blocks * memory.width / cell_width
                   + 0.5 * (blocks - 1) * memory.width)
    block_cost, block, _ = _xc7_block_ram_choice(memory, memory.width)
    if block_cost < lutram_cost:
        return block
    luts = xc7_lutram_luts(memory)
    return Resources(lut=luts, lutram=luts)


def rom_columns(memory: MemorySpec, *, distinct: bool = False) -> int:
    """Bit columns of a read-only memory's image that are not constant (Yosys drops those
    from the memory); with ``distinct``, identical columns count once (as LUTs, one logic
    function serves them all)."""
    varying, different = _rom_column_counts(memory)
    return different if distinct else varying


@lru_cache(maxsize=256)
def _rom_column_counts(memory: MemorySpec) -> tuple[int, int]:
    """(non-constant columns, distinct non-constant columns) of a ROM image: both counts at
    once, remembered, as an engine's model asks for its weight memory twice."""
    if not memory.init:
        return 0, 0
    width = memory.width
    if width <= 64:
        # words of up to 64 bits: one array of 64-bit integers, its bytes little-endian
        words = np.array([word & ((1 << width) - 1) for word in memory.init], dtype="<u8")
        data = words.reshape(-1, 1).view(np.uint8)
    else:
        size = (width + 7) // 8
        data = np.frombuffer(b"".join((word & ((1 << width) - 1)).to_bytes(size, "little")
                                      for word in memory.init),
                             dtype=np.uint8).reshape(len(memory.init), size)
    bits = np.unpackbits(data, axis=1, bitorder="little")[:, :width]
    ones = bits.sum(axis=0)
    varying = bits[:, (ones > 0) & (ones < len(memory.init))]
    if not varying.shape[1]:
        return 0, 0
    columns = np.packbits(varying.T, axis=1)       # one row of bytes per column
    return int(varying.shape[1]), len({column.tobytes() for column in columns})


def xc7_lutram_luts(memory: MemorySpec) -> int:
    """LUTs of a distributed RAM, four per RAM32M/RAM64M (or RAM256X1S) cell: single port
    (one address) 32 x 8, 64 x 4 or 256 x 1 per cell; simple dual port 32 x 6 or 64 x 3."""
    w, d = memory.width, memory.depth
    if memory.single_port:
        if d <= 32:
            return 4 * -(-w // 8)
        if d <= 64:
            return 4 * -(-w // 4)
        return 4 * -(-d // 256) * w
    if d <= 32:
        return 4 * -(-w // 6)
    return 4 * -(-d // 64) * -(-w // 3)


def memory_structure(memories: Iterable[MemorySpec], style: str, target: str,
                     structure: Structure) -> None:
    """Add every memory of a stage, placed by ``style``, to its structure. A read-only
    memory in logic read combinationally adds nothing here: its columns fold into the LUTs
    of its reader, whose structure prices them (``rom_lane`` of a dense engine)."""
    for memory in memories:
        placed = resolve_style(style, memory)
        if memory.rom:
            if placed != "block" and not memory.sync_read:
                continue
            if placed == "block":
                _block_rams(target, memory, rom_columns(memory), structure)
            else:
                columns = rom_columns(memory, distinct=True)
                structure.add_lut(*_rom_logic(memory.depth, columns))
                structure.add_ff("mem_read_reg", columns)
            continue
        if placed == "block":
            _block_rams(target, memory, memory.width, structure)
        elif placed == "distributed":
            luts = xc7_lutram_luts(memory)
            structure.add_exact(Resources(lut=luts, lutram=luts))
            structure.add_lut("lutram_mux", memory.width * (-(-memory.depth // 64) - 1))
            structure.add_ff("mem_read_reg", memory.width)
        else:
            structure.add_lut("reg_mem", memory.bits)
            structure.add_ff("reg_mem", memory.bits)
            structure.add_ff("mem_read_reg", memory.width)


def _rom_logic(depth: int, columns: int) -> tuple[str, int]:
    """(feature, amount) of a read-only memory's ``columns`` distinct bit columns in logic,
    by depth: up to 16 words a column folds into the LUTs that read it; up to 64 words it is
    one LUT6; deeper, one LUT6 per 64 words and the multiplexers between them, priced per
    64 words by a coefficient of its own (Yosys builds those multiplexers from LUTs, so a
    128-word column costs far more than two 64-word ones)."""
    if depth <= SHALLOW_ROM_DEPTH:
        return "rom_lut_shallow", columns
    if depth <= 64:
        return "rom_lut", columns
    return "rom_lut_deep", columns * -(-depth // 64)


def _block_rams(target: str, memory: MemorySpec, width: int, structure: Structure) -> None:
    """A memory in block RAM: its cells (exact) and, when it is deeper than one cell, the
    read bits multiplexed between the cells' address blocks (``bram_mux``, LUTs)."""
    if target != "xc7":
        raise UnknownTargetError(f"block RAM geometry is modelled for xc7, not {target!r}")
    _, cells, muxed = _xc7_block_ram_choice(memory, width)
    structure.add_exact(cells)
    structure.add_lut("bram_mux", muxed)


# ---- multipliers ------------------------------------------------------------------------

XC7_DSP_A, XC7_DSP_B, XC7_DSP_MIN, XC7_DSP_MIN_PRODUCT = 25, 18, 2, 9

Range = tuple[int, int]


@lru_cache(maxsize=1024)
def xc7_dsps(a: Range, b: Range) -> int:
    """DSP48E1s of one multiplier of operands in ranges ``a`` and ``b``, or 0 when Yosys
    keeps it in LUTs (remembered: every lane of an engine asks for the same multiplier,
    and an automatic folding prices many engines of one layer).

    Yosys narrows a product to the bits its value range needs; one narrower than 9 bits
    stays in LUTs. Otherwise the operands (an unsigned one widened by a sign bit: the DSP
    multiplies signed numbers) take one 25 x 18 DSP, or are split into pieces of 24 x 17
    magnitude bits.
    """
    corners = [x * y for x in a for y in b]
    product_bits = range_bits(min(corners), max(corners))[0]
    a_bits, a_signed = range_bits(*a)
    b_bits, b_signed = range_bits(*b)
    wide_a, wide_b = a_bits + (not a_signed), b_bits + (not b_signed)
    if min(wide_a, wide_b) < XC7_DSP_MIN or product_bits < XC7_DSP_MIN_PRODUCT:
        return 0
    wide_a, wide_b = max(wide_a, wide_b), min(wide_a, wide_b)
    if wide_a <= XC7_DSP_A and wide_b <= XC7_DSP_B:
        return 1
    return (math.ceil((wide_a - 1) / (XC7_DSP_A - 1))
            * math.ceil((wide_b - 1) / (XC7_DSP_B - 1)))


def multiplier_dsps(a: Range, b: Range, target: str) -> int:
    if target != "xc7":
        raise UnknownTargetError(f"DSP mapping is modelled for xc7, not {target!r}")
    return xc7_dsps(a, b)


def bits_for(n: int) -> int:
    """Bits of a counter over ``n`` values (at least one)."""
    return max(1, (max(n, 2) - 1).bit_length())
