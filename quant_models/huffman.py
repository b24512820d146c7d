"""Huffman coding of a shared layer's stored streams (Deep Compression, stage 3).

This is storage accounting for the model file (off-chip): the engines hold decoded indices.
A layer is stored either

- *dense*: one stream of codebook indices, every weight in row-major order; or
- *sparse* (compressed sparse rows as the paper stores them): the non-zero weights in
  row-major order of the flattened matrix, each as a pair (relative index, codebook index).
  The relative index is the distance from the previous non-zero (``gap - 1`` in ``r`` bits);
  a gap longer than ``2^r`` is bridged by filler entries of gap ``2^r`` and index 0 (the
  zero weight), which the decoder writes as the zero they stand on.

Each stream is coded with its own canonical Huffman code. The stored size of a layer is the
length of the encoded bit streams, plus its codebook (one ``g``-bit grid value per entry and
the float32 grid step) and its code tables (the code length of every symbol of the
alphabet, canonical codes need nothing else: ``w`` bits each, with a 5-bit header giving
``w``). :func:`layer_storage` encodes, decodes and checks that the decoded streams rebuild
the layer's indices before it reports a size.

A stream of one distinct symbol gets a one-bit code (as DEFLATE does); an empty stream
encodes to no bits.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from codesign.errors import CodesignError

__all__ = [
    "FLOAT_BITS",
    "TABLE_HEADER_BITS",
    "EncodedStream",
    "HuffmanCode",
    "HuffmanError",
    "LayerStorage",
    "layer_storage",
    "relative_index_streams",
    "streams_to_indices",
]

FLOAT_BITS = 32
TABLE_HEADER_BITS = 5
"""A code table starts with the width of its code lengths (5 bits: lengths up to 2^31 - 1)."""
MAX_GAP_BITS = 8


class HuffmanError(CodesignError):
    """A stream that cannot be coded or decoded (a symbol outside the code, a short stream)."""


@dataclass(frozen=True)
class EncodedStream:
    """A coded bit stream: ``bits`` bits, most significant first, packed into ``data``."""

    data: bytes
    bits: int
    count: int
    """Symbols coded (the decoder needs it: a stream has no end marker)."""


@dataclass(frozen=True)
class HuffmanCode:
    """A canonical Huffman code: the code length of each symbol; codes follow from them."""

    lengths: tuple[tuple[int, int], ...]
    """(symbol, code length) pairs, sorted by symbol; only symbols that occur."""

    @staticmethod
    def for_symbols(symbols: Iterable[int]) -> HuffmanCode:
        """The optimal code for these symbol frequencies (ties broken by symbol value, so the
        code is deterministic)."""
        counts = Counter(int(s) for s in symbols)
        if not counts:
            return HuffmanCode(())
        if len(counts) == 1:
            return HuffmanCode(((next(iter(counts)), 1),))
        heap: list[tuple[int, int, list[int]]] = [
            (count, symbol, [symbol]) for symbol, count in sorted(counts.items())]
        heapq.heapify(heap)
        depth = dict.fromkeys(counts, 0)
        while len(heap) > 1:
            c1, k1, s1 = heapq.heappop(heap)
            c2, k2, s2 = heapq.heappop(heap)
            for symbol in s1 + s2:
                depth[symbol] += 1
            heapq.heappush(heap, (c1 + c2, min(k1, k2), s1 + s2))
        return HuffmanCode(tuple(sorted(depth.items())))

    def codes(self) -> dict[int, tuple[int, int]]:
        """symbol -> (code, length), canonical: by length, then by symbol."""
        out: dict[int, tuple[int, int]] = {}
        code, previous = 0, 0
        for symbol, length in sorted(self.lengths, key=lambda p: (p[1], p[0])):
            code <<= length - previous
            out[symbol] = (code, length)
            code += 1
            previous = length
        return out

    def encode(self, symbols: Sequence[int]) -> EncodedStream:
        codes = self.codes()
        value, bits = 0, 0
        for symbol in symbols:
            try:
                code, length = codes[int(symbol)]
            except KeyError:
                raise HuffmanError(f"symbol {int(symbol)} is not in this code (symbols: "
                                   f"{sorted(codes)})") from None
            value = (value << length) | code
            bits += length
        data = (value << (-bits % 8)).to_bytes((bits + 7) // 8, "big") if bits else b""
        return EncodedStream(data, bits, len(symbols))

    def decode(self, stream: EncodedStream) -> list[int]:
        lookup = {(length, code): symbol for symbol, (code, length) in self.codes().items()}
        longest = max((length for _, length in self.lengths), default=0)
        value = int.from_bytes(stream.data, "big") >> (len(stream.data) * 8 - stream.bits) \
            if stream.bits else 0
        out: list[int] = []
        position = stream.bits
        code, length = 0, 0
        while len(out) < stream.count:
            if position == 0 or length >= longest:
                raise HuffmanError(f"stream of {stream.bits} bits ends after {len(out)} of "
                                   f"{stream.count} symbols (or holds a code not in the table)")
            position -= 1
            code = (code << 1) | ((value >> position) & 1)
            length += 1
            symbol = lookup.get((length, code))
            if symbol is not None:
                out.append(symbol)
                code, length = 0, 0
        return out

    def table_bits(self, alphabet: int) -> int:
        """Bits of the stored code table: one code length per symbol of the alphabet."""
        longest = max((length for _, length in self.lengths), default=0)
        return TABLE_HEADER_BITS + alphabet * max(1, longest.bit_length())


def relative_index_streams(indices: np.ndarray, gap_bits: int) -> tuple[list[int], list[int]]:
    """(gap symbols, codebook indices) of the non-zero entries of ``indices`` (row-major),
    with filler entries for gaps longer than ``2^gap_bits`` (see the module docstring)."""
    if not 1 <= gap_bits <= MAX_GAP_BITS:
        raise HuffmanError(f"gap_bits={gap_bits}: relative indices have 1..{MAX_GAP_BITS} bits")
    flat = np.asarray(indices, dtype=np.int64).reshape(-1)
    longest = 1 << gap_bits
    gaps: list[int] = []
    codes: list[int] = []
    previous = -1
    for position in np.flatnonzero(flat).tolist():
        gap = position - previous
        while gap > longest:
            gaps.append(longest - 1)
            codes.append(0)
            gap -= longest
        gaps.append(gap - 1)
        codes.append(int(flat[position]))
        previous = position
    return gaps, codes


def streams_to_indices(gaps: Sequence[int], codes: Sequence[int], shape: tuple[int, ...]
                       ) -> np.ndarray:
    """Rebuild the index matrix from its relative-index streams."""
    flat = np.zeros(int(np.prod(shape)), dtype=np.int64)
    position = -1
    for gap, code in zip(gaps, codes, strict=True):
        position += gap + 1
        flat[position] = code
    return flat.reshape(shape)


@dataclass(frozen=True)
class LayerStorage:
    """A shared layer's stored size at every stage of the pipeline, in bits."""

    name: str
    weights: int
    nonzero: int
    index_bits: int
    grid_bits: int
    codebook_entries: int
    sparse: bool
    gap_bits: int
    """Bits of a relative index (0 for a dense layer)."""
    entries: int
    """Stored entries: the non-zeros and fillers of a sparse layer, every weight of a dense one."""
    index_stream_bits: int
    gap_stream_bits: int
    index_table_bits: int
    gap_table_bits: int

    @property
    def float_bits(self) -> int:
        return self.weights * FLOAT_BITS

    @property
    def pruned_bits(self) -> int:
        """Float values of the stored entries plus their fixed-width relative indices."""
        return self.entries * (FLOAT_BITS + self.gap_bits)

    @property
    def codebook_bits(self) -> int:
        return self.codebook_entries * self.grid_bits + FLOAT_BITS

    @property
    def shared_bits(self) -> int:
        """Fixed-width codebook indices and relative indices, plus the codebook."""
        return self.entries * (self.index_bits + self.gap_bits) + self.codebook_bits

    @property
    def huffman_bits(self) -> int:
        """The encoded streams, the codebook and both code tables."""
        return (self.index_stream_bits + self.gap_stream_bits + self.codebook_bits
                + self.index_table_bits + self.gap_table_bits)


