"""The streaming dataflow top: stages chained by FIFOs and width converters.

Stages run concurrently on successive frames. Between two stages a width converter regroups
the producer's beats into the consumer's (when their element counts differ), and a FIFO
holds what the consumer asks for (:meth:`hdl.stage.StageConfig.input_fifo_depth`: an engine
takes one whole input vector, every stage at least ``min_fifo_depth`` beats; a buffered FIFO
needs two entries behind its output register to pass one beat per cycle), so a stage can
finish a frame while its consumer is still busy with the previous one, and the chain's
throughput is set by its slowest stage. The top knows stages only through the
:class:`~hdl.stage.StageConfig` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hdl.dwc import StreamWidthConverter
from hdl.errors import HardwareConfigError
from hdl.perf import COUNTER_BITS, Counter
from hdl.stage import StageConfig


class ChainTop(wiring.Component):
    """A chain of stages; with counters, ``perf`` concatenates every stage's counters."""

    def __init__(self, stages: Sequence[StageConfig], min_fifo_depth: int = 4,
                 counters: bool = True) -> None:
        if not stages:
            raise HardwareConfigError("a chain needs at least one stage")
        for prev, nxt in zip(stages, stages[1:], strict=False):
            if prev.out_elem_bits != nxt.in_elem_bits:
                raise HardwareConfigError(
                    f"stage {prev.name!r} emits {prev.out_elem_bits}-bit elements but "
                    f"{nxt.name!r} takes {nxt.in_elem_bits}-bit ones")
        self.stages = list(stages)
        self.min_fifo_depth = min_fifo_depth
        self.counters = counters
        self.components = [config.build(counters) for config in self.stages]
        ports = {
            "i": In(stream.Signature(len(self.components[0].i.payload))),
            "o": Out(stream.Signature(len(self.components[-1].o.payload))),
        }
        if counters:
            ports["perf"] = Out(COUNTER_BITS * len(self.counter_names))
        super().__init__(ports)

    @property
    def counter_names(self) -> list[tuple[str, Counter]]:
        """(stage name, counter) for each 32-bit field of ``perf``, low bits first."""
        if not self.counters:
            return []
        return [(config.name, counter) for config in self.stages
                for counter in config.counter_names]

    def fifo_depths(self) -> list[int]:
        """Depth of the FIFO in front of every stage but the first."""
        return [config.input_fifo_depth(self.min_fifo_depth) for config in self.stages[1:]]

    def elaborate(self, platform):
        m = Module()
        parts = self.components
        for index, (config, part) in enumerate(zip(self.stages, parts, strict=True)):
            m.submodules[f"stage_{index}_{config.name}"] = part
        wiring.connect(m, wiring.flipped(self.i), parts[0].i)
        depths = self.fifo_depths()
        for index, (prev, nxt) in enumerate(zip(self.stages, self.stages[1:], strict=False)):
            head = parts[index].o
            if prev.out_elems != nxt.in_elems:
                # regroup at the producer's rate, so the FIFO hands the consumer one full
                # input beat per cycle whenever it has buffered data
                dwc = StreamWidthConverter(prev.out_elem_bits, prev.out_elems, nxt.in_elems)
                m.submodules[f"dwc_{index}"] = dwc
                wiring.connect(m, head, dwc.i)
                head = dwc.o
            fifo = SyncFIFOBuffered(width=len(parts[index + 1].i.payload), depth=depths[index])
            m.submodules[f"fifo_{index}"] = fifo
            wiring.connect(m, head, fifo.w_stream)
            wiring.connect(m, fifo.r_stream, parts[index + 1].i)
        wiring.connect(m, parts[-1].o, wiring.flipped(self.o))
        if self.counters:
            offset = 0
            for part in parts:
                width = len(part.perf)
                m.d.comb += self.perf[offset:offset + width].eq(part.perf)
                offset += width
        return m


def emit_verilog(top: wiring.Component, name: str) -> str:
    """Synthesizable Verilog for a top component (ports: clk, rst, i__*, o__*[, perf])."""
    return verilog.convert(top, name=name, emit_src=False)
