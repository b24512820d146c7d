"""Stream add: the elementwise integer join of two streams, with an optional epilogue.

Both inputs carry the same (H, W, C) map in NHWC raster order, SIMD elements per beat
(channel c = fold * SIMD + j of the pixel's C/SIMD beats). Each cycle in which both inputs
offer a beat, the unit takes both and computes, per element,

    acc = wa * a + wb * b + bias

(exact: ``acc_range`` holds every value, derived from the element types), then the
epilogue (:mod:`hdl.epilogue`, the engines' own: thresholds, requantization or the
accumulator itself) with SIMD lanes as the engines' PE rows and the channel fold as their
neuron fold, so per-channel parameters live in banks addressed by the fold.

Timing. The inputs and the parameter read are registered in the cycle both beats are taken;
the output is computed from those registers, so a beat is offered one cycle after it was
taken (FILL = 1). Output backpressure freezes the unit (the parameter read port holds its
data). At full rate N beats take N + FILL cycles from the first taken to the last produced;
for any traffic span = issue + stall_in + stall_out + FILL.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring

from hdl.arith import ElementType, shape_for_range, wrap_increment
from hdl.epilogue import Epilogue, build_param_banks
from hdl.errors import HardwareConfigError
from hdl.perf import Counter, PerfCounters, count_issue_span, perf_port
from hdl.stage import PortFormat, stream_ports

FILL_CYCLES = 1

PERF_COUNTERS = (
    Counter.ISSUE,          # beat pairs taken
    Counter.STALL_IN,       # cycles waiting for a beat on either input
    Counter.STALL_OUT,      # cycles frozen by output backpressure
    Counter.SPAN,           # first pair taken .. last output produced, inclusive
    Counter.IN_BEATS,       # beat pairs taken
    Counter.OUT_BEATS,
    Counter.ELEM_ADDS,      # element sums computed (SIMD per pair)
    Counter.PARAM_READS,    # epilogue-parameter words read (one per pair with parameters)
)


@dataclass(frozen=True, eq=False)
class AddConfig:
    """Everything that fixes one stream add."""

    name: str
    channels: int
    simd: int
    a: ElementType
    b: ElementType
    weights: tuple[int, int]
    bias: int
    acc_range: tuple[int, int]
    epilogue: Epilogue

    def __post_init__(self) -> None:
        where = f"stream add {self.name!r}"
        if self.simd < 1 or self.channels % self.simd:
            raise HardwareConfigError(f"{where}: SIMD={self.simd} does not divide channels="
                                      f"{self.channels}")

    @property
    def folds(self) -> int:
        return self.channels // self.simd

    # ---- the MultiPortStageConfig protocol (hdl.stage) --------------------------------
    @property
    def input_ports(self) -> tuple[PortFormat, ...]:
        return (PortFormat(self.simd, self.a.bits), PortFormat(self.simd, self.b.bits))

    @property
    def output_ports(self) -> tuple[PortFormat, ...]:
        return (PortFormat(self.simd, self.epilogue.out_bits),)

    @property
    def counter_names(self) -> tuple[Counter, ...]:
        return PERF_COUNTERS

    def build(self, counters: bool = True) -> StreamAdd:
        return StreamAdd(self, counters)

    def input_fifo_depth(self, minimum: int) -> int:
        return max(minimum, 2)


class StreamAdd(wiring.Component):
    """Inputs ``i0`` (a) and ``i1`` (b), output ``o``; see the module docstring."""

    def __init__(self, config: AddConfig, counters: bool = True) -> None:
        self.config = config
        self.counters = counters
        super().__init__({**stream_ports("i", config.input_ports),
                          **stream_ports("o", config.output_ports),
                          **perf_port(PERF_COUNTERS, counters)})

    def elaborate(self, platform):
        m = Module()
        c = self.config
        a_in, b_in = self.i0, self.i1
        fold = Signal(range(max(c.folds, 2)))
        stall = Signal()
        accept = Signal()
        s1_valid = Signal()
        m.d.comb += [
            stall.eq(s1_valid & ~self.o.ready),
            accept.eq(a_in.valid & b_in.valid & ~stall),
            a_in.ready.eq(b_in.valid & ~stall),
            b_in.ready.eq(a_in.valid & ~stall),
        ]
        with m.If(accept):
            m.d.sync += fold.eq(wrap_increment(fold, c.folds))
        params = build_param_banks(m, c.epilogue, c.simd, c.folds, fold, accept)
        s1_a = Signal(len(a_in.payload))
        s1_b = Signal(len(b_in.payload))
        with m.If(~stall):
            m.d.sync += s1_valid.eq(accept)
        with m.If(accept):
            m.d.sync += [s1_a.eq(a_in.payload), s1_b.eq(b_in.payload)]
        wa, wb = c.weights
        accs = []
        for j, (x, y) in enumerate(zip(c.a.elements(s1_a, c.simd), c.b.elements(s1_b, c.simd),
                                       strict=True)):
            acc = Signal(shape_for_range(*c.acc_range), name=f"acc{j}")
            m.d.comb += acc.eq(wa * x + wb * y + c.bias)
            accs.append(acc)
        m.d.comb += [self.o.valid.eq(s1_valid),
                     self.o.payload.eq(Cat(*c.epilogue.codes(m, accs, params)))]
        if self.counters:
            perf = PerfCounters(PERF_COUNTERS, True)
            count_issue_span(m, perf, issue=accept, out_fire=self.o.valid & self.o.ready,
                             stalled=stall)
            perf.count(m, Counter.IN_BEATS, accept)
            perf.count(m, Counter.OUT_BEATS, self.o.valid & self.o.ready)
            perf.count(m, Counter.ELEM_ADDS, accept, c.simd)
            if params:
                perf.count(m, Counter.PARAM_READS, accept)
            perf.drive(m, self.perf)
        return m

