"""Lowering passes: rewrite what a frontend translated into what the hardware runs.

Each pass is exact (the graph computes the same integers before and after) and named in the
pipeline of :mod:`codesign.passes`:

- :func:`lower_convolutions`: ``Conv`` -> ``SlidingWindow`` (im2col on the stream, window
  order (ky, kx, c)) feeding a ``MatVec`` of [Cout, KH*KW*Cin] (a block matrix when grouped);
- :func:`absorb_flatten`: a ``Flatten`` in torch's (C, H, W) order that feeds weight layers
  becomes a free ``Reshape`` of the (H, W, C) stream, its permutation moved into the
  consumers' weight columns, so nothing moves in hardware;
- :func:`fuse_epilogues`: an accumulator (``MatVec``, ``Add``, ``SumPool``,
  ``GlobalSumPool``) that feeds only thresholds or a requantization takes that node as its
  epilogue (one hardware stage computes both).
"""

from __future__ import annotations

import copy

from codesign.errors import GraphError
from codesign.ir import (
    AccumulatorNode,
    Conv,
    Flatten,
    Graph,
    MatVec,
    MultiThreshold,
    Node,
    Requantize,
    Reshape,
    SlidingWindow,
    TensorInfo,
)


def _rebuilt(graph: Graph, nodes: list[Node], tensors: dict[str, TensorInfo]) -> Graph:
    result = copy.copy(graph)
    result.nodes = nodes
    result.tensors = tensors
    return result


def lower_convolutions(graph: Graph) -> Graph:
    """Every ``Conv`` -> ``SlidingWindow`` + ``MatVec`` (the ``MatVec`` keeps the conv's name)."""
    nodes: list[Node] = []
    tensors = dict(graph.tensors)
    for node in graph.nodes:
        if not isinstance(node, Conv):
            nodes.append(node)
            continue
        x = graph.tensor(node.inputs[0])
        window = SlidingWindow(f"{node.name}_window", list(node.inputs),
                               [f"{node.name}_windows"], kernel=node.kernel,
                               stride=node.stride, padding=node.padding,
                               pad_value=node.pad_value)
        kh, kw = node.kernel
        oh, ow = window.output_hw(x.shape[0], x.shape[1])
        tensors[window.output] = TensorInfo(window.output, (oh, ow, kh * kw * x.shape[2]),
                                            x.dtype)
        nodes += [window, MatVec(node.name, [window.output], list(node.outputs),
                                 weight=node.matrix(), weight_type=node.weight_type,
                                 codebook=node.codebook)]
    return _rebuilt(graph, nodes, tensors)


def absorb_flatten(graph: Graph) -> Graph:
    """(C, H, W)-order ``Flatten`` feeding only ``MatVec``s -> ``Reshape`` + permuted columns."""
    nodes = list(graph.nodes)
    for position, node in enumerate(graph.nodes):
        if not isinstance(node, Flatten):
            continue
        consumers = graph.consumers(node.output)
        if not consumers or not all(isinstance(c, MatVec) for c in consumers):
            continue
        shape = graph.tensor(node.inputs[0]).shape
        order = Flatten.column_order(shape)             # CHW position -> HWC element
        columns = order.argsort()                       # HWC element -> CHW position
        nodes[position] = Reshape(node.name, list(node.inputs), list(node.outputs))
        for consumer in consumers:
            moved = copy.copy(consumer)
            assert isinstance(moved, MatVec)
            moved.weight = consumer.weight[:, columns]
            nodes[nodes.index(consumer)] = moved
    return _rebuilt(graph, nodes, dict(graph.tensors))


def fuse_epilogues(graph: Graph) -> Graph:
    """Accumulator -> (``MultiThreshold`` | ``Requantize``) pairs become one node."""
    nodes = list(graph.nodes)
    tensors = dict(graph.tensors)
    for node in graph.nodes:
        if not isinstance(node, (MultiThreshold, Requantize)):
            continue
        producer = graph.producer(node.inputs[0])
        if not isinstance(producer, AccumulatorNode) or producer.post is not None:
            raise GraphError(f"{node.describe()} does not follow an integer accumulator; "
                             "thresholds and requantization must sit right after a "
                             "matrix-vector product, an Add or a sum pool")
        if len(graph.consumers(node.inputs[0])) != 1 or node.inputs[0] == graph.output:
            raise GraphError(f"{node.describe()}: the accumulator {node.inputs[0]!r} has other "
                             "consumers, so it cannot be fused into its engine")
        fused = copy.copy(producer)
        fused.post = node
        fused.outputs = list(node.outputs)
        nodes[nodes.index(producer)] = fused
        nodes.remove(node)
        del tensors[node.inputs[0]]
    return _rebuilt(graph, nodes, tensors)
