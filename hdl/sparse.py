"""A zero-skipping sparse matrix-vector engine: only non-zero weights cost cycles.

Same stream interface, lanes and epilogues as the dense engine (:mod:`hdl.mvu`), so it
chains with any other engine; only the weight storage and the schedule differ.

Storage. The MH x MW weights are cut into NF = MH/PE neuron folds as in the dense engine;
PE ``p`` of fold ``nf`` owns row ``r = nf*PE + p``. Each row keeps only its non-zero weights,
as (column index, weight code) slots, SIMD slots per memory word and PE words side by side.
All PEs share one address counter, so fold ``nf`` takes

    steps(nf) = max(1, max_p ceil(nnz(row nf*PE + p) / SIMD))

cycles, and a PE whose row has fewer non-zeros is padded with zero-weight slots inside the
fold (the load-imbalance loss; only that padding is stored). A fold whose rows are all zero
still takes one step, of padding only, so it ends in the epilogue of a zero accumulator.
The lanes already make a zero weight contribute nothing, so padding needs no special case.
Weights with no zero code (bipolar) cannot be skipped; such lanes are refused.

Input. A vector arrives as L = MW/in_simd beats and is written into a register file that
the lanes gather from by column index (x[index] per slot). The register file has two banks:
loading vector k+1 overlaps computing vector k, so a vector costs max(L, C) cycles in steady
state, with C = sum_nf steps(nf). The first step of a vector issues in the cycle after its
last beat is accepted, and gathers its activations in that very cycle; a bank is released
when its vector's last step issues (its activations are in the gather registers by then),
so the loader refills it while the rest of the pipeline finishes that step.

Pipeline, one clock per stage, initiation interval 1:

    issue   the step's weight word, prefetched (the schedule is static): into a register
            the memory fills two steps ahead, or for one-beat vectors the memory's read
            port itself, one step ahead; it gathers its activations -> registered
    T, P, A lane terms, adder tree, accumulator (:mod:`hdl.datapath`)
    E       the epilogue's stages (:mod:`hdl.epilogue`), then the output register

Each weight word also carries two flags, last step of its fold and of the vector, so the
issue stage needs no step counter and no table of fold lengths.

Only the structure is built into the logic: the shape, the folding, the memory's depth C and
its word layout. The weight values (and so nnz) live in the memory's image alone, word 0
included (it is read in cycle 0), so weight sets of one structure give the same logic, the
same Verilog but for that image (:mod:`sim.memory_images`) and share a simulator build.

Timing. With an always-valid input and an always-ready output, N vectors take exactly

    sparse_cycles = L + C + (N - 1) * max(L, C) + FILL

cycles from the first input beat accepted to the last output beat produced (inclusive),
where L is the wait for the first vector's beats and FILL = :func:`fill_cycles` = 4 + the
epilogue's latency (the issue stage, the datapath's three, the epilogue's; the output
register is loaded at the end of the last and the beat leaves in the cycle after).

Counters: the dense engine's names (``hdl.mvu.PERF_COUNTERS``) plus ``skipped_weights``,
built only with ``counters=True``. Every cycle of the active window is accounted:
span = issue + stall_in + stall_out + FILL for any input and output pattern, where stall_in
counts the cycles before the last step in which no step could issue for want of a loaded
vector, and stall_out the cycles in which the output register holds a beat the consumer
does not take while that holds the engine back (and nothing issues).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hdl.arith import adder_tree
from hdl.datapath import DATAPATH_STAGES, StepControl, build_datapath
from hdl.epilogue import Epilogue
from hdl.errors import HardwareConfigError
from hdl.lanes import Lane
from hdl.memory import MemorySpec, check_style, find_memory, memory_attrs
from hdl.mvu import PERF_COUNTERS
from hdl.perf import COUNTER_BITS, Counter, PerfCounters, perf_port

FRONT_STAGES = 1
"""The issue stage: the prefetched weight word gathers its activations into registers."""

SPARSE_PERF_COUNTERS = (*PERF_COUNTERS, Counter.SKIPPED_WEIGHTS)
"""The dense engine's counters, with these meanings here:

