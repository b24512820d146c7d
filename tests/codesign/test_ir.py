import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codesign.errors import GraphError
from codesign.ir import IntType, dot_range


def test_type_ranges():
    assert (IntType.bipolar().min, IntType.bipolar().max) == (-1, 1)
    assert (IntType.int_(8).min, IntType.int_(8).max) == (-128, 127)
    assert (IntType.uint(5).min, IntType.uint(5).max) == (0, 31)
    assert IntType.parse("int4") == IntType.int_(4)
    assert IntType.parse("uint12") == IntType.uint(12)
    assert IntType.parse("bipolar") == IntType.bipolar()


@pytest.mark.parametrize("text", ["float32", "int", "uint0x", "ternary8"])
def test_parse_rejects(text):
    with pytest.raises(GraphError, match="accepted: bipolar, ternary, intN, uintN"):
        IntType.parse(text)


def test_bipolar_excludes_zero():
    assert IntType.bipolar().contains(np.array([1, -1, 1]))
    assert not IntType.bipolar().contains(np.array([1, 0]))


def test_for_range_is_minimal():
    assert IntType.for_range(0, 1) == IntType.uint(1)
    assert IntType.for_range(0, 255) == IntType.uint(8)
    assert IntType.for_range(0, 256) == IntType.uint(9)
    assert IntType.for_range(-128, 127) == IntType.int_(8)
    assert IntType.for_range(-129, 0) == IntType.int_(9)
    assert IntType.for_range(-1, 128) == IntType.int_(9)


@given(st.integers(-(2**20), 2**20), st.integers(0, 2**20))
def test_for_range_holds_and_is_tight(lo, span):
    t = IntType.for_range(lo, lo + span)
    assert t.min <= lo and lo + span <= t.max
    if t.bits > 1:
        smaller = IntType(t.kind, t.bits - 1)
        assert not (smaller.min <= lo and lo + span <= smaller.max)


@given(st.sampled_from(["bipolar", "ternary", "int3", "int8", "uint1", "uint5", "int16"]),
       st.data())
def test_encode_decode_roundtrip(name, data):
    t = IntType.parse(name)
    if t.kind == "bipolar":
        values = np.array(data.draw(st.lists(st.sampled_from([-1, 1]), min_size=1, max_size=20)))
    elif t.kind == "ternary":
        values = np.array(data.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=1,
                                             max_size=20)))
    else:
        values = np.array(data.draw(st.lists(st.integers(t.min, t.max), min_size=1,
                                             max_size=20)))
    codes = t.encode(values)
    assert codes.min() >= 0 and codes.max() < (1 << t.bits)
    assert np.array_equal(t.decode(codes), values)


def test_dot_range_from_types():
    assert dot_range(IntType.bipolar(), IntType.bipolar(), 10) == (-10, 10)
    assert dot_range(IntType.bipolar(), IntType.uint(5), 64) == (-64 * 31, 64 * 31)
    assert dot_range(IntType.int_(4), IntType.int_(4), 3) == (3 * -56, 3 * 64)


def test_ternary_type():
    t = IntType.parse("ternary")
    assert (t.min, t.max, t.bits, str(t)) == (-1, 1, 2, "ternary")
    assert t.encode(np.array([1, 0, -1])).tolist() == [1, 0, 3]   # 2-bit two's complement
    assert t.contains(np.array([-1, 0, 1])) and not t.contains(np.array([2]))
    assert dot_range(t, IntType.uint(4), 8) == (-120, 120)
