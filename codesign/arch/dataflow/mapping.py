"""The dataflow organisation's mapping: each node of an integer graph (a chain or a DAG)
becomes a stage.

A ``MatVec`` (with its fused epilogue) becomes an engine of the PE family its types call for
(or the one the options ask for), folded as asked or automatically for the cycle target (the
folding with the fewest lanes, or LUTs, that keeps the engine and its window generator
within it: :mod:`codesign.arch.dataflow.folding`); a ``SlidingWindow`` becomes a window generator
streaming SIMD channels per beat into the convolution's engine (so that engine's SIMD must
divide the input channels); a ``MaxPool`` or ``SumPool`` a pool stage taking what its
producer emits; an ``Add`` a stream add, a ``Concat`` a concatenation and a
``GlobalSumPool`` a global pool, each with the fewest lanes that keep the cycle target; a
``Reshape`` costs nothing (the stream order is already row-major HWC). A tensor read by
several stages gets a fork stage right behind its producer. Stages are listed in a
topological order, the stage producing the graph output last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codesign.arch.dataflow.folding import FoldingSpace, check_folding, divisors
from codesign.arch.families import Family, choose_family
from codesign.arch.options import Folding, MappingOptions
from codesign.arch.stage import Stage
from codesign.arch.stage_pool import StagePool
from codesign.arch.stages import (
    AddStage,
    ConcatStage,
    DenseEngine,
    EngineStage,
    ForkStage,
    GlobalPoolStage,
    PoolStage,
    SparseEngine,
    WindowStage,
)
from codesign.errors import FoldingError, GraphError
from codesign.ir import (
    Add,
    Concat,
    GlobalSumPool,
    Graph,
    MatVec,
    MaxPool,
    MultiThreshold,
    Node,
    Requantize,
    Reshape,
    SlidingWindow,
    SumPool,
)
from codesign.passes.lower import fuse_epilogues

LANES_FOR_DEFAULT_TARGET = 64
"""Without a target, the cycle target is what the largest layer takes on this many lanes
(its multiply-accumulates per frame over them); every engine is then folded for it by the
same rule as for a given target."""


def vectors(graph: Graph, matvec: MatVec) -> int:
    """Vectors per frame of a MatVec: one per pixel of a convolution."""
    return int(math.prod(graph.tensor(matvec.inputs[0]).shape[:-1]))


def check_layer_names(options: MappingOptions, layers: list[str]) -> None:
    """Every layer an option names must exist (as ``folding=`` always required)."""
    for option, names in options.named_layers().items():
        unknown = sorted(set(names) - set(layers))
        if unknown:
            raise FoldingError(f"{option} names unknown layer(s) {unknown}; layers: "
                               + ", ".join(layers))


def stream_aliases(graph: Graph) -> dict[str, str]:
    """Tensor -> the tensor whose stream carries it (a ``Reshape`` moves nothing)."""
    aliases: dict[str, str] = {}
    for node in graph.ordered_nodes():
        if isinstance(node, Reshape):
            aliases[node.output] = aliases.get(node.inputs[0], node.inputs[0])
    return aliases


def stream_readers(graph: Graph, aliases: dict[str, str]) -> dict[str, list[tuple[Node, int]]]:
    """Stream -> the (node, input port) pairs that read it, in topological order."""
    readers: dict[str, list[tuple[Node, int]]] = {}
    for node in graph.ordered_nodes():
        if isinstance(node, Reshape):
            continue
        for index, name in enumerate(node.inputs):
            readers.setdefault(aliases.get(name, name), []).append((node, index))
    return readers


def _check_drained(graph: Graph, aliases: dict[str, str],
                   readers: dict[str, list[tuple[Node, int]]]) -> None:
    """Every stream but the output must be read: a branch that never reaches the output
    would fill its FIFOs and stop the fork feeding it."""
    output = aliases.get(graph.output, graph.output)
    if graph.consumers(graph.output):
        raise GraphError(f"the graph output {graph.output!r} is also read by "
                         f"{graph.consumers(graph.output)[0].describe()}; the output must be "
                         "the last tensor")
    for node in graph.ordered_nodes():
        if isinstance(node, Reshape):
            continue
        stream = aliases.get(node.output, node.output)
        if stream != output and not readers.get(stream):
            forked = [n for n in node.inputs if len(readers.get(aliases.get(n, n), [])) > 1]
            where = f" (a branch of the fork of {forked[0]!r})" if forked else ""
            raise GraphError(f"{node.describe()} produces {node.output!r}, which nothing reads"
                             f"{where}: a branch that does not reach the graph output can never "
                             "drain")


def lanes_for(channels: int, pixels: int, target: int) -> int:
    """Fewest lanes (a divisor of ``channels``) taking at most ``target`` cycles per frame
    at one beat per cycle."""
    for lanes in divisors(channels):
        if pixels * channels // lanes <= target:
            return lanes
    return channels


@dataclass(frozen=True, eq=False)
class Prepared:
    """What the mapping derives from a graph alone, whatever the options: the checked graph
    with its epilogues fused, its nodes in topological order, its streams and their
    readers, its MatVecs and the nodes that become stages with memories."""

    graph: Graph
    nodes: list[Node]
    aliases: dict[str, str]
    readers: dict[str, list[tuple[Node, int]]]
    matvecs: list[MatVec]
    hardware: list[str]


def prepare(graph: Graph) -> Prepared:
    """The graph checked and fused for mapping (named errors otherwise)."""
    if not graph.is_integer():
        raise GraphError("mapping needs an integer graph: run codesign.passes.run_passes")
    if any(isinstance(node, (MultiThreshold, Requantize)) for node in graph.nodes):
        graph = fuse_epilogues(graph)
    graph.validate()
    nodes = graph.ordered_nodes()
    aliases = stream_aliases(graph)
    readers = stream_readers(graph, aliases)
    _check_drained(graph, aliases, readers)
    return Prepared(graph, nodes, aliases, readers,
                    [node for node in nodes if isinstance(node, MatVec)],
                    [node.name for node in nodes
                     if isinstance(node, (MatVec, SlidingWindow, MaxPool, SumPool))])


def map_graph(graph: Graph, options: MappingOptions, pool: StagePool | None = None
              ) -> list[Stage]:
    """The stages of an integer graph (see the module docstring); with a ``pool``, the graph
    is prepared once and every stage equal to one made before is that one
    (:mod:`codesign.arch.stage_pool`)."""
    if pool is None:
        pool = StagePool()
    ready = pool.once(("prepared", graph), lambda: prepare(graph))
    graph, nodes, aliases, readers = ready.graph, ready.nodes, ready.aliases, ready.readers
    matvecs, hardware = ready.matvecs, ready.hardware
    check_layer_names(options, [mv.name for mv in matvecs])
    unknown = sorted(set(dict(options.memory_styles)) - set(hardware))
    if unknown:
        raise FoldingError(f"memory_styles names unknown stage(s) {unknown}; stages: "
                           + ", ".join(hardware))
    if options.target_fps is not None or options.budgeted:
        from codesign.arch.dataflow.cost import budgeted_stages

        return budgeted_stages(graph, nodes, options, matvecs,
                               lambda target: _map_nodes(graph, nodes, options, target,
                                                         aliases, readers, pool), pool)
    target = options.target_cycles
    if target is None:
        target = max(1, max((vectors(graph, mv) * mv.mh * mv.mw for mv in matvecs), default=1)
                     // LANES_FOR_DEFAULT_TARGET)
    # the FIFO depth chooses no stage here (only the wiring reads it): options that differ
    # in it alone share their stages
    choice = tuple(value for name, value in vars(options).items() if name != "fifo_depth")
    return list(pool.once(("stages", ready, choice),
                          lambda: _map_nodes(graph, nodes, options, target, aliases, readers,
                                             pool)))


def candidate_targets(graph: Graph, nodes: list, options: MappingOptions,
                      pool: StagePool | None = None) -> list[int]:
    """Every cycles-per-frame value an automatically folded engine can take, ascending:
    the targets at which an engine's rate, and so its automatic folding, can change
    (:meth:`FoldingSpace.engine_cycles` over the foldings the engine accepts)."""
    pool = StagePool() if pool is None else pool
    values = {1}
    for node in nodes:
        if isinstance(node, MatVec) and options.folding_for(node.name) is None:
            space = folding_space(graph, node, options, pool)
            values.update(map(space.engine_cycles, space.foldings))
    return sorted(values)


def _map_nodes(graph: Graph, nodes: list[Node], options: MappingOptions, target: int,
               aliases: dict[str, str], readers: dict[str, list[tuple[Node, int]]],
               pool: StagePool) -> list[Stage]:
    """The stages, automatic foldings aiming at ``target`` cycles per frame."""
    mapper = _Mapper(graph, options, target, aliases, readers, pool)
    mapper.fork(graph.input, graph.input_info.shape[-1])
    for node in nodes:
        mapper.node(node)
    if not mapper.stages:
        raise GraphError(f"graph {graph.name!r} has no node that needs hardware")
    for stage in mapper.stages:
        stage.hdl_config        # noqa: B018 - a stage the generators cannot build fails now
    return mapper.stages


class _Mapper:
    """Stages in the making, and what the next stage needs to know about its producers."""

    def __init__(self, graph: Graph, options: MappingOptions, target: int,
                 aliases: dict[str, str], readers: dict[str, list[tuple[Node, int]]],
                 pool: StagePool) -> None:
        self.graph, self.options, self.target = graph, options, target
        self.aliases, self.readers, self.pool = aliases, readers, pool
        self.stages: list[Stage] = []
        self.elems: dict[str, int] = {}
        """Stream -> elements per beat its producer emits."""

    def stream(self, tensor: str) -> str:
        return self.aliases.get(tensor, tensor)

    def producer_elems(self, tensor: str) -> int:
        stream = self.stream(tensor)
        return self.elems.get(stream, self.graph.tensor(stream).shape[-1])

    def append(self, stage: Stage) -> None:
        """The next stage (the pool's, if it made an equal one)."""
        self.stages.append(self.pool.get(stage))

    def add(self, stage: Stage) -> None:
        """The next stage, and a fork behind it if several stages read its output."""
        self.append(stage)
        stream = self.stream(stage.output_tensor)
        self.elems[stream] = stage.out_elems
        self.fork(stream, stage.out_elems)

    def fork(self, stream: str, elems: int) -> None:
        """A fork behind the producer of ``stream`` when several stages read it."""
        readers = self.readers.get(stream, [])
        if len(readers) < 2:
            return
        info = self.graph.tensor(stream)
        self.append(ForkStage(f"{stream}_fork", stream, info.dtype, info.size, elems,
                                     tuple((node.name, port) for node, port in readers)))
        self.elems[stream] = elems

    def node(self, node: Node) -> None:
        graph = self.graph
        if isinstance(node, (Reshape, SlidingWindow)):
            if isinstance(node, SlidingWindow):
                readers = self.readers.get(node.output, [])
                if len(readers) != 1 or not isinstance(readers[0][0], MatVec):
                    raise GraphError(f"{node.describe()} must feed a MatVec")
            return                      # a window is mapped with its engine
        source = graph.tensor(node.inputs[0])
        if isinstance(node, MatVec):
            space = folding_space(graph, node, self.options, self.pool)
            fold = (requested_folding(graph, node, self.options)
                    or space.choose(self.target, self.options.objective))
            engine = space.engine_stage(fold)
            window = space.window_stage(engine.simd)
            if window is not None:
                self.append(window)
            self.add(engine)
        elif isinstance(node, (MaxPool, SumPool)):
            channels = source.shape[-1]
            simd = math.gcd(self.producer_elems(node.inputs[0]), channels)
            out_type = graph.tensor(node.output).dtype
            self.add(PoolStage(node.name, node, source.dtype, source.shape, simd,
                               self.options.memory_style_for(node.name),
                               out_type=out_type if isinstance(node, SumPool) else None))
        elif isinstance(node, Add):
            a, b = (graph.tensor(name) for name in node.inputs)
            pixels = math.prod(a.shape[:-1])
            self.add(AddStage(node.name, node, (a.dtype, b.dtype), graph.tensor(node.output).dtype,
                              a.shape, lanes_for(a.shape[-1], pixels, self.target)))
        elif isinstance(node, Concat):
            parts = tuple(graph.tensor(name).shape[-1] for name in node.inputs)
            pixels = math.prod(source.shape[:-1])
            simd = lanes_for(math.gcd(*parts), pixels * sum(parts) // math.gcd(*parts),
                             self.target)
            self.add(ConcatStage(node.name, node, source.dtype, pixels, parts, simd))
        elif isinstance(node, GlobalSumPool):
            h, w, c = source.shape
            self.add(GlobalPoolStage(node.name, node, source.dtype,
                                     graph.tensor(node.output).dtype, source.shape,
                                     lanes_for(c, h * w, self.target)))
        else:
            raise GraphError(f"no hardware stage for {node.describe()} in the dataflow "
                             "organisation")


def stream_channels(graph: Graph, matvec: MatVec) -> int:
    """Elements of the MatVec's input that arrive together: a sliding window's input
    channels (the engine's SIMD must divide them), else its whole input vector."""
    producer = graph.producer(matvec.inputs[0])
    if isinstance(producer, SlidingWindow):
        return int(graph.tensor(producer.inputs[0]).shape[-1])
    return matvec.mw


def engine_kind(graph: Graph, matvec: MatVec, options: MappingOptions
                ) -> tuple[Family, type[EngineStage]]:
    """The PE family the options ask for (or the cheapest that computes the layer's types),
    and the engine the sparse choice puts the layer on: dense or zero-skipping."""
    input_type = graph.tensor(matvec.inputs[0]).dtype
    family = choose_family(matvec.name, matvec.weight_type, input_type,
                           options.family_for(matvec.name), matvec.acc, matvec.codebook)
    sparse = options.sparse
    if isinstance(sparse, float):
        go_sparse = family.zero_weights and float(np.mean(matvec.weight == 0)) >= sparse
    else:
        go_sparse = sparse is not None and matvec.name in sparse
        if go_sparse and not family.zero_weights:
            raise FoldingError(f"layer {matvec.name!r}: the {family.name} engine's "
                               f"{matvec.weight_type} weights have no zeros to skip; the sparse "
                               "engine takes layers on a family with zero weights (ternary, "
                               "codebook, mac)")
    return family, SparseEngine if go_sparse else DenseEngine


def folding_space(graph: Graph, matvec: MatVec, options: MappingOptions, pool: StagePool
                  ) -> FoldingSpace:
    """The foldings the engine of ``matvec`` can take and its stages (and its window
    generator's) at each, as the options make them (made once per pool)."""
    family, kind = engine_kind(graph, matvec, options)
    producer = graph.producer(matvec.inputs[0])
    window = producer if isinstance(producer, SlidingWindow) else None
    styles = (options.memory_style_for(matvec.name),
              options.memory_style_for(window.name) if window is not None else "")
    target = options.resource_target

    def make() -> FoldingSpace:
        input_type = graph.tensor(matvec.inputs[0]).dtype
        output_type = graph.tensor(matvec.output).dtype
        per_frame = vectors(graph, matvec)

        def engine(folding: Folding) -> EngineStage:
            return kind(matvec.name, matvec, input_type, output_type, family, folding,
                        vectors=per_frame, memory_style=styles[0])

        made_of: tuple[object, ...] = (kind.__name__, matvec, input_type, output_type,
                                       family.name, per_frame, styles)
        make_window = None
        if window is not None:
            source = graph.tensor(window.inputs[0])
            made_of += (window, source.dtype, source.shape)

            def make_window(simd: int) -> WindowStage:
                return WindowStage(window.name, window, source.dtype, source.shape, simd,
                                   styles[1])

        return FoldingSpace(matvec.mh, matvec.mw, divisors(stream_channels(graph, matvec)),
                            per_frame, target, engine, make_window, pool, made_of)

    return pool.once(("folding space", matvec, family.name, kind, styles, target), make)


def requested_folding(graph: Graph, matvec: MatVec, options: MappingOptions
                      ) -> Folding | None:
    """The folding the options ask for, checked (None: fold automatically)."""
    fold = options.folding_for(matvec.name)
    if fold is None:
        return None
    check_folding(matvec.name, matvec.mh, matvec.mw, fold)
    channels = stream_channels(graph, matvec)
    if channels % fold.simd:
        raise FoldingError(f"layer {matvec.name!r}: SIMD={fold.simd} must divide the "
                           f"{channels} input channels of its sliding window (valid SIMD: "
                           f"{', '.join(map(str, divisors(channels)))})")
    return fold


def engine_folding(graph: Graph, matvec: MatVec, options: MappingOptions, target: int,
                   pool: StagePool | None = None) -> Folding:
    """The folding the options ask for, or the automatic one for ``target`` cycles per
    frame by the options' objective (:meth:`FoldingSpace.choose`; its candidate stages
    taken from ``pool``)."""
    pool = StagePool() if pool is None else pool
    return (requested_folding(graph, matvec, options)
            or folding_space(graph, matvec, options, pool).choose(target, options.objective))
