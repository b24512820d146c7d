"""Today's organisation: a streaming dataflow chain, one stage per layer (FINN-style).

Stages run concurrently on successive frames, connected by FIFOs and width converters
(:class:`hdl.top.ChainTop`); the chain's throughput is its slowest stage's. A mismatch is
localised by simulating growing prefixes of the chain (same options, FIFO depths included):
the first prefix whose last output differs names the stage where a bug lives.
"""

from __future__ import annotations

import numpy as np
from amaranth.lib import wiring

from codesign.arch.dataflow.cost import chain_resources
from codesign.arch.dataflow.mapping import map_chain
from codesign.arch.design import (
    Design,
    FirstDifference,
    Organisation,
    SimulateFn,
    StreamFormat,
)
from codesign.arch.options import MappingOptions
from codesign.arch.stage import Stage
from codesign.ir import Graph
from codesign.resources import Resources
from codesign.verify import first_difference
from hdl.top import ChainTop


class DataflowChain(Organisation):
    """A chain of stages streaming into each other."""

    name = "dataflow"

    def map(self, graph: Graph, options: MappingOptions) -> list[Stage]:
        return map_chain(graph, options)

    def build_top(self, design: Design, counters: bool) -> wiring.Component:
        return ChainTop([stage.hdl_config for stage in design.stages],
                        min_fifo_depth=design.options.fifo_depth, counters=counters)

    def cycles_per_frame(self, design: Design) -> int:
        return max(stage.cycles_per_frame for stage in design.stages)

    def input_format(self, design: Design) -> StreamFormat:
        first = design.stages[0]
        return StreamFormat(first.input_type, first.in_elems,
                            design.graph.tensor(first.input_tensor).size)

    def output_format(self, design: Design) -> StreamFormat:
        last = design.stages[-1]
        return StreamFormat(last.output_type, last.out_elems,
                            design.graph.tensor(last.output_tensor).size)

    def estimate_resources(self, design: Design, target: str) -> Resources:
        return chain_resources(design.stages, design.options.fifo_depth, target)

    def liveness_cycles(self, design: Design) -> int:
        return 64 * self.cycles_per_frame(design) + 10_000

    def prefix(self, design: Design, count: int) -> Design:
        """The first ``count`` stages as a design of their own (same options)."""
        return Design(design.graph, self, design.stages[:count], design.options)

    def localize_mismatch(self, design: Design, inputs: np.ndarray,
                          values: dict[str, np.ndarray], simulate: SimulateFn
                          ) -> FirstDifference | None:
        for count in range(1, len(design.stages) + 1):
            prefix = self.prefix(design, count)
            stage = prefix.stages[-1]
            expected = values[stage.output_tensor]
            expected = expected.reshape(expected.shape[0], -1)
            got = np.asarray(simulate(prefix, inputs)).reshape(expected.shape)
            where = first_difference(expected, got)
            if where is not None:
                frame, element = where
                return FirstDifference(stage.name, stage.output_tensor, frame, element,
                                       int(expected[frame, element]), int(got[frame, element]))
        return None
