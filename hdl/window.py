"""Streaming sliding-window generator: im2col on the stream (FINN's ConvolutionInputGenerator).

Stream format (input and output): a frame is an H x W x C feature map in NHWC raster order;
each pixel's C channels travel as C/SIMD beats of SIMD elements, element j of a beat at bits
[j*b, (j+1)*b), channel c = beat*SIMD + j. For each output pixel (oy, ox), in raster order,
the generator emits the KH x KW window in (ky, kx, c) order, i.e. column (ky*KW + kx)*C + c
of a weight matrix reshaped to [Cout, KH*KW*Cin], so a matrix-vector unit downstream sees
one im2col row per output pixel as KH*KW*C/SIMD consecutive beats. Window positions in the
padding emit ``pad_code`` in every element: the caller picks the code because the right
value depends on the data type (0 for integers, the code of +1 for bipolar data).

Line buffer. A frame is never stored whole: an on-chip memory holds R input rows of
W*C/SIMD words as a ring (global input row g, counted across frames, lives in slot g mod R).
Output row t needs input rows lo(t)..hi(t) (the kernel rows clipped to the image). The
writer may write row g while g < lo(t_cur) + R, where t_cur is the output row the emitter
is on, so it only overwrites rows no window still needs; the emitter starts output row t
once row hi(t) is complete and then emits its OW*KH*KW*C/SIMD beats as one burst, one beat
per cycle. The default R is the smallest ring that lets the writer load all rows of the
next output row while the current one is emitted (KH + SH rows for interior rows),
so inside a frame the ring never holds the emitter back; at a frame boundary the next frame's
first rows load while the previous frame's last windows are emitted, as far as the ring
allows (a larger ``buffer_rows`` removes that bubble too; see :func:`window_cycles`).
Strides larger than the kernel work the same way: rows and columns between windows are
written and never read.

Timing. The emitter issues a memory read (or a padding beat) per cycle; the read port is
the output register, so an issued beat is offered one cycle later (FILL = 1). Output
backpressure freezes the emitter (the read port holds its data); the writer keeps accepting
input while the ring has room. With full-rate input and an always-ready output the span
(first input accepted .. last output produced, inclusive) is exactly
:func:`window_cycles`, and for any input/output pattern
span = issue + stall_in + stall_out + FILL, where stall_in counts the cycles the emitter
waited for rows (line-buffer fill, or input that was late).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hdl.errors import HardwareConfigError
from hdl.memory import MemorySpec, check_style, memory_attrs
from hdl.perf import Counter, PerfCounters, perf_port
from hdl.stage import SameElementStream

FILL_CYCLES = 1

PERF_COUNTERS = (
    Counter.ISSUE,          # output beats issued by the emitter (reads + padding beats)
    Counter.STALL_IN,       # emitter cycles waiting for input rows (first input .. last output)
    Counter.STALL_OUT,      # emitter cycles frozen by output backpressure
    Counter.SPAN,           # first input accepted .. last output produced, inclusive
    Counter.IN_BEATS,
    Counter.OUT_BEATS,
    Counter.BUFFER_READS,   # line-buffer words read (non-padding output beats)
    Counter.BUFFER_WRITES,  # line-buffer words written (every input beat)
    Counter.PAD_BEATS,      # output beats that were padding
    Counter.IN_BLOCKED,     # cycles an input beat was offered but the ring was full
)


@dataclass(frozen=True)
class WindowConfig(SameElementStream):
    """Everything that fixes one sliding-window generator.

    ``pad_code`` is the storage code every padding element carries. ``buffer_rows`` (R)
    overrides the ring size; ``None`` picks the smallest ring with no bubble inside a frame.
    ``memory_style`` places the line buffer (:mod:`hdl.memory`).
    """

    name: str
    ih: int
    iw: int
    channels: int
    kh: int
    kw: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    pad_bottom: int
    pad_right: int
    simd: int
    elem_bits: int
    pad_code: int
    buffer_rows: int | None = None
    memory_style: str = "auto"

    def __post_init__(self) -> None:
        where = f"sliding window {self.name!r}"
        check_style(self.memory_style, where)
        for field in ("ih", "iw", "channels", "kh", "kw", "stride_h", "stride_w", "simd",
                      "elem_bits"):
            if getattr(self, field) < 1:
                raise HardwareConfigError(f"{where}: {field}={getattr(self, field)} must be >= 1")
        for field, kernel in (("pad_top", self.kh), ("pad_bottom", self.kh),
                              ("pad_left", self.kw), ("pad_right", self.kw)):
            pad = getattr(self, field)
            if pad < 0:
                raise HardwareConfigError(f"{where}: {field}={pad} must be >= 0")
            if pad >= kernel:
                raise HardwareConfigError(f"{where}: {field}={pad} must be smaller than the kernel "
                                 f"({kernel}); a window entirely in the padding is unsupported")
        if self.ih + self.pad_top + self.pad_bottom < self.kh or \
                self.iw + self.pad_left + self.pad_right < self.kw:
            raise HardwareConfigError(
                f"{where}: feature map {self.ih}x{self.iw} padded to "
                f"{self.ih + self.pad_top + self.pad_bottom}x"
                f"{self.iw + self.pad_left + self.pad_right} is smaller than the "
                f"{self.kh}x{self.kw} kernel")
        if self.channels % self.simd:
            raise HardwareConfigError(f"{where}: SIMD={self.simd} does not divide channels="
                             f"{self.channels}")
        if not 0 <= self.pad_code < (1 << self.elem_bits):
            raise HardwareConfigError(f"{where}: pad_code={self.pad_code} does not fit in "
                             f"{self.elem_bits} bits")
        if self.buffer_rows is not None and self.buffer_rows < self.min_rows:
            raise HardwareConfigError(
                f"{where}: buffer_rows={self.buffer_rows} cannot hold one window's "
                             f"{self.min_rows} input rows")

    # ---- geometry ------------------------------------------------------------------
    @property
    def oh(self) -> int:
        return (self.ih + self.pad_top + self.pad_bottom - self.kh) // self.stride_h + 1

    @property
    def ow(self) -> int:
        return (self.iw + self.pad_left + self.pad_right - self.kw) // self.stride_w + 1

    @property
    def folds(self) -> int:
        """Beats per pixel (C / SIMD)."""
        return self.channels // self.simd

    # ---- the StageConfig protocol (hdl.stage; elements and widths: SameElementStream) --
    @property
    def counter_names(self) -> tuple[Counter, ...]:
        return PERF_COUNTERS

    def build(self, counters: bool = True) -> SlidingWindow:
        return SlidingWindow(self, counters)

    @property
    def width(self) -> int:
        """Bits per beat, input and output."""
        return self.simd * self.elem_bits

    @property
    def row_words(self) -> int:
        """Line-buffer words (= input beats) per input row."""
        return self.iw * self.folds

    @property
    def window_beats(self) -> int:
        return self.kh * self.kw * self.folds

    @property
    def out_row_beats(self) -> int:
        """Output beats per output row: the emitter's burst once the rows are in."""
        return self.ow * self.window_beats

    @property
    def in_frame_beats(self) -> int:
        return self.ih * self.row_words

    @property
    def out_frame_beats(self) -> int:
        return self.oh * self.out_row_beats

    @property
    def pad_word(self) -> int:
        return sum(self.pad_code << (j * self.elem_bits) for j in range(self.simd))

    def input_rows(self, oy: int) -> tuple[int, int]:
        """Frame-local input rows (lo, hi) that output row ``oy`` reads (the rest is padding)."""
        top = oy * self.stride_h - self.pad_top
        return max(top, 0), min(top + self.kh, self.ih) - 1

    def input_cols(self, ox: int) -> tuple[int, int]:
        """Input columns (lo, hi) that output column ``ox`` reads (the rest is padding)."""
        left = ox * self.stride_w - self.pad_left
        return max(left, 0), min(left + self.kw, self.iw) - 1

    @property
    def min_rows(self) -> int:
        """Rows one output row reads at most: the ring can never be smaller."""
        return max(hi - lo + 1 for lo, hi in map(self.input_rows, range(self.oh)))

    @property
    def rows(self) -> int:
        """Ring size R in input rows."""
        if self.buffer_rows is not None:
            return self.buffer_rows
        rows = self.min_rows
        for oy in range(self.oh - 1):
            rows = max(rows, self.input_rows(oy + 1)[1] - self.input_rows(oy)[0] + 1)
        return rows

    @property
    def buffer_words(self) -> int:
        return self.rows * self.row_words

    @property
    def memories(self) -> tuple[MemorySpec, ...]:
        """The line buffer: a ring of R rows."""
        return (MemorySpec("lines", self.width, self.buffer_words, writable=True),)


