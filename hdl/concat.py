"""Stream concatenation along the channels: several maps of one element type -> one map.

Each input carries an (H, W, C_k) map in NHWC raster order, SIMD elements per beat. For
every pixel the unit passes the C_0/SIMD beats of input 0, then the C_1/SIMD beats of
input 1, and so on: the output pixel holds the channels of every input one after the other.
It takes one beat per cycle from the input whose turn it is and holds it in its output
register (FILL = 1); the other inputs wait, which is why the organisation sizes the FIFOs in
front of a concatenation: an input whose producer runs ahead (a 1x1 branch beside a 3x3 one)
must be able to buffer what the slower branch has not yet delivered. At full rate
N beats take N + FILL cycles; for any traffic span = issue + stall_in + stall_out + FILL.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Array, Module, Signal
from amaranth.lib import wiring

from hdl.arith import wrap_increment
from hdl.errors import HardwareConfigError
from hdl.perf import Counter, PerfCounters, count_issue_span, perf_port
from hdl.stage import PortFormat, port, stream_ports

FILL_CYCLES = 1

PERF_COUNTERS = (
    Counter.ISSUE,          # beats passed
    Counter.STALL_IN,       # cycles waiting for the input whose turn it is
    Counter.STALL_OUT,      # cycles frozen by output backpressure
    Counter.SPAN,           # first beat taken .. last output produced, inclusive
    Counter.IN_BEATS,       # beats taken from all inputs
    Counter.OUT_BEATS,
)


@dataclass(frozen=True)
class ConcatConfig:
    """Concatenation of inputs of ``parts`` channels each, ``simd`` elements per beat."""

    name: str
    parts: tuple[int, ...]
    simd: int
    elem_bits: int

    def __post_init__(self) -> None:
        where = f"concatenation {self.name!r}"
        if len(self.parts) < 2 or self.simd < 1 or self.elem_bits < 1:
            raise HardwareConfigError(f"{where}: needs at least two inputs and positive beats")
        bad = [c for c in self.parts if c < 1 or c % self.simd]
        if bad:
            raise HardwareConfigError(f"{where}: SIMD={self.simd} must divide every input's "
                                      f"channels {list(self.parts)}")

    @property
    def beats(self) -> tuple[int, ...]:
        """Beats of each input per pixel."""
        return tuple(c // self.simd for c in self.parts)

    @property
    def pixel_beats(self) -> int:
        return sum(self.beats)

    # ---- the MultiPortStageConfig protocol (hdl.stage) --------------------------------
    @property
    def input_ports(self) -> tuple[PortFormat, ...]:
        return (PortFormat(self.simd, self.elem_bits),) * len(self.parts)

    @property
    def output_ports(self) -> tuple[PortFormat, ...]:
        return (PortFormat(self.simd, self.elem_bits),)

    @property
    def counter_names(self) -> tuple[Counter, ...]:
        return PERF_COUNTERS

    def build(self, counters: bool = True) -> StreamConcat:
        return StreamConcat(self, counters)

    def input_fifo_depth(self, minimum: int) -> int:
        return max(minimum, 2)


class StreamConcat(wiring.Component):
    """Inputs ``i0 .. i<n-1>``, output ``o``; see the module docstring."""

    def __init__(self, config: ConcatConfig, counters: bool = True) -> None:
        self.config = config
        self.counters = counters
        super().__init__({**stream_ports("i", config.input_ports),
                          **stream_ports("o", config.output_ports),
                          **perf_port(PERF_COUNTERS, counters)})

    def elaborate(self, platform):
        m = Module()
        c = self.config
        n = len(c.parts)
        ins = [port(self, "i", k, n) for k in range(n)]
        turn = Signal(range(n))                       # whose beats the pixel needs now
        beat = Signal(range(max(max(c.beats), 2)))    # beat of that input within the pixel
        valids = Array(i.valid for i in ins)
        payloads = Array(i.payload for i in ins)
        last_beat = Array(c.beats)[turn] - 1
        stall = Signal()
        accept = Signal()
        m.d.comb += [stall.eq(self.o.valid & ~self.o.ready),
                     accept.eq(valids[turn] & ~stall)]
        for k, i in enumerate(ins):
            m.d.comb += i.ready.eq((turn == k) & ~stall)
        with m.If(accept):
            with m.If(beat == last_beat):
                m.d.sync += [beat.eq(0), turn.eq(wrap_increment(turn, n))]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        with m.If(~stall):
            m.d.sync += self.o.valid.eq(accept)
        with m.If(accept):
            m.d.sync += self.o.payload.eq(payloads[turn])
        if self.counters:
            perf = PerfCounters(PERF_COUNTERS, True)
            out_fire = self.o.valid & self.o.ready
            count_issue_span(m, perf, issue=accept, out_fire=out_fire, stalled=stall)
            perf.count(m, Counter.IN_BEATS, accept)
            perf.count(m, Counter.OUT_BEATS, out_fire)
            perf.drive(m, self.perf)
        return m
