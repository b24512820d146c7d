"""The stream add stage (:mod:`hdl.add`): an ``Add`` join with its fused epilogue.

Both inputs arrive SIMD channels per beat in step; one beat pair per cycle, so the cycle
formula is its beats per frame. The multipliers and bias of the IR's scale alignment are
constants of the adder; the epilogue's parameters are per channel, as in an engine.
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
from codesign.ir import Add, IntType
from hdl.add import FILL_CYCLES, AddConfig
from hdl.perf import Counter
from hdl.stage import SimdElems


@dataclass(eq=False)
class AddStage(SimdElems, Stage):
    """One ``Add`` on ``simd`` channels per beat of an ``shape`` map (or vector)."""

    name: str
    node: Add
    input_types: tuple[IntType, IntType]
    output_type: IntType
    shape: tuple[int, ...]
    simd: int

    kind = "add"

    @property
    def input_type(self) -> IntType:  # type: ignore[override]
        return self.input_types[0]

    @property
    def input_tensors(self) -> list[str]:
        return list(self.node.inputs)

    @property
    def channels(self) -> int:
        return self.shape[-1]

    @property
    def in_beats_per_frame(self) -> int:
        """Beat pairs per frame (one beat from each input)."""
        return math.prod(self.shape) // self.simd

    @property
    def out_beats_per_frame(self) -> int:
        return self.in_beats_per_frame

    @property
    def cycles_per_frame(self) -> int:
        return self.in_beats_per_frame

    @property
    def fill_cycles(self) -> int:
        return FILL_CYCLES

    @property
    def acc_range(self) -> tuple[int, int]:
        return self.node.output_range(*self.input_types)

    def make_hdl_config(self) -> AddConfig:
        a, b = (element_type(t) for t in self.input_types)
        epilogue = hardware_epilogue(self.node.post, self.output_type, self.acc_range,
                                     self.channels)
        return AddConfig(self.name, self.channels, self.simd, a, b, self.node.weights,
                         self.node.bias, self.acc_range, epilogue)

    def schedule(self, arrivals: Sequence[np.ndarray]) -> StageSchedule:
        """A pair taken once both beats arrived; its sums offered FILL cycles later."""
        accepts = in_order(np.maximum(arrivals[0], arrivals[1]))
        return StageSchedule((accepts, accepts), accepts + FILL_CYCLES)

    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        beats = frames * self.in_beats_per_frame
        params = bool(self.hdl_config.epilogue.banks(self.simd))
        return {Counter.ISSUE: beats, Counter.STALL_IN: 0, Counter.STALL_OUT: 0,
                Counter.SPAN: beats + FILL_CYCLES, Counter.IN_BEATS: beats,
                Counter.OUT_BEATS: beats, Counter.ELEM_ADDS: beats * self.simd,
                Counter.PARAM_READS: beats if params else 0}

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """Per element: the sum (and a shift-add for each multiplier other than +-1, an add
        for a bias); the epilogue per beat."""
        acc_bits = IntType.for_range(*self.acc_range).bits
        wa, wb = self.node.weights
        adds = 1 + (abs(wa) != 1) + (abs(wb) != 1) + (self.node.bias != 0)
        costs = {Counter.ELEM_ADDS: EventCost("adders", adds * table.add(acc_bits))}
        costs.update(epilogue_costs(self.node.post, self.acc_range, self.simd, table))
        return costs

    def hardware(self) -> str:
        wa, wb = self.node.weights
        return f"add {wa}*a + {wb}*b SIMD={self.simd}"

    def record(self) -> dict[str, Any]:
        return {**self.common_record(), "input_types": [str(t) for t in self.input_types],
                "shape": list(self.shape), "simd": self.simd,
                "weights": list(self.node.weights), "bias": self.node.bias,
                "epilogue": "sums" if self.node.post is None else self.node.post.op_type}
