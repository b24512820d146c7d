"""The matrix-vector unit (FINN's MVAU organisation): PE rows x SIMD lanes, streams in and out.

Folding: the MH x MW matrix is cut into NF = MH/PE neuron folds and SF = MW/SIMD synapse
folds. Each cycle the engine issues one (nf, sf) step: PE lanes each take SIMD activations
and SIMD weights. An input vector arrives as SF beats of SIMD elements during the first
neuron fold and is kept in an input buffer for the other NF - 1 folds; each neuron fold
ends with one output beat of PE elements. So a vector costs exactly NF * SF issue cycles,
and a run of N vectors with no stalls takes N * NF * SF + FILL cycles from the first input
accepted to the last output produced, with FILL = :func:`fill_cycles` = 5 + the
epilogue's latency (5 for an accumulator output, 5 + 2B for B-bit thresholds, 8 for a
requantization).

Pipeline, one clock per stage, initiation interval 1:

    issue   (nf, sf) counters address the weight memory and the input buffer
    read    the memories' data (and the input beat) registered as the lanes' operands
    T, P, A lane terms, adder tree, accumulator (:mod:`hdl.datapath`)
    E       the epilogue's stages (:mod:`hdl.epilogue`), then the output register

so no path runs from a memory's output through arithmetic, and none through more than one
of lanes, adder tree, accumulator or one comparison of the threshold search.

One exception, with the same stages and cycles (:attr:`MVUConfig.weights_in_lanes`): 1-bit
weights in a shallow read-only memory kept in logic (:func:`hdl.memory.shallow_logic_rom`).
There the weight *address* takes the read and operand registers and the memory is read
combinationally from the operand address, so each lane's term is one LUT of the four
address bits and its activation bit (an XNOR or a sign) instead of a ROM LUT, two
registers of its weight bit and a lane LUT: the weight word's read and operand registers
(one flip-flop each per distinct column) give way to two address registers.

Weights and epilogue parameters (thresholds or requantization multipliers, see
:mod:`hdl.epilogue`) live in on-chip memories initialised from the design. Output
backpressure freezes the whole pipeline (read ports hold their data); the engine never
drops or repeats a beat.

Performance counters (see ``PERF_COUNTERS``, built only with ``counters=True``) make every
cycle in the active window accountable: span = issue + stall_in + stall_out + FILL, for any
input/output pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hdl.arith import adder_tree
from hdl.datapath import DATAPATH_STAGES, StepControl, build_datapath, next_stage
from hdl.epilogue import Epilogue
from hdl.errors import HardwareConfigError
from hdl.lanes import Lane
from hdl.memory import MemorySpec, check_style, find_memory, memory_attrs, shallow_logic_rom
from hdl.perf import Counter, PerfCounters, perf_port

FRONT_STAGES = 2
"""Issue (memory addresses) and read (the memories' data registered as the lanes' operands)."""


def fill_cycles(epilogue: Epilogue) -> int:
    """Cycles from a dense engine's last issue to its last output beat, inclusive, with the
    output taken at once: the front stages, the datapath's (:mod:`hdl.datapath`) and the
    epilogue's; the output register is loaded at the end of the last of them and the beat
    leaves in the cycle after."""
    return FRONT_STAGES + DATAPATH_STAGES + epilogue.latency

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
    Counter.PARAM_READS,        # neuron folds whose epilogue parameters are read
    Counter.ZERO_WEIGHT_LANES,  # lane operations whose weight is zero (gated: no add, a cycle)
    Counter.ZERO_ACT_LANES,     # lanes with a non-zero weight but a zero activation (gated)
)


def pack_words(codes: np.ndarray, bits: int) -> list[int]:
    """Pack rows of non-negative codes into integers, element j at bits [j*bits, (j+1)*bits)."""
    rows = np.asarray(codes, dtype=np.int64).reshape(np.shape(codes)[0], -1)
    # each code's low ``bits`` bits (two's complement), least significant first, row-major
    planes = (rows[:, :, None] >> np.arange(bits)) & 1
    packed = np.packbits(planes.reshape(len(rows), -1).astype(np.uint8), axis=1,
                         bitorder="little")
    if packed.shape[1] <= 8:
        # words of up to 64 bits: read as little-endian 64-bit integers in one go (the
        # many-address memories of folded engines have narrow words)
        wide = np.zeros((len(rows), 8), dtype=np.uint8)
        wide[:, :packed.shape[1]] = packed
        return wide.view("<u8")[:, 0].tolist()
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


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

    @property
    def fill_cycles(self) -> int:
        """Cycles from the last issue to the last output beat (see :func:`fill_cycles`)."""
        return fill_cycles(self.epilogue)

    @cached_property
    def memories(self) -> tuple[MemorySpec, ...]:
        """Weights, one bank per epilogue parameter group, the input buffer (NF > 1)."""
        weights = MemorySpec("weights", self.pe * self.simd * self.lane.weight_bits,
                             self.nf * self.sf, tuple(self.weight_words()))
        if self.lane.weight_bits == 1 and shallow_logic_rom(self.memory_style, weights):
            weights = replace(weights, sync_read=False)
        words = (weights,)
        params = tuple(MemorySpec(bank.name, bank.width, bank.depth, bank.init)
                       for bank in self.epilogue.banks(self.pe))
        ibuf = ((MemorySpec("ibuf", self.in_width, self.sf, writable=True, single_port=True),)
                if self.nf > 1 else ())
        return words + params + ibuf

    @property
    def weights_in_lanes(self) -> bool:
        """The weight memory is read combinationally by the lanes (1-bit weights in a
        shallow read-only memory in logic, see the module docstring): a weight bit column
        and the lane's activation bit fit one LUT6, so no register sits between them."""
        return not find_memory(self.memories, "weights").sync_read

    def memory_attrs(self, name: str) -> dict[str, str]:
        return memory_attrs(self.memory_style, find_memory(self.memories, name))

    def weight_words(self) -> list[int]:
        """Weight memory image: address nf*SF + sf holds PE rows x SIMD columns."""
        codes = np.asarray(self.weight_codes).reshape(self.nf, self.pe, self.sf, self.simd)
        blocks = codes.transpose(0, 2, 1, 3).reshape(self.nf * self.sf, self.pe * self.simd)
        return pack_words(blocks, self.lane.weight_bits)


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

    def elaborate(self, platform):
        m = Module()
        c = self.config
        nf_n, sf_n, pe, simd = c.nf, c.sf, c.pe, c.simd
        wb = c.lane.weight_bits
        stall = Signal()
        advance = ~stall

        # ---- memories -------------------------------------------------------------
        m.submodules.weights = wmem = Memory(
            shape=unsigned(pe * simd * wb), depth=nf_n * sf_n, init=c.weight_words(),
            attrs=c.memory_attrs("weights"))
        w_rd = wmem.read_port(domain="comb") if c.weights_in_lanes else wmem.read_port()
        if nf_n > 1:
            m.submodules.ibuf = ibuf = Memory(shape=unsigned(c.in_width), depth=sf_n, init=[],
                                              attrs=c.memory_attrs("ibuf"))
            ib_rd = ibuf.read_port()
            ib_wr = ibuf.write_port()

        # ---- issue stage: (nf, sf) counters, memory addresses ------------------------
        nf = _counter(nf_n)
        sf = _counter(sf_n)
        waddr = _counter(nf_n * sf_n)
        need_input = Signal()
        issue = Signal()
        accept = Signal()
        sf_last = Signal()
        m.d.comb += [
            need_input.eq(nf == 0),
            sf_last.eq(sf == sf_n - 1),
            issue.eq(advance & (~need_input | self.i.valid)),
            self.i.ready.eq(need_input & advance),
            accept.eq(issue & need_input),
        ]
        with m.If(issue):
            with m.If(sf_last):
                m.d.sync += sf.eq(0)
                m.d.sync += nf.eq(Mux(nf == nf_n - 1, 0, nf + 1))
            with m.Else():
                m.d.sync += sf.eq(sf + 1)
            m.d.sync += waddr.eq(Mux(waddr == nf_n * sf_n - 1, 0, waddr + 1))
        if not c.weights_in_lanes:
            m.d.comb += [w_rd.addr.eq(waddr), w_rd.en.eq(issue)]
        if nf_n > 1:
            m.d.comb += [
                ib_wr.addr.eq(sf), ib_wr.data.eq(self.i.payload), ib_wr.en.eq(accept),
                ib_rd.addr.eq(sf), ib_rd.en.eq(issue & ~need_input),
            ]
        x_in = Signal(c.in_width)
        with m.If(accept):
            m.d.sync += x_in.eq(self.i.payload)

        # ---- read stage: the memories' data, registered as the datapath's operands ----
        at_read = StepControl(Signal(name="read_valid"), Signal(name="read_first"),
                              Signal(name="read_last"), Signal.like(nf, name="read_nf"))
        from_stream = Signal()
        with m.If(advance):
            m.d.sync += [at_read.valid.eq(issue), at_read.first.eq(sf == 0),
                         at_read.last.eq(sf_last), at_read.nf.eq(nf),
                         from_stream.eq(need_input)]
        x_word = Mux(from_stream, x_in, ib_rd.data) if nf_n > 1 else x_in
        x_op = Signal(c.in_width)
        if c.weights_in_lanes:
            # the address takes the read port's register (loaded on issue, held otherwise)
            # and the operand register; the word is read from the operand address
            read_waddr = Signal.like(waddr)
            operand_waddr = Signal.like(waddr)
            with m.If(issue):
                m.d.sync += read_waddr.eq(waddr)
            with m.If(advance):
                m.d.sync += [x_op.eq(x_word), operand_waddr.eq(read_waddr)]
            m.d.comb += w_rd.addr.eq(operand_waddr)
            w_op = w_rd.data
        else:
            w_op = Signal(pe * simd * wb)
            with m.If(advance):
                m.d.sync += [x_op.eq(x_word), w_op.eq(w_rd.data)]
        at_lanes = next_stage(m, at_read, advance, "operands")
        w_words = [w_op.word_select(p, simd * wb) for p in range(pe)]
        path = build_datapath(m, lane=c.lane, simd=simd, acc_range=c.acc_range,
                              epilogue=c.epilogue, x_words=[x_op] * pe, w_words=w_words,
                              step=at_lanes, stall=stall, out=self.o,
                              memory_attrs=c.memory_attrs)

        # ---- performance counters -----------------------------------------------------
        if self.counters:
            zero_lanes, zero_acts = [], []
            if c.lane.has_zero_weights:
                zero_lanes = [c.lane.zero_weight_count(w, simd) for w in w_words]
                zero_acts = [c.lane.zero_activation_count(x_op, w, simd) for w in w_words]
            self._count(m, issue=issue, accept=accept, stall=stall, need_input=need_input,
                        busy=at_read.valid | path.busy, lanes_step=at_lanes.valid & advance,
                        zero_lanes=zero_lanes, zero_acts=zero_acts,
                        param_reads=path.param_reads)
        return m

    def _count(self, m: Module, *, issue, accept, stall, need_input, busy, lanes_step,
               zero_lanes, zero_acts, param_reads) -> None:
        """Counter logic: accounts for every cycle of the active window (see module doc)."""
        c = self.config
        nf_n, pe, simd = c.nf, c.pe, c.simd
        perf = PerfCounters(PERF_COUNTERS, True)
        started = Signal()
        elapsed = Signal(32)
        wait_run = Signal(32)
        out_fire = Signal()
        blocked_out = Signal()
        m.d.comb += [
            out_fire.eq(self.o.valid & self.o.ready),
            # the output register holds a beat the consumer does not take, and that holds
            # the engine back: it is frozen, or has nothing left but that beat
            blocked_out.eq(started & ~issue & self.o.valid & ~self.o.ready & (stall | ~busy)),
        ]
        with m.If(accept & ~started):
            m.d.sync += [started.eq(1), elapsed.eq(1)]
        with m.Elif(started):
            m.d.sync += elapsed.eq(elapsed + 1)
        with m.If(out_fire):
            m.d.sync += perf[Counter.SPAN].eq(elapsed + 1)
        # idle cycles become input stalls when an input beat ends them; the idle cycles after
        # the last issue are the fill
        with m.If(accept):
            m.d.sync += [perf[Counter.STALL_IN].eq(perf[Counter.STALL_IN] + wait_run),
                         wait_run.eq(0)]
        with m.Elif(started & ~issue & ~blocked_out):
            m.d.sync += wait_run.eq(wait_run + 1)
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
        perf.count(m, Counter.PARAM_READS, param_reads)
        if zero_lanes:
            zeros = Signal(range(pe * simd + 1))
            m.d.comb += zeros.eq(adder_tree(zero_lanes))
            perf.count(m, Counter.ZERO_WEIGHT_LANES, lanes_step, zeros)
            idle = Signal(range(pe * simd + 1))
            m.d.comb += idle.eq(adder_tree(zero_acts))
            perf.count(m, Counter.ZERO_ACT_LANES, lanes_step, idle)
        perf.drive(m, self.perf)
