"""The streaming pool stage (:mod:`hdl.pool`): a max-pool, or a sum pool (average pooling's
integer part) with its fused epilogue; SIMD channels per beat, one input beat per cycle, so
its cycle formula is its input beats per frame."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.arch.resource_model import (
    SRL_MIN_LENGTH,
    Structure,
    bits_for,
    memory_structure,
)
from codesign.arch.stage import StageSchedule, element_type, in_order
from codesign.arch.stages.epilogue import epilogue_costs, hardware_epilogue
from codesign.arch.stages.stream import MapStage
from codesign.energy import EnergyTable, EventCost
from codesign.ir import IntType, MaxPool, SumPool
from codesign.resources import Resources
from hdl.perf import Counter
from hdl.pool import FILL_CYCLES, PoolConfig, pool_cycles


@dataclass(eq=False)
class PoolStage(MapStage):
    """A streaming pool unit taking ``simd`` channels per beat; ``out_type`` is a sum
    pool's output type (its epilogue's codes, or the sums)."""

    node: MaxPool | SumPool
    out_type: IntType | None = None

    kind = "pool"

    @property
    def summing(self) -> bool:
        return isinstance(self.node, SumPool)

    @property
    def output_type(self) -> IntType:  # type: ignore[override]
        return self.out_type if self.summing and self.out_type is not None else self.input_type

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
        # one cycle: the max (or sum) register is the output register
        return FILL_CYCLES

    @property
    def acc_range(self) -> tuple[int, int]:
        """A sum pool's window-sum bounds."""
        assert isinstance(self.node, SumPool)
        return self.node.output_range(self.input_type)

    def make_hdl_config(self) -> PoolConfig:
        h, w, c = self.in_shape
        t = self.input_type
        e = element_type(t)
        if not self.summing:
            return PoolConfig(self.name, h, w, c, self.node.kernel, self.node.stride, self.simd,
                              t.bits, e.signed, e.bipolar, memory_style=self.memory_style)
        epilogue = hardware_epilogue(self.node.post, self.output_type, self.acc_range, c)
        return PoolConfig(self.name, h, w, c, self.node.kernel, self.node.stride, self.simd,
                          t.bits, e.signed, e.bipolar, op="sum", epilogue=epilogue,
                          value_range=(t.min, t.max))

    def schedule(self, arrivals: Sequence[np.ndarray]) -> StageSchedule:
        """Every beat taken when it arrives; a window's result offered FILL cycles after the
        beat that closes it."""
        config = self.hdl_config
        assert isinstance(config, PoolConfig)
        accepts = in_order(arrivals[0])
        rows = [config.closes(y, config.ih, config.oh) for y in range(config.ih)]
        cols = [config.closes(x, config.iw, config.ow) for x in range(config.iw)]
        closing = np.repeat(np.outer(rows, cols).reshape(-1), config.folds)
        frames = accepts.size // config.in_frame_beats
        return StageSchedule((accepts,), accepts[np.tile(closing, frames)] + FILL_CYCLES)

    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        """Every counter of the unit run alone at full rate (see :mod:`hdl.pool`).

        ``issue`` counts the input beats up to the last one that closes a window (the dropped
        tail of the last frame comes after the last output). Every beat of a column that
        closes a window horizontally takes K - 1 maxima (or additions) per element, and the
        K - 1 row-buffer words of its column when it also closes a window vertically (K - 1
        more); a row's results are buffered when a later window still needs that row. A sum
        pool's epilogue reads its parameters once per output beat.
        """
        config = self.hdl_config
        assert isinstance(config, PoolConfig)
        span = pool_cycles(config, frames)
        out_beats = frames * config.out_frame_beats
        k1 = config.k - 1
        kept_rows = sum(config.kept(y, config.oh) for y in range(config.ih))
        row_results = frames * config.ih * config.ow * config.folds
        counters = {
            Counter.ISSUE: span - FILL_CYCLES,
            Counter.STALL_IN: 0,
            Counter.STALL_OUT: 0,
            Counter.SPAN: span,
            Counter.IN_BEATS: frames * config.in_frame_beats,
            Counter.OUT_BEATS: out_beats,
            Counter.BUFFER_READS: k1 * out_beats,
            Counter.BUFFER_WRITES: frames * kept_rows * config.ow * config.folds,
        }
        operations = k1 * config.simd * (row_results + out_beats)
        if self.summing:
            counters[Counter.ELEM_ADDS] = operations
            counters[Counter.PARAM_READS] = (out_beats if config.sum_epilogue.banks(config.simd)
                                             else 0)
        else:
            counters[Counter.COMPARES] = operations
        return counters

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """Row-result buffer words read and written, the maxima or additions, a sum pool's
        epilogue."""
        config = self.hdl_config
        assert isinstance(config, PoolConfig)
        word = config.row_width
        costs = {Counter.BUFFER_READS: EventCost("line buffer", table.sram_read(word)),
                 Counter.BUFFER_WRITES: EventCost("line buffer", table.sram_write(word))}
        if not self.summing:
            costs[Counter.COMPARES] = EventCost("max compare", table.add(self.input_type.bits))
            return costs
        sum_bits = IntType.for_range(*self.acc_range).bits
        costs[Counter.ELEM_ADDS] = EventCost("adders", table.add(sum_bits))
        costs.update(epilogue_costs(self.node.post, self.acc_range, self.simd, table))
        return costs

    def resource_structure(self, target: str) -> Structure:
        """Position counters, the horizontal taps, K - 1 element-wise maxima horizontally
        and K - 1 vertically (an OR for bipolar data), the output register and the row
        buffers."""
        if self.summing:
            return super().resource_structure(target)
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
        return f"{'sum' if self.summing else 'max'}-pool {k}x{k}/{self.node.stride} " \
               f"SIMD={self.simd}"

    def record(self) -> dict[str, Any]:
        record = {**self.common_record(), "in_shape": list(self.in_shape),
                  "out_shape": list(self.out_shape), "kernel": self.node.kernel,
                  "stride": self.node.stride, "simd": self.simd}
        if self.summing:
            record["op"] = "sum"
            record["epilogue"] = "sums" if self.node.post is None else self.node.post.op_type
        return record