def _sparse_storage(name: str, indices: np.ndarray, index_bits: int, grid_bits: int,
                    entries: int, gap_bits: int) -> LayerStorage:
    gaps, codes = relative_index_streams(indices, gap_bits)
    index_code, gap_code = HuffmanCode.for_symbols(codes), HuffmanCode.for_symbols(gaps)
    index_stream, gap_stream = index_code.encode(codes), gap_code.encode(gaps)
    rebuilt = streams_to_indices(gap_code.decode(gap_stream), index_code.decode(index_stream),
                                 indices.shape)
    if not np.array_equal(rebuilt, indices):
        raise HuffmanError(f"layer {name}: decoded streams do not rebuild the indices")
    return LayerStorage(name, int(indices.size), int(np.count_nonzero(indices)), index_bits,
                        grid_bits, entries, True, gap_bits, len(codes), index_stream.bits,
                        gap_stream.bits, index_code.table_bits(1 << index_bits),
                        gap_code.table_bits(1 << gap_bits))


def _dense_storage(name: str, indices: np.ndarray, index_bits: int, grid_bits: int,
                   entries: int) -> LayerStorage:
    codes = indices.reshape(-1).tolist()
    index_code = HuffmanCode.for_symbols(codes)
    stream = index_code.encode(codes)
    if index_code.decode(stream) != codes:
        raise HuffmanError(f"layer {name}: the decoded stream does not rebuild the indices")
    return LayerStorage(name, int(indices.size), int(np.count_nonzero(indices)), index_bits,
                        grid_bits, entries, False, 0, len(codes), stream.bits, 0,
                        index_code.table_bits(1 << index_bits), 0)


def layer_storage(name: str, indices: np.ndarray, index_bits: int, grid_bits: int,
                  codebook_entries: int) -> LayerStorage:
    """The smallest storage of a layer's codebook ``indices`` (0 = the zero weight): dense,
    or sparse with the relative-index width (1..8 bits) that codes smallest."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= 1 << index_bits):
        raise HuffmanError(f"layer {name}: indices must be {index_bits}-bit codes 0.."
                           f"{(1 << index_bits) - 1}")
    options = [_dense_storage(name, indices, index_bits, grid_bits, codebook_entries)]
    if np.count_nonzero(indices) < indices.size:
        options += [_sparse_storage(name, indices, index_bits, grid_bits, codebook_entries, r)
                    for r in range(1, MAX_GAP_BITS + 1)]
    return min(options, key=lambda s: (s.huffman_bits, s.gap_bits))
