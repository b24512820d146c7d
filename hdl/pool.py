"""Streaming pool unit: the max or the sum over K x K windows, stride S, no padding, one input
beat per cycle (the sum is the integer part of average pooling; the division is a scale the
network carries downstream, and an optional epilogue turns the sums into codes).

Stream format (input and output) as in :mod:`hdl.window`: NHWC raster order, each pixel's C
channels as C/SIMD beats of SIMD elements of ``elem_bits`` bits. The output map has
OH = (IH - K) // S + 1 rows and OW = (IW - K) // S + 1 columns (torch's floor mode: trailing
rows and columns that fit no window are read and dropped).

The max is separable, so it is taken in two passes that each look at every input beat once:

* horizontal: a shift register of (K - 1) * C/SIMD beats holds the previous K - 1 pixels of
  the current row, so the beat that closes a window horizontally (its last column) sees all
  K values of its channel fold at fixed taps and takes their max (``hmax``);
* vertical: K - 1 line buffers of OW * C/SIMD words (on-chip memories, one per buffered
  row, used as a ring) keep ``hmax`` of the last K - 1 rows that a later window still needs;
  the beat that closes a window vertically reads all of them at its column address and the
  max of those K row maxima is the output.

No read-modify-write is needed (each buffer word is written once per row and read when a
window closes), so any K and S work, overlapping windows (K > S) included, at one beat per
cycle. Signed, unsigned and bipolar elements are supported; for bipolar codes (1 = +1) the
max is the OR. The sum is taken the same way (row sums buffered, K of them summed when a
window closes), on element values (bipolar codes count +-1), in widths derived from the
element range; its epilogue (:mod:`hdl.epilogue`) takes the SIMD lanes as PE rows and the
channel fold as the neuron fold, its parameters read with the row buffers.

Timing. The read ports and one payload register form the output stage: the beat that closes
a window is offered one cycle after it is accepted (FILL = 1). Output backpressure freezes
the unit (read ports hold their data). With full-rate input and an always-ready output the
span (first input accepted .. last output produced, inclusive) is exactly
:func:`pool_cycles`, and for any input/output pattern
span = issue + stall_in + stall_out + FILL, where ``issue`` counts the input beats up to the
last one that closed a window (beats dropped at the end of the last frame come after the
last output and are not in the span).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from amaranth import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hdl.arith import ElementType, adder_tree, shape_for_range
from hdl.epilogue import Epilogue, PassEpilogue, build_param_banks
from hdl.errors import HardwareConfigError
from hdl.memory import MemorySpec, check_style, memory_attrs
from hdl.perf import Counter, PerfCounters, perf_port
from hdl.stage import SameElementStream

FILL_CYCLES = 1

PERF_COUNTERS = (
    Counter.ISSUE,          # input beats consumed up to the last one that closed a window
    Counter.STALL_IN,       # cycles waiting for an input beat (before the last output's beat)
    Counter.STALL_OUT,      # cycles frozen by output backpressure
    Counter.SPAN,           # first input accepted .. last output produced, inclusive
    Counter.IN_BEATS,
    Counter.OUT_BEATS,
    Counter.BUFFER_READS,   # line-buffer words read
    Counter.BUFFER_WRITES,  # line-buffer words written
    Counter.COMPARES,       # element-wise max operations that reach an output
)

SUM_PERF_COUNTERS = (
    *PERF_COUNTERS[:-1],
    Counter.ELEM_ADDS,      # element-wise additions that reach an output
    Counter.PARAM_READS,    # epilogue-parameter words read (one per output beat)
)

PoolOp = Literal["max", "sum"]


@dataclass(frozen=True)
class PoolConfig(SameElementStream):
    """Everything that fixes one max-pool unit.

    ``signed`` selects two's-complement elements; ``bipolar`` selects 1-bit {-1, +1} codes
    (1 = +1), whose max is the OR. ``op="sum"`` sums instead and applies ``epilogue`` to the
    sums (default: the sums themselves, in the narrowest width that holds them).
    ``memory_style`` places the row buffers (:mod:`hdl.memory`).
    """

    name: str
    ih: int
    iw: int
    channels: int
    k: int
    stride: int
    simd: int
    elem_bits: int
    signed: bool
    bipolar: bool
    op: PoolOp = "max"
    epilogue: Epilogue | None = None
    value_range: tuple[int, int] | None = None
    """The elements' values (default: every value their codes can hold); sums are as wide as
    these need (a ternary element's 2-bit code holds -2, a ternary value never)."""
    memory_style: str = "auto"

    def __post_init__(self) -> None:
        where = f"{self.op}-pool {self.name!r}"
        check_style(self.memory_style, where)
        if self.op not in ("max", "sum") or (self.op == "max" and self.epilogue is not None):
            raise HardwareConfigError(f"{where}: op must be 'max' or 'sum' (only a sum takes "
                                      f"an epilogue), got {self.op!r}")
        for field in ("ih", "iw", "channels", "k", "stride", "simd", "elem_bits"):
            if getattr(self, field) < 1:
                raise HardwareConfigError(f"{where}: {field}={getattr(self, field)} must be >= 1")
        if self.ih < self.k or self.iw < self.k:
            raise HardwareConfigError(
                f"{where}: feature map {self.ih}x{self.iw} is smaller than the "
                             f"{self.k}x{self.k} window")
        if self.channels % self.simd:
            raise HardwareConfigError(f"{where}: SIMD={self.simd} does not divide channels="
                             f"{self.channels}")
        if self.bipolar and (self.elem_bits != 1 or self.signed):
            raise HardwareConfigError(f"{where}: bipolar elements are 1-bit codes (1 = +1); got "
                             f"elem_bits={self.elem_bits}, signed={self.signed}")

    @property
    def oh(self) -> int:
        return (self.ih - self.k) // self.stride + 1

    @property
    def ow(self) -> int:
        return (self.iw - self.k) // self.stride + 1

    @property
    def folds(self) -> int:
        """Beats per pixel (C / SIMD)."""
        return self.channels // self.simd

    # ---- the StageConfig protocol (hdl.stage; the rest: SameElementStream) -----------
    @property
    def out_elem_bits(self) -> int:  # type: ignore[override]
        """A sum pool emits its epilogue's codes (or the sums)."""
        return self.elem_bits if self.op == "max" else self.sum_epilogue.out_bits

    @property
    def counter_names(self) -> tuple[Counter, ...]:
        return PERF_COUNTERS if self.op == "max" else SUM_PERF_COUNTERS

    def build(self, counters: bool = True) -> MaxPool:
        return MaxPool(self, counters)

    # ---- sums ---------------------------------------------------------------------------
    @property
    def element(self) -> ElementType:
        return ElementType(self.elem_bits, self.signed, self.bipolar)

    @property
    def values(self) -> tuple[int, int]:
        e = self.element
        return self.value_range if self.value_range is not None else (e.min, e.max)

    @property
    def row_range(self) -> tuple[int, int]:
        """Bounds of one row's sum of K elements (what the line buffers hold)."""
        lo, hi = self.values
        return self.k * lo, self.k * hi

    @property
    def sum_range(self) -> tuple[int, int]:
        """Bounds of a window's sum of K x K elements."""
        lo, hi = self.values
        return self.k * self.k * lo, self.k * self.k * hi

    @property
    def sum_epilogue(self) -> Epilogue:
        if self.epilogue is not None:
            return self.epilogue
        return PassEpilogue(shape_for_range(*self.sum_range).width)

    @property
    def row_width(self) -> int:
        """Bits of a line-buffer word: SIMD row maxima, or SIMD row sums."""
        if self.op == "max":
            return self.width
        return self.simd * shape_for_range(*self.row_range).width

    @property
    def width(self) -> int:
        return self.simd * self.elem_bits

    @property
    def in_frame_beats(self) -> int:
        return self.ih * self.iw * self.folds

    @property
    def out_frame_beats(self) -> int:
        return self.oh * self.ow * self.folds

    @property
    def buffer_words(self) -> int:
        """Line-buffer words: K - 1 rows of OW * C/SIMD row maxima."""
        return (self.k - 1) * self.ow * self.folds

    @property
    def memories(self) -> tuple[MemorySpec, ...]:
        """K - 1 row buffers (maxima or sums) of OW * C/SIMD words."""
        return tuple(MemorySpec(f"rows{j}", self.row_width, self.ow * self.folds, writable=True,
                                single_port=True)
                     for j in range(self.k - 1))

    def closes(self, index: int, size: int, count: int) -> bool:
        """Whether row/column ``index`` (of ``size``) is the last one of some window."""
        start = index - self.k + 1
        return start >= 0 and start % self.stride == 0 and start // self.stride < count

    def kept(self, index: int, count: int) -> bool:
        """Whether a window closing after row ``index`` still needs it (it is buffered)."""
        return any(o * self.stride <= index <= o * self.stride + self.k - 2
                   for o in range(count))


def pool_cycles(config: PoolConfig, frames: int) -> int:
    """Exact span for ``frames`` frames at full input rate into an always-ready consumer.

    Every input beat is accepted in consecutive cycles from cycle 0; the last output belongs
    to the beat of channel fold C/SIMD - 1 at row (OH-1)*S + K - 1, column (OW-1)*S + K - 1
    of the last frame, and is produced FILL cycles after that beat is accepted.
    """
    if frames < 1:
        raise HardwareConfigError(f"frames={frames} must be >= 1")
    c = config
    last_row = (c.oh - 1) * c.stride + c.k - 1
    last_col = (c.ow - 1) * c.stride + c.k - 1
    last_beat = (frames - 1) * c.in_frame_beats + (last_row * c.iw + last_col + 1) * c.folds - 1
    return last_beat + 1 + FILL_CYCLES


def _mask(bits: list[bool]) -> Const:
    return Const(sum(1 << n for n, bit in enumerate(bits) if bit), len(bits))


class MaxPool(wiring.Component):
    """One streaming max-pool unit; see the module docstring for structure and timing."""

    def __init__(self, config: PoolConfig, counters: bool = True) -> None:
        self.config = config
        self.counters = counters
        self.perf_names = config.counter_names if counters else ()
        super().__init__({
            "i": In(stream.Signature(config.width)),
            "o": Out(stream.Signature(config.simd * config.out_elem_bits)),
            **perf_port(config.counter_names, counters),
        })

    def _row_sum(self, m: Module, words: list[Value]) -> Value:
        """Element-wise sum of K input beats, packed as SIMD row sums."""
        c = self.config
        parts = []
        for j, values in enumerate(zip(*(c.element.elements(w, c.simd) for w in words),
                                       strict=True)):
            total = Signal(shape_for_range(*c.row_range), name=f"row_sum{j}")
            m.d.comb += total.eq(adder_tree(list(values)))
            parts.append(total.as_unsigned())
        return Cat(*parts)

    def _window_sums(self, m: Module, words: list[Value]) -> list[Value]:
        """Element-wise sums of K row-sum words: each lane's window sum."""
        c = self.config
        row = ElementType(shape_for_range(*c.row_range).width, c.row_range[0] < 0)
        sums = []
        for j, values in enumerate(zip(*(row.elements(w, c.simd) for w in words),
                                       strict=True)):
            total = Signal(shape_for_range(*c.sum_range), name=f"sum{j}")
            m.d.comb += total.eq(adder_tree(list(values)))
            sums.append(total)
        return sums

    def _max2(self, a: Value, b: Value) -> Value:
        """Element-wise max of two beats."""
        c = self.config
        if c.bipolar:
            return a | b
        parts = []
        for j in range(c.simd):
            x = a.word_select(j, c.elem_bits)
            y = b.word_select(j, c.elem_bits)
            greater = x.as_signed() > y.as_signed() if c.signed else x > y
            parts.append(Mux(greater, x, y))
        return Cat(*parts)

    def _max(self, words: list[Value]) -> Value:
        """Balanced max tree over beats (depth log2 K, not K)."""
        while len(words) > 1:
            words = [self._max2(words[n], words[n + 1]) if n + 1 < len(words) else words[n]
                     for n in range(0, len(words), 2)]
        return words[0]

    def elaborate(self, platform):  # noqa: C901 - one pipeline, read top to bottom
        m = Module()
        c = self.config
        summing = c.op == "sum"
        perf = PerfCounters(c.counter_names, self.counters)
        n_cf, k = c.folds, c.k
        row_words = c.ow * n_cf

        # ---- position in the frame --------------------------------------------------
        iy = Signal(range(max(c.ih, 2)))
        ix = Signal(range(max(c.iw, 2)))
        cf = Signal(range(max(n_cf, 2)))
        oaddr = Signal(range(max(row_words, 2)))   # output column * C/SIMD + fold
        last_cf = cf == n_cf - 1
        last_ix = ix == c.iw - 1
        last_iy = iy == c.ih - 1
        row_closes = _mask([c.closes(y, c.ih, c.oh) for y in range(c.ih)]).bit_select(iy, 1)
        row_kept = _mask([c.kept(y, c.oh) for y in range(c.ih)]).bit_select(iy, 1)
        col_closes = _mask([c.closes(x, c.iw, c.ow) for x in range(c.iw)]).bit_select(ix, 1)

        s1_valid = Signal()
        stall = Signal()
        accept = Signal()
        hemit = Signal()
        emit = Signal()
        m.d.comb += [
            stall.eq(s1_valid & ~self.o.ready),
            self.i.ready.eq(~stall),
            accept.eq(self.i.valid & ~stall),
            hemit.eq(col_closes),
            emit.eq(col_closes & row_closes),
        ]
        with m.If(accept):
            m.d.sync += cf.eq(Mux(last_cf, 0, cf + 1))
            with m.If(last_cf):
                m.d.sync += ix.eq(Mux(last_ix, 0, ix + 1))
                with m.If(last_ix):
                    m.d.sync += iy.eq(Mux(last_iy, 0, iy + 1))
            with m.If(hemit):
                m.d.sync += oaddr.eq(Mux(oaddr == row_words - 1, 0, oaddr + 1))

        # ---- horizontal pass: taps at whole-pixel delays ------------------------------
        taps = [Signal(c.width, name=f"tap{d}") for d in range((k - 1) * n_cf)]
        with m.If(accept):
            for d, tap in enumerate(taps):
                m.d.sync += tap.eq(self.i.payload if d == 0 else taps[d - 1])
        hmax = Signal(c.row_width)
        window_row = [self.i.payload] + [taps[p * n_cf - 1] for p in range(1, k)]
        m.d.comb += hmax.eq(self._row_sum(m, window_row) if summing else self._max(window_row))

        # ---- vertical pass: ring of K - 1 row-maxima buffers ----------------------------
        row_data = []
        if k > 1:
            slot = Signal(range(max(k - 1, 2)))
            with m.If(accept & last_cf & last_ix & row_kept):
                m.d.sync += slot.eq(Mux(slot == k - 2, 0, slot + 1))
            for j in range(k - 1):
                mem = Memory(shape=unsigned(c.row_width), depth=row_words, init=[],
                             attrs=memory_attrs(c.memory_style, c.memories[j]))
                m.submodules[f"rows{j}"] = mem
                wr = mem.write_port()
                rd = mem.read_port()  # reads the old word when its slot is overwritten
                m.d.comb += [
                    wr.addr.eq(oaddr), wr.data.eq(hmax),
                    wr.en.eq(accept & hemit & row_kept & (slot == j)),
                    rd.addr.eq(oaddr), rd.en.eq(accept & emit),
                ]
                row_data.append(rd.data)

        # ---- output stage -------------------------------------------------------------
        s1_h = Signal(c.row_width)
        with m.If(~stall):
            m.d.sync += s1_valid.eq(accept & emit)
        with m.If(accept & emit):
            m.d.sync += s1_h.eq(hmax)
        params: list[Value] = []
        if summing:
            params = build_param_banks(m, c.sum_epilogue, c.simd, n_cf, cf, accept & emit)
            codes = c.sum_epilogue.codes(m, self._window_sums(m, [s1_h] + row_data), params)
            m.d.comb += self.o.payload.eq(Cat(*codes))
        else:
            m.d.comb += self.o.payload.eq(self._max([s1_h] + row_data))
        m.d.comb += self.o.valid.eq(s1_valid)

        # ---- performance counters -----------------------------------------------------
        if self.counters:
            started = Signal()
            elapsed = Signal(32)
            run_beats = Signal(32)
            run_wait = Signal(32)
            out_fire = Signal()
            m.d.comb += out_fire.eq(self.o.valid & self.o.ready)
            with m.If(accept & ~started):
                m.d.sync += [started.eq(1), elapsed.eq(1)]
            with m.Elif(started):
                m.d.sync += elapsed.eq(elapsed + 1)
            with m.If(out_fire):
                m.d.sync += perf[Counter.SPAN].eq(elapsed + 1)
            # beats and waits are committed when a window closes, so trailing dropped beats of
            # the last frame (after its last output) stay out of the span identity
            with m.If(accept & emit):
                m.d.sync += [perf[Counter.ISSUE].eq(perf[Counter.ISSUE] + run_beats + 1),
                             perf[Counter.STALL_IN].eq(perf[Counter.STALL_IN] + run_wait),
                             run_beats.eq(0), run_wait.eq(0)]
            with m.Elif(accept):
                m.d.sync += run_beats.eq(run_beats + 1)
            with m.Elif(started & ~stall):
                m.d.sync += run_wait.eq(run_wait + 1)
            perf.count(m, Counter.STALL_OUT, started & stall)
            perf.count(m, Counter.IN_BEATS, accept)
            perf.count(m, Counter.OUT_BEATS, out_fire)
            if k > 1:
                perf.count(m, Counter.BUFFER_READS, accept & emit, k - 1)
                perf.count(m, Counter.BUFFER_WRITES, accept & hemit & row_kept)
                # K - 1 per element for the row max, K - 1 more when the column max closes too
                perf.count(m, Counter.ELEM_ADDS if summing else Counter.COMPARES,
                           accept & hemit, Mux(emit, 2 * (k - 1) * c.simd, (k - 1) * c.simd))
            if params:
                perf.count(m, Counter.PARAM_READS, accept & emit)
            perf.drive(m, self.perf)
        return m

