"""The protocols every stage configuration of the hardware generators implements.

A top that wires stages (a chain, or a DAG with forks and joins) needs to know only how wide
a stage's beats are on each of its streams, how to build it, which counters it carries and
how deep a FIFO in front of it should be. Each configuration (engine, sparse engine, sliding
window, pool, add, concatenation, fork, ...) answers these itself, so adding a stage kind
adds a configuration class and touches no top.

Most stages have one input and one output stream (:class:`StageConfig`: ports ``i`` and
``o``). A join (add, concatenation) has several inputs and a fork several outputs
(:class:`MultiPortStageConfig`): a direction with one stream names it ``i``/``o``, a
direction with several names them ``i0, i1, ...``/``o0, o1, ...``. :func:`input_ports`,
:func:`output_ports` and :func:`port` read either kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from amaranth.lib import stream, wiring

from hdl.memory import MemorySpec
from hdl.perf import Counter


@dataclass(frozen=True)
class PortFormat:
    """One stream of a stage: elements per beat and bits per element (storage codes)."""

    elems: int
    elem_bits: int

    @property
    def width(self) -> int:
        return self.elems * self.elem_bits


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


class SimdElems:
    """Members of a stage (its configuration here, its codesign stage too) that takes and
    emits ``simd`` elements per beat; the host defines ``simd``."""

    simd: int

    @property
    def in_elems(self) -> int:
        return self.simd

    @property
    def out_elems(self) -> int:
        return self.simd


class SameElementStream(SimdElems):
    """StageConfig members of a stage that takes and emits ``simd`` elements of
    ``elem_bits`` per beat (window generators, pools); the host defines ``simd``,
    ``elem_bits``, ``counter_names`` and ``build``."""

    elem_bits: int

    @property
    def in_elem_bits(self) -> int:
        return self.elem_bits

    @property
    def out_elem_bits(self) -> int:
        return self.elem_bits

    def input_fifo_depth(self, minimum: int) -> int:
        return max(minimum, 4)


@runtime_checkable
class MultiPortStageConfig(Protocol):
    """What a top needs from a stage with several input or output streams."""

    name: str

    @property
    def input_ports(self) -> tuple[PortFormat, ...]:
        """Every input stream, in port order."""
        ...

    @property
    def output_ports(self) -> tuple[PortFormat, ...]:
        """Every output stream, in port order."""
        ...

    @property
    def counter_names(self) -> tuple[Counter, ...]:
        ...

    def build(self, counters: bool = True) -> wiring.Component:
        """The component: streams named as in the module docstring, and ``perf``."""
        ...

    def input_fifo_depth(self, minimum: int) -> int:
        """Depth of the FIFO in front of each input, at least ``minimum`` beats."""
        ...


AnyStageConfig = StageConfig | MultiPortStageConfig


def input_ports(config: AnyStageConfig) -> tuple[PortFormat, ...]:
    if isinstance(config, MultiPortStageConfig):
        return config.input_ports
    return (PortFormat(config.in_elems, config.in_elem_bits),)


def output_ports(config: AnyStageConfig) -> tuple[PortFormat, ...]:
    if isinstance(config, MultiPortStageConfig):
        return config.output_ports
    return (PortFormat(config.out_elems, config.out_elem_bits),)


def port_name(direction: str, index: int, count: int) -> str:
    """``i``/``o`` for a direction's only stream, else ``i<k>``/``o<k>``."""
    return direction if count == 1 else f"{direction}{index}"


def port(component: wiring.Component, direction: str, index: int, count: int
         ) -> stream.Interface:
    """Stream ``index`` of ``count`` in ``direction`` (``"i"`` or ``"o"``) of a component."""
    return getattr(component, port_name(direction, index, count))


def stream_ports(direction: str, formats: tuple[PortFormat, ...]) -> dict:
    """Signature members for a direction's streams (``In`` for ``"i"``, ``Out`` for
    ``"o"``), named as :func:`port_name` says."""
    from amaranth.lib.wiring import In, Out

    flow = In if direction == "i" else Out
    return {port_name(direction, k, len(formats)): flow(stream.Signature(f.width))
            for k, f in enumerate(formats)}