@dataclass(frozen=True)
class WindowSchedule:
    """Cycle (0 = first input accepted) at which each input row and output row ends, for
    ``frames`` frames at full input rate into an always-ready consumer (global numbering
    across frames; every input row of every frame, also those no window reads)."""

    row_end: tuple[int, ...]
    out_end: tuple[int, ...]

    @property
    def span(self) -> int:
        """First input accepted .. last output produced, inclusive."""
        return self.out_end[-1] + 1 + FILL_CYCLES

    @property
    def input_cycles(self) -> int:
        """First input accepted .. last input accepted, inclusive."""
        return self.row_end[-1] + 1


def window_schedule(config: WindowConfig, frames: int) -> WindowSchedule:
    """The row-level schedule of the hardware at full rate.

    With B = W*C/SIMD beats per input row, Q = OW*KH*KW*C/SIMD beats per output row, rows
    and output rows numbered globally across frames and lo/hi from
    :meth:`WindowConfig.input_rows`:

    * input row r starts at max(end(r - 1) + 1, release(r)) and takes B cycles, where
      release(r) = E(t*) + 1 for the last output row t* with lo(t*) <= r - R (0 if none):
      the writer waits (``in_blocked``) until no unfinished output row needs the row slot;
    * output row t starts at S(t) = max(E(t - 1) + 1, end(hi(t)) + 1) and ends at
      E(t) = S(t) + Q - 1.
    """
    if frames < 1:
        raise HardwareConfigError(f"frames={frames} must be >= 1")
    c = config
    b, q, r_ring = c.row_words, c.out_row_beats, c.rows
    local = [c.input_rows(oy) for oy in range(c.oh)]
    lo = [f * c.ih + local[oy][0] for f in range(frames) for oy in range(c.oh)]
    hi = [f * c.ih + local[oy][1] for f in range(frames) for oy in range(c.oh)]
    row_end: list[int] = []
    out_end: list[int] = []
    freed = 0   # output rows t with lo(t) <= r - R, for the row r being scheduled

    def schedule_rows(last: int) -> None:
        nonlocal freed
        while len(row_end) <= last:
            r = len(row_end)
            while freed < len(lo) and lo[freed] <= r - r_ring:
                freed += 1
            release = out_end[freed - 1] + 1 if freed else 0
            start = max(row_end[-1] + 1 if row_end else 0, release)
            row_end.append(start + b - 1)

    for t in range(len(lo)):
        schedule_rows(hi[t])
        start = max(out_end[-1] + 1 if out_end else 0, row_end[hi[t]] + 1)
        out_end.append(start + q - 1)
    schedule_rows(frames * c.ih - 1)     # rows after the last frame's last window
    return WindowSchedule(tuple(row_end), tuple(out_end))


