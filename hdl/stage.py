"""The protocol every stage configuration of the hardware generators implements.

A top that chains stages (or, later, wires them as a DAG) needs to know only how wide a
stage's beats are, how to build it, which counters it carries and how deep a FIFO in front
of it should be. Each configuration (engine, sparse engine, sliding window, pool, ...)
answers these itself, so adding a stage kind adds a configuration class and touches no top.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from amaranth.lib import wiring

from hdl.memory import MemorySpec
from hdl.perf import Counter


@runtime_checkable
class StageConfig(Protocol):
    """What a top needs from one stage's configuration."""

    name: str
    memory_style: str
    """Where the stage's memories go (:mod:`hdl.memory`)."""

    @property
    def memories(self) -> tuple[MemorySpec, ...]:
        """Every on-chip memory of the stage, as it builds them."""
        ...

    @property
    def in_elems(self) -> int:
        """Elements per input beat."""
        ...

    @property
    def out_elems(self) -> int:
        """Elements per output beat."""
        ...

    @property
    def in_elem_bits(self) -> int:
        """Bits per input element (storage code width)."""
        ...

    @property
    def out_elem_bits(self) -> int:
        """Bits per output element."""
        ...

    @property
    def counter_names(self) -> tuple[Counter, ...]:
        """The counters the component carries when built with counters, in port order."""
        ...

    def build(self, counters: bool = True) -> wiring.Component:
        """The component: ``i``/``o`` streams and, with counters, a ``perf`` port."""
        ...

    def input_fifo_depth(self, minimum: int) -> int:
        """Depth of the FIFO in front of this stage, at least ``minimum`` beats."""
        ...


class SameElementStream:
    """StageConfig members of a stage that takes and emits ``simd`` elements of
    ``elem_bits`` per beat (window generators, pools); the host defines ``simd``,
    ``elem_bits``, ``counter_names`` and ``build``."""

    simd: int
    elem_bits: int

    @property
    def in_elems(self) -> int:
        return self.simd

    @property
    def out_elems(self) -> int:
        return self.simd

    @property
    def in_elem_bits(self) -> int:
        return self.elem_bits

    @property
    def out_elem_bits(self) -> int:
        return self.elem_bits

    def input_fifo_depth(self, minimum: int) -> int:
        return max(minimum, 4)
