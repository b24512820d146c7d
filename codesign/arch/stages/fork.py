"""The stream fork stage (:mod:`hdl.fork`): one tensor to several consumers.

The IR has no fork node: a tensor read by several nodes is one. The organisation puts this
stage behind its producer; it passes each beat to every consumer once all of them can take
it, so its cycle formula is its beats per frame and its fill is zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.arch.stage import Stage, StageSchedule, in_order
from codesign.energy import EnergyTable, EventCost
from codesign.ir import IntType
from hdl.fork import FILL_CYCLES, ForkConfig
from hdl.perf import Counter


@dataclass(eq=False)
class ForkStage(Stage):
    """Duplicates ``tensor`` (``elems`` per beat) to ``consumers``, each a (stage name, input
    port) in output-port order."""

    name: str
    tensor: str
    input_type: IntType
    size: int
    """Elements per frame."""
    elems: int
    consumers: tuple[tuple[str, int], ...]

    kind = "fork"

    @property
    def output_type(self) -> IntType:  # type: ignore[override]
        return self.input_type

    @property
    def input_tensor(self) -> str:
        return self.tensor

    @property
    def output_tensor(self) -> str:
        return self.tensor

    @property
    def in_elems(self) -> int:
        return self.elems

    @property
    def out_elems(self) -> int:
        return self.elems

    @property
    def in_beats_per_frame(self) -> int:
        return self.size // self.elems

    @property
    def out_beats_per_frame(self) -> int:
        return self.in_beats_per_frame

    @property
    def cycles_per_frame(self) -> int:
        return self.in_beats_per_frame

    @property
    def fill_cycles(self) -> int:
        return FILL_CYCLES

    def make_hdl_config(self) -> ForkConfig:
        return ForkConfig(self.name, len(self.consumers), self.elems, self.input_type.bits)

    def schedule(self, arrivals: Sequence[np.ndarray]) -> StageSchedule:
        """A beat passes to every output in the cycle it arrives (all outputs taking it)."""
        accepts = in_order(arrivals[0])
        return StageSchedule((accepts,), accepts + FILL_CYCLES)

    def throttled(self, schedule: StageSchedule, spacing: Sequence[int]) -> StageSchedule:
        """Output p takes beat k at t[p][k] = max(offer[k], c[k - 1] + 1, t[p][k - 1] +
        spacing[p]), and the input beat is consumed at c[k] = max over p of t[p][k] (the
        next beat passes from the cycle after): a converter slow to take one output's
        beats holds back every other output, the branch beside a shortcut included."""
        if all(step <= 1 for step in spacing):
            return schedule
        offers = schedule.outputs
        takes = np.empty((len(spacing), offers.size), dtype=np.int64)
        consumed = np.empty(offers.size, dtype=np.int64)
        last = np.full(len(spacing), -(1 << 62), dtype=np.int64)
        done = -(1 << 62)
        steps = np.asarray(spacing, dtype=np.int64)
        for k, offer in enumerate(offers.tolist()):
            last = np.maximum(np.maximum(offer, done + 1), last + steps)
            takes[:, k] = last
            done = int(last.max())
            consumed[k] = done
        return StageSchedule((consumed - FILL_CYCLES,), consumed,
                             tuple(takes[p] for p in range(len(spacing))))

    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        beats = frames * self.in_beats_per_frame
        return {Counter.ISSUE: beats, Counter.STALL_IN: 0, Counter.STALL_OUT: 0,
                Counter.SPAN: beats + FILL_CYCLES, Counter.IN_BEATS: beats,
                Counter.OUT_BEATS: beats}

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """Wires only: no arithmetic, no memory."""
        return {}

    def hardware(self) -> str:
        return f"fork x{len(self.consumers)} SIMD={self.elems}"

    def record(self) -> dict[str, Any]:
        return {**self.common_record(), "tensor": self.tensor, "simd": self.elems,
                "consumers": [name for name, _ in self.consumers]}
