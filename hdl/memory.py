"""Where a stage's on-chip memories go: block RAM, distributed (LUT) RAM or registers.

Every stage configuration lists its memories (:class:`MemorySpec`: name, word width, depth,
initial image, whether it is written and how it is read) and carries one ``memory_style``
(FINN's ``ram_style``): ``"block"``, ``"distributed"`` or ``"registers"`` for all of the
stage's memories, or ``"auto"`` to pick per memory by size (:func:`resolve_style`). The
chosen style is emitted as a ``ram_style`` attribute on the memory in the Verilog; Yosys's
memory mapper (``memory_libmap``, used by ``synth_xilinx``, ``synth_ecp5`` and
``synth_ice40``) honours it: ``block`` maps to block RAM (RAMB18/36, DP16KD, SB_RAM40_4K),
``distributed`` to LUT RAM, ``registers`` to flip-flops and multiplexers. Yosys maps no
read-only memory to LUT RAM: a distributed ROM is emitted as ``logic``, which becomes LUTs
(one LUT6 per word bit and 64 words) behind the read register, as a registered ROM does.

The ``auto`` rule, by the memory's depth D and bits B = width x D (FINN's depth-trigger idea:
a block RAM is worth its 18 Kbit for deep memories; a shallow one would use a sliver of it,
while LUTs hold it at one LUT per bit of a word):

- ``registers`` if D <= 2 or B <= 64: a handful of flip-flops;
- ``block`` if D > 64, or D > 16 and B > 1024;
- ``distributed`` otherwise (at most 16 words, or at most 1 Kbit).

A memory read combinationally (no read register) cannot live in block RAM: ``block``
resolves to ``distributed`` for it.

A read-only memory of at most :data:`SHALLOW_ROM_DEPTH` words outside block RAM
(:func:`shallow_logic_rom`) is a function of four address bits per bit column: a LUT6 that
reads a column combinationally computes it together with up to two more inputs of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from hdl.errors import HardwareConfigError

MemoryStyle = Literal["auto", "block", "distributed", "registers"]
MEMORY_STYLES: tuple[str, ...] = ("auto", "block", "distributed", "registers")

MemoryAttrs = Callable[[str], dict[str, str]]
"""A stage's memory attributes by memory name (its ``ram_style``), for the builders of
memories the stage does not build itself (the epilogue's parameter banks)."""

AUTO_REGISTER_DEPTH = 2
AUTO_REGISTER_BITS = 64
AUTO_BLOCK_DEPTH = 64
AUTO_SHALLOW_DEPTH = 16
AUTO_SMALL_BITS = 1024

SHALLOW_ROM_DEPTH = 16
"""A read-only memory this shallow (four address bits) in logic folds into the LUTs that
read it."""


@dataclass(frozen=True)
class MemorySpec:
    """One on-chip memory of a stage, as the stage builds it."""

    name: str
    width: int
    depth: int
    init: tuple[int, ...] = ()
    """Initial image (read-only memories: their whole content)."""
    writable: bool = False
    sync_read: bool = True
    """False for a read port without a read register (``domain="comb"``)."""
    single_port: bool = False
    """Written and read at the same address (one port of a RAM serves both)."""

    @property
    def bits(self) -> int:
        return self.width * self.depth

    @property
    def rom(self) -> bool:
        return not self.writable


def check_style(style: str, where: str) -> str:
    """``style`` if it is a memory style, else a named error listing the accepted ones."""
    if style not in MEMORY_STYLES:
        raise HardwareConfigError(f"{where}: memory style {style!r} is not one of "
                                  + ", ".join(MEMORY_STYLES))
    return style


def resolve_style(style: str, memory: MemorySpec) -> str:
    """The concrete style (``block``, ``distributed`` or ``registers``) of one memory."""
    check_style(style, f"memory {memory.name!r}")
    if style == "auto":
        if memory.depth <= AUTO_REGISTER_DEPTH or memory.bits <= AUTO_REGISTER_BITS:
            style = "registers"
        elif memory.depth > AUTO_BLOCK_DEPTH or (memory.depth > AUTO_SHALLOW_DEPTH
                                                 and memory.bits > AUTO_SMALL_BITS):
            style = "block"
        else:
            style = "distributed"
    if style == "block" and not memory.sync_read:
        style = "distributed"
    return style


def shallow_logic_rom(style: str, memory: MemorySpec) -> bool:
    """``memory`` is read-only, at most :data:`SHALLOW_ROM_DEPTH` words deep and not placed
    in block RAM by ``style``: each bit column is a LUT4 function of the address, which the
    LUT reading the column can compute itself when no register sits between them."""
    return (memory.rom and memory.depth <= SHALLOW_ROM_DEPTH
            and resolve_style(style, memory) != "block")


def memory_attrs(style: str, memory: MemorySpec) -> dict[str, str]:
    """The Verilog attributes of one memory: ``ram_style`` = its resolved style (``logic``
    for a distributed ROM, see the module docstring)."""
    resolved = resolve_style(style, memory)
    if resolved == "distributed" and memory.rom:
        resolved = "logic"
    return {"ram_style": resolved}


def find_memory(memories: Sequence[MemorySpec], name: str) -> MemorySpec:
    for memory in memories:
        if memory.name == name:
            return memory
    raise HardwareConfigError(f"no memory {name!r}; memories: "
                              + ", ".join(m.name for m in memories))


def resolved_styles(style: str, memories: Sequence[MemorySpec]) -> dict[str, str]:
    """Memory name -> resolved style, for reports."""
    return {memory.name: resolve_style(style, memory) for memory in memories}
