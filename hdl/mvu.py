"""The matrix-vector unit (FINN's MVAU organisation): PE rows x SIMD lanes, streams in and out.

Folding: the MH x MW matrix is cut into NF = MH/PE neuron folds and SF = MW/SIMD synapse
folds. Each cycle the engine issues one (nf, sf) step: PE lanes each take SIMD activations
and SIMD weights. An input vector arrives as SF beats of SIMD elements during the first
neuron fold and is kept in an input buffer for the other NF - 1 folds; each neuron fold
ends with one output beat of PE elements. So a vector costs exactly NF * SF issue cycles,
and a run of N vectors with no stalls takes N * NF * SF + FILL cycles from the first input
accepted to the last output produced, with FILL = 2 (weight-memory read, then the
accumulate + threshold stage that loads the output register).

Weights and epilogue parameters (thresholds or requantization multipliers, see
:mod:`hdl.epilogue`) live in on-chip memories initialised from the design. Output
backpressure freezes the pipeline (read ports hold their data); the engine never drops or
repeats a beat.

Performance counters (see ``PERF_COUNTERS``) make every cycle in the active window
accountable: span = issue + stall_in + stall_out + FILL, for any input/output pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hdl.arith import adder_tree, shape_for_range
from hdl.epilogue import Epilogue, build_param_banks
from hdl.errors import HardwareConfigError
from hdl.lanes import Lane
from hdl.memory import MemorySpec, check_style, find_memory, memory_attrs
from hdl.perf import Counter, PerfCounters, perf_port

FILL_CYCLES = 2

PERF_COUNTERS = (
    Counter.ISSUE,              # fold steps issued: N * NF * SF
    Counter.STALL_IN,           # cycles waiting for the next input beat (between first and last)
    Counter.STALL_OUT,          # cycles frozen by output backpressure
    Counter.SPAN,               # first input accepted .. last output produced, inclusive
    Counter.IN_BEATS,
    Counter.OUT_BEATS,
    Counter.LANE_OPS,           # PE * SIMD lane operations per issue
    Counter.ACC_ADDS,           # PE accumulator additions per issue
    Counter.WEIGHT_READS,       # weight-memory words read
    Counter.IBUF_WRITES,        # input-buffer words written
    Counter.IBUF_READS,         # input-buffer words read
    Counter.PARAM_READS,        # epilogue-parameter (threshold / multiplier) words read
    Counter.ZERO_WEIGHT_LANES,  # lane operations whose weight is zero (gated: no add, a cycle)
    Counter.ZERO_ACT_LANES,     # lanes with a non-zero weight but a zero activation (gated)
)


def pack_words(codes: np.ndarray, bits: int) -> list[int]:
    """Pack rows of non-negative codes into integers, element j at bits [j*bits, (j+1)*bits)."""
    words = []
    mask = (1 << bits) - 1
    for row in np.asarray(codes, dtype=np.int64).reshape(codes.shape[0], -1):
        word = 0
        for j, code in enumerate(row.tolist()):
            word |= (int(code) & mask) << (j * bits)
        words.append(word)
    return words


@dataclass(eq=False)
class MVUConfig:
    """Everything that fixes one engine's hardware.

    ``weight_codes`` are storage codes [MH, MW] of ``lane.weight_bits`` each (bipolar:
    1 = +1; others two's complement). ``acc_range`` is the exact accumulator range (derived
    from the types, so overflow is impossible). The ``epilogue`` turns each finished
    accumulator into an output code of ``epilogue.out_bits``. ``memory_style`` places the
    weight, parameter and input-buffer memories (:mod:`hdl.memory`).
    """

    name: str
    mw: int
    mh: int
    pe: int
    simd: int
    lane: Lane
    weight_codes: np.ndarray
    acc_range: tuple[int, int]
    epilogue: Epilogue
    memory_style: str = "auto"

    def __post_init__(self) -> None:
        check_style(self.memory_style, f"engine {self.name!r}")
        if self.mh % self.pe or self.mw % self.simd:
            raise HardwareConfigError(
                f"engine {self.name!r}: PE={self.pe} must divide MH={self.mh} and "
                             f"SIMD={self.simd} must divide MW={self.mw}")
        if self.weight_codes.shape != (self.mh, self.mw):
            raise HardwareConfigError(
                f"engine {self.name!r}: weights {self.weight_codes.shape} are not "
                             f"[MH={self.mh}, MW={self.mw}]")

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def out_bits(self) -> int:
        return self.epilogue.out_bits

    @property
    def in_width(self) -> int:
        return self.simd * self.lane.input_bits

    # ---- the StageConfig protocol (hdl.stage) -----------------------------------------
    @property
    def in_elems(self) -> int:
        return self.simd

    @property
    def out_elems(self) -> int:
        return self.pe

    @property
    def in_elem_bits(self) -> int:
        return self.lane.input_bits

    @property
    def out_elem_bits(self) -> int:
        return self.out_bits

    @property
    def counter_names(self) -> tuple[Counter, ...]:
        return PERF_COUNTERS

    def build(self, counters: bool = True) -> MatrixVectorUnit:
        return MatrixVectorUnit(self, counters)

    def input_fifo_depth(self, minimum: int) -> int:
        """One whole input vector (SF beats + 1), so a frame can finish while the consumer
        is busy with the previous one."""
        return max(minimum, self.sf + 1)

    @property
    def out_width(self) -> int:
        return self.pe * self.out_bits

    @cached_property
    def memories(self) -> tuple[MemorySpec, ...]:
        """Weights, one bank per epilogue parameter group, the input buffer (NF > 1)."""
        words = (MemorySpec("weights", self.pe * self.simd * self.lane.weight_bits,
                            self.nf * self.sf, tuple(self.weight_words())),)
        params = tuple(MemorySpec(bank.name, bank.width, self.nf, bank.init)
                       for bank in self.epilogue.banks(self.pe))
        ibuf = ((MemorySpec("ibuf", self.in_width, self.sf, writable=True, single_port=True),)
                if self.nf > 1 else ())
        return words + params + ibuf

    def memory_attrs(self, name: str) -> dict[str, str]:
        return memory_attrs(self.memory_style, find_memory(self.memories, name))

    def weight_words(self) -> list[int]:
        """Weight memory image: address nf*SF + sf holds PE rows x SIMD columns."""
        wb = self.lane.weight_bits
        words = []
        for nf in range(self.nf):
            for sf in range(self.sf):
                block = self.weight_codes[nf * self.pe:(nf + 1) * self.pe,
                                          sf * self.simd:(sf + 1) * self.simd]
                words += pack_words(block.reshape(1, -1), wb)
        return words


def _counter(n: int) -> Signal:
    return Signal(range(max(n, 2)))


class MatrixVectorUnit(wiring.Component):
    """One folded matrix-vector engine; see the module docstring for timing."""

    def __init__(self, config: MVUConfig, counters: bool = True) -> None:
        self.config = config
        self.counters = counters
        self.perf_names = PERF_COUNTERS if counters else ()
        super().__init__({
            "i": In(stream.Signature(config.in_width)),
            "o": Out(stream.Signature(config.out_width)),
            **perf_port(PERF_COUNTERS, counters),
        })

    def elaborate(self, platform):  # noqa: C901 - one pipeline, read top to bottom
        m = Module()
        c = self.config
        nf_n, sf_n, pe, simd = c.nf, c.sf, c.pe, c.simd
        perf = PerfCounters(PERF_COUNTERS, self.counters)

        # ---- memories -------------------------------------------------------------
        m.submodules.weights = wmem = Memory(
            shape=unsigned(pe * simd * c.lane.weight_bits), depth=nf_n * sf_n,
            init=c.weight_words(), attrs=c.memory_attrs("weights"))
        w_rd = wmem.read_port()
        param_addr = Signal(range(max(nf_n, 2)))
        param_en = Signal()
        param_data = build_param_banks(m, c.epilogue, pe, nf_n, param_addr, param_en,
                                       c.memory_attrs)
        n_params = len(param_data)
        if nf_n > 1:
            m.submodules.ibuf = ibuf = Memory(shape=unsigned(c.in_width), depth=sf_n, init=[],
                                              attrs=c.memory_attrs("ibuf"))
            ib_rd = ibuf.read_port()
            ib_wr = ibuf.write_port()

        # ---- issue stage: (nf, sf) counters ---------------------------------------
        nf = _counter(nf_n)
        sf = _counter(sf_n)
        waddr = _counter(nf_n * sf_n)
        need_input = Signal()
        stall = Signal()
        issue = Signal()
        accept = Signal()
        sf_last = Signal()
        m.d.comb += [
            need_input.eq(nf == 0),
            sf_last.eq(sf == sf_n - 1),
            issue.eq(~stall & (~need_input | self.i.valid)),
            self.i.ready.eq(need_input & ~stall),
            accept.eq(issue & need_input),
        ]
        with m.If(issue):
            with m.If(sf_last):
                m.d.sync += sf.eq(0)
                m.d.sync += nf.eq(Mux(nf == nf_n - 1, 0, nf + 1))
            with m.Else():
                m.d.sync += sf.eq(sf + 1)
            m.d.sync += waddr.eq(Mux(waddr == nf_n * sf_n - 1, 0, waddr + 1))
        m.d.comb += [w_rd.addr.eq(waddr), w_rd.en.eq(issue)]
        m.d.comb += [param_addr.eq(nf), param_en.eq(issue & sf_last)]
        if nf_n > 1:
            m.d.comb += [
                ib_wr.addr.eq(sf), ib_wr.data.eq(self.i.payload), ib_wr.en.eq(accept),
                ib_rd.addr.eq(sf), ib_rd.en.eq(issue & ~need_input),
            ]

        # ---- stage 1: lanes, accumulate, threshold, output register -----------------
        s1_valid = Signal()
        s1_first = Signal()
        s1_last = Signal()
        s1_from_stream = Signal()
        s1_in = Signal(c.in_width)
        with m.If(~stall):
            m.d.sync += [
                s1_valid.eq(issue),
                s1_first.eq(sf == 0),
                s1_last.eq(sf_last),
                s1_from_stream.eq(need_input),
            ]
        with m.If(accept):
            m.d.sync += s1_in.eq(self.i.payload)
        x_word = Mux(s1_from_stream, s1_in, ib_rd.data) if nf_n > 1 else s1_in

        acc_shape = shape_for_range(*c.acc_range)
        out_free = Signal()
        m.d.comb += [
            out_free.eq(~self.o.valid | self.o.ready),
            stall.eq(s1_valid & s1_last & ~out_free),
        ]
        wb = c.lane.weight_bits
        accs = []
        zero_lanes = []
        zero_acts = []
        for p in range(pe):
            acc = Signal(acc_shape, name=f"acc{p}")
            acc_next = Signal(acc_shape, name=f"acc_next{p}")
            w_word = w_rd.data.word_select(p, simd * wb)
            partial = c.lane.partial_sum(x_word, w_word, simd)
            m.d.comb += acc_next.eq(Mux(s1_first, 0, acc) + partial)
            with m.If(s1_valid & ~stall):
                m.d.sync += acc.eq(acc_next)
            accs.append(acc_next)
            if c.lane.has_zero_weights and self.counters:
                zero_lanes.append(c.lane.zero_weight_count(w_word, simd))
                zero_acts.append(c.lane.zero_activation_count(x_word, w_word, simd))
        codes = c.epilogue.codes(m, accs, param_data)
        out_word = Cat(*codes)
        produce = Signal()
        m.d.comb += produce.eq(s1_valid & s1_last & out_free)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(produce):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(out_word)]

        # ---- performance counters -----------------------------------------------------
        if self.counters:
            self._count(m, perf, issue=issue, accept=accept, stall=stall,
                        need_input=need_input, sf_last=sf_last, s1_valid=s1_valid,
                        zero_lanes=zero_lanes, zero_acts=zero_acts, n_params=n_params)
        return m

    def _count(self, m: Module, perf: PerfCounters, *, issue, accept, stall, need_input,
               sf_last, s1_valid, zero_lanes, zero_acts, n_params) -> None:
        """Counter logic: accounts for every cycle of the active window (see module doc)."""
        c = self.config
        nf_n, pe, simd = c.nf, c.pe, c.simd
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
        waiting = started & ~issue & ~stall & ~(self.o.valid & ~self.o.ready)
        with m.If(accept):
            m.d.sync += [perf[Counter.STALL_IN].eq(perf[Counter.STALL_IN] + wait_run),
                             wait_run.eq(0)]
        with m.Elif(waiting):
            m.d.sync += wait_run.eq(wait_run + 1)
        blocked_out = started & ~issue & self.o.valid & ~self.o.ready
        perf.count(m, Counter.ISSUE, issue)
        perf.count(m, Counter.STALL_OUT, blocked_out)
        perf.count(m, Counter.IN_BEATS, accept)
        perf.count(m, Counter.OUT_BEATS, out_fire)
        perf.count(m, Counter.LANE_OPS, issue, pe * simd)
        perf.count(m, Counter.ACC_ADDS, issue, pe)
        perf.count(m, Counter.WEIGHT_READS, issue)
        if nf_n > 1:
            perf.count(m, Counter.IBUF_WRITES, accept)
            perf.count(m, Counter.IBUF_READS, issue & ~need_input)
        if n_params:
            perf.count(m, Counter.PARAM_READS, issue & sf_last)
        if zero_lanes:
            zeros = Signal(range(pe * simd + 1))
            m.d.comb += zeros.eq(adder_tree(zero_lanes))
            perf.count(m, Counter.ZERO_WEIGHT_LANES, s1_valid & ~stall, zeros)
            idle = Signal(range(pe * simd + 1))
            m.d.comb += idle.eq(adder_tree(zero_acts))
            perf.count(m, Counter.ZERO_ACT_LANES, s1_valid & ~stall, idle)
        perf.drive(m, self.perf)
