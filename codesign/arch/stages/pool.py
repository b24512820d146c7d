"""The streaming max-pool stage (:mod:`hdl.pool`): SIMD channels per beat, one input beat per
cycle, so its cycle formula is its input beats per frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.arch.stage import Stage
from codesign.energy import EnergyTable, EventCost
from codesign.ir import IntType, MaxPool
from hdl.perf import Counter
from hdl.pool import FILL_CYCLES, PoolConfig, pool_cycles


@dataclass(eq=False)
class PoolStage(Stage):
    """A streaming max-pool unit taking ``simd`` channels per beat."""

    name: str
    node: MaxPool
    input_type: IntType
    in_shape: tuple[int, int, int]
    simd: int

    kind = "pool"

    @property
    def output_type(self) -> IntType:  # type: ignore[override]
        return self.input_type

    @property
    def in_elems(self) -> int:
        return self.simd

    @property
    def out_elems(self) -> int:
        return self.simd

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, c = self.in_shape
        return (*self.node.output_hw(h, w), c)

    @property
    def in_beats_per_frame(self) -> int:
        return int(np.prod(self.in_shape)) // self.simd

    @property
    def out_beats_per_frame(self) -> int:
        return int(np.prod(self.out_shape)) // self.simd

    @property
    def cycles_per_frame(self) -> int:
        """Input beats per frame: the pool consumes one beat per cycle."""
        return self.in_beats_per_frame

    @property
    def fill_cycles(self) -> int:
        # one cycle: the max register is the output register
        return FILL_CYCLES

    def make_hdl_config(self) -> PoolConfig:
        h, w, c = self.in_shape
        t = self.input_type
        return PoolConfig(self.name, h, w, c, self.node.kernel, self.node.stride, self.simd,
                          t.bits, t.signed and t.kind != "bipolar", t.kind == "bipolar")

    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        config = self.hdl_config
        assert isinstance(config, PoolConfig)
        span = pool_cycles(config, frames)
        return {Counter.ISSUE: span - FILL_CYCLES, Counter.SPAN: span,
                Counter.IN_BEATS: frames * self.in_beats_per_frame,
                Counter.OUT_BEATS: frames * self.out_beats_per_frame}

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """Row-maxima buffer words read and written, and the max comparisons."""
        bits = self.input_type.bits
        word = self.simd * bits
        return {Counter.BUFFER_READS: EventCost("line buffer", table.sram_read(word)),
                Counter.BUFFER_WRITES: EventCost("line buffer", table.sram_write(word)),
                Counter.COMPARES: EventCost("max compare", table.add(bits))}

    def hardware(self) -> str:
        k = self.node.kernel
        return f"max-pool {k}x{k}/{self.node.stride} SIMD={self.simd}"

    def record(self) -> dict[str, Any]:
        return {**self.common_record(), "in_shape": list(self.in_shape),
                "out_shape": list(self.out_shape), "kernel": self.node.kernel,
                "stride": self.node.stride, "simd": self.simd}
