"""Streamlining: float accumulator-to-activation maps -> per-channel integer thresholds.

After this pass the graph is integer-only. Two rewrites, each exact:

1. ``MatVec -> FloatMap`` becomes ``MatVec -> MultiThreshold``, and so does a ``FloatMap``
   after any other integer accumulator whose range its input types fix (an ``Add`` of a
   residual join, a ``SumPool`` or ``GlobalSumPool`` of average pooling). A ``FloatMap`` (scales,
   batch-norm, ReLU, then a sign or a k-bit quantizer, as the source model computes them)
   is a per-channel staircase of the integer accumulator. Its thresholds are found by a
   vectorised binary search that *evaluates the map itself* (the model's own torch modules)
   on candidate integers, so the integer graph reproduces torch's float rounding decisions,
   tie cases included, and is then checked on both sides of every threshold. A decreasing
   channel (negative batch-norm scale) has its weight row negated (a' = -a), so every
   threshold is an ``a' >= T`` comparison; the negated weights get the type their values
   need (a non-narrow ``-2^(b-1)`` or an unsigned weight negates out of its type, a TTQ row's
   levels change sides), and the thresholds are searched over the accumulator range of that
   type, which the accumulator tensor's type is widened to hold (a shared layer's codebook
   gains the negated values if its index width has room). Only a ``MatVec`` has rows to
   negate: a decreasing channel after any other accumulator is refused with a named error.
   A constant channel gets thresholds at the bottom or above the top of the range. A map
   marked ``requantize`` (a source's fixed-point requantization, e.g. torch.ao's int8
   kernels) becomes the ``Requantize`` that reproduces every one of its thresholds
   (:mod:`codesign.passes.requantize`) when there is one.
2. ``MatVec`` over bipolar x bipolar switches to ``acc="xnor_popcount"``: the hardware
   accumulates P = popcount(XNOR) and the back-transform dot = 2P - K is folded into the
   thresholds (P >= ceil((T + K) / 2)), into the multiplier and bias of an ``Add`` that
   reads it (w * dot = 2w * P - w * K) or, for the graph output, into the output scale.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from codesign.errors import GraphError
from codesign.ir import (
    AccumulatorNode,
    Add,
    Codebook,
    FloatMap,
    Graph,
    IntType,
    MatVec,
    MultiThreshold,
    Requantize,
    TensorInfo,
)
from codesign.passes.requantize import fit_requantization


def _levels(out_type: IntType) -> tuple[int, int, int]:
    """(bias, scale, count) with output values bias + scale * k, k = 0..count."""
    if out_type.kind == "bipolar":
        return -1, 2, 1
    return out_type.min, 1, out_type.max - out_type.min


def _evaluate(fmap: FloatMap, values: np.ndarray) -> np.ndarray:
    """The map on [R, C] candidates (one column per channel) in one batch of >= 8 rows."""
    assert fmap.evaluate is not None
    rows = values.shape[0]
    batch = np.concatenate([values] + [values[-1:]] * max(0, 8 - rows)).astype(np.float64)
    return np.asarray(fmap.evaluate(batch))[:rows]


@dataclass(frozen=True)
class _Oriented:
    """The map as a function of the accumulator a' = direction * a the new MatVec computes.

    The map is only evaluated where the original accumulator a can be ([lo, hi]); beyond
    that it keeps its value at the nearer end. The search range (the new weights' range)
    may be wider than the negated original one, and a channel that is constant wherever
    its accumulator can be must stay constant there rather than show a slope nothing
    reaches.
    """

    fmap: FloatMap
    direction: np.ndarray
    lo: int
    hi: int

    def __call__(self, a_prime: np.ndarray) -> np.ndarray:
        return _evaluate(self.fmap, np.clip(self.direction * a_prime, self.lo, self.hi))


def _search(f: _Oriented, lo: int, hi: int, targets: np.ndarray) -> np.ndarray:
    """[C, L]: per channel and target, the smallest a' in [lo, hi + 1] with f(a') >= target.

    All channels and targets are bisected together, one evaluation of the map per step.
    """
    shape = (targets.size, f.direction.size)
    low = np.full(shape, lo, dtype=np.int64)
    high = np.full(shape, hi + 1, dtype=np.int64)
    while np.any(low < high):
        mid = (low + high) // 2
        ok = f(mid) >= targets[:, None]
        active = low < high
        high = np.where(active & ok, mid, high)
        low = np.where(active & ~ok, mid + 1, low)
    return low.T


def _verify(f: _Oriented, thresholds: np.ndarray, lo: int, hi: int, bias: int, scale: int
            ) -> None:
    """f must equal the staircase just below and at every threshold, and at both ends."""
    channels = f.direction.size
    probes = np.concatenate([np.full((1, channels), lo), np.full((1, channels), hi),
                             np.clip(thresholds.T - 1, lo, hi), np.clip(thresholds.T, lo, hi)])
    got = f(probes)
    for probe, value in zip(probes, got, strict=True):
        staircase = bias + scale * (probe[:, None] >= thresholds).sum(axis=1)
        bad = np.flatnonzero(value != staircase)
        if bad.size:
            c = int(bad[0])
            raise GraphError(f"{f.fmap.describe()}: channel {c} is not a monotone staircase of "
                             f"its accumulator (at {int(f.direction[c] * probe[c])}: map gives "
                             f"{value[c]}, thresholds give {staircase[c]}); it cannot be folded")


def _negated_weight_type(weight: np.ndarray, original: IntType) -> IntType:
    """The type of a weight matrix some of whose rows were negated.

    Negation maps bipolar and ternary weights, and a symmetric range, onto themselves, so
    the original type stays whenever it still holds every value; otherwise (an unsigned
    weight, a non-narrow ``-2^(b-1)``, TTQ's asymmetric levels) the smallest intN/uintN
    holding the actual values, as the frontend derives it.
    """
    if original.contains(weight):
        return original
    return IntType.for_range(int(min(weight.min(), 0)), int(max(weight.max(), 0)))


def _negated_codebook(weight: np.ndarray, matvec: MatVec) -> Codebook | None:
    """The codebook of a shared layer some of whose rows were negated.

    The table keeps its entries in their order and gains the negated values it lacks; a
    table closed under negation (or rows that use only such values) is unchanged. Values
    that no longer fit the index width are a named error.
    """
    codebook = matvec.codebook
    if codebook is None:
        return None
    missing = sorted({int(v) for v in np.unique(weight)} - set(codebook.values))
    if not missing:
        return codebook
    values = codebook.values + tuple(missing)
    if len(values) > 1 << codebook.index_bits:
        raise GraphError(f"{matvec.describe()}: rows negated for a decreasing activation (a "
                         f"negative batch-norm scale) need the values {missing}, which its "
                         f"{codebook.index_bits}-bit codebook of {len(codebook.values)} entries "
                         "has no room for; share the weights with a table closed under "
                         "negation, or keep that layer's batch-norm scales positive")
    return Codebook(values, codebook.index_bits)


def fold_float_map(graph: Graph, matvec: MatVec, fmap: FloatMap
                   ) -> tuple[MatVec, MultiThreshold | Requantize, TensorInfo]:
    """Thresholds reproducing ``fmap`` over the accumulator range of ``matvec`` (or, for a
    map marked ``requantize``, the exact ``Requantize`` of those thresholds when one exists).

    Returns the MatVec (decreasing channels' rows negated, its weight type re-derived), the
    epilogue node, and the accumulator tensor typed for the new MatVec's range.
    """
    (src,), (acc,) = matvec.inputs, matvec.outputs
    in_type = graph.tensor(src).dtype
    lo, hi = matvec.output_range(in_type)
    at_lo, at_hi = _evaluate(fmap, np.array([[lo], [hi]]).repeat(matvec.mh, axis=1))
    direction = np.where(at_lo > at_hi, -1, 1).astype(np.int64)
    f = _Oriented(fmap, direction, lo, hi)
    new_mv = copy.copy(matvec)
    acc_info = graph.tensor(acc)
    if np.any(direction < 0):
        new_mv.weight = matvec.weight * direction[:, None]
        new_mv.weight_type = _negated_weight_type(new_mv.weight, matvec.weight_type)
        new_mv.codebook = _negated_codebook(new_mv.weight, matvec)
        if new_mv.weight_type != matvec.weight_type:
            # the negated rows can leave the old range: search and store over the new one
            lo, hi = new_mv.output_range(in_type)
            if not acc_info.dtype.contains(np.array([lo, hi])):
                acc_info = TensorInfo(acc, acc_info.shape, IntType.for_range(lo, hi))
    bias, scale, count = _levels(fmap.out_type)
    thresholds = _search(f, lo, hi, bias + scale * np.arange(1, count + 1))
    _verify(f, thresholds, lo, hi, bias, scale)
    if fmap.requantize and scale == 1:
        fit = fit_requantization(thresholds, lo, hi, bias)
        if fit is not None:
            return new_mv, Requantize(f"{matvec.name}_rq", [acc], list(fmap.outputs),
                                      multiplier=fit.multiplier, shift=fit.shift,
                                      out_type=fmap.out_type, saturate=fit.saturate,
                                      offset=fit.offset), acc_info
    mt = MultiThreshold(f"{matvec.name}_th", [acc], list(fmap.outputs),
                        thresholds=thresholds.astype(np.int64), out_type=fmap.out_type,
                        out_scale=scale, out_bias=bias)
    return new_mv, mt, acc_info


def fold_accumulator_map(graph: Graph, producer: AccumulatorNode, fmap: FloatMap
                         ) -> MultiThreshold:
    """Thresholds reproducing ``fmap`` over the accumulator range of ``producer`` (any
    accumulator but a ``MatVec``, which :func:`fold_float_map` handles): every channel
    must be non-decreasing, as nothing upstream can be negated."""
    lo, hi = producer.accumulator_range(graph)
    channels = graph.tensor(fmap.inputs[0]).shape[-1]
    at_lo, at_hi = _evaluate(fmap, np.array([[lo], [hi]]).repeat(channels, axis=1))
    falling = np.flatnonzero(at_lo > at_hi)
    if falling.size:
        raise GraphError(f"{fmap.describe()}: channel {int(falling[0])} decreases as the "
                         f"accumulator of {producer.describe()} grows; only a MatVec's weight "
                         "rows can be negated to make a channel increasing, so it cannot be "
                         f"folded into thresholds after an {producer.op_type} (keep the scale "
                         "there positive, e.g. a batch norm with gamma >= 0)")
    f = _Oriented(fmap, np.ones(channels, dtype=np.int64), lo, hi)
    bias, scale, count = _levels(fmap.out_type)
    thresholds = _search(f, lo, hi, bias + scale * np.arange(1, count + 1))
    _verify(f, thresholds, lo, hi, bias, scale)
    return MultiThreshold(f"{producer.name}_th", list(fmap.inputs), list(fmap.outputs),
                          thresholds=thresholds.astype(np.int64), out_type=fmap.out_type,
                          out_scale=scale, out_bias=bias)


def fold_float_maps(graph: Graph) -> Graph:
    """Rewrite every ``accumulator -> FloatMap`` pair into ``accumulator -> MultiThreshold``."""
    nodes = list(graph.nodes)
    tensors = dict(graph.tensors)
    for node in graph.nodes:
        if not isinstance(node, FloatMap):
            continue
        producer = graph.producer(node.inputs[0])
        if not isinstance(producer, AccumulatorNode):
            what = "the graph input" if producer is None else producer.describe()
            raise GraphError(f"{node.describe()} follows {what}, not an integer accumulator; "
                             "streamlining folds float maps after a MatVec, Add, SumPool or "
                             "GlobalSumPool (lower convolutions first)")
        if len(graph.consumers(node.inputs[0])) != 1:
            raise GraphError(f"tensor {node.inputs[0]!r} has other consumers; cannot fold "
                             f"{node.describe()} into thresholds")
        if not isinstance(producer, MatVec):
            nodes[nodes.index(node)] = fold_accumulator_map(graph, producer, node)
            continue
        position = nodes.index(producer)
        new_mv, thresholds, acc_info = fold_float_map(graph, producer, node)
        nodes[position] = new_mv
        nodes[nodes.index(node)] = thresholds
        tensors[acc_info.name] = acc_info
    result = copy.copy(graph)
    result.nodes = nodes
    result.tensors = tensors
    return result


def to_xnor_popcount(graph: Graph, keep_dot: Collection[str] = ()) -> Graph:
    """Switch bipolar x bipolar MatVecs to popcount accumulation, folding 2P - K away.

    Layers named in ``keep_dot`` keep the true dot product (a user asked for an engine
    family that computes dot products, e.g. the MAC engine, for them).
    """
    result = copy.copy(graph)
    result.nodes = list(graph.nodes)
    result.tensors = dict(graph.tensors)
    for position, node in enumerate(result.nodes):
        if not (isinstance(node, MatVec) and node.acc == "dot" and node.post is None
                and node.name not in keep_dot
                and node.weight_type.kind == "bipolar"
                and result.tensor(node.inputs[0]).dtype.kind == "bipolar"):
            continue
        out = node.outputs[0]
        consumers = result.consumers(out)
        if not all(isinstance(c, (MultiThreshold, Add)) for c in consumers):
            continue
        if out == result.output and consumers:
            continue
        k = node.mw
        new_mv = copy.copy(node)
        new_mv.acc = "xnor_popcount"
        result.nodes[position] = new_mv
        info = result.tensors[out]
        result.tensors[out] = type(info)(info.name, info.shape, IntType.for_range(0, k))
        for consumer in consumers:
            result.nodes[result.nodes.index(consumer)] = _read_popcount(consumer, out, k)
        if out == result.output:
            result.output_offset = result.output_offset - result.output_scale * k
            result.output_scale = 2 * result.output_scale
    return result


def _read_popcount(consumer: MultiThreshold | Add, tensor: str, k: int
                   ) -> MultiThreshold | Add:
    """``consumer`` rewritten to read P = (dot + K) / 2 from ``tensor`` instead of dot."""
    if isinstance(consumer, MultiThreshold):
        new_mt = copy.copy(consumer)
        # dot = 2P - K >= T  <=>  P >= ceil((T + K) / 2); keep within [0, K + 1]
        new_mt.thresholds = np.clip(-((-(consumer.thresholds + k)) // 2), 0, k + 1)
        return new_mt
    new_add = copy.copy(consumer)
    weights = list(consumer.weights)
    for index, name in enumerate(consumer.inputs):
        if name == tensor:          # w * dot = 2w * P - w * K
            new_add.bias = new_add.bias - weights[index] * k
            weights[index] = 2 * weights[index]
    new_add.weights = (weights[0], weights[1])
    return new_add


def streamline(graph: Graph, keep_dot: Collection[str] = ()) -> Graph:
    """The integer graph: thresholds folded, popcount accumulation, validated.

    Needs a lowered graph (no ``Conv``); :func:`codesign.passes.run_passes` runs the whole
    pipeline.
    """
    result = to_xnor_popcount(fold_float_maps(graph), keep_dot)
    left = [n.describe() for n in result.nodes if not n.integer]
    if left:
        raise GraphError("streamlining left non-integer nodes: " + ", ".join(left))
    result.validate()
    return result
