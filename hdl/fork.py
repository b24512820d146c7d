"""Stream fork: one stream duplicated to several consumers.

Each output offers the input beat until it takes it; the input beat is consumed once every
output has taken it (an output that took it early waits, its ``valid`` low). Outputs thus
see every beat exactly once, in order, and a slow consumer delays the others by at most the
one beat in flight: how far one consumer may run ahead of another is decided by the FIFOs
behind the fork, which the organisation sizes. No register sits in the data path: a beat
passes in the cycle it arrives (FILL = 0), so span = issue + stall_in + stall_out.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring

from hdl.errors import HardwareConfigError
from hdl.perf import Counter, PerfCounters, count_issue_span, perf_port
from hdl.stage import PortFormat, port, stream_ports

FILL_CYCLES = 0

PERF_COUNTERS = (
    Counter.ISSUE,          # beats passed to every output
    Counter.STALL_IN,       # cycles waiting for an input beat (between the first and last)
    Counter.STALL_OUT,      # cycles an input beat waited for a slow output
    Counter.SPAN,           # first beat passed .. last beat passed, inclusive
    Counter.IN_BEATS,
    Counter.OUT_BEATS,      # beats every output has taken
)


@dataclass(frozen=True)
class ForkConfig:
    """A fork of a stream of ``elems`` x ``elem_bits`` beats to ``outputs`` consumers."""

    name: str
    outputs: int
    elems: int
    elem_bits: int

    def __post_init__(self) -> None:
        if self.outputs < 2 or self.elems < 1 or self.elem_bits < 1:
            raise HardwareConfigError(f"fork {self.name!r}: needs at least 2 outputs and "
                                      f"positive beats, got outputs={self.outputs}, "
                                      f"elems={self.elems}, elem_bits={self.elem_bits}")

    # ---- the MultiPortStageConfig protocol (hdl.stage) --------------------------------
    @property
    def input_ports(self) -> tuple[PortFormat, ...]:
        return (PortFormat(self.elems, self.elem_bits),)

    @property
    def output_ports(self) -> tuple[PortFormat, ...]:
        return (PortFormat(self.elems, self.elem_bits),) * self.outputs

    @property
    def counter_names(self) -> tuple[Counter, ...]:
        return PERF_COUNTERS

    def build(self, counters: bool = True) -> StreamFork:
        return StreamFork(self, counters)

    def input_fifo_depth(self, minimum: int) -> int:
        return max(minimum, 2)


class StreamFork(wiring.Component):
    """Input ``i``, outputs ``o0 .. o<n-1>``; see the module docstring."""

    def __init__(self, config: ForkConfig, counters: bool = True) -> None:
        self.config = config
        self.counters = counters
        super().__init__({**stream_ports("i", config.input_ports),
                          **stream_ports("o", config.output_ports),
                          **perf_port(PERF_COUNTERS, counters)})

    def elaborate(self, platform):
        m = Module()
        n = self.config.outputs
        outs = [port(self, "o", k, n) for k in range(n)]
        taken = Signal(n)
        accept = Signal()
        m.d.comb += self.i.ready.eq(Cat(*(taken[k] | o.ready for k, o in enumerate(outs)))
                                    .all())
        m.d.comb += accept.eq(self.i.valid & self.i.ready)
        for k, o in enumerate(outs):
            m.d.comb += [o.valid.eq(self.i.valid & ~taken[k]), o.payload.eq(self.i.payload)]
        with m.If(accept):
            m.d.sync += taken.eq(0)
        with m.Else():
            m.d.sync += taken.eq(taken | Cat(*(o.valid & o.ready for o in outs)))
        if self.counters:
            perf = PerfCounters(PERF_COUNTERS, True)
            count_issue_span(m, perf, issue=accept, out_fire=accept,
                             stalled=self.i.valid & ~self.i.ready)
            perf.count(m, Counter.IN_BEATS, accept)
            perf.count(m, Counter.OUT_BEATS, accept)
            perf.drive(m, self.perf)
        return m
