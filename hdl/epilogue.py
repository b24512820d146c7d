"""Engine epilogues: what turns a finished accumulator into an output element.

Every engine (dense or sparse, any PE family) ends a neuron fold with PE accumulators; the
epilogue maps each to the output code of its element. Three kinds exist:

- ``ThresholdEpilogue``: count = sum_i [acc >= T_i], code = count + bias (FINN's
  MultiThreshold: batch-norm and quantized activations folded in);
- ``RequantEpilogue``: code = saturate(round_half_even((acc * M_row + O_row) / 2^shift))
  (fixed-point requantization with an integer multiplier and offset per row);
- ``PassEpilogue``: the accumulator itself (integer scores of an output layer).

Per-row parameters live in on-chip memories addressed by the neuron fold. The epilogue
declares them as *banks* (:class:`ParamBank`): the engine builds one memory per bank, reads
every bank of a fold together (one parameter read event), and hands the data back to
:meth:`codes`. Splitting the parameters into banks keeps every memory row narrow whatever
the folding: a threshold epilogue keeps one bank per level of its binary search and group
of PEs, so a 255-threshold (8-bit) activation at any PE still builds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Cat, Module, Mux, Signal, Value, signed, unsigned

from codesign.bits import range_bits
from hdl.arith import shape_for_range
from hdl.errors import HardwareConfigError

MAX_BANK_BITS = 4096
"""Widest memory row a bank may have (several PEs share a row up to this width)."""

MAX_THRESHOLD_LEVELS = 10
"""Binary-search levels a threshold epilogue supports: outputs of up to 10 bits (1023
thresholds per channel); wider activations take a requantization instead."""


def pack_row_words(values: np.ndarray, bits: int, rows_per_word: int) -> list[int]:
    """[rows, k] integers -> one word per group of ``rows_per_word`` rows (two's complement)."""
    mask = (1 << bits) - 1
    flat = np.asarray(values, dtype=np.int64).reshape(values.shape[0], -1)
    words = []
    for start in range(0, flat.shape[0], rows_per_word):
        word = 0
        for j, value in enumerate(flat[start:start + rows_per_word].reshape(-1).tolist()):
            word |= (int(value) & mask) << (j * bits)
        words.append(word)
    return words


@dataclass(frozen=True)
class ParamBank:
    """One parameter memory: ``width`` bits per neuron fold, initialised with ``init``."""

    name: str
    width: int
    init: tuple[int, ...]


def _pe_groups(pe: int, bits_per_pe: int) -> list[range]:
    """PEs grouped so a group's row stays within MAX_BANK_BITS (at least one PE each)."""
    size = max(1, MAX_BANK_BITS // max(bits_per_pe, 1))
    return [range(start, min(start + size, pe)) for start in range(0, pe, size)]


def _rows_per_fold(values: np.ndarray, pe: int, group: range) -> np.ndarray:
    """[MH, k] per-row values -> [NF, len(group) * k]: the group's PEs of each fold."""
    rows, k = values.shape
    folds = values.reshape(rows // pe, pe, k)
    return folds[:, group.start:group.stop, :].reshape(rows // pe, -1)


@dataclass(frozen=True)
class PassEpilogue:
    """Output the accumulator, sign- or zero-extended to ``out_bits``."""

    out_bits: int

    kind = "accumulator"

    def banks(self, pe: int) -> list[ParamBank]:
        return []

    def codes(self, m: Module, accs: list[Value], banks: list[Value]) -> list[Value]:
        codes = []
        for p, acc in enumerate(accs):
            if self.out_bits < len(acc):
                raise HardwareConfigError(f"{self.out_bits}-bit output cannot hold a "
                                          f"{len(acc)}-bit accumulator")
            shape = signed(self.out_bits) if acc.shape().signed else unsigned(self.out_bits)
            wide = Signal(shape, name=f"out{p}")
            m.d.comb += wide.eq(acc)
            codes.append(wide.as_unsigned())
        return codes


@dataclass(frozen=True, eq=False)
class ThresholdEpilogue:
    """code = (sum_i [acc >= T[row, i]]) + code_bias, in ``out_bits``.

    With thresholds sorted ascending the count is found by binary search: B = log2(T + 1)
    comparisons per element, each choosing among the thresholds of one level of the
    search tree, instead of T parallel comparators (255 for an 8-bit activation). Rows are
    padded to 2^B - 1 thresholds with values above the accumulator range, never reached.
    Level k (2^k thresholds per row) is a bank of its own (per group of PEs).
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
    def param_bits(self) -> int:
        lo, hi = self.acc_range
        return range_bits(lo, hi + 1)[0]

    def padded(self) -> np.ndarray:
        rows, count = self.thresholds.shape
        never = self.acc_range[1] + 1
        pad = np.full((rows, self.params_per_row - count), never, dtype=np.int64)
        return np.concatenate([np.asarray(self.thresholds, dtype=np.int64), pad], axis=1)

    def level_indices(self, k: int) -> list[int]:
        """Threshold indices compared at level k: (2q + 1) * 2^(B-k-1) - 1, q < 2^k."""
        step = 1 << (self.levels - k - 1)
        return [(2 * q + 1) * step - 1 for q in range(1 << k)]

    def _layout(self, pe: int) -> list[tuple[int, range]]:
        return [(k, group) for k in range(self.levels)
                for group in _pe_groups(pe, (1 << k) * self.param_bits)]

    def banks(self, pe: int) -> list[ParamBank]:
        padded = self.padded()
        banks = []
        for k, group in self._layout(pe):
            values = _rows_per_fold(padded[:, self.level_indices(k)], pe, group)
            banks.append(ParamBank(f"thresholds_l{k}_p{group.start}",
                                   values.shape[1] * self.param_bits,
                                   tuple(pack_row_words(values, self.param_bits, 1))))
        return banks

    def codes(self, m: Module, accs: list[Value], banks: list[Value]) -> list[Value]:
        lo, hi = self.acc_range
        shape = shape_for_range(lo, hi + 1)
        # data[(k, p)]: PE p's thresholds of level k, in search order
        data: dict[tuple[int, int], Value] = {}
        for (k, group), word in zip(self._layout(len(accs)), banks, strict=True):
            per_pe = (1 << k) * shape.width
            for j, p in enumerate(group):
                data[(k, p)] = word.word_select(j, per_pe)
        codes = []
        for p, acc in enumerate(accs):
            count: Value | None = None
            for k in range(self.levels):
                # level k's candidates side by side; the bits found so far pick one
                raw = data[(k, p)].word_select(0 if count is None else count, shape.width)
                chosen = raw.as_signed() if shape.signed else raw
                bit = acc >= chosen
                count = bit if count is None else Cat(bit, count)
            assert count is not None
            codes.append((count + self.code_bias)[:self.out_bits])
        return codes


@dataclass(frozen=True, eq=False)
class RequantEpilogue:
    """code = clamp(round_half_even((acc * M[row] + O[row]) / 2^shift), out_lo, out_hi).

    The offsets O get a bank of their own only when some row has one."""

    multipliers: np.ndarray
    shift: int
    acc_range: tuple[int, int]
    out_range: tuple[int, int]
    out_bits: int
    offsets: np.ndarray | None = None

    kind = "requant"
    params_per_row = 1

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

    def codes(self, m: Module, accs: list[Value], banks: list[Value]) -> list[Value]:
        mult_signed = bool(np.asarray(self.multipliers).min() < 0)
        mult_groups = self._groups(len(accs))
        words = {p: word.word_select(j, self.param_bits)
                 for group, word in zip(mult_groups, banks, strict=False)
                 for j, p in enumerate(group)}
        offsets: dict[int, Value] = {}
        if self.has_offsets:
            bits = self.offset_bits
            offset_banks = banks[len(mult_groups):]
            signed_offsets = bool(np.asarray(self.offsets).min() < 0)
            offsets = {p: (word.word_select(j, bits).as_signed() if signed_offsets
                           else word.word_select(j, bits))
                       for group, word in zip(self._groups(len(accs), bits), offset_banks,
                                              strict=True)
                       for j, p in enumerate(group)}
        out_lo, out_hi = self.out_range
        codes = []
        for p, acc in enumerate(accs):
            raw = words[p]
            mult = raw.as_signed() if mult_signed else raw
            # wide enough that a shift past the product's magnitude still leaves a sign bit
            width = max(len(acc) + self.param_bits + 1, self.offset_bits + 1) + 1
            product = Signal(signed(max(width, self.shift + 2)), name=f"prod{p}")
            m.d.comb += product.eq(acc * mult + offsets[p] if p in offsets else acc * mult)
            if self.shift:
                floor = Signal(signed(len(product) - self.shift + 1), name=f"floor{p}")
                m.d.comb += floor.eq(product >> self.shift)
                rem = product.as_unsigned()[:self.shift]
                half = 1 << (self.shift - 1)
                round_up = (rem > half) | ((rem == half) & floor[0])
                rounded = Signal(signed(len(floor) + 1), name=f"rounded{p}")
                m.d.comb += rounded.eq(floor + round_up)
            else:
                rounded = product
            clamped = Signal(signed(self.out_bits) if out_lo < 0 else unsigned(self.out_bits),
                             name=f"sat{p}")
            m.d.comb += clamped.eq(Mux(rounded < out_lo, out_lo,
                                       Mux(rounded > out_hi, out_hi, rounded)))
            codes.append(clamped.as_unsigned())
        return codes


Epilogue = PassEpilogue | ThresholdEpilogue | RequantEpilogue


def build_param_banks(m: Module, epilogue: Epilogue, pe: int, depth: int, addr: Value,
                      en: Value) -> list[Value]:
    """One memory per parameter bank of ``epilogue``, all read at ``addr`` when ``en``;
    returns the read data of each bank (what :meth:`codes` takes)."""
    from amaranth.lib.memory import Memory

    data = []
    for bank in epilogue.banks(pe):
        memory = Memory(shape=unsigned(bank.width), depth=depth, init=list(bank.init))
        m.submodules[bank.name] = memory
        port = memory.read_port()
        m.d.comb += [port.addr.eq(addr), port.en.eq(en)]
        data.append(port.data)
    return data
