"""Global sum pool: each channel's sum over a whole (H, W) map, with an optional epilogue.

The integer part of global average pooling (the division is a scale carried downstream).
Input: an (H, W, C) map in NHWC raster order, SIMD elements per beat, so the channel folds
f = 0 .. C/SIMD - 1 of every pixel arrive in order. The partial sums live in a ring of
C/SIMD words of SIMD accumulators (registers): the beat of fold f meets the ring's head,
which holds fold f's sums; the sum moves to the tail, so the next fold is at the head. At
the last pixel the complete sums go to the output register (and zeros into the ring for the
next frame): a frame's C/SIMD output beats leave as the last pixel's beats arrive. The
epilogue (:mod:`hdl.epilogue`: thresholds, requantization or the sums themselves) takes the
SIMD lanes as PE rows and the fold as the neuron fold.

Timing. One input beat per cycle; an output beat is offered one cycle after the beat that
completes it (FILL = 1). Output backpressure freezes the unit. At full rate N frames take
N * H * W * C/SIMD + FILL cycles; for any traffic span = issue + stall_in + stall_out + FILL.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring

from hdl.arith import ElementType, shape_for_range, wrap_increment
from hdl.epilogue import Epilogue, build_param_banks
from hdl.errors import HardwareConfigError
from hdl.perf import Counter, PerfCounters, count_issue_span, perf_port
from hdl.stage import SimdElems

FILL_CYCLES = 1

PERF_COUNTERS = (
    Counter.ISSUE,          # input beats taken
    Counter.STALL_IN,       # cycles waiting for an input beat (between the first and last)
    Counter.STALL_OUT,      # cycles frozen by output backpressure
    Counter.SPAN,           # first beat taken .. last output produced, inclusive
    Counter.IN_BEATS,
    Counter.OUT_BEATS,
    Counter.ELEM_ADDS,      # element additions into the sums (SIMD per beat)
    Counter.PARAM_READS,    # epilogue-parameter words read (one per output beat)
)


@dataclass(frozen=True, eq=False)
class GlobalPoolConfig(SimdElems):
    """Everything that fixes one global sum pool."""

    name: str
    pixels: int
    channels: int
    simd: int
    elem: ElementType
    acc_range: tuple[int, int]
    epilogue: Epilogue

    def __post_init__(self) -> None:
        where = f"global pool {self.name!r}"
        if self.pixels < 1 or self.simd < 1 or self.channels % self.simd:
            raise HardwareConfigError(f"{where}: SIMD={self.simd} must divide channels="
                                      f"{self.channels} and the map must have pixels")

    @property
    def folds(self) -> int:
        return self.channels // self.simd

    @property
    def in_frame_beats(self) -> int:
        return self.pixels * self.folds

    # ---- the StageConfig protocol (hdl.stage; elements per beat: SimdElems) ---------------

    @property
    def in_elem_bits(self) -> int:
        return self.elem.bits

    @property
    def out_elem_bits(self) -> int:
        return self.epilogue.out_bits

    @property
    def counter_names(self) -> tuple[Counter, ...]:
        return PERF_COUNTERS

    def build(self, counters: bool = True) -> GlobalSumPool:
        return GlobalSumPool(self, counters)

    def input_fifo_depth(self, minimum: int) -> int:
        return max(minimum, 2)


class GlobalSumPool(wiring.Component):
    """One global sum pool; see the module docstring."""

    def __init__(self, config: GlobalPoolConfig, counters: bool = True) -> None:
        from amaranth.lib import stream
        from amaranth.lib.wiring import In, Out

        self.config = config
        self.counters = counters
        super().__init__({
            "i": In(stream.Signature(config.simd * config.elem.bits)),
            "o": Out(stream.Signature(config.simd * config.epilogue.out_bits)),
            **perf_port(PERF_COUNTERS, counters),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        shape = shape_for_range(*c.acc_range)
        pixel = Signal(range(max(c.pixels, 2)))
        fold = Signal(range(max(c.folds, 2)))
        last_pixel = pixel == c.pixels - 1
        stall = Signal()
        accept = Signal()
        s1_valid = Signal()
        m.d.comb += [stall.eq(s1_valid & ~self.o.ready), accept.eq(self.i.valid & ~stall),
                     self.i.ready.eq(~stall)]
        with m.If(accept):
            m.d.sync += fold.eq(wrap_increment(fold, c.folds))
            with m.If(fold == c.folds - 1):
                m.d.sync += pixel.eq(wrap_increment(pixel, c.pixels))

        # ring of fold words, SIMD accumulators each; ring[0] holds the arriving fold's sums
        ring = [[Signal(shape, name=f"sum{f}_{j}") for j in range(c.simd)]
                for f in range(c.folds)]
        sums = []
        for j, x in enumerate(c.elem.elements(self.i.payload, c.simd)):
            total = Signal(shape, name=f"total{j}")
            m.d.comb += total.eq(ring[0][j] + x)
            sums.append(total)
        with m.If(accept):
            for f in range(c.folds - 1):
                m.d.sync += [dst.eq(src) for dst, src in zip(ring[f], ring[f + 1], strict=True)]
            m.d.sync += [dst.eq(Mux(last_pixel, 0, total))
                         for dst, total in zip(ring[-1], sums, strict=True)]

        emit = Signal()
        m.d.comb += emit.eq(accept & last_pixel)
        params = build_param_banks(m, c.epilogue, c.simd, c.folds, fold, emit)
        s1 = [Signal(shape, name=f"out{j}") for j in range(c.simd)]
        with m.If(~stall):
            m.d.sync += s1_valid.eq(emit)
        with m.If(emit):
            m.d.sync += [dst.eq(total) for dst, total in zip(s1, sums, strict=True)]
        m.d.comb += [self.o.valid.eq(s1_valid),
                     self.o.payload.eq(Cat(*c.epilogue.codes(m, s1, params)))]
        if self.counters:
            perf = PerfCounters(PERF_COUNTERS, True)
            out_fire = self.o.valid & self.o.ready
            count_issue_span(m, perf, issue=accept, out_fire=out_fire, stalled=stall)
            perf.count(m, Counter.IN_BEATS, accept)
            perf.count(m, Counter.OUT_BEATS, out_fire)
            perf.count(m, Counter.ELEM_ADDS, accept, c.simd)
            if params:
                perf.count(m, Counter.PARAM_READS, emit)
            perf.drive(m, self.perf)
        return m
