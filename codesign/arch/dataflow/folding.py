"""Folding of one engine: check a requested (PE, SIMD), or pick one for a cycle target."""

from __future__ import annotations

import math
from functools import lru_cache

from codesign.arch.options import Folding
from codesign.errors import FoldingError


@lru_cache(maxsize=1024)
def divisors(n: int) -> tuple[int, ...]:
    """The divisors of ``n``, ascending (a mapping asks for the same few layer sizes over
    and over)."""
    return tuple(d for d in range(1, n + 1) if n % d == 0)


def check_folding(name: str, mh: int, mw: int, folding: Folding) -> None:
    problems = []
    if folding.pe < 1 or mh % folding.pe:
        problems.append(f"PE={folding.pe} does not divide MH={mh} (valid PE: "
                        f"{', '.join(map(str, divisors(mh)))})")
    if folding.simd < 1 or mw % folding.simd:
        problems.append(f"SIMD={folding.simd} does not divide MW={mw} (valid SIMD: "
                        f"{', '.join(map(str, divisors(mw)))})")
    if problems:
        raise FoldingError(f"layer {name!r}: " + "; ".join(problems))


@lru_cache(maxsize=4096)
def auto_folding(mh: int, mw: int, target_cycles: int,
                 simd_options: tuple[int, ...] | None = None) -> Folding:
    """Least parallel (fewest lanes) folding with (MH/PE)*(MW/SIMD) <= target_cycles.

    Among foldings with the fewest lanes, the one with PE and SIMD closest to each other
    wins: input-buffer re-reads grow as MH/PE and accumulator updates as MW/SIMD, so a
    balanced folding avoids paying heavily for either. A target below 1 cycle is clamped
    to fully parallel. Remembered: a sweep folds the same layers for the same targets.
    """
    best: tuple[int, float, int, Folding] | None = None
    allowed = set(simd_options) if simd_options is not None else None
    simds = divisors(mw)
    for pe in divisors(mh):
        for simd in simds:
            if allowed is not None and simd not in allowed:
                continue
            if (mh // pe) * (mw // simd) > max(target_cycles, 1):
                continue
            key = (pe * simd, abs(math.log2(pe) - math.log2(simd)), -pe)
            if best is None or key < best[:3]:
                best = (*key, Folding(pe, simd))
    if best is None:
        return Folding(mh, max(allowed) if allowed else mw)
    return best[3]
