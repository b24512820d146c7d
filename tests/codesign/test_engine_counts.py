"""The engines' zero-activation lane count against a naive loop over rows and lanes."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from codesign.arch.families import FAMILIES
from codesign.arch.options import Folding
from codesign.arch.stages.mvu import DenseEngine
from codesign.ir import IntType, MatVec


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_zero_activation_lanes_equals_a_naive_count(mh, mw, vectors, seed):
    rng = np.random.default_rng(seed)
    weight = rng.integers(-1, 2, size=(mh, mw))
    x = rng.integers(0, 3, size=(vectors, mw))
    node = MatVec("fc", ["x"], ["y"], weight=weight, weight_type=IntType.ternary())
    stage = DenseEngine(name="fc", node=node, input_type=IntType.uint(2),
                     output_type=IntType.int_(8), family=FAMILIES["ternary"],
                     folding=Folding(1, 1))
    naive = sum(1 for v in range(vectors) for r in range(mh) for j in range(mw)
                if x[v, j] == 0 and weight[r, j] != 0)
    assert stage.zero_activation_lanes(x) == naive


def naive_pack(codes, bits):
    words = []
    for row in codes:
        word = 0
        for j, code in enumerate(row):
            word |= (int(code) & ((1 << bits) - 1)) << (j * bits)
        words.append(word)
    return words


@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_pack_words_equals_a_naive_loop(rows, cols, bits, seed):
    from hdl.mvu import pack_words

    rng = np.random.default_rng(seed)
    codes = rng.integers(-(1 << (bits - 1)), 1 << bits, size=(rows, cols))
    assert pack_words(codes, bits) == naive_pack(codes.tolist(), bits)


@given(st.integers(0, 12), st.integers(1, 80), st.booleans(), st.integers(0, 2**32 - 1))
def test_rom_columns_equals_a_naive_count(depth, width, distinct, seed):
    from codesign.arch.resource_model import rom_columns
    from hdl.memory import MemorySpec

    rng = np.random.default_rng(seed)
    # few distinct columns: constant, repeated and varying columns all occur
    pool = [[int(b) for b in rng.integers(0, 2, size=depth)] for _ in range(3)]
    pool += [[0] * depth, [1] * depth]
    columns = [pool[int(i)] for i in rng.integers(0, len(pool), size=width)]
    init = tuple(sum(columns[b][d] << b for b in range(width)) for d in range(depth))
    varying = [tuple(c) for c in columns if any(c) and not all(c)]
    expected = len(set(varying)) if distinct else len(varying)
    assert rom_columns(MemorySpec("m", width, max(depth, 1), init=init),
                       distinct=distinct) == expected
