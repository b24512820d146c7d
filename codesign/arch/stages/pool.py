"""The streaming max-pool stage (:mod:`hdl.pool`): SIMD channels per beat, one input beat per
cycle, so its cycle formula is its input beats per frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.arch.resource_model import (
    SRL_MIN_LENGTH,
    Structure,
    bits_for,
    memory_structure,
)
from codesign.arch.stages.stream import MapStage
from codesign.energy import EnergyTable, EventCost
from codesign.ir import MaxPool
from codesign.resources import Resources
from hdl.perf import Counter
from hdl.pool import FILL_CYCLES, PoolConfig, pool_cycles


@dataclass(eq=False)
class PoolStage(MapStage):
    """A streaming max-pool unit taking ``simd`` channels per beat."""

    node: MaxPool

    kind = "pool"

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, c = self.in_shape
        return (*self.node.output_hw(h, w), c)

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
                          t.bits, t.signed and t.kind != "bipolar", t.kind == "bipolar",
                          memory_style=self.memory_style)

    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        """Every counter of the unit run alone at full rate (see :mod:`hdl.pool`).

        ``issue`` counts the input beats up to the last one that closes a window (the dropped
        tail of the last frame comes after the last output). Every beat of a column that
        closes a window horizontally takes K - 1 maxima per element, and the K - 1 row-buffer
        words of its column when it also closes a window vertically (K - 1 maxima more); a
        row's maxima are buffered when a later window still needs that row.
        """
        config = self.hdl_config
        assert isinstance(config, PoolConfig)
        span = pool_cycles(config, frames)
        out_beats = frames * config.out_frame_beats
        k1 = config.k - 1
        kept_rows = sum(config.kept(y, config.oh) for y in range(config.ih))
        row_maxima = frames * config.ih * config.ow * config.folds
        return {
            Counter.ISSUE: span - FILL_CYCLES,
            Counter.STALL_IN: 0,
            Counter.STALL_OUT: 0,
            Counter.SPAN: span,
            Counter.IN_BEATS: frames * config.in_frame_beats,
            Counter.OUT_BEATS: out_beats,
            Counter.BUFFER_READS: k1 * out_beats,
            Counter.BUFFER_WRITES: frames * kept_rows * config.ow * config.folds,
            Counter.COMPARES: k1 * config.simd * (row_maxima + out_beats),
        }

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """Row-maxima buffer words read and written, and the max comparisons."""
        bits = self.input_type.bits
        word = self.simd * bits
        return {Counter.BUFFER_READS: EventCost("line buffer", table.sram_read(word)),
                Counter.BUFFER_WRITES: EventCost("line buffer", table.sram_write(word)),
                Counter.COMPARES: EventCost("max compare", table.add(bits))}

    def resource_structure(self, target: str) -> Structure:
        """Position counters, the horizontal taps, K - 1 element-wise maxima horizontally
        and K - 1 vertically (an OR for bipolar data), the output register and the row
        buffers."""
        c = self.hdl_config
        assert isinstance(c, PoolConfig)
        s = Structure()
        position = sum(bits_for(n) for n in (c.ih, c.iw, c.folds, c.ow * c.folds, c.k))
        s.add_lut("pool_control", 1)
        s.add_ff("pool_control", 1)
        s.add_lut(f"{self.kind}_counter_bits", position)
        s.add_ff(f"{self.kind}_counter_bits", position)
        # the taps are K - 1 chains of C/SIMD words; Yosys turns a chain of 3 or more into
        # shift-register LUTs (SRL16E/SRLC32E, one per bit and 32 words)
        if c.folds >= SRL_MIN_LENGTH:
            srl = (c.k - 1) * c.width * -(-c.folds // 32)
            s.add_exact(Resources(lut=srl, lutram=srl))
        else:
            s.add_ff("pool_taps", (c.k - 1) * c.folds * c.width)
        maxima = 2 * (c.k - 1) * c.simd * c.elem_bits
        s.add_lut("pool_or" if c.bipolar else "pool_max", maxima)
        s.add_ff("out_bits", c.width)
        memory_structure(c.memories, c.memory_style, target, s)
        return s

    def hardware(self) -> str:
        k = self.node.kernel
        return f"max-pool {k}x{k}/{self.node.stride} SIMD={self.simd}"

    def record(self) -> dict[str, Any]:
        return {**self.common_record(), "in_shape": list(self.in_shape),
                "out_shape": list(self.out_shape), "kernel": self.node.kernel,
                "stride": self.node.stride, "simd": self.simd}
