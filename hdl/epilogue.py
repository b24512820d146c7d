"""Engine epilogues: what turns a finished accumulator into an output element.

Every engine (dense or sparse, any PE family) ends a neuron fold with PE accumulators; the
epilogue maps each to the output code of its element. Three kinds exist:

- ``ThresholdEpilogue``: count = sum_i [acc >= T_i], code = count + bias (FINN's
  MultiThreshold: batch-norm and quantized activations folded in);
- ``RequantEpilogue``: code = saturate(round_half_even((acc * M_row + O_row) / 2^shift))
  (fixed-point requantization with an integer multiplier and offset per row);
- ``PassEpilogue``: the accumulator itself (integer scores of an output layer).

Each is a pipeline of its own behind the engine's accumulator stage
(:meth:`pipeline`): ``latency`` register stages (0, 2B for a B-level binary
search, or 3), all frozen together with the engine when the output is blocked. Per-row
parameters live in on-chip memories the epilogue declares as *banks* (:class:`ParamBank`)
and reads itself, each bank exactly when its stage needs it: a threshold epilogue keeps one
bank per level of its binary search and PE, and each level reads the one threshold its
search has reached (B reads of one threshold per element, not the 2^B - 1 of the whole
row), so a 255-threshold (8-bit) activation at any PE builds and reads 8 thresholds per
element. A requantization reads one multiplier per row from banks of PE groups no wider
than ``MAX_BANK_BITS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib.memory import Memory

from codesign.bits import range_bits
from hdl.arith import shape_for_range
from hdl.errors import HardwareConfigError
from hdl.memory import MemoryAttrs

MAX_BANK_BITS = 4096
"""Widest memory row a bank may have (several PEs share a row up to this width)."""

MAX_THRESHOLD_LEVELS = 10
"""Binary-search levels a threshold epilogue supports: outputs of up to 10 bits (1023
thresholds per channel); wider activations take a requantization instead."""

REQUANT_STAGES = 3
"""Pipeline stages of a requantization: multiply, round, saturate."""


def pack_row_words(values: np.ndarray, bits: int, rows_per_word: int) -> list[int]:
    """[rows, k] integers -> one word per group of ``rows_per_word`` rows (two's complement)."""
    mask = (1 << bits) - 1
    flat = np.asarray(values, dtype=np.int64).reshape(values.shape[0], -1)
    if rows_per_word == 1 and flat.shape[1] == 1 and bits < 64:
        return (flat[:, 0] & mask).tolist()         # one value per word: its low bits
    words = []
    for start in range(0, flat.shape[0], rows_per_word):
        word = 0
        for j, value in enumerate(flat[start:start + rows_per_word].reshape(-1).tolist()):
            word |= (int(value) & mask) << (j * bits)
        words.append(word)
    return words


@dataclass(frozen=True)
class ParamBank:
    """One parameter memory: ``len(init)`` words of ``width`` bits."""

    name: str
    width: int
    init: tuple[int, ...]

    @property
    def depth(self) -> int:
        return len(self.init)

    def build(self, m: Module, attrs: MemoryAttrs | None = None) -> Memory:
        """The bank's memory, placed by ``attrs`` (a memory's Verilog attributes by its
        name: its memory style, :mod:`hdl.memory`)."""
        memory = Memory(shape=unsigned(self.width), depth=self.depth, init=list(self.init),
                        attrs=attrs(self.name) if attrs is not None else None)
        m.submodules[self.name] = memory
        return memory


@dataclass
class EpilogueOutput:
    """What an epilogue's pipeline hands back to its engine (all combinational)."""

    valid: Value
    """The last stage holds a finished neuron fold: ``codes`` go to the output register."""
    codes: list[Value]
    """The output code of every PE in the last stage."""
    busy: Value
    """Some stage after the accumulator stage holds a neuron fold."""
    reads: Value
    """The parameters of a neuron fold are read in this cycle (one ``param_reads`` event)."""


def _pe_groups(pe: int, bits_per_pe: int) -> list[range]:
    """PEs grouped so a group's row stays within MAX_BANK_BITS (at least one PE each)."""
    size = max(1, MAX_BANK_BITS // max(bits_per_pe, 1))
    return [range(start, min(start + size, pe)) for start in range(0, pe, size)]


def _rows_per_fold(values: np.ndarray, pe: int, group: range) -> np.ndarray:
    """[MH, k] per-row values -> [NF, len(group) * k]: the group's PEs of each fold."""
    rows, k = values.shape
    folds = values.reshape(rows // pe, pe, k)
    return folds[:, group.start:group.stop, :].reshape(rows // pe, -1)


def _any(values: list[Value]) -> Value:
    result: Value = Const(0, 1)
    for value in values:
        result = result | value
    return result


def _stage_flags(m: Module, count: int, start: Value, advance: Value, name: str
                 ) -> list[Signal]:
    """Valid flags of ``count`` stages: flag 0 takes ``start``, flag k flag k-1, each time
    the pipeline advances."""
    flags = [Signal(name=f"{name}{k}_valid") for k in range(count)]
    with m.If(advance):
        for k, flag in enumerate(flags):
            m.d.sync += flag.eq(start if k == 0 else flags[k - 1])
    return flags


@dataclass(frozen=True)
class PassEpilogue:
    """Output the accumulator, sign- or zero-extended to ``out_bits``."""

    out_bits: int

    kind = "accumulator"
    latency = 0

    def banks(self, pe: int) -> list[ParamBank]:
        return []

    def pipeline(self, m: Module, *, acc_next: list[Value], acc: list[Value], start: Value,
                 nf: Value, advance: Value, attrs: MemoryAttrs | None = None
                 ) -> EpilogueOutput:
        """No stage of its own: the accumulator stage's sums are the codes."""
        codes = []
        for p, value in enumerate(acc_next):
            if self.out_bits < len(value):
                raise HardwareConfigError(f"{self.out_bits}-bit output cannot hold a "
                                          f"{len(value)}-bit accumulator")
            shape = signed(self.out_bits) if value.shape().signed else unsigned(self.out_bits)
            wide = Signal(shape, name=f"out{p}")
            m.d.comb += wide.eq(value)
            codes.append(wide.as_unsigned())
        return EpilogueOutput(start, codes, Const(0, 1), Const(0, 1))

    # ---- single-cycle form (see build_param_banks) -----------------------------------------
    def wide_banks(self, pe: int) -> list[ParamBank]:
        return []

    def codes(self, m: Module, accs: list[Value], banks: list[Value]) -> list[Value]:
        out = self.pipeline(m, acc_next=accs, acc=accs, start=Const(1, 1), nf=Const(0, 1),
                            advance=Const(1, 1))
        return out.codes


@dataclass(frozen=True, eq=False)
class ThresholdEpilogue:
    """code = (sum_i [acc >= T[row, i]]) + code_bias, in ``out_bits``.

    With thresholds sorted ascending the count is found by binary search, two pipeline
    stages per level (read, then compare): B = log2(T + 1) comparisons per element instead of
    T parallel comparators (255 for an 8-bit activation). Rows are padded to 2^B - 1 thresholds with
    values above the accumulator range, never reached. Level k of PE p is a bank of its own,
    NF * 2^k thresholds deep: word nf * 2^k + q holds the threshold the search compares at
    level k after the first k comparisons gave the bits q (first comparison highest). The
    stage of level k - 1 addresses it with its own comparison's bit, so every level reads
    one threshold per element. The read threshold is registered before it is compared: a
    block RAM's output (5.6 ns on ECP5) and a comparison in one clock, into the next bank's
    address or the output register, were the slowest path of every multi-bit engine (83 to
    96 MHz on ECP5).
    """

    thresholds: np.ndarray
    acc_range: tuple[int, int]
    out_bits: int
    code_bias: int = 0

    kind = "threshold"

    def __post_init__(self) -> None:
        if self.levels > MAX_THRESHOLD_LEVELS:
            raise HardwareConfigError(
                f"{self.thresholds.shape[1]} thresholds per channel need {self.levels} "
                f"binary-search levels; the threshold epilogue takes at most "
                f"{(1 << MAX_THRESHOLD_LEVELS) - 1} (a {MAX_THRESHOLD_LEVELS}-bit output): "
                "requantize wider activations")

    @property
    def levels(self) -> int:
        """Comparisons per element: B with 2^B - 1 >= number of thresholds."""
        return int(self.thresholds.shape[1]).bit_length()

    @property
    def params_per_row(self) -> int:
        return (1 << self.levels) - 1

    @property
    def param_shape(self) -> Shape:
        """A threshold's shape: the accumulator range and one above it (never reached)."""
        lo, hi = self.acc_range
        return shape_for_range(lo, hi + 1)

    @property
    def param_bits(self) -> int:
        return self.param_shape.width

    def padded(self) -> np.ndarray:
        rows, count = self.thresholds.shape
        never = self.acc_range[1] + 1
        pad = np.full((rows, self.params_per_row - count), never, dtype=np.int64)
        return np.concatenate([np.asarray(self.thresholds, dtype=np.int64), pad], axis=1)

    def level_indices(self, k: int) -> list[int]:
        """Threshold indices compared at level k: (2q + 1) * 2^(B-k-1) - 1, q < 2^k."""
        step = 1 << (self.levels - k - 1)
        return [(2 * q + 1) * step - 1 for q in range(1 << k)]

    def banks(self, pe: int) -> list[ParamBank]:
        """Level-major, then PE: bank ``k * PE + p`` is level k of PE p."""
        padded = self.padded()
        banks = []
        for k in range(self.levels):
            values = padded[:, self.level_indices(k)]          # [MH, 2^k]
            for p in range(pe):
                words = values[p::pe].reshape(-1)              # fold-major, then q
                banks.append(ParamBank(f"thresholds_l{k}_p{p}", self.param_bits,
                                       tuple(pack_row_words(words.reshape(-1, 1),
                                                            self.param_bits, 1))))
        return banks

    def search_register_bits(self, acc_bits: int) -> int:
        """Registers of one PE's search after its first stage: the accumulator and the bits
        found so far in each of the stages 1 .. 2B - 1, and each level's threshold."""
        stages = range(1, self.latency)
        return sum(acc_bits + s // 2 for s in stages) + self.levels * self.param_bits

    @property
    def latency(self) -> int:
        """Two stages per level: the level's bank is read into a register in one and
        compared in the next, whose result addresses the next level's bank (or, at the
        last level, is the code)."""
        return 2 * self.levels

    def pipeline(self, m: Module, *, acc_next: list[Value], acc: list[Value], start: Value,
                 nf: Value, advance: Value, attrs: MemoryAttrs | None = None
                 ) -> EpilogueOutput:
        """Level k's threshold arrives in stage 2k and is registered into stage 2k + 1,
        which compares; the accumulator stage addresses level 0. No block RAM output
        drives a comparison in the same clock."""
        pe, levels, shape = len(acc), self.levels, self.param_shape
        stages = self.latency
        banks = self.banks(pe)
        ports = [[bank.build(m, attrs).read_port() for bank in banks[k * pe:(k + 1) * pe]]
                 for k in range(levels)]
        valid = _stage_flags(m, stages, start, advance, "search")
        # per stage: the fold, the accumulator and the bits found so far
        folds = [Signal.like(nf, name=f"search{s}_nf") for s in range(stages - 2)]
        values: list[list[Value]] = [list(acc)]
        found: list[list[Value]] = [[Const(0, 0)] * pe]
        for s in range(1, stages):
            values.append([Signal.like(acc[p], name=f"search{s}_acc{p}") for p in range(pe)])
            found.append([Signal(s // 2, name=f"search{s}_bits{p}") for p in range(pe)])
        held = [[Signal(shape.width, name=f"search{2 * k + 1}_thr{p}") for p in range(pe)]
                for k in range(levels)]
        for port in ports[0]:
            m.d.comb += [port.addr.eq(nf), port.en.eq(start & advance)]
        if folds:
            with m.If(advance):
                m.d.sync += folds[0].eq(nf)
                m.d.sync += [later.eq(earlier) for earlier, later in zip(folds, folds[1:],
                                                                         strict=False)]
        codes = []
        for k in range(levels):
            read, compare = 2 * k, 2 * k + 1
            for p in range(pe):
                data = held[k][p]
                bit = values[compare][p] >= (data.as_signed() if shape.signed else data)
                bits = Cat(bit, found[compare][p])      # the first comparison: highest bit
                with m.If(advance):
                    m.d.sync += [held[k][p].eq(ports[k][p].data),
                                 values[compare][p].eq(values[read][p]),
                                 found[compare][p].eq(found[read][p])]
                if k + 1 == levels:
                    codes.append((bits + self.code_bias)[:self.out_bits])
                    continue
                port = ports[k + 1][p]
                m.d.comb += [port.addr.eq(Cat(bits, folds[compare])),
                             port.en.eq(valid[compare] & advance)]
                with m.If(advance):
                    m.d.sync += [values[compare + 1][p].eq(values[compare][p]),
                                 found[compare + 1][p].eq(bits)]
        return EpilogueOutput(valid[-1], codes, _any(valid), start & advance)

    # ---- single-cycle form (see build_param_banks) -----------------------------------------
    def _wide_layout(self, pe: int) -> list[tuple[int, range]]:
        return [(k, group) for k in range(self.levels)
                for group in _pe_groups(pe, (1 << k) * self.param_bits)]

    def wide_banks(self, pe: int) -> list[ParamBank]:
        """Level k's 2^k thresholds of a row side by side, one word per fold (per group of
        PEs), so one read gives the whole search tree."""
        padded = self.padded()
        banks = []
        for k, group in self._wide_layout(pe):
            values = _rows_per_fold(padded[:, self.level_indices(k)], pe, group)
            banks.append(ParamBank(f"thresholds_l{k}_p{group.start}",
                                   values.shape[1] * self.param_bits,
                                   tuple(pack_row_words(values, self.param_bits, 1))))
        return banks

    def codes(self, m: Module, accs: list[Value], banks: list[Value]) -> list[Value]:
        """The whole binary search in one cycle: each level's candidates side by side, the
        bits found so far pick one."""
        shape = self.param_shape
        data: dict[tuple[int, int], Value] = {}
        for (k, group), word in zip(self._wide_layout(len(accs)), banks, strict=True):
            per_pe = (1 << k) * shape.width
            for j, p in enumerate(group):
                data[(k, p)] = word.word_select(j, per_pe)
        codes = []
        for p, acc in enumerate(accs):
            count: Value | None = None
            for k in range(self.levels):
                raw = data[(k, p)].word_select(0 if count is None else count, shape.width)
                bit = acc >= (raw.as_signed() if shape.signed else raw)
                count = bit if count is None else Cat(bit, count)
            assert count is not None
            codes.append((count + self.code_bias)[:self.out_bits])
        return codes


@dataclass(frozen=True, eq=False)
class RequantEpilogue:
    """code = clamp(round_half_even((acc * M[row] + O[row]) / 2^shift), out_lo, out_hi).

    Three stages: the product (plus the offset), the rounded quotient, the saturated code.
    The offsets O get banks of their own only when some row has one.
    """

    multipliers: np.ndarray
    shift: int
    acc_range: tuple[int, int]
    out_range: tuple[int, int]
    out_bits: int
    offsets: np.ndarray | None = None

    kind = "requant"
    params_per_row = 1
    latency = REQUANT_STAGES

    @property
    def param_bits(self) -> int:
        m = np.asarray(self.multipliers, dtype=np.int64)
        return range_bits(int(min(m.min(), 0)), int(max(m.max(), 0)))[0]

    @property
    def has_offsets(self) -> bool:
        return self.offsets is not None and bool(np.any(np.asarray(self.offsets)))

    @property
    def offset_bits(self) -> int:
        o = np.asarray(self.offsets if self.has_offsets else [0], dtype=np.int64)
        return range_bits(int(min(o.min(), 0)), int(max(o.max(), 0)))[0]

    def _groups(self, pe: int, bits: int | None = None) -> list[range]:
        return _pe_groups(pe, self.param_bits if bits is None else bits)

    def product_bits(self, acc_bits: int) -> int:
        """The product (plus the offset): wide enough that a shift past its magnitude still
        leaves a sign bit."""
        return max(max(acc_bits + self.param_bits + 1, self.offset_bits + 1) + 1,
                   self.shift + 2)

    def rounded_bits(self, acc_bits: int) -> int:
        """The rounded quotient."""
        return self.product_bits(acc_bits) - self.shift + 2

    def banks(self, pe: int) -> list[ParamBank]:
        values = np.asarray(self.multipliers, dtype=np.int64).reshape(-1, 1)
        banks = [ParamBank(f"multipliers_p{group.start}", len(group) * self.param_bits,
                           tuple(pack_row_words(_rows_per_fold(values, pe, group),
                                                self.param_bits, 1)))
                 for group in self._groups(pe)]
        if self.has_offsets:
            offsets = np.asarray(self.offsets, dtype=np.int64).reshape(-1, 1)
            bits = self.offset_bits
            banks += [ParamBank(f"offsets_p{group.start}", len(group) * bits,
                                tuple(pack_row_words(_rows_per_fold(offsets, pe, group),
                                                     bits, 1)))
                      for group in self._groups(pe, bits)]
        return banks

    def _operands(self, pe: int, data: list[Value]
                  ) -> tuple[dict[int, Value], dict[int, Value]]:
        """Each PE's multiplier and (if any) offset, from the banks' read ``data``."""
        mult_signed = bool(np.asarray(self.multipliers).min() < 0)
        mult_groups = self._groups(pe)
        mults = {}
        for group, word in zip(mult_groups, data, strict=False):
            for j, p in enumerate(group):
                raw = word.word_select(j, self.param_bits)
                mults[p] = raw.as_signed() if mult_signed else raw
        offsets: dict[int, Value] = {}
        if self.has_offsets:
            bits = self.offset_bits
            signed_offsets = bool(np.asarray(self.offsets).min() < 0)
            for group, word in zip(self._groups(pe, bits), data[len(mult_groups):],
                                   strict=True):
                for j, p in enumerate(group):
                    raw = word.word_select(j, bits)
                    offsets[p] = raw.as_signed() if signed_offsets else raw
        return mults, offsets

    def _product(self, p: int, value: Value) -> Signal:
        return Signal(signed(self.product_bits(len(value))), name=f"prod{p}")

    def _rounded(self, product: Value) -> Value:
        """round_half_even(product / 2^shift)."""
        if not self.shift:
            return product
        floor = product >> self.shift
        rem = product.as_unsigned()[:self.shift]
        half = 1 << (self.shift - 1)
        return floor + ((rem > half) | ((rem == half) & floor[0]))

    def _saturated(self, m: Module, p: int, rounded: Value) -> Value:
        out_lo, out_hi = self.out_range
        clamped = Signal(signed(self.out_bits) if out_lo < 0 else unsigned(self.out_bits),
                         name=f"sat{p}")
        m.d.comb += clamped.eq(Mux(rounded < out_lo, out_lo,
                                   Mux(rounded > out_hi, out_hi, rounded)))
        return clamped.as_unsigned()

    def pipeline(self, m: Module, *, acc_next: list[Value], acc: list[Value], start: Value,
                 nf: Value, advance: Value, attrs: MemoryAttrs | None = None
                 ) -> EpilogueOutput:
        pe = len(acc)
        data = []
        for bank in self.banks(pe):
            port = bank.build(m, attrs).read_port()
            m.d.comb += [port.addr.eq(nf), port.en.eq(start & advance)]
            data.append(port.data)
        mults, offsets = self._operands(pe, data)
        valid = _stage_flags(m, REQUANT_STAGES, start, advance, "requant")
        codes = []
        for p, value in enumerate(acc):
            product = self._product(p, value)
            rounded = Signal(signed(self.rounded_bits(len(value))), name=f"rounded{p}")
            with m.If(advance):
                m.d.sync += [product.eq(value * mults[p] + offsets[p] if p in offsets
                                        else value * mults[p]),
                             rounded.eq(self._rounded(product))]
            codes.append(self._saturated(m, p, rounded))
        return EpilogueOutput(valid[-1], codes, _any(valid), start & advance)

    # ---- single-cycle form (see build_param_banks) -----------------------------------------
    def wide_banks(self, pe: int) -> list[ParamBank]:
        return self.banks(pe)

    def codes(self, m: Module, accs: list[Value], banks: list[Value]) -> list[Value]:
        mults, offsets = self._operands(len(accs), banks)
        codes = []
        for p, value in enumerate(accs):
            product = self._product(p, value)
            m.d.comb += product.eq(value * mults[p] + offsets[p] if p in offsets
                                   else value * mults[p])
            rounded = Signal(signed(self.rounded_bits(len(value))), name=f"rounded{p}")
            m.d.comb += rounded.eq(self._rounded(product))
            codes.append(self._saturated(m, p, rounded))
        return codes

Epilogue = PassEpilogue | ThresholdEpilogue | RequantEpilogue


def build_param_banks(m: Module, epilogue: Epilogue, pe: int, depth: int, addr: Value,
                      en: Value, attrs: MemoryAttrs | None = None) -> list[Value]:
    """The single-cycle form's memories: one per bank of ``epilogue.wide_banks(pe)``, all
    read at ``addr`` when ``en``; returns their read data (what ``codes`` takes).

    Units that emit one result per accepted beat without a pipeline of their own (the
    stream add, the sum pools) evaluate their epilogue in the cycle after the read, so
    every parameter a row needs is read at once; the engines use the pipelined form
    (:meth:`ThresholdEpilogue.pipeline`), one search level per stage.
    """
    data = []
    for bank in epilogue.wide_banks(pe):
        memory = Memory(shape=unsigned(bank.width), depth=depth, init=list(bank.init),
                        attrs=attrs(bank.name) if attrs is not None else None)
        m.submodules[bank.name] = memory
        port = memory.read_port()
        m.d.comb += [port.addr.eq(addr), port.en.eq(en)]
        data.append(port.data)
    return data
