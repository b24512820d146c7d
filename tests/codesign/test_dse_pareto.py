"""The Pareto front against a brute-force O(n^2) dominance check."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from codesign.dse.pareto import OBJECTIVES, front_rows, objective_values, pareto_front


def brute_force_front(points, senses):
    """i is on the front iff no j is at least as good everywhere and better somewhere."""
    def at_least(a, b, s):
        return a >= b if s == "max" else a <= b

    def better(a, b, s):
        return a > b if s == "max" else a < b

    front = []
    for i, p in enumerate(points):
        dominated = any(
            all(at_least(q[k], p[k], s) for k, s in enumerate(senses))
            and any(better(q[k], p[k], s) for k, s in enumerate(senses))
            for j, q in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


@st.composite
def point_sets(draw):
    dims = draw(st.integers(1, 4))
    senses = draw(st.lists(st.sampled_from(["max", "min"]), min_size=dims, max_size=dims))
    # few distinct values: ties and duplicate points are common
    value = st.one_of(st.integers(0, 4).map(float), st.just(math.inf))
    points = draw(st.lists(st.lists(value, min_size=dims, max_size=dims), max_size=30))
    return points, senses


@given(point_sets())
def test_front_equals_brute_force(case):
    points, senses = case
    assert pareto_front(points, senses) == brute_force_front(points, senses)


def test_front_of_rows_skips_points_not_evaluated_and_ranks_missing_luts_last():
    rows = [
        {"status": "ok", "accuracy": 0.9, "cycles_per_frame": 100.0,
         "energy_pj_per_frame": 10.0, "lut": 500},
        {"status": "ok", "accuracy": 0.9, "cycles_per_frame": 100.0,
         "energy_pj_per_frame": 10.0, "lut": None},           # same but no LUT estimate
        {"status": "failed", "accuracy": None},
        {"status": "ok", "accuracy": 0.95, "cycles_per_frame": 400.0,
         "energy_pj_per_frame": 20.0, "lut": None},            # best accuracy: on the front
    ]
    assert list(OBJECTIVES) == ["accuracy", "cycles_per_frame", "energy_pj_per_frame", "lut"]
    assert objective_values(rows[1]) == [0.9, 100.0, 10.0, math.inf]
    assert front_rows(rows) == [0, 3]
