"""The global sum pool stage (:mod:`hdl.global_pool`): a ``GlobalSumPool`` with its fused
epilogue, global average pooling's integer part.

It takes one beat per cycle, so its cycle formula is its input beats per frame; a frame's
C/SIMD output beats leave with the last pixel's beats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.arch.stage import Stage, StageSchedule, element_type, in_order
from codesign.arch.stages.epilogue import epilogue_costs, hardware_epilogue
from codesign.energy import EnergyTable, EventCost
from codesign.ir import GlobalSumPool, IntType
from hdl.global_pool import FILL_CYCLES, GlobalPoolConfig
from hdl.perf import Counter
from hdl.stage import SimdElems


@dataclass(eq=False)
class GlobalPoolStage(SimdElems, Stage):
    """One ``GlobalSumPool`` over an (H, W, C) map, ``simd`` channels per beat."""

    name: str
    node: GlobalSumPool
    input_type: IntType
    output_type: IntType
    in_shape: tuple[int, int, int]
    simd: int

    kind = "global_pool"

    @property
    def pixels(self) -> int:
        return self.in_shape[0] * self.in_shape[1]

    @property
    def channels(self) -> int:
        return self.in_shape[2]

    @property
    def in_beats_per_frame(self) -> int:
        return math.prod(self.in_shape) // self.simd

    @property
    def out_beats_per_frame(self) -> int:
        return self.channels // self.simd

    @property
    def cycles_per_frame(self) -> int:
        return self.in_beats_per_frame

    @property
    def fill_cycles(self) -> int:
        return FILL_CYCLES

    @property
    def acc_range(self) -> tuple[int, int]:
        return self.node.output_range(self.input_type, self.pixels)

    def make_hdl_config(self) -> GlobalPoolConfig:
        epilogue = hardware_epilogue(self.node.post, self.output_type, self.acc_range,
                                     self.channels)
        return GlobalPoolConfig(self.name, self.pixels, self.channels, self.simd,
                                element_type(self.input_type), self.acc_range, epilogue)

    def schedule(self, arrivals: Sequence[np.ndarray]) -> StageSchedule:
        """Every beat taken when it arrives; the last pixel's beats complete the sums,
        offered FILL cycles later."""
        accepts = in_order(arrivals[0])
        folds = self.out_beats_per_frame
        frames = accepts.size // self.in_beats_per_frame
        last = (np.arange(frames)[:, None] * self.in_beats_per_frame
                + self.in_beats_per_frame - folds + np.arange(folds)[None, :]).reshape(-1)
        return StageSchedule((accepts,), accepts[last] + FILL_CYCLES)

    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        beats = frames * self.in_beats_per_frame
        out = frames * self.out_beats_per_frame
        params = bool(self.hdl_config.epilogue.banks(self.simd))
        return {Counter.ISSUE: beats, Counter.STALL_IN: 0, Counter.STALL_OUT: 0,
                Counter.SPAN: beats + FILL_CYCLES, Counter.IN_BEATS: beats,
                Counter.OUT_BEATS: out, Counter.ELEM_ADDS: beats * self.simd,
                Counter.PARAM_READS: out if params else 0}

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """An addition into a sum register per element; the epilogue per output beat."""
        acc_bits = IntType.for_range(*self.acc_range).bits
        costs = {Counter.ELEM_ADDS: EventCost("adders", table.add(acc_bits))}
        costs.update(epilogue_costs(self.node.post, self.acc_range, self.simd, table))
        return costs

    def hardware(self) -> str:
        return f"global sum-pool {self.in_shape[0]}x{self.in_shape[1]} SIMD={self.simd}"

    def record(self) -> dict[str, Any]:
        return {**self.common_record(), "in_shape": list(self.in_shape), "simd": self.simd,
                "epilogue": "sums" if self.node.post is None else self.node.post.op_type}
