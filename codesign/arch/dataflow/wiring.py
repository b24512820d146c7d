"""How the dataflow organisation wires its stages: which stream feeds which input, through
how deep a FIFO.

The streams follow from the stages alone: each input of a stage reads a tensor (a
``Reshape`` moves nothing, so its output is its input's stream), produced by the stage whose
output it is, by the fork of that tensor when several stages read it, or by the design's
input. Any list of stages closed under "produced by" wires (a design, or the part of one
up to a stage, as :meth:`Dataflow.localize_mismatch` simulates); a fork whose consumer is
not in the list leaves that output unread (always ready).

With an integer ``fifo_depth`` every FIFO is as deep as its consumer asks
(:meth:`hdl.stage.StageConfig.input_fifo_depth`, at least the option's ``fifo_depth``),
except on the paths into a join (add, concatenation): there one input may have to hold what
its producer delivers while the other path is still on its way, and
:mod:`codesign.arch.dataflow.fifo_sizing` sizes them from the stages' schedules. With
``fifo_depth="auto"`` every FIFO is sized from the schedules (see
:func:`codesign.arch.dataflow.fifo_sizing.auto_fifo_depths`).
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.arch.options import AUTO_FIFO_DEPTH, FifoDepth
from codesign.arch.stage import Stage
from codesign.arch.stages import ForkStage
from codesign.errors import GraphError
from codesign.ir import Graph
from hdl.top import Edge


@dataclass(frozen=True)
class Stream:
    """A stream between two stages (indices into the stage list), before sizing."""

    producer: int
    out_port: int
    consumer: int
    in_port: int

    @property
    def key(self) -> tuple[int, int, int, int]:
        return self.producer, self.out_port, self.consumer, self.in_port


@dataclass(frozen=True)
class Wiring:
    """Every stream with its FIFO depth, where the design's input enters and its output
    leaves (stage, port), and which edges lead into a join."""

    edges: tuple[Edge, ...]
    source: tuple[int, int]
    sink: tuple[int, int]
    joins: frozenset[int]
    """Indices of the edges into a stage with several inputs (sized from the schedules)."""


def _aliases(graph: Graph) -> dict[str, str]:
    from codesign.arch.dataflow.mapping import stream_aliases

    return stream_aliases(graph)


def streams(graph: Graph, stages: list[Stage]) -> tuple[list[Stream], tuple[int, int]]:
    """The streams among ``stages`` and the (stage, port) the design's input feeds."""
    aliases = _aliases(graph)

    def stream_of(tensor: str) -> str:
        return aliases.get(tensor, tensor)

    index = {stage.name: k for k, stage in enumerate(stages)}
    producers = {stream_of(stage.output_tensor): k for k, stage in enumerate(stages)
                 if not isinstance(stage, ForkStage)}
    forks = {stage.tensor: k for k, stage in enumerate(stages) if isinstance(stage, ForkStage)}
    found: list[Stream] = []
    source: tuple[int, int] | None = None
    for k, stage in enumerate(stages):
        for port, tensor in enumerate(stage.input_tensors):
            name = stream_of(tensor)
            fork = forks.get(name)
            if fork is not None and fork != k:
                assert isinstance(stages[fork], ForkStage)
                out_port = stages[fork].consumers.index((stage.name, port))
                found.append(Stream(fork, out_port, k, port))
            elif name in producers:
                found.append(Stream(producers[name], 0, k, port))
            elif name == stream_of(graph.input):
                if source is not None:
                    raise GraphError(f"the design input feeds both {stages[source[0]].name!r} "
                                     f"and {stage.name!r} without a fork")
                source = (k, port)
            else:
                raise GraphError(f"stage {stage.name!r} reads {tensor!r}, which no stage of "
                                 f"this design produces (stages: {', '.join(index)})")
    if source is None:
        raise GraphError("no stage of the design reads its input")
    return found, source


def wire(graph: Graph, stages: list[Stage], min_depth: FifoDepth) -> Wiring:
    """Streams with their FIFO depths; the last stage's output is the design's output.
    ``min_depth`` :data:`~codesign.arch.options.AUTO_FIFO_DEPTH` sizes every FIFO from the
    schedules alone."""
    from codesign.arch.dataflow.fifo_sizing import auto_fifo_depths, join_fifo_depths

    found, source = streams(graph, stages)
    joins = frozenset(k for k, s in enumerate(found)
                      if len(stages[s.consumer].input_formats) > 1)
    sink = (len(stages) - 1, 0)
    if min_depth == AUTO_FIFO_DEPTH:
        depths = auto_fifo_depths(stages, found, source, graph.input_info.size)
    else:
        assert isinstance(min_depth, int)
        depths = [stages[s.consumer].hdl_config.input_fifo_depth(min_depth) for s in found]
    if joins and min_depth != AUTO_FIFO_DEPTH:
        sized = join_fifo_depths(stages, found, source, graph.input_info.size, joins)
        depths = [max(depth, sized.get(k, 0)) for k, depth in enumerate(depths)]
    edges = tuple(Edge(s.producer, s.out_port, s.consumer, s.in_port, depth)
                  for s, depth in zip(found, depths, strict=True))
    return Wiring(edges, source, sink, joins)
