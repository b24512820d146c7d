"""The Pareto front of a set of design points.

A point dominates another when it is at least as good in every objective and better in one;
the front is the set of points nothing dominates (equal points are all kept). The sweep's
objectives are accuracy (higher is better), cycles per frame, energy per frame and LUTs
(lower is better); a point without a LUT estimate counts as the most expensive in LUTs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Sense = Literal["max", "min"]

OBJECTIVES: dict[str, Sense] = {"accuracy": "max", "cycles_per_frame": "min",
                                "energy_pj_per_frame": "min", "lut": "min"}
"""The sweep's objectives: result column -> whether higher or lower is better."""


def pareto_front(points: Sequence[Sequence[float]], senses: Sequence[Sense]) -> list[int]:
    """Indices (ascending) of the non-dominated points.

    Points are visited in lexicographic order of their costs (every objective turned into
    one to minimise): a point can only be dominated by one visited before it, and if it is
    dominated at all then by a point already on the front (dominance is transitive), so each
    point is checked against the front found so far.
    """
    if any(len(p) != len(senses) for p in points):
        raise ValueError(f"every point needs {len(senses)} objectives")
    costs = [tuple(-v if s == "max" else v for v, s in zip(p, senses, strict=True))
             for p in points]
    front: list[int] = []
    for i in sorted(range(len(costs)), key=lambda k: costs[k]):
        c = costs[i]
        if not any(_dominates(costs[j], c) for j in front):
            front.append(i)
    return sorted(front)


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def objective_values(row: Mapping[str, Any]) -> list[float]:
    """A result row's objectives in :data:`OBJECTIVES` order (a missing value is the
    worst)."""
    values = []
    for name, sense in OBJECTIVES.items():
        value = row.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            value = -math.inf if sense == "max" else math.inf
        values.append(float(value))
    return values


def front_rows(rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indices of the rows (evaluated ``ok``) on the sweep's Pareto front."""
    ok = [i for i, row in enumerate(rows) if row.get("status") == "ok"]
    chosen = pareto_front([objective_values(rows[i]) for i in ok], list(OBJECTIVES.values()))
    return [ok[i] for i in chosen]
