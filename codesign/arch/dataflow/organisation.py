"""Today's organisation: a streaming dataflow, one stage per layer (FINN-style), wired as the
graph is: a chain, or a DAG with forks and joins.

Stages run concurrently on successive frames, connected by FIFOs and width converters
(:class:`hdl.top.GraphTop`; :mod:`codesign.arch.dataflow.wiring` says which stream feeds
which input and how deep each FIFO is); the design's throughput is its slowest stage's. A
mismatch is localised by simulating, in topological order, the part of the design up to
each stage (that stage and everything it depends on, same options): the first part whose
output differs names the stage where a bug lives. A design that stops moving is explained
from its counters: the stage that stopped producing, or the fork whose consumers cannot
drain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from amaranth.lib import wiring

from codesign.arch.dataflow.cost import converter_resources, fifo_resources
from codesign.arch.dataflow.mapping import map_graph
from codesign.arch.dataflow.wiring import Wiring, streams, wire
from codesign.arch.design import (
    Design,
    FirstDifference,
    Organisation,
    SimulateFn,
    StreamFormat,
)
from codesign.arch.options import MappingOptions
from codesign.arch.stage import Stage
from codesign.arch.stage_pool import StagePool
from codesign.arch.stages import ForkStage
from codesign.ir import Graph
from codesign.resources import Resources, total
from codesign.verify import first_difference
from hdl.perf import Counter
from hdl.top import GraphTop


class Dataflow(Organisation):
    """Stages streaming into each other as the graph's edges say."""

    name = "dataflow"

    def map(self, graph: Graph, options: MappingOptions, pool: StagePool | None = None
            ) -> list[Stage]:
        return map_graph(graph, options, pool)

    def wiring(self, design: Design) -> Wiring:
        """Streams, FIFO depths, and where the design's input and output are (worked out
        once per design: its resources, buffers and top all ask)."""
        if "wiring" not in design.derived:
            design.derived["wiring"] = wire(design.graph, design.stages,
                                            design.options.fifo_depth)
        plan: Wiring = design.derived["wiring"]
        return plan

    def build_top(self, design: Design, counters: bool) -> wiring.Component:
        plan = self.wiring(design)
        return GraphTop([stage.hdl_config for stage in design.stages], plan.edges,
                        source=plan.source, sink=plan.sink, counters=counters)

    def buffers(self, design: Design) -> list[dict[str, Any]]:
        plan = self.wiring(design)
        found = []
        for index, edge in enumerate(plan.edges):
            consumer = design.stages[edge.consumer]
            width = consumer.input_formats[edge.in_port].width
            found.append({"producer": design.stages[edge.producer].name,
                          "consumer": consumer.name, "port": edge.in_port,
                          "depth": edge.depth, "width": width, "bits": edge.depth * width,
                          "join": index in plan.joins})
        return found

    def cycles_per_frame(self, design: Design) -> int:
        """The slowest stage's steady cycles per frame (its formula, plus a window's bubble
        between frames)."""
        return max(stage.steady_cycles_per_frame for stage in design.stages)

    def input_format(self, design: Design) -> StreamFormat:
        _, (stage, port) = streams(design.graph, design.stages)
        elems = design.stages[stage].input_formats[port].elems
        info = design.graph.input_info
        return StreamFormat(info.dtype, elems, info.size)

    def output_format(self, design: Design) -> StreamFormat:
        last = design.stages[-1]
        return StreamFormat(last.output_type, last.out_elems,
                            design.graph.tensor(last.output_tensor).size)

    def estimate_resources(self, design: Design, target: str) -> Resources:
        """The stages' resources (each kind's model), plus every edge's FIFO and, where the
        producer's beat is not the consumer's, its width converter."""
        parts = [stage.estimate_resources(target) for stage in design.stages]
        for edge in self.wiring(design).edges:
            producer, consumer = design.stages[edge.producer], design.stages[edge.consumer]
            port = consumer.input_formats[edge.in_port]
            parts.append(fifo_resources(port.width, edge.depth))
            if producer.out_elems != port.elems:
                parts.append(converter_resources(producer.out_elems, port.elems,
                                                 port.elem_bits))
        return total(parts)

    def liveness_cycles(self, design: Design) -> int:
        return 64 * self.cycles_per_frame(design) + 10_000

    def upto(self, design: Design, index: int) -> Design:
        """Stage ``index`` and every stage it depends on, as a design of their own (same
        options); for a chain, its first ``index + 1`` stages."""
        found, _ = streams(design.graph, design.stages)
        needed = {index}
        for stream in sorted(found, key=lambda s: -s.consumer):
            if stream.consumer in needed:
                needed.add(stream.producer)
        return Design(design.graph, self, [stage for k, stage in enumerate(design.stages)
                                           if k in needed], design.options)

    def localize_mismatch(self, design: Design, inputs: np.ndarray,
                          values: dict[str, np.ndarray], simulate: SimulateFn
                          ) -> FirstDifference | None:
        for index, stage in enumerate(design.stages):
            if isinstance(stage, ForkStage):
                continue            # its outputs are its input: its consumers tell
            part = self.upto(design, index)
            expected = values[stage.output_tensor]
            expected = expected.reshape(expected.shape[0], -1)
            got = np.asarray(simulate(part, inputs)).reshape(expected.shape)
            where = first_difference(expected, got)
            if where is not None:
                frame, element = where
                return FirstDifference(stage.name, stage.output_tensor, frame, element,
                                       int(expected[frame, element]), int(got[frame, element]))
        return None

    def explain_stuck(self, design: Design, counters: Mapping[str, Mapping[Counter, int]],
                      frames: int) -> str | None:
        """Which stage a design that stopped moving is stuck at, from its counters."""
        if not counters or not all(counters.get(stage.name) for stage in design.stages):
            return None

        def progress(stage: Stage) -> tuple[int, int, int, int]:
            c = counters[stage.name]
            return (c.get(Counter.IN_BEATS, 0), frames * stage.in_beats_per_frame,
                    c.get(Counter.OUT_BEATS, 0), frames * stage.out_beats_per_frame)

        for stage in design.stages:
            taken, wanted, made, due = progress(stage)
            if taken == wanted and made < due:
                return (f"stage {stage.name!r} ({stage.kind}) took all {wanted} input beats but "
                        f"produced {made} of {due}")
        plan = self.wiring(design)
        for index, stage in enumerate(design.stages):
            taken, wanted, _, _ = progress(stage)
            if not isinstance(stage, ForkStage) or taken == wanted:
                continue
            below = {index}
            for edge in sorted(plan.edges, key=lambda e: e.producer):
                if edge.producer in below:
                    below.add(edge.consumer)
            join = next((k for k in sorted(below) if k != index
                         and len(design.stages[k].input_formats) > 1), None)
            if join is None:
                continue
            depths = [edge.depth for edge in plan.edges if edge.consumer == join]
            return (f"fork {stage.name!r} passed {taken} of {wanted} beats: its consumers can "
                    f"never drain, as join {design.stages[join].name!r} waits for one path while "
                    f"the FIFO on the other is full (FIFO depths into it: {depths}; the skip "
                    "path is too shallow)")
        for stage in reversed(design.stages):
            taken, wanted, made, due = progress(stage)
            if taken < wanted:
                return (f"stage {stage.name!r} ({stage.kind}) took {taken} of {wanted} input "
                        f"beats and produced {made} of {due}")
        return None
