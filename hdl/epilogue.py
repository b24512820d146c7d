"""Engine epilogues: what turns a finished accumulator into an output element.

Every engine (dense or sparse, any PE family) ends a neuron fold with PE accumulators; the
epilogue maps each to the output code of its element. Three kinds exist, each with its
per-row parameters in an on-chip memory addressed by the neuron fold:

- ``ThresholdEpilogue``: count = sum_i [acc >= T_i], code = count + bias (FINN's
  MultiThreshold: batch-norm and quantized activations folded in);
- ``RequantEpilogue``: code = saturate(round_half_even(acc * M_row / 2^shift)) (fixed-point
  requantization with an integer multiplier per row);
- ``PassEpilogue``: the accumulator itself (integer scores of an output layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Array, Cat, Module, Mux, Signal, Value, signed, unsigned

from codesign.bits import range_bits
from hdl.arith import shape_for_range
from hdl.errors import HardwareConfigError


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
class PassEpilogue:
    """Output the accumulator, sign- or zero-extended to ``out_bits``."""

    out_bits: int

    kind = "accumulator"
    params_per_row = 0
    param_bits = 0

    def param_words(self, pe: int) -> list[int]:
        return []

    def codes(self, m: Module, accs: list[Value], word: Value | None) -> list[Value]:
        codes = []
        for p, acc in enumerate(accs):
            if self.out_bits < len(acc):
                raise HardwareConfigError(
                    f"{self.out_bits}-bit output cannot hold a {len(acc)}-bit "
                                 "accumulator")
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
    """

    thresholds: np.ndarray
    acc_range: tuple[int, int]
    out_bits: int
    code_bias: int = 0

    kind = "threshold"

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

    def param_words(self, pe: int) -> list[int]:
        return pack_row_words(self.padded(), self.param_bits, pe)

    def codes(self, m: Module, accs: list[Value], word: Value | None) -> list[Value]:
        assert word is not None
        lo, hi = self.acc_range
        shape = shape_for_range(lo, hi + 1)
        n, levels = self.params_per_row, self.levels
        codes = []
        for p, acc in enumerate(accs):
            def threshold(index: int, p: int = p) -> Value:
                raw = word.word_select(p * n + index, shape.width)
                return raw.as_signed() if shape.signed else raw

            count: Value | None = None
            for k in range(levels):
                # level k compares with T[(2q + 1) * 2^(levels-k-1) - 1], q = bits so far
                step = 1 << (levels - k - 1)
                candidates = [threshold((2 * q + 1) * step - 1) for q in range(1 << k)]
                chosen = candidates[0] if count is None else Array(candidates)[count]
                bit = acc >= chosen
                count = bit if count is None else Cat(bit, count)
            assert count is not None
            codes.append((count + self.code_bias)[:self.out_bits])
        return codes


@dataclass(frozen=True, eq=False)
class RequantEpilogue:
    """code = clamp(round_half_even(acc * M[row] / 2^shift), out_lo, out_hi)."""

    multipliers: np.ndarray
    shift: int
    acc_range: tuple[int, int]
    out_range: tuple[int, int]
    out_bits: int

    kind = "requant"
    params_per_row = 1

    @property
    def param_bits(self) -> int:
        m = np.asarray(self.multipliers, dtype=np.int64)
        return range_bits(int(min(m.min(), 0)), int(max(m.max(), 0)))[0]

    def param_words(self, pe: int) -> list[int]:
        return pack_row_words(np.asarray(self.multipliers).reshape(-1, 1), self.param_bits, pe)

    def codes(self, m: Module, accs: list[Value], word: Value | None) -> list[Value]:
        assert word is not None
        mult_signed = bool(np.asarray(self.multipliers).min() < 0)
        out_lo, out_hi = self.out_range
        codes = []
        for p, acc in enumerate(accs):
            raw = word.word_select(p, self.param_bits)
            mult = raw.as_signed() if mult_signed else raw
            # wide enough that a shift past the product's magnitude still leaves a sign bit
            product = Signal(signed(max(len(acc) + self.param_bits + 1, self.shift + 2)),
                             name=f"prod{p}")
            m.d.comb += product.eq(acc * mult)
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
