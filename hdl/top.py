"""The streaming dataflow top: stages wired by FIFOs and width converters, as a chain or a DAG.

Stages run concurrently on successive frames. Every edge runs from an output stream of one
stage to an input stream of another: a width converter regroups the producer's beats into
the consumer's (when their element counts differ), and a FIFO of the edge's depth holds what
the consumer has not taken yet, so a stage can finish a frame while its consumer is still
busy with the previous one and the design's throughput is set by its slowest stage. In a
DAG a fork stage duplicates a stream and a join (add, concatenation) takes several; the
depth of the FIFOs on the paths into a join is what lets one path run ahead of the other
(the organisation sizes them from the stages' schedules). A chain (:class:`ChainTop`) is
the DAG whose every stage feeds the next, with the FIFO in front of each stage as deep as
it asks (:meth:`hdl.stage.StageConfig.input_fifo_depth`: an engine takes one whole input
vector, every stage at least ``min_fifo_depth`` beats; a buffered FIFO needs two entries
behind its output register to pass one beat per cycle). The top knows stages only through
the stage configuration protocols of :mod:`hdl.stage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hdl.dwc import StreamWidthConverter
from hdl.errors import HardwareConfigError
from hdl.perf import COUNTER_BITS, Counter
from hdl.stage import AnyStageConfig, input_ports, output_ports, port


@dataclass(frozen=True)
class Edge:
    """A stream from output ``out_port`` of stage ``producer`` to input ``in_port`` of stage
    ``consumer`` (indices into the top's stages) through a FIFO of ``depth`` beats."""

    producer: int
    out_port: int
    consumer: int
    in_port: int
    depth: int


class GraphTop(wiring.Component):
    """Stages wired by ``edges``; the top's ``i`` feeds input ``source`` (stage, port), its
    ``o`` is output ``sink``. An output stream no edge reads is always ready (a fork output
    whose consumer is not part of this design). With counters, ``perf`` concatenates every
    stage's counters in stage order."""

    def __init__(self, stages: Sequence[AnyStageConfig], edges: Sequence[Edge], *,
                 source: tuple[int, int] = (0, 0), sink: tuple[int, int] | None = None,
                 counters: bool = True) -> None:
        if not stages:
            raise HardwareConfigError("a design needs at least one stage")
        self.stages = list(stages)
        self.edges = list(edges)
        self.source = source
        self.sink = sink if sink is not None else (len(stages) - 1, 0)
        self.counters = counters
        self._check()
        self.components = [config.build(counters) for config in self.stages]
        (si, sp), (oi, op) = self.source, self.sink
        ports = {
            "i": In(stream.Signature(input_ports(self.stages[si])[sp].width)),
            "o": Out(stream.Signature(output_ports(self.stages[oi])[op].width)),
        }
        if counters:
            ports["perf"] = Out(COUNTER_BITS * len(self.counter_names))
        super().__init__(ports)

    def _check(self) -> None:
        """Every input fed exactly once, element widths agreeing along every edge."""
        fed: dict[tuple[int, int], str] = {self.source: "the design input"}
        for edge in self.edges:
            prev, nxt = self.stages[edge.producer], self.stages[edge.consumer]
            key = (edge.consumer, edge.in_port)
            if key in fed:
                raise HardwareConfigError(f"input {edge.in_port} of stage {nxt.name!r} is fed "
                                          f"twice ({fed[key]} and {prev.name!r})")
            fed[key] = repr(prev.name)
            out = output_ports(prev)[edge.out_port]
            into = input_ports(nxt)[edge.in_port]
            if out.elem_bits != into.elem_bits:
                raise HardwareConfigError(
                    f"stage {prev.name!r} emits {out.elem_bits}-bit elements but "
                    f"{nxt.name!r} takes {into.elem_bits}-bit ones")
            if edge.depth < 2:
                raise HardwareConfigError(f"the FIFO from {prev.name!r} to {nxt.name!r} needs "
                                          f"at least 2 beats, not {edge.depth}")
        for index, config in enumerate(self.stages):
            for k in range(len(input_ports(config))):
                if (index, k) not in fed:
                    raise HardwareConfigError(f"input {k} of stage {config.name!r} is not "
                                              "fed by any stream")

    @property
    def counter_names(self) -> list[tuple[str, Counter]]:
        """(stage name, counter) for each 32-bit field of ``perf``, low bits first."""
        if not self.counters:
            return []
        return [(config.name, counter) for config in self.stages
                for counter in config.counter_names]

    def fifo_depths(self) -> list[int]:
        """Depth of every edge's FIFO, in edge order."""
        return [edge.depth for edge in self.edges]

    def elaborate(self, platform):
        m = Module()
        parts = self.components
        for index, (config, part) in enumerate(zip(self.stages, parts, strict=True)):
            m.submodules[f"stage_{index}_{config.name}"] = part
        counts = [(len(input_ports(c)), len(output_ports(c))) for c in self.stages]
        (si, sp), (oi, op) = self.source, self.sink
        wiring.connect(m, wiring.flipped(self.i), port(parts[si], "i", sp, counts[si][0]))
        read = {(oi, op)}
        for index, edge in enumerate(self.edges):
            prev, nxt = self.stages[edge.producer], self.stages[edge.consumer]
            out = output_ports(prev)[edge.out_port]
            into = input_ports(nxt)[edge.in_port]
            head = port(parts[edge.producer], "o", edge.out_port, counts[edge.producer][1])
            read.add((edge.producer, edge.out_port))
            if out.elems != into.elems:
                # regroup at the producer's rate, so the FIFO hands the consumer one full
                # input beat per cycle whenever it has buffered data
                dwc = StreamWidthConverter(out.elem_bits, out.elems, into.elems)
                m.submodules[f"dwc_{index}"] = dwc
                wiring.connect(m, head, dwc.i)
                head = dwc.o
            fifo = SyncFIFOBuffered(width=into.width, depth=edge.depth)
            m.submodules[f"fifo_{index}"] = fifo
            wiring.connect(m, head, fifo.w_stream)
            wiring.connect(m, fifo.r_stream,
                           port(parts[edge.consumer], "i", edge.in_port, counts[edge.consumer][0]))
        wiring.connect(m, port(parts[oi], "o", op, counts[oi][1]), wiring.flipped(self.o))
        for index, (part, (_, outs)) in enumerate(zip(parts, counts, strict=True)):
            for k in range(outs):
                if (index, k) not in read:
                    m.d.comb += port(part, "o", k, outs).ready.eq(1)
        if self.counters:
            offset = 0
            for part in parts:
                width = len(part.perf)
                m.d.comb += self.perf[offset:offset + width].eq(part.perf)
                offset += width
        return m


class ChainTop(GraphTop):
    """A chain of stages, each feeding the next through a FIFO as deep as it asks."""

    def __init__(self, stages: Sequence[AnyStageConfig], min_fifo_depth: int = 4,
                 counters: bool = True) -> None:
        if not stages:
            raise HardwareConfigError("a chain needs at least one stage")
        self.min_fifo_depth = min_fifo_depth
        edges = [Edge(index, 0, index + 1, 0, nxt.input_fifo_depth(min_fifo_depth))
                 for index, nxt in enumerate(stages[1:])]
        super().__init__(stages, edges, counters=counters)


def emit_verilog(top: wiring.Component, name: str) -> str:
    """Synthesizable Verilog for a top component (ports: clk, rst, i__*, o__*[, perf])."""
    return verilog.convert(top, name=name, emit_src=False)
