"""The sliding-window generator stage (im2col on the stream; :mod:`hdl.window`).

It feeds a convolution's engine SIMD channels per beat, so its SIMD is the engine's. Its
cycle formula is its output beats: every window element once per output pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.arch.resource_model import Structure, bits_for, memory_structure
from codesign.arch.stage import StageSchedule, in_order
from codesign.arch.stages.stream import MapStage
from codesign.energy import EnergyTable, EventCost
from codesign.ir import SlidingWindow
from hdl.perf import Counter
from hdl.window import FILL_CYCLES, WindowConfig, window_schedule


@dataclass(eq=False)
class WindowStage(MapStage):
    """A sliding-window generator streaming ``simd`` channels per beat."""

    node: SlidingWindow

    kind = "window"

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, c = self.in_shape
        kh, kw = self.node.kernel
        return (*self.node.output_hw(h, w), kh * kw * c)

    @property
    def cycles_per_frame(self) -> int:
        """Output beats per frame: every window element once."""
        return self.out_beats_per_frame

    @property
    def fill_cycles(self) -> int:
        # one cycle: the line buffer's read port is the output register
        return FILL_CYCLES

    @property
    def steady_cycles_per_frame(self) -> int:
        """The output beats, plus the frame-boundary bubble of the ring (see
        :mod:`hdl.window`): the distance between the last outputs of consecutive frames
        once the schedule repeats."""
        config = self.hdl_config
        assert isinstance(config, WindowConfig)
        return window_schedule(config, 4).span - window_schedule(config, 3).span

    def make_hdl_config(self) -> WindowConfig:
        """Padding with the IR's pad value, in the input type's storage code."""
        h, w, c = self.in_shape
        (kh, kw), (sh, sw) = self.node.kernel, self.node.stride
        top, left, bottom, right = self.node.padding
        pad_code = int(self.input_type.encode(np.array([self.node.pad_value]))[0])
        return WindowConfig(self.name, h, w, c, kh, kw, sh, sw, top, left, bottom, right,
                            self.simd, self.input_type.bits, pad_code,
                            memory_style=self.memory_style)

    def schedule(self, arrivals: Sequence[np.ndarray]) -> StageSchedule:
        """The row-level schedule of :func:`hdl.window.window_schedule` with input beats
        arriving when they do: a row's beats are written one per cycle once the ring has
        a free row slot; an output row is emitted as one burst once its last input row is
        in (one cycle later), each beat offered FILL cycles after it is read."""
        (arrive,) = arrivals
        c = self.hdl_config
        assert isinstance(c, WindowConfig)
        b, q, ring = c.row_words, c.out_row_beats, c.rows
        frames = arrive.size // c.in_frame_beats
        local = [c.input_rows(oy) for oy in range(c.oh)]
        lo = [f * c.ih + local[oy][0] for f in range(frames) for oy in range(c.oh)]
        hi = [f * c.ih + local[oy][1] for f in range(frames) for oy in range(c.oh)]
        accepts = np.empty(frames * c.in_frame_beats, dtype=np.int64)
        row_end: list[int] = []
        out_end: list[int] = []
        freed = 0

        def write_rows(last: int) -> None:
            nonlocal freed
            while len(row_end) <= last:
                r = len(row_end)
                while freed < len(lo) and lo[freed] <= r - ring:
                    freed += 1
                start = max(out_end[freed - 1] + 1 if freed else 0,
                            row_end[-1] + 1 if row_end else 0)
                need = arrive[r * b:(r + 1) * b].copy()
                need[0] = max(int(need[0]), start)
                accepts[r * b:(r + 1) * b] = in_order(need)
                row_end.append(int(accepts[(r + 1) * b - 1]))

        starts = []
        for t in range(len(lo)):
            write_rows(hi[t])
            start = max(out_end[-1] + 1 if out_end else 0, row_end[hi[t]] + 1)
            starts.append(start)
            out_end.append(start + q - 1)
        write_rows(frames * c.ih - 1)
        outputs = (np.array(starts, dtype=np.int64)[:, None] + np.arange(q)[None, :]
                   + FILL_CYCLES).reshape(-1)
        return StageSchedule((accepts,), outputs)

    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        """Every counter of the generator run alone at full rate (see :mod:`hdl.window`).

        The emitter issues every window element once (a line-buffer read, or a padding beat
        where the element lies outside the image); the writer stores every input beat and is
        blocked while the ring holds rows an unfinished output row still needs, which the
        hardware's row-level schedule gives exactly (it also gives the span; the cycles the
        emitter is not issuing, less the output register's fill, are waits for input rows).
        """
        config = self.hdl_config
        assert isinstance(config, WindowConfig)
        schedule = window_schedule(config, frames)
        in_beats = frames * config.in_frame_beats
        out_beats = frames * config.out_frame_beats
        rows_inside = sum(hi - lo + 1 for lo, hi in map(config.input_rows, range(config.oh)))
        cols_inside = sum(hi - lo + 1 for lo, hi in map(config.input_cols, range(config.ow)))
        reads = frames * rows_inside * cols_inside * config.folds
        return {
            Counter.ISSUE: out_beats,
            Counter.STALL_IN: schedule.span - out_beats - FILL_CYCLES,
            Counter.STALL_OUT: 0,
            Counter.SPAN: schedule.span,
            Counter.IN_BEATS: in_beats,
            Counter.OUT_BEATS: out_beats,
            Counter.BUFFER_READS: reads,
            Counter.BUFFER_WRITES: in_beats,
            Counter.PAD_BEATS: out_beats - reads,
            Counter.IN_BLOCKED: schedule.input_cycles - in_beats,
        }

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """Line-buffer words read and written, SIMD elements each."""
        word = self.simd * self.input_type.bits
        return {Counter.BUFFER_READS: EventCost("line buffer", table.sram_read(word)),
                Counter.BUFFER_WRITES: EventCost("line buffer", table.sram_write(word))}

    def resource_structure(self, target: str) -> Structure:
        """Writer and emitter position counters, four line-buffer address registers (ring
        arithmetic), the padding multiplexer on the output word, and the line buffer."""
        c = self.hdl_config
        assert isinstance(c, WindowConfig)
        s = Structure()
        position = sum(bits_for(n) for n in (c.oh, c.ow, c.kh, c.kw, c.folds, c.ih, c.ih,
                                             c.row_words, c.row_words, c.rows * 2))
        address = 4 * bits_for(c.buffer_words)
        s.add_lut("window_control", 1)
        s.add_ff("window_control", 1)
        s.add_lut(f"{self.kind}_counter_bits", position)
        s.add_ff(f"{self.kind}_counter_bits", position)
        s.add_lut("ring_address", address)
        s.add_ff("ring_address", address)
        # padding: a test per padded side on the row or column position, and the choice of
        # the padding word over the line buffer's
        sides = [(c.pad_top, c.ih), (c.pad_bottom, c.ih), (c.pad_left, c.row_words),
                 (c.pad_right, c.row_words)]
        tests = sum(bits_for(n) for pad, n in sides if pad)
        if tests:
            s.add_lut("pad_tests", tests)
            s.add_lut("pad_mux", c.width)
        s.add_ff("out_bits", c.width)
        memory_structure(c.memories, c.memory_style, target, s)
        return s

    def hardware(self) -> str:
        kh, kw = self.node.kernel
        return f"window {kh}x{kw}/{self.node.stride[0]} SIMD={self.simd}"

    def record(self) -> dict[str, Any]:
        return {**self.common_record(), "in_shape": list(self.in_shape),
                "out_shape": list(self.out_shape), "kernel": list(self.node.kernel),
                "stride": list(self.node.stride), "padding": list(self.node.padding),
                "pad_value": self.node.pad_value, "simd": self.simd}