- ``issue``: compute steps issued (N * sum_nf steps(nf));
- ``lane_ops``: PE * SIMD slots per step, padding included; ``zero_weight_lanes``: the
  padding slots among them; ``acc_adds``: PE per step;
- ``weight_reads``: compressed weight words read (one per step, ahead of it);
- ``ibuf_writes``: input beats written into the register file; ``ibuf_reads``: register-file
  gathers (one per step, PE * SIMD elements each);
- ``param_reads``: neuron folds whose epilogue parameters are read (one per fold);
- ``skipped_weights``: zero weights never issued, (MH * MW - nnz) per vector, counted from
  what is issued: MH * MW less the non-zero codes in the vector's C steps, that is
  MH * MW - C * PE * SIMD plus the zero codes among their slots.
"""


def _nonzero_mask(weights: np.ndarray) -> np.ndarray:
    arr = np.asarray(weights)
    if arr.ndim != 2:
        raise HardwareConfigError(f"weights must be a matrix [MH, MW], not shape {arr.shape}")
    return arr != 0


def fold_steps(weights: np.ndarray, pe: int, simd: int) -> list[int]:
    """Cycles each neuron fold takes: max(1, max over its PE rows of ceil(nnz / SIMD)).

    ``weights`` may be values or storage codes: for every lane this engine takes, a weight is
    zero exactly when its code is 0.
    """
    nz = _nonzero_mask(weights)
    mh = nz.shape[0]
    if pe < 1 or mh % pe:
        raise HardwareConfigError(f"PE={pe} must be >= 1 and divide MH={mh}")
    if simd < 1:
        raise HardwareConfigError(f"SIMD={simd} must be >= 1")
    per_row = nz.sum(axis=1).reshape(mh // pe, pe)
    return [max(1, max(-(-int(n) // simd) for n in fold)) for fold in per_row]


def fill_cycles(epilogue: Epilogue) -> int:
    """Cycles from a sparse engine's last issue to its last output beat, inclusive: the
    issue stage, the datapath's and the epilogue's (see the module docstring)."""
    return FRONT_STAGES + DATAPATH_STAGES + epilogue.latency


def sparse_cycles(weights: np.ndarray, pe: int, simd: int, in_simd: int, frames: int,
                  fill: int) -> int:
    """Exact cycles for ``frames`` vectors at full input and output rate.

    From the first input beat accepted to the last output beat produced, inclusive:
    L + C + (frames - 1) * max(L, C) + fill, with L = MW / in_simd load beats, C =
    sum(fold_steps) compute steps per vector and ``fill`` the engine's
    :func:`fill_cycles` (see the module docstring).
    """
    mw = _nonzero_mask(weights).shape[1]
    if in_simd < 1 or mw % in_simd:
        raise HardwareConfigError(f"in_simd={in_simd} must be >= 1 and divide MW={mw}")
    if frames <= 0:
        return 0
    load = mw // in_simd
    compute = sum(fold_steps(weights, pe, simd))
    return load + compute + (frames - 1) * max(load, compute) + fill


@dataclass(eq=False)
class SparseMVUConfig:
    """Everything that fixes one sparse engine's hardware.

    Fields as in :class:`hdl.mvu.MVUConfig`; ``weight_codes`` are storage codes [MH, MW]
    with code 0 meaning a zero weight. ``in_simd`` is the number of elements per input beat
    (it must divide MW; by default SIMD when that divides MW, else 1): unlike the dense
    engine, SIMD here counts non-zero slots per PE and cycle and need not divide MW.
    ``memory_style`` places the weight and parameter memories (:mod:`hdl.memory`).
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
    in_simd: int | None = None
    memory_style: str = "auto"
    steps: list[int] = field(init=False)

    def __post_init__(self) -> None:
        where = f"sparse engine {self.name!r}"
        check_style(self.memory_style, where)
        if self.pe < 1 or self.mh % self.pe:
            raise HardwareConfigError(f"{where}: PE={self.pe} must be >= 1 and divide MH={self.mh}")
        if self.simd < 1:
            raise HardwareConfigError(f"{where}: SIMD={self.simd} must be >= 1")
        if self.in_simd is None:
            self.in_simd = self.simd if self.mw % self.simd == 0 else 1
        if self.in_simd < 1 or self.mw % self.in_simd:
            raise HardwareConfigError(f"{where}: in_simd={self.in_simd} must be >= 1 and divide "
                             f"MW={self.mw}")
        if not self.lane.has_zero_weights:
            raise HardwareConfigError(
                f"{where}: {self.lane.family} lanes have bipolar weights, which "
                             "are never zero; there is nothing to skip (use the dense engine)")
        codes = np.asarray(self.weight_codes, dtype=np.int64)
        if codes.shape != (self.mh, self.mw):
            raise HardwareConfigError(f"{where}: weights {codes.shape} are not "
                             f"[MH={self.mh}, MW={self.mw}]")
        if codes.min(initial=0) < 0 or codes.max(initial=0) >= 1 << self.lane.weight_bits:
            raise HardwareConfigError(f"{where}: weight codes must be {self.lane.weight_bits}-bit "
                             "storage codes (non-negative)")
        self.weight_codes = codes
        self.steps = fold_steps(codes, self.pe, self.simd)

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def sf(self) -> int:
        """Input beats per vector: the dense engine's SF in its role of sizing input FIFOs."""
        return self.load_beats

    @property
    def load_beats(self) -> int:
        assert self.in_simd is not None
        return self.mw // self.in_simd

    @property
    def compute_steps(self) -> int:
        """Compute cycles per vector: sum of the fold steps."""
        return sum(self.steps)

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.weight_codes))

    @property
    def index_bits(self) -> int:
        """Bits of a column index: ceil(log2(MW)) (zero for a single column)."""
        return (self.mw - 1).bit_length()

    @property
    def slot_bits(self) -> int:
        return self.index_bits + self.lane.weight_bits

    @property
    def out_bits(self) -> int:
        return self.epilogue.out_bits

    @property
    def in_width(self) -> int:
        assert self.in_simd is not None
        return self.in_simd * self.lane.input_bits

    @property
    def out_width(self) -> int:
        return self.pe * self.out_bits

    # ---- the StageConfig protocol (hdl.stage) -----------------------------------------
    @property
    def in_elems(self) -> int:
        assert self.in_simd is not None
        return self.in_simd

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
        return SPARSE_PERF_COUNTERS

    def build(self, counters: bool = True) -> SparseMatrixVectorUnit:
        return SparseMatrixVectorUnit(self, counters)

    def input_fifo_depth(self, minimum: int) -> int:
        """One whole input vector (load beats + 1), as the dense engine."""
        return max(minimum, self.load_beats + 1)

    @property
    def fill_cycles(self) -> int:
        """Cycles from the last issue to the last output beat (see :func:`fill_cycles`)."""
        return fill_cycles(self.epilogue)

    def cycles(self, frames: int) -> int:
        """Exact full-rate cycle count for ``frames`` vectors (see :func:`sparse_cycles`)."""
        assert self.in_simd is not None
        return sparse_cycles(self.weight_codes, self.pe, self.simd, self.in_simd, frames,
                             self.fill_cycles)

    @property
    def slots_width(self) -> int:
        """Bits of a weight word's slots (PE * SIMD slots); the two flags sit above them."""
        return self.pe * self.simd * self.slot_bits

    @cached_property
    def memories(self) -> tuple[MemorySpec, ...]:
        """Compressed weights (slots and the two step flags), the epilogue parameter
        banks."""
        return ((MemorySpec("weights", self.slots_width + 2, self.compute_steps,
                            tuple(self.weight_words())),)
                + tuple(MemorySpec(bank.name, bank.width, bank.depth, bank.init)
                        for bank in self.epilogue.banks(self.pe)))

    def memory_attrs(self, name: str) -> dict[str, str]:
        return memory_attrs(self.memory_style, find_memory(self.memories, name))

    def weight_words(self) -> list[int]:
        """Compressed weight image, one word per step, folds in order.

        Word layout: PE p's slot j at slot position p*SIMD + j, each slot ``slot_bits`` wide
        with the column index in its low ``index_bits`` and the weight code above. A row's
        non-zeros fill its slots in column order; the rest of the fold is padding (0, 0).
        Above the slots (bit ``slots_width``) a flag marks the last step of a fold, and the
        bit above it the last step of the vector.
        """
        ib, sb = self.index_bits, self.slot_bits
        words = []
        for nf, n_steps in enumerate(self.steps):
            slots: list[list[tuple[int, int]]] = []
            for p in range(self.pe):
                row = self.weight_codes[nf * self.pe + p]
                cols = np.flatnonzero(row)
                slots.append([(int(c), int(row[c])) for c in cols])
            for step in range(n_steps):
                word = 0
                for p in range(self.pe):
                    for j in range(self.simd):
                        k = step * self.simd + j
                        if k < len(slots[p]):
                            col, code = slots[p][k]
                            word |= (col | (code << ib)) << ((p * self.simd + j) * sb)
                if step == n_steps - 1:
                    word |= 1 << self.slots_width
                    if nf == self.nf - 1:
                        word |= 2 << self.slots_width
                words.append(word)
        return words