def window_cycles(config: WindowConfig, frames: int) -> int:
    """Exact span for ``frames`` frames at full input rate into an always-ready consumer.

    span = E(last) + 1 + FILL_CYCLES of :func:`window_schedule`. When the emitter is the
    bottleneck (Q >= SH*B) one frame takes the closed form
    min(KH - pad_top, H)*B + OH*Q + FILL_CYCLES: the first output row waits for its rows,
    then all output rows follow back to back.
    """
    return window_schedule(config, frames).span


def _add_mod(value: Signal, step: int, modulus: int) -> Value:
    """``(value + step) mod modulus`` for 0 <= value, step < modulus (step a constant)."""
    if step == 0:
        return value
    return Mux(value >= modulus - step, value - (modulus - step), value + step)


def _any(terms: list[Value]) -> Value:
    """OR of ``terms``; constant 0 when there are none."""
    result: Value = Const(0, 1)
    for term in terms:
        result = result | term
    return result


class SlidingWindow(wiring.Component):
    """One sliding-window generator; see the module docstring for order and timing."""

    def __init__(self, config: WindowConfig, counters: bool = True) -> None:
        self.config = config
        self.counters = counters
        self.perf_names = PERF_COUNTERS if counters else ()
        super().__init__({
            "i": In(stream.Signature(config.width)),
            "o": Out(stream.Signature(config.width)),
            **perf_port(PERF_COUNTERS, counters),
        })

    def elaborate(self, platform):  # noqa: C901 - one emitter, read top to bottom
        m = Module()
        c = self.config
        perf = PerfCounters(PERF_COUNTERS, self.counters)
        n_cf, b, r_ring, depth = c.folds, c.row_words, c.rows, c.buffer_words
        oh, ow, ih = c.oh, c.ow, c.ih

        m.submodules.lines = lines = Memory(shape=unsigned(c.width), depth=depth, init=[],
                                            attrs=memory_attrs(c.memory_style, c.memories[0]))
        wr = lines.write_port()
        rd = lines.read_port()  # never reads a row being written: no transparency needed

        # ---- ring occupancy: rows written minus lo(t_cur), signed (rows between windows
        # or at a frame's end can be skipped past before they are written) --------------
        occ = Signal(range(-ih - 1, r_ring + 2))
        row_done = Signal()

        # ---- writer -----------------------------------------------------------------
        wcol = Signal(range(max(b, 2)))
        wbase = Signal(range(max(depth, 2)))
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(occ < r_ring),
            accept.eq(self.i.valid & self.i.ready),
            row_done.eq(accept & (wcol == b - 1)),
            wr.addr.eq(wbase + wcol),
            wr.data.eq(self.i.payload),
            wr.en.eq(accept),
        ]
        with m.If(accept):
            with m.If(wcol == b - 1):
                m.d.sync += [wcol.eq(0), wbase.eq(_add_mod(wbase, b, depth))]
            with m.Else():
                m.d.sync += wcol.eq(wcol + 1)

        # ---- emitter position -------------------------------------------------------
        oy = Signal(range(max(oh, 2)))
        ox = Signal(range(max(ow, 2)))
        ky = Signal(range(max(c.kh, 2)))
        kx = Signal(range(max(c.kw, 2)))
        cf = Signal(range(max(n_cf, 2)))
        top_init = -c.pad_top
        top = Signal(range(top_init, (oh - 1) * c.stride_h - c.pad_top + 2), init=top_init)
        iy = Signal(range(top_init, ih + c.pad_bottom + 1), init=top_init)
        col_init = -c.pad_left * n_cf
        colbase = Signal(range(col_init, (c.iw + c.pad_right) * n_cf + 1), init=col_init)
        col = Signal(range(col_init, (c.iw + c.pad_right) * n_cf + 1), init=col_init)
        addr_init = (top_init % r_ring) * b
        top_addr = Signal(range(max(depth, 2)), init=addr_init)
        row_addr = Signal(range(max(depth, 2)), init=addr_init)

        last_cf = cf == n_cf - 1
        last_kx = kx == c.kw - 1
        last_ky = ky == c.kh - 1
        last_ox = ox == ow - 1
        last_oy = oy == oh - 1
        line_end = Signal()
        win_end = Signal()
        row_end = Signal()
        m.d.comb += [
            line_end.eq(last_cf & last_kx),
            win_end.eq(line_end & last_ky),
            row_end.eq(win_end & last_ox),
        ]

        # rows the current output row needs, and how far lo moves when it is done
        lo_now = Signal(range(ih + 1))
        hi_next = Signal(range(ih + 1))      # hi + 1
        lo_next = Signal(range(ih + c.stride_h + 1))
        need = Signal(range(ih + 1))
        adv = Signal(range(ih + c.stride_h + 1))
        # Clamps and padding tests are generated only where the geometry can reach them: a
        # comparison that is constant for the signal's range is a lint error in the RTL flow.
        top_max = (oh - 1) * c.stride_h - c.pad_top
        step_top = top + c.stride_h
        m.d.comb += [
            lo_now.eq(Mux(top < 0, 0, top) if c.pad_top else top),
            hi_next.eq(Mux(top + c.kh > ih, ih, top + c.kh) if top_max + c.kh > ih
                       else top + c.kh),
            lo_next.eq(Mux(step_top < 0, 0, step_top) if c.pad_top > c.stride_h
                       else step_top),
            need.eq(hi_next - lo_now),
            adv.eq(Mux(last_oy, ih - lo_now, lo_next - lo_now)),
        ]

        stall = Signal()
        issue = Signal()
        pad = Signal()
        m.d.comb += [
            stall.eq(self.o.valid & ~self.o.ready),
            issue.eq((occ >= need) & ~stall),
            pad.eq(_any(([iy < 0] if c.pad_top else [])
                        + ([iy >= ih] if top_max + c.kh > ih else [])
                        + ([col < 0] if c.pad_left else [])
                        + ([col >= b] if c.pad_right else []))),
            rd.addr.eq(row_addr + col),
            rd.en.eq(issue & ~pad),
        ]
        pad_r = Signal()
        with m.If(~stall):
            m.d.sync += [self.o.valid.eq(issue), pad_r.eq(pad)]
        m.d.comb += self.o.payload.eq(Mux(pad_r, c.pad_word, rd.data))

        t_adv = Signal()
        m.d.comb += t_adv.eq(issue & row_end)
        m.d.sync += occ.eq(occ + row_done - Mux(t_adv, adv, 0))

        with m.If(issue):
            m.d.sync += cf.eq(Mux(last_cf, 0, cf + 1))
            with m.If(last_cf):
                m.d.sync += kx.eq(Mux(last_kx, 0, kx + 1))
            with m.If(line_end):
                m.d.sync += ky.eq(Mux(last_ky, 0, ky + 1))
            with m.If(win_end):
                m.d.sync += ox.eq(Mux(last_ox, 0, ox + 1))
            with m.If(row_end):
                m.d.sync += oy.eq(Mux(last_oy, 0, oy + 1))

            with m.If(~line_end):                   # next channel fold / kernel column
                m.d.sync += col.eq(col + 1)
            with m.Elif(~last_ky):                  # next kernel row of this window
                m.d.sync += [col.eq(colbase), iy.eq(iy + 1),
                             row_addr.eq(_add_mod(row_addr, b, depth))]
            with m.Elif(~last_ox):                  # next window on this output row
                step = c.stride_w * n_cf
                m.d.sync += [colbase.eq(colbase + step), col.eq(colbase + step),
                             iy.eq(top), row_addr.eq(top_addr)]
            with m.Elif(~last_oy):                  # next output row
                nxt = _add_mod(top_addr, (c.stride_h % r_ring) * b, depth)
                m.d.sync += [colbase.eq(col_init), col.eq(col_init),
                             top.eq(step_top), iy.eq(step_top),
                             top_addr.eq(nxt), row_addr.eq(nxt)]
            with m.Else():                          # next frame
                delta = ih - (oh - 1) * c.stride_h  # first top of next frame - last top
                nxt = _add_mod(top_addr, (delta % r_ring) * b, depth)
                m.d.sync += [colbase.eq(col_init), col.eq(col_init),
                             top.eq(top_init), iy.eq(top_init),
                             top_addr.eq(nxt), row_addr.eq(nxt)]

        # ---- performance counters -----------------------------------------------------
        if self.counters:
            started = Signal()
            elapsed = Signal(32)
            wait_run = Signal(32)
            out_fire = Signal()
            m.d.comb += out_fire.eq(self.o.valid & self.o.ready)
            with m.If(accept & ~started):
                m.d.sync += [started.eq(1), elapsed.eq(1)]
            with m.Elif(started):
                m.d.sync += elapsed.eq(elapsed + 1)
            with m.If(out_fire):
                m.d.sync += perf[Counter.SPAN].eq(elapsed + 1)
            # waits count only once an issue follows, so idling after the last beat is not work
            with m.If(issue):
                m.d.sync += [perf[Counter.STALL_IN].eq(perf[Counter.STALL_IN] + wait_run),
                             wait_run.eq(0)]
            with m.Elif((started | accept) & ~stall):      # the first accept's cycle counts too
                m.d.sync += wait_run.eq(wait_run + 1)
            perf.count(m, Counter.ISSUE, issue)
            perf.count(m, Counter.STALL_OUT, started & stall)
            perf.count(m, Counter.IN_BEATS, accept)
            perf.count(m, Counter.OUT_BEATS, out_fire)
            perf.count(m, Counter.BUFFER_READS, rd.en)
            perf.count(m, Counter.BUFFER_WRITES, wr.en)
            perf.count(m, Counter.PAD_BEATS, issue & pad)
            perf.count(m, Counter.IN_BLOCKED, self.i.valid & ~self.i.ready)
            perf.drive(m, self.perf)
        return m
