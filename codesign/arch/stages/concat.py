"""The stream concatenation stage (:mod:`hdl.concat`): a ``Concat`` of channel groups.

For every pixel it passes each input's beats in turn, one beat per cycle, so the cycle
formula is its output beats per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.arch.stage import Stage, StageSchedule, in_order
from codesign.energy import EnergyTable, EventCost
from codesign.ir import Concat, IntType
from hdl.concat import FILL_CYCLES, ConcatConfig
from hdl.perf import Counter
from hdl.stage import SimdElems


@dataclass(eq=False)
class ConcatStage(SimdElems, Stage):
    """One ``Concat`` of inputs with ``parts`` channels each, ``simd`` elements per beat,
    over ``pixels`` pixels per frame."""

    name: str
    node: Concat
    input_type: IntType
    pixels: int
    parts: tuple[int, ...]
    simd: int

    kind = "concat"

    @property
    def output_type(self) -> IntType:  # type: ignore[override]
        return self.input_type

    @property
    def input_tensors(self) -> list[str]:
        return list(self.node.inputs)

    @property
    def in_beats_per_frame(self) -> int:
        """Beats taken from all inputs per frame."""
        return self.pixels * sum(self.parts) // self.simd

    @property
    def out_beats_per_frame(self) -> int:
        return self.in_beats_per_frame

    @property
    def cycles_per_frame(self) -> int:
        return self.out_beats_per_frame

    @property
    def fill_cycles(self) -> int:
        return FILL_CYCLES

    def make_hdl_config(self) -> ConcatConfig:
        return ConcatConfig(self.name, self.parts, self.simd, self.input_type.bits)

    def schedule(self, arrivals: Sequence[np.ndarray]) -> StageSchedule:
        """Each pixel's beats taken in turn from each input, one per cycle, once arrived;
        offered FILL cycles after being taken."""
        beats = [part // self.simd for part in self.parts]
        pixels = min(a.size // n for a, n in zip(arrivals, beats, strict=True))
        need = np.concatenate([a[:pixels * n].reshape(pixels, n)
                               for a, n in zip(arrivals, beats, strict=True)], axis=1)
        accepts = in_order(need.reshape(-1)).reshape(pixels, -1)
        edges = np.cumsum([0, *beats])
        taken = tuple(accepts[:, lo:hi].reshape(-1)
                      for lo, hi in zip(edges, edges[1:], strict=False))
        return StageSchedule(taken, accepts.reshape(-1) + FILL_CYCLES)

    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        beats = frames * self.out_beats_per_frame
        return {Counter.ISSUE: beats, Counter.STALL_IN: 0, Counter.STALL_OUT: 0,
                Counter.SPAN: beats + FILL_CYCLES, Counter.IN_BEATS: beats,
                Counter.OUT_BEATS: beats}

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """A multiplexer into the output register: no arithmetic, no memory."""
        return {}

    def hardware(self) -> str:
        return f"concat {'+'.join(map(str, self.parts))} SIMD={self.simd}"

    def record(self) -> dict[str, Any]:
        return {**self.common_record(), "parts": list(self.parts), "pixels": self.pixels,
                "simd": self.simd, "channels": sum(self.parts)}