def _counter(n: int) -> Signal:
    return Signal(range(max(n, 2)))


def _select(word, index, bits: int, index_bits: int):
    """Element ``index`` of a packed register file (a constant element for a 1-column file)."""
    if index_bits == 0:
        return word[:bits]
    return word.word_select(index, bits)


class SparseMatrixVectorUnit(wiring.Component):
    """One zero-skipping matrix-vector engine; see the module docstring for timing."""

    def __init__(self, config: SparseMVUConfig, counters: bool = True) -> None:
        self.config = config
        self.counters = counters
        self.perf_names = SPARSE_PERF_COUNTERS if counters else ()
        super().__init__({
            "i": In(stream.Signature(config.in_width)),
            "o": Out(stream.Signature(config.out_width)),
            **perf_port(SPARSE_PERF_COUNTERS, counters),
        })

    def elaborate(self, platform):  # noqa: C901 - one pipeline, read top to bottom
        m = Module()
        c = self.config
        assert c.in_simd is not None
        nf_n, pe, simd, load_n = c.nf, c.pe, c.simd, c.load_beats
        total = c.compute_steps
        xb, ib, sb, wb = c.lane.input_bits, c.index_bits, c.slot_bits, c.lane.weight_bits
        slots = c.slots_width
        stall = Signal()
        advance = ~stall

        # ---- loader: beats -> double-buffered register file --------------------------
        banks = [Signal(c.mw * xb, name=f"xbank{b}") for b in range(2)]
        full = [Signal(name=f"full{b}") for b in range(2)]
        wsel = Signal()
        lbeat = _counter(load_n)
        lbeat_last = Signal()
        accept = Signal()
        m.d.comb += [
            lbeat_last.eq(lbeat == load_n - 1),
            self.i.ready.eq(Mux(wsel, full[1], full[0]) == 0),
            accept.eq(self.i.valid & self.i.ready),
        ]
        with m.If(accept):
            for b in range(2):
                with m.If(wsel == b):
                    m.d.sync += banks[b].word_select(lbeat, c.in_width).eq(self.i.payload)
            with m.If(lbeat_last):
                m.d.sync += [lbeat.eq(0), wsel.eq(~wsel)]
                for b in range(2):
                    with m.If(wsel == b):
                        m.d.sync += full[b].eq(1)
            with m.Else():
                m.d.sync += lbeat.eq(lbeat + 1)

        # ---- weight prefetch: ``head`` is the next step's word. No register starts with a
        # weight word (the weights live in the memory alone): word 0 is read in cycle 0 ---
        m.submodules.weights = wmem = Memory(shape=unsigned(slots + 2), depth=total,
                                             init=c.weight_words(),
                                             attrs=c.memory_attrs("weights"))
        w_rd = wmem.read_port()
        primed = Signal()                   # the read port holds word 0 (read in cycle 0)
        fetch_addr = Signal(range(max(total, 2)))
        fetch = Signal()
        issue = Signal()
        m.d.comb += [w_rd.addr.eq(fetch_addr), w_rd.en.eq(fetch)]
        m.d.sync += primed.eq(1)
        with m.If(fetch):
            m.d.sync += fetch_addr.eq(Mux(fetch_addr == total - 1, 0, fetch_addr + 1))
        if load_n > 1:
            # A vector of two or more beats cannot issue before cycle 2: word 0 goes into a
            # head register in cycle 1, and from then on the read port holds the word after
            # the head's, reading two steps ahead whenever a step issues.
            head = Signal(slots + 2)
            loaded = Signal()
            m.d.sync += loaded.eq(primed)
            m.d.comb += fetch.eq(issue | ~loaded)
            with m.If(fetch):
                m.d.sync += head.eq(w_rd.data)
        else:
            # A one-beat vector can issue in cycle 1, when word 0 has only reached the read
            # port: the port's data is the head, read one step ahead whenever a step issues
            # (a head register would need a bypass from the port for that first step, the
            # same memory-to-gather path plus a multiplexer as wide as the word).
            head = w_rd.data
            m.d.comb += fetch.eq(issue | ~primed)

        # ---- issue stage: gather the step's activations ---------------------------------
        rsel = Signal()
        nf = _counter(nf_n)
        fold_start = Signal(init=1)
        fold_last = head[slots]
        vec_last = head[slots + 1]
        m.d.comb += issue.eq(advance & Mux(rsel, full[1], full[0]))
        with m.If(issue):
            m.d.sync += fold_start.eq(fold_last)
            with m.If(fold_last):
                m.d.sync += nf.eq(Mux(nf == nf_n - 1, 0, nf + 1))
            with m.If(vec_last):           # the gather registers hold the last step's data
                m.d.sync += rsel.eq(~rsel)
                for b in range(2):
                    with m.If(rsel == b):
                        m.d.sync += full[b].eq(0)
        x_file = Mux(rsel, banks[1], banks[0])
        x_ops, w_ops = [], []
        for p in range(pe):
            fields = [head.word_select(p * simd + j, sb) for j in range(simd)]
            x_op = Signal(simd * xb, name=f"gather{p}")
            w_op = Signal(simd * wb, name=f"codes{p}")
            with m.If(advance):
                m.d.sync += [x_op.eq(Cat(*(_select(x_file, f[:ib], xb, ib) for f in fields))),
                             w_op.eq(Cat(*(f[ib:] for f in fields)))]
            x_ops.append(x_op)
            w_ops.append(w_op)
        at_lanes = StepControl(Signal(name="lanes_valid"), Signal(name="lanes_first"),
                               Signal(name="lanes_last"), Signal.like(nf, name="lanes_nf"))
        with m.If(advance):
            m.d.sync += [at_lanes.valid.eq(issue), at_lanes.first.eq(fold_start),
                         at_lanes.last.eq(fold_last), at_lanes.nf.eq(nf)]
        path = build_datapath(m, lane=c.lane, simd=simd, acc_range=c.acc_range,
                              epilogue=c.epilogue, x_words=x_ops, w_words=w_ops,
                              step=at_lanes, stall=stall, out=self.o,
                              memory_attrs=c.memory_attrs)

        # ---- performance counters -----------------------------------------------------
        if self.counters:
            perf = PerfCounters(SPARSE_PERF_COUNTERS, True)
            started = Signal()
            active = Signal()
            elapsed = Signal(32)
            wait_run = Signal(32)
            out_fire = Signal()
            blocked_out = Signal()
            m.d.comb += [
                active.eq(started | accept),
                out_fire.eq(self.o.valid & self.o.ready),
                # the output register holds a beat the consumer does not take, and that
                # holds the engine back: it is frozen, or has nothing left but that beat
                blocked_out.eq(active & ~issue & self.o.valid & ~self.o.ready
                               & (stall | ~path.busy)),
            ]
            with m.If(accept & ~started):
                m.d.sync += [started.eq(1), elapsed.eq(1)]
            with m.Elif(started):
                m.d.sync += elapsed.eq(elapsed + 1)
            with m.If(out_fire):
                m.d.sync += perf[Counter.SPAN].eq(elapsed + 1)
            # idle cycles become input stalls once a later step issues; the idle cycles after
            # the last step are the fill (exactly fill_cycles of them)
            with m.If(issue):
                m.d.sync += [perf[Counter.STALL_IN].eq(perf[Counter.STALL_IN] + wait_run),
                             wait_run.eq(0)]
            with m.Elif(active & ~blocked_out):
                m.d.sync += wait_run.eq(wait_run + 1)
            perf.count(m, Counter.ISSUE, issue)
            perf.count(m, Counter.STALL_OUT, blocked_out)
            perf.count(m, Counter.IN_BEATS, accept)
            perf.count(m, Counter.OUT_BEATS, out_fire)
            perf.count(m, Counter.LANE_OPS, issue, pe * simd)
            perf.count(m, Counter.ACC_ADDS, issue, pe)
            perf.count(m, Counter.WEIGHT_READS, issue)
            perf.count(m, Counter.IBUF_WRITES, accept)
            perf.count(m, Counter.IBUF_READS, issue)
            perf.count(m, Counter.PARAM_READS, path.param_reads)
            zeros = Signal(range(pe * simd + 1))
            m.d.comb += zeros.eq(adder_tree([c.lane.zero_weight_count(w, simd)
                                             for w in w_ops]))
            perf.count(m, Counter.ZERO_WEIGHT_LANES, at_lanes.valid & advance, zeros)
            # a vector's MH * MW weights less the non-zero codes its C steps issue: each step
            # issues PE * SIMD slots, ``zeros`` of them zero codes; the structural part
            # MH * MW - C * PE * SIMD is added with the vector's last step (it may be negative)
            lanes_vec_last = Signal()
            with m.If(advance):
                m.d.sync += lanes_vec_last.eq(vec_last)
            not_issued = Const((c.mh * c.mw - total * pe * simd) % (1 << COUNTER_BITS),
                               COUNTER_BITS)
            perf.count(m, Counter.SKIPPED_WEIGHTS, at_lanes.valid & advance,
                       zeros + Mux(lanes_vec_last, not_issued, 0))
            perf.drive(m, self.perf)
        return m


