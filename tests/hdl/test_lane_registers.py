"""The resource model's lane register widths against the datapath's own expressions: every
SIMD term built from full-width words, summed by the same adder tree."""

from __future__ import annotations

from amaranth import Signal
from hypothesis import given, settings
from hypothesis import strategies as st

from hdl.arith import adder_tree
from hdl.datapath import lane_register_bits
from hdl.lanes import BinaryWeightLane, CodebookLane, MacLane, TernaryLane, XnorPopcountLane

bits = st.integers(2, 8)
lanes = st.one_of(
    st.just(XnorPopcountLane()),
    st.builds(BinaryWeightLane, bits, st.booleans(), st.booleans()),
    st.builds(TernaryLane, bits, st.booleans(), st.booleans()),
    st.builds(MacLane, bits, st.booleans(), bits, st.booleans(), st.booleans()),
    st.builds(lambda values, extra, ib, signed: CodebookLane(
        (0, *values), max(1, len(values)).bit_length() + extra, ib, signed),
        st.lists(st.integers(-100, 100), min_size=1, max_size=7, unique=True),
        st.integers(0, 1), bits, st.booleans()),
)


@settings(max_examples=60, deadline=None)
@given(lanes, st.integers(1, 40))
def test_lane_register_bits_match_every_term_built(lane, simd):
    terms = lane.terms(Signal(simd * lane.input_bits), Signal(simd * lane.weight_bits), simd)
    assert lane_register_bits(lane, simd) == (sum(len(term) for term in terms),
                                              len(adder_tree(terms)))
