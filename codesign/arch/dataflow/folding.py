"""Folding of one engine: check a requested (PE, SIMD), or choose one for a cycle target.

Every automatic folding (for ``target_cycles``, for the default target, and for the targets a
budget or a frame rate tries) chooses among the same candidates, :meth:`FoldingSpace.choose`:
the foldings the hardware generators build (PE divides MH; SIMD divides MW and, behind a
sliding window, the channels of a pixel) that keep both the engine and the window generator
in front of it (which runs at the engine's SIMD) within the engine's rate. Among them the
options' objective (:attr:`codesign.arch.options.MappingOptions.objective`) takes

- ``"lanes"``: the fewest lanes; ties go to PE and SIMD closest to each other, then to the
  larger PE (:func:`lanes_key`);
- ``"luts"``: the fewest LUTs by the resource model, engine and window together; ties as
  for ``"lanes"``.

The engine's rate is the target rounded down to the cycles per frame an engine folding takes
(vectors x (MH/PE) x (MW/SIMD) come in steps): the slowest the engine may run. A window
generator needs its output beats per frame, its input beats, and a bubble at each frame
boundary, so at a small SIMD it can be slower than its engine; held to the engine's rate it
never makes the pair slower than the slowest engine folding within the target. When no
folding keeps to that rate (a window that must read more beats than the target allows), the
fastest ones compete instead.

The fewest lanes are not the fewest LUTs: a lane's price depends on its family and operands,
a weight memory's on its shape (a shallower, wider one can leave logic for block RAM), a
window generator's on its SIMD. But at equal cycles the fewest LUTs often lie at SIMD 1 and
many PEs, whose accumulators update more often per frame, for a saving within the model's
error; so ``"luts"`` is what a budget or a frame rate asks for, not the default. A folding
the model cannot price (a family or target without a calibration) ranks after every one it
can; with none priced ``"luts"`` takes the fewest lanes.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from codesign.arch.options import Folding
from codesign.arch.stage_pool import StagePool
from codesign.arch.stages import EngineStage, WindowStage
from codesign.errors import FoldingError, UnknownTargetError


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


def lanes_key(folding: Folding) -> tuple[int, float, int]:
    """Fewest lanes first; then PE and SIMD closest to each other (input-buffer re-reads
    grow as MH/PE and accumulator updates as MW/SIMD, so a balanced folding avoids paying
    heavily for either); then the larger PE."""
    pe, simd = folding.pe, folding.simd
    return pe * simd, abs(math.log2(pe) - math.log2(simd)), -pe


def content_digest(*values: object) -> bytes:
    """A digest of ``values`` by content: of their pickle, which only equal contents share
    (equal contents that pickle differently, objects shared in one and not the other, only
    cost a repeated choice)."""
    return hashlib.sha256(pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)).digest()


CHOICES_REMEMBERED = 4096
"""Automatic foldings kept for the process (oldest forgotten first)."""

_chosen: dict[tuple[bytes, int, str], Folding] = {}


@dataclass(eq=False)
class FoldingSpace:
    """The foldings one engine can take, and its stages at each: the engine stage
    ``engine(folding)`` and, behind a sliding window, the window generator ``window(simd)``
    in front of it. Stages are taken from ``pool``, so a folding priced once is priced once
    for every design that meets it.

    ``made_of`` is everything the two makers build their stages from (the layer's node, its
    types, family, engine kind, memory styles, the window's node and input); with the
    folding limits, the resource target and the objective it keys the choice, which is
    remembered for the whole process: a sweep folds the same layers for the same targets
    over and over, also when each point maps in a pool of its own.
    """

    mh: int
    mw: int
    simds: tuple[int, ...]
    """SIMD values the generators build: divisors of MW (and of a window's channels)."""
    vectors: int
    """Vectors per frame: one per output pixel of a convolution."""
    resource_target: str
    engine: Callable[[Folding], EngineStage]
    window: Callable[[int], WindowStage] | None
    pool: StagePool
    made_of: tuple[object, ...]
    _window_cycles: dict[int, int] = field(default_factory=dict, repr=False)
    _window_luts: dict[int, int | None] = field(default_factory=dict, repr=False)
    _bounds: dict[Folding, int | None] = field(default_factory=dict, repr=False)
    _luts: dict[Folding, int | None] = field(default_factory=dict, repr=False)

    @cached_property
    def key(self) -> bytes:
        return content_digest(self.mh, self.mw, self.simds, self.vectors,
                              self.resource_target, self.made_of)

    @property
    def foldings(self) -> list[Folding]:
        """Every folding the generators build for this engine."""
        return [Folding(pe, simd) for pe in divisors(self.mh) for simd in self.simds]

    def engine_stage(self, folding: Folding) -> EngineStage:
        return self.pool.get(self.engine(folding))

    def window_stage(self, simd: int) -> WindowStage | None:
        return None if self.window is None else self.pool.get(self.window(simd))

    def window_cycles(self, simd: int) -> int:
        """The window generator's cycles per frame in steady state at ``simd`` (0 without
        a window)."""
        if simd not in self._window_cycles:
            window = self.window_stage(simd)
            self._window_cycles[simd] = 0 if window is None else window.steady_cycles_per_frame
        return self._window_cycles[simd]

    def window_luts(self, simd: int) -> int | None:
        """The window generator's LUTs at ``simd`` by the resource model (0 without a
        window, None without an estimate)."""
        if simd not in self._window_luts:
            window = self.window_stage(simd)
            try:
                luts = 0 if window is None else window.estimate_resources(
                    self.resource_target).lut
            except UnknownTargetError:
                luts = None
            self._window_luts[simd] = luts
        return self._window_luts[simd]

    def engine_cycles(self, folding: Folding) -> int:
        """The engine's dense issue cycles per frame, vectors * (MH/PE) * (MW/SIMD): a
        zero-skipping engine takes at most these (its busiest PE's steps), so it never falls
        behind a target its folding meets."""
        return self.vectors * (self.mh // folding.pe) * (self.mw // folding.simd)

    def cycles(self, folding: Folding) -> int:
        """Cycles per frame of the slower of the engine and its window generator."""
        return max(self.engine_cycles(folding), self.window_cycles(folding.simd))

    def rate(self, target: int) -> int | None:
        """The engine's rate for ``target``: the most cycles per frame an engine folding
        takes within it (None: every folding takes more)."""
        within = [c for c in map(self.engine_cycles, self.foldings) if c <= target]
        return max(within, default=None)

    def _with_window(self, folding: Folding, memo: dict[Folding, int | None],
                     engine_luts: Callable[[], int]) -> int | None:
        """``engine_luts()`` plus the window generator's LUTs at the folding's SIMD,
        remembered in ``memo`` (None when the model cannot price either)."""
        if folding not in memo:
            window = self.window_luts(folding.simd)
            try:
                engine: int | None = engine_luts()
            except UnknownTargetError:
                engine = None
            memo[folding] = None if engine is None or window is None else engine + window
        return memo[folding]

    def luts(self, folding: Folding) -> int | None:
        """LUTs of the engine and its window generator by the resource model (None when it
        cannot price them)."""
        return self._with_window(folding, self._luts, lambda: self.engine_stage(
            folding).estimate_resources(self.resource_target).lut)

    def luts_bound(self, folding: Folding) -> int | None:
        """At most :meth:`luts`: the engine's lanes and front-end control (no hardware
        configured) and the window generator; None when these cannot be priced (and so
        neither can :meth:`luts`)."""
        return self._with_window(folding, self._bounds, lambda: self.engine(
            folding).lut_lower_bound(self.resource_target))

    def choose(self, target: int, objective: str) -> Folding:
        """The automatic folding for ``target`` cycles per frame by ``objective``
        (``"lanes"`` or ``"luts"``: the module's rule)."""
        key = (self.key, target, objective)
        found = _chosen.get(key)
        if found is None:
            candidates = self.candidates(target)
            found = (self._fewest_luts(candidates) if objective == "luts"
                     else min(candidates, key=lanes_key))
            if len(_chosen) >= CHOICES_REMEMBERED:
                del _chosen[next(iter(_chosen))]
            _chosen[key] = found
        return found

    def candidates(self, target: int) -> list[Folding]:
        """The foldings that keep the engine and its window generator within the engine's
        rate for ``target``; the fastest ones when none does."""
        cycles = {folding: self.cycles(folding) for folding in self.foldings}
        rate = self.rate(target)
        within = [] if rate is None else [f for f, c in cycles.items() if c <= rate]
        if within:
            return within
        fastest = min(cycles.values())
        return [f for f, c in cycles.items() if c == fastest]

    def _fewest_luts(self, candidates: list[Folding]) -> Folding:
        """The candidate with the fewest LUTs (ties by :func:`lanes_key`), pricing them in
        the order of their lower bounds and stopping once the next bound exceeds the best
        price found: the same folding as pricing them all."""
        bounds = {folding: self.luts_bound(folding) for folding in candidates}
        order = sorted(candidates, key=lambda f: (bounds[f] is None, bounds[f] or 0,
                                                  lanes_key(f)))
        best: tuple[bool, int, tuple[int, float, int], Folding] | None = None
        for folding in order:
            bound = bounds[folding]
            if best is not None and not best[0] and (bound is None or bound > best[1]):
                break
            luts = None if bound is None else self.luts(folding)
            mine = (luts is None, luts or 0, lanes_key(folding), folding)
            if best is None or mine[:3] < best[:3]:
                best = mine
        assert best is not None
        return best[3]