def sparse_speedup(weights: np.ndarray, pe: int, simd: int,
                   in_simd: int | None = None) -> dict[str, float]:
    """Steady-state speedup over the dense engine at the same (PE, SIMD), and its ideal.

    Dense: NF * ceil(MW / SIMD) cycles per vector. Sparse: max(L, sum fold_steps). Ideal:
    dense MACs / non-zero MACs (MH*MW / nnz). ``efficiency`` is speedup / ideal: how much of
    the skipped work the folding turns into saved cycles (load imbalance and the SIMD
    rounding of each row's non-zeros are the losses).
    """
    nz = _nonzero_mask(weights)
    mh, mw = nz.shape
    if in_simd is None:
        in_simd = simd if mw % simd == 0 else 1
    dense = (mh // pe) * math.ceil(mw / simd)
    compute = sum(fold_steps(weights, pe, simd))
    steady = max(mw // in_simd, compute)
    nnz = int(nz.sum())
    ideal = mh * mw / nnz if nnz else math.inf
    speedup = dense / steady
    return {"dense": dense, "compute": compute, "steady": steady, "nnz": nnz,
            "speedup": speedup, "compute_speedup": dense / compute, "ideal": ideal,
            "efficiency": speedup / ideal, "compute_efficiency": dense / compute / ideal}
