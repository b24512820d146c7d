"""The dataflow chain's mapping: each node of an integer chain becomes a stage.

A ``MatVec`` (with its fused epilogue) becomes an engine of the PE family its types call for
(or the one the options ask for), folded as asked or automatically for the cycle target; a
``SlidingWindow`` becomes a window generator streaming SIMD channels per beat into the
convolution's engine (so that engine's SIMD must divide the input channels); a ``MaxPool`` a
pooling stage taking what its producer emits; a ``Reshape`` costs nothing (the stream order
is already row-major HWC).
"""

from __future__ import annotations

import math

import numpy as np

from codesign.arch.dataflow.folding import auto_folding, check_folding, divisors
from codesign.arch.families import choose_family
from codesign.arch.options import Folding, MappingOptions
from codesign.arch.stage import Stage
from codesign.arch.stages import DenseEngine, EngineStage, PoolStage, SparseEngine, WindowStage
from codesign.errors import FoldingError, GraphError
from codesign.ir import Graph, MatVec, MaxPool, MultiThreshold, Requantize, Reshape, SlidingWindow
from codesign.passes.lower import fuse_epilogues

LANES_FOR_DEFAULT_TARGET = 64
"""Without a target, the largest layer runs on this many lanes and the rest keep pace."""


def vectors(graph: Graph, matvec: MatVec) -> int:
    """Vectors per frame of a MatVec: one per pixel of a convolution."""
    return int(math.prod(graph.tensor(matvec.inputs[0]).shape[:-1]))


def chain_nodes(graph: Graph) -> list:
    """The nodes in stream order; refuses anything but a chain."""
    nodes = graph.ordered_nodes()
    previous = graph.input
    for node in nodes:
        if node.inputs != [previous]:
            raise GraphError(f"{node.describe()} does not consume the previous stage's output "
                             f"{previous!r}; the dataflow chain organisation maps chains only")
        previous = node.output
    if previous != graph.output:
        raise GraphError(f"the last node produces {previous!r}, not the graph output "
                         f"{graph.output!r}")
    return nodes


def check_layer_names(options: MappingOptions, layers: list[str]) -> None:
    """Every layer an option names must exist (as ``folding=`` always required)."""
    for option, names in options.named_layers().items():
        unknown = sorted(set(names) - set(layers))
        if unknown:
            raise FoldingError(f"{option} names unknown layer(s) {unknown}; layers: "
                               + ", ".join(layers))


