"""Huffman coding of stored streams: round trips, optimality bounds, relative indices."""

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_models.huffman import (
    EncodedStream,
    HuffmanCode,
    HuffmanError,
    layer_storage,
    relative_index_streams,
    streams_to_indices,
)

streams = st.one_of(
    st.lists(st.integers(0, 255), max_size=300),
    st.lists(st.integers(0, 3), max_size=300),
    st.integers(0, 255).flatmap(lambda s: st.lists(st.just(s), min_size=1, max_size=50)),
)


@settings(max_examples=60)
@given(streams)
def test_decode_of_encode_is_the_stream(symbols):
    code = HuffmanCode.for_symbols(symbols)
    encoded = code.encode(symbols)
    assert code.decode(encoded) == symbols
    assert encoded.count == len(symbols) and len(encoded.data) == (encoded.bits + 7) // 8


@settings(max_examples=60)
@given(st.lists(st.integers(0, 40), min_size=2, max_size=300).filter(lambda s: len(set(s)) > 1))
def test_code_is_complete_and_within_a_bit_of_the_entropy(symbols):
    code = HuffmanCode.for_symbols(symbols)
    lengths = dict(code.lengths)
    assert sum(2.0 ** -n for n in lengths.values()) == 1.0          # Kraft equality
    counts = Counter(symbols)
    n = len(symbols)
    entropy = -sum(c / n * math.log2(c / n) for c in counts.values())
    average = code.encode(symbols).bits / n
    assert entropy - 1e-9 <= average < entropy + 1
    assert average <= math.ceil(math.log2(len(counts)))             # never worse than fixed


def test_one_symbol_and_empty_streams():
    code = HuffmanCode.for_symbols([7, 7, 7])
    assert code.lengths == ((7, 1),)
    assert code.encode([7, 7, 7]).bits == 3
    assert code.decode(code.encode([7, 7, 7])) == [7, 7, 7]
    empty = HuffmanCode.for_symbols([])
    assert empty.encode([]).bits == 0 and empty.decode(empty.encode([])) == []


def test_canonical_codes_by_hand():
    # counts a:4 b:2 c:1 d:1 -> lengths 1, 2, 3, 3 -> codes 0, 10, 110, 111
    code = HuffmanCode.for_symbols([0] * 4 + [1] * 2 + [2, 3])
    assert code.codes() == {0: (0b0, 1), 1: (0b10, 2), 2: (0b110, 3), 3: (0b111, 3)}
    assert code.encode([1, 3, 0]).data == bytes([0b10111000])
    # 4-symbol alphabet, lengths up to 3 (2 bits each) after a 5-bit header
    assert code.table_bits(4) == 5 + 4 * 2


def test_bad_streams_are_named_errors():
    code = HuffmanCode.for_symbols([1, 2, 2])
    with pytest.raises(HuffmanError, match=r"symbol 5 is not in this code"):
        code.encode([5])
    short = EncodedStream(b"\x00", 1, 3)
    with pytest.raises(HuffmanError, match=r"ends after 1 of 3 symbols"):
        code.decode(short)


def test_relative_indices_with_fillers_by_hand():
    indices = np.zeros(30, dtype=np.int64)
    indices[[0, 20, 21]] = [5, 3, 1]
    gaps, codes = relative_index_streams(indices, 3)
    # 0: gap 1; 20: gap 20 = 8 + 8 + 4 (two fillers of index 0); 21: gap 1
    assert gaps == [0, 7, 7, 3, 0] and codes == [5, 0, 0, 3, 1]
    assert np.array_equal(streams_to_indices(gaps, codes, indices.shape), indices)


@settings(max_examples=60)
@given(st.integers(1, 12), st.integers(1, 40), st.floats(0, 1), st.integers(1, 8),
       st.integers(0, 10**6))
def test_relative_index_streams_rebuild_any_sparse_matrix(rows, cols, density, gap_bits, seed):
    rng = np.random.default_rng(seed)
    indices = np.where(rng.random((rows, cols)) < density, rng.integers(1, 16, (rows, cols)), 0)
    gaps, codes = relative_index_streams(indices, gap_bits)
    assert max(gaps, default=0) < 1 << gap_bits
    assert np.array_equal(streams_to_indices(gaps, codes, indices.shape), indices)


def test_layer_storage_picks_the_smaller_format_and_adds_up():
    rng = np.random.default_rng(0)
    sparse = np.where(rng.random((32, 64)) < 0.1, rng.integers(1, 16, (32, 64)), 0)
    s = layer_storage("fc", sparse, 4, 8, 16)
    assert s.sparse and s.nonzero == np.count_nonzero(sparse) and s.entries >= s.nonzero
    assert s.huffman_bits == (s.index_stream_bits + s.gap_stream_bits + 16 * 8 + 32
                              + s.index_table_bits + s.gap_table_bits)
    assert s.float_bits == 32 * 64 * 32
    assert s.pruned_bits == s.entries * (32 + s.gap_bits)
    assert s.shared_bits == s.entries * (4 + s.gap_bits) + 16 * 8 + 32
    dense = layer_storage("fc", rng.integers(1, 16, (8, 8)), 4, 8, 16)
    assert not dense.sparse and dense.gap_bits == 0 and dense.entries == 64
    with pytest.raises(HuffmanError, match=r"layer fc: indices must be 4-bit codes 0..15"):
        layer_storage("fc", np.array([[16]]), 4, 8, 16)
