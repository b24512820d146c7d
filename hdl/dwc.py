"""Stream width conversion between engines whose PE and SIMD differ.

A layer emits PE elements per beat and the next consumes SIMD elements per beat. The
converter regroups elements without reordering them (element j of a beat sits at bits
[j*E, (j+1)*E), earlier beats hold earlier elements) and sustains one beat per cycle on its
slower side, so it never becomes the bottleneck of a balanced pipeline.
"""

from __future__ import annotations

import math

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.errors import HardwareConfigError


class _Gather(wiring.Component):
    """k narrow beats -> one wide beat (first beat in the low bits)."""

    def __init__(self, elem_bits: int, in_elems: int, k: int) -> None:
        self._bits = elem_bits * in_elems
        self._k = k
        super().__init__({"i": In(stream.Signature(self._bits)),
                          "o": Out(stream.Signature(self._bits * k))})

    def elaborate(self, platform):
        m = Module()
        k = self._k
        parts = [Signal(self._bits, name=f"part{n}") for n in range(k - 1)]
        count = Signal(range(max(k, 2)))
        out_free = ~self.o.valid | self.o.ready
        full_next = count == k - 1
        m.d.comb += self.i.ready.eq(~full_next | out_free)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(full_next):
                m.d.sync += [self.o.payload.eq(Cat(*parts, self.i.payload)),
                             self.o.valid.eq(1), count.eq(0)]
            with m.Else():
                for n, part in enumerate(parts):
                    with m.If(count == n):
                        m.d.sync += part.eq(self.i.payload)
                m.d.sync += count.eq(count + 1)
        return m


class _Split(wiring.Component):
    """One wide beat -> k narrow beats (low bits first)."""

    def __init__(self, elem_bits: int, out_elems: int, k: int) -> None:
        self._bits = elem_bits * out_elems
        self._k = k
        super().__init__({"i": In(stream.Signature(self._bits * k)),
                          "o": Out(stream.Signature(self._bits))})

    def elaborate(self, platform):
        m = Module()
        k = self._k
        data = Signal(self._bits * k)
        index = Signal(range(max(k, 2)))
        full = Signal()
        pieces = Array(data.word_select(n, self._bits) for n in range(k))
        last = index == k - 1
        m.d.comb += [self.o.valid.eq(full), self.o.payload.eq(pieces[index]),
                     self.i.ready.eq(~full | (self.o.ready & last))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += index.eq(Mux(last, 0, index + 1))
            with m.If(last):
                m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [data.eq(self.i.payload), full.eq(1), index.eq(0)]
        return m


class StreamWidthConverter(wiring.Component):
    """Regroup a stream of ``in_elems`` x ``elem_bits`` beats into ``out_elems`` x ``elem_bits``."""

    def __init__(self, elem_bits: int, in_elems: int, out_elems: int) -> None:
        if min(elem_bits, in_elems, out_elems) < 1:
            raise HardwareConfigError("element width and counts must be positive")
        self.elem_bits, self.in_elems, self.out_elems = elem_bits, in_elems, out_elems
        super().__init__({"i": In(stream.Signature(elem_bits * in_elems)),
                          "o": Out(stream.Signature(elem_bits * out_elems))})

    def elaborate(self, platform):
        m = Module()
        common = math.gcd(self.in_elems, self.out_elems)
        head: wiring.PureInterface | stream.Interface = self.i
        if self.in_elems > common:
            m.submodules.split = split = _Split(self.elem_bits, common, self.in_elems // common)
            wiring.connect(m, wiring.flipped(self.i), split.i)
            head = split.o
        if self.out_elems > common:
            m.submodules.gather = gather = _Gather(self.elem_bits, common,
                                                   self.out_elems // common)
            if head is self.i:
                wiring.connect(m, wiring.flipped(self.i), gather.i)
            else:
                wiring.connect(m, head, gather.i)
            wiring.connect(m, gather.o, wiring.flipped(self.o))
        elif head is self.i:
            m.d.comb += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid),
                         self.i.ready.eq(self.o.ready)]
        else:
            wiring.connect(m, head, wiring.flipped(self.o))
        return m