def map_chain(graph: Graph, options: MappingOptions) -> list[Stage]:
    """The stages of an integer chain graph (see the module docstring)."""
    if not graph.is_integer():
        raise GraphError("mapping needs an integer graph: run codesign.passes.run_passes")
    if any(isinstance(node, (MultiThreshold, Requantize)) for node in graph.nodes):
        graph = fuse_epilogues(graph)
    graph.validate()
    nodes = chain_nodes(graph)
    matvecs = [node for node in nodes if isinstance(node, MatVec)]
    check_layer_names(options, [mv.name for mv in matvecs])
    hardware = [node.name for node in nodes if isinstance(node, (MatVec, SlidingWindow, MaxPool))]
    unknown = sorted(set(dict(options.memory_styles)) - set(hardware))
    if unknown:
        raise FoldingError(f"memory_styles names unknown stage(s) {unknown}; stages: "
                           + ", ".join(hardware))
    if options.target_fps is not None or options.budgeted:
        from codesign.arch.dataflow.cost import budgeted_stages

        return budgeted_stages(graph, nodes, options, matvecs,
                               lambda target: _map_nodes(graph, nodes, options, target))
    target = options.target_cycles
    if target is None:
        target = max(1, max((vectors(graph, mv) * mv.mh * mv.mw for mv in matvecs), default=1)
                     // LANES_FOR_DEFAULT_TARGET)
    return _map_nodes(graph, nodes, options, target)


def candidate_targets(graph: Graph, nodes: list, options: MappingOptions) -> list[int]:
    """Every cycles-per-frame value an automatically folded engine can take, ascending:
    vectors * (MH/PE) * (MW/SIMD) over the foldings the engine accepts."""
    values = {1}
    window_channels = None
    for node in nodes:
        if isinstance(node, SlidingWindow):
            window_channels = graph.tensor(node.inputs[0]).shape[-1]
        elif isinstance(node, MatVec):
            if options.folding_for(node.name) is None:
                channels = window_channels if window_channels is not None else node.mw
                per_frame = vectors(graph, node)
                values.update(per_frame * (node.mh // pe) * (node.mw // simd)
                              for pe in divisors(node.mh) for simd in divisors(channels))
            window_channels = None
    return sorted(values)


def _map_nodes(graph: Graph, nodes: list, options: MappingOptions, target: int) -> list[Stage]:
    """The stages, automatic foldings aiming at ``target`` cycles per frame."""
    stages: list[Stage] = []
    pending_window: SlidingWindow | None = None
    for node in nodes:
        source = graph.tensor(node.inputs[0])
        if isinstance(node, Reshape):
            continue
        if isinstance(node, SlidingWindow):
            pending_window = node
            continue
        if pending_window is not None and not isinstance(node, MatVec):
            raise GraphError(f"{pending_window.describe()} must feed a MatVec")
        if isinstance(node, MaxPool):
            channels = source.shape[-1]
            producer_elems = stages[-1].out_elems if stages else channels
            stages.append(PoolStage(node.name, node, source.dtype, source.shape,
                                    math.gcd(producer_elems, channels),
                                    options.memory_style_for(node.name)))
            continue
        if not isinstance(node, MatVec):
            raise GraphError(f"no hardware stage for {node.describe()} in the dataflow chain "
                             "organisation")
        window_input = (graph.tensor(pending_window.inputs[0]) if pending_window is not None
                        else None)
        engine = _engine(graph, node, options, target)
        if pending_window is not None:
            assert window_input is not None
            stages.append(WindowStage(pending_window.name, pending_window, window_input.dtype,
                                      window_input.shape, engine.simd,
                                      options.memory_style_for(pending_window.name)))
            pending_window = None
        stages.append(engine)
    if pending_window is not None:
        raise GraphError(f"{pending_window.describe()} must feed a MatVec")
    if not stages:
        raise GraphError(f"graph {graph.name!r} has no node that needs hardware")
    for stage in stages:
        stage.hdl_config        # noqa: B018 - a stage the generators cannot build fails now
    return stages


def stream_channels(graph: Graph, matvec: MatVec) -> int:
    """Elements of the MatVec's input that arrive together: a sliding window's input
    channels (the engine's SIMD must divide them), else its whole input vector."""
    producer = graph.producer(matvec.inputs[0])
    if isinstance(producer, SlidingWindow):
        return int(graph.tensor(producer.inputs[0]).shape[-1])
    return matvec.mw


def engine_folding(graph: Graph, matvec: MatVec, options: MappingOptions,
                   target: int) -> Folding:
    """The folding the options ask for (checked), or the automatic one for ``target``
    cycles per frame."""
    per_frame = vectors(graph, matvec)
    channels = stream_channels(graph, matvec)
    fold = options.folding_for(matvec.name)
    if fold is None:
        return auto_folding(matvec.mh, matvec.mw, max(1, target // per_frame),
                            simd_options=divisors(channels))
    check_folding(matvec.name, matvec.mh, matvec.mw, fold)
    if channels % fold.simd:
        raise FoldingError(f"layer {matvec.name!r}: SIMD={fold.simd} must divide the "
                           f"{channels} input channels of its sliding window (valid SIMD: "
                           f"{', '.join(map(str, divisors(channels)))})")
    return fold


def _engine(graph: Graph, matvec: MatVec, options: MappingOptions, target: int
            ) -> EngineStage:
    input_type = graph.tensor(matvec.inputs[0]).dtype
    family = choose_family(matvec.name, matvec.weight_type, input_type,
                           options.family_for(matvec.name), matvec.acc, matvec.codebook)
    per_frame = vectors(graph, matvec)
    fold = engine_folding(graph, matvec, options, target)
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
    output_type = graph.tensor(matvec.output).dtype
    kind = SparseEngine if go_sparse else DenseEngine
    return kind(matvec.name, matvec, input_type, output_type, family, Folding(fold.pe, fold.simd),
                vectors=per_frame, memory_style=options.memory_style_for(matvec.name))
