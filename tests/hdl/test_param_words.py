"""Parameter memory images against a naive packing loop (two's complement, row-major)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hdl.epilogue import pack_row_words


@given(st.integers(1, 20), st.integers(1, 3), st.integers(1, 3), st.integers(1, 40),
       st.data())
def test_pack_row_words_equals_a_naive_loop(rows, per_row, rows_per_word, bits, data):
    low, high = -(1 << (bits - 1)), (1 << bits) - 1
    values = np.array(data.draw(st.lists(st.integers(low, high), min_size=rows * per_row,
                                         max_size=rows * per_row)), dtype=np.int64)
    values = values.reshape(rows, per_row)
    expected = []
    for start in range(0, rows, rows_per_word):
        word, position = 0, 0
        for row in values[start:start + rows_per_word]:
            for value in row:
                word += (int(value) % (1 << bits)) << position
                position += bits
        expected.append(word)
    assert pack_row_words(values, bits, rows_per_word) == expected
