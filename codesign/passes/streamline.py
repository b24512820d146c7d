"""Streamlining: float batch-norm + sign activations -> per-channel integer thresholds.

After this pass the graph is integer-only. Two rewrites, each exact:

1. ``MatVec -> [BatchNorm] -> Sign`` becomes ``MatVec -> MultiThreshold``. The threshold of
   channel c is the smallest integer accumulator value a for which torch's own float32
   batch-norm gives a non-negative result (sign(0) = +1). It is found by a vectorised
   binary search that *evaluates torch's batch_norm* on candidate integers, so the integer
   graph reproduces the torch model's float rounding decisions, tie cases included. A
   channel whose batch-norm scale is negative has its weight row negated (a' = -a) so
   every threshold is an ``a >= T`` comparison; a zero scale gives a constant channel
   (threshold at the bottom or above the top of the accumulator range).
2. ``MatVec`` over bipolar x bipolar switches to ``acc="xnor_popcount"``: the hardware
   accumulates P = popcount(XNOR) and the back-transform dot = 2P - K is folded into the
   thresholds (P >= ceil((T + K) / 2)) or, for the graph output, into the output scale.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from codesign.errors import GraphError
from codesign.ir import BatchNorm, Graph, IntType, MatVec, MultiThreshold, Node, Sign


def _bn_nonnegative(bn: BatchNorm | None, values: np.ndarray) -> np.ndarray:
    """[R, C] integer candidates -> [R, C] bool: sign(batchnorm(value)) == +1, as torch does."""
    x = torch.as_tensor(values, dtype=torch.float32)
    if bn is not None:
        with torch.no_grad():
            x = F.batch_norm(x, torch.as_tensor(bn.mean), torch.as_tensor(bn.var),
                             torch.as_tensor(bn.gamma), torch.as_tensor(bn.beta),
                             training=False, momentum=0.0, eps=bn.eps)
    return (x >= 0).numpy()


def _rows(values: np.ndarray) -> np.ndarray:
    """Evaluate candidates in a batch of 8 identical rows, the shape inference sees."""
    return np.repeat(values[None, :], 8, axis=0)


def _search_thresholds(bn: BatchNorm | None, direction: np.ndarray, lo: int, hi: int
                       ) -> np.ndarray:
    """Per channel: smallest a' in [lo, hi + 1] with f(direction * a') true (f(top) := true)."""
    channels = direction.size
    low = np.full(channels, lo, dtype=np.int64)
    high = np.full(channels, hi + 1, dtype=np.int64)
    while np.any(low < high):
        mid = (low + high) // 2
        ok = _bn_nonnegative(bn, _rows((direction * mid).astype(np.float64)))[0]
        active = low < high
        high = np.where(active & ok, mid, high)
        low = np.where(active & ~ok, mid + 1, low)
    return low


def _check_monotone(bn: BatchNorm | None, direction: np.ndarray, thresholds: np.ndarray,
                    lo: int, hi: int, where: str) -> None:
    """Confirm the found step is a step: f is false just below T and true at T."""
    below = np.clip(thresholds - 1, lo, hi)
    at = np.clip(thresholds, lo, hi)
    f_below = _bn_nonnegative(bn, _rows((direction * below).astype(np.float64)))[0]
    f_at = _bn_nonnegative(bn, _rows((direction * at).astype(np.float64)))[0]
    bad_below = (thresholds > lo) & f_below
    bad_at = (thresholds <= hi) & ~f_at
    if np.any(bad_below | bad_at):
        channel = int(np.flatnonzero(bad_below | bad_at)[0])
        raise GraphError(f"{where}: batch-norm + sign is not a monotone step in channel "
                         f"{channel}; it cannot be folded into one threshold")


def _fold_pattern(graph: Graph, matvec: MatVec, bn: BatchNorm | None, sign: Sign
                  ) -> tuple[MatVec, MultiThreshold]:
    (src,) = matvec.inputs
    lo, hi = matvec.output_range(graph.tensor(src).dtype)
    if lo != -hi:
        raise GraphError(f"{matvec.describe()}: accumulator range [{lo}, {hi}] is not "
                         "symmetric, so a negative batch-norm scale cannot be folded by "
                         "negating the weight row")
    channels = matvec.mh
    if bn is None:
        direction = np.ones(channels, dtype=np.int64)
    else:
        if bn.gamma.shape != (channels,):
            raise GraphError(f"{bn.describe()}: {bn.gamma.shape[0]} channels, "
                             f"{matvec.describe()} has {channels}")
        direction = np.where(bn.gamma.astype(np.float32) < 0, -1, 1).astype(np.int64)
    thresholds = _search_thresholds(bn, direction, lo, hi)
    _check_monotone(bn, direction, thresholds, lo, hi, bn.describe() if bn else sign.describe())
    new_mv = copy.copy(matvec)
    new_mv.weight = matvec.weight * direction[:, None]
    mt = MultiThreshold(f"{matvec.name}_th", [matvec.outputs[0]], [sign.outputs[0]],
                        thresholds=thresholds[:, None].astype(np.int64),
                        out_type=IntType.bipolar(), out_scale=2, out_bias=-1)
    return new_mv, mt


def fold_batchnorm_sign(graph: Graph) -> Graph:
    """Rewrite every MatVec -> [BatchNorm] -> Sign chain into MatVec -> MultiThreshold."""
    nodes: list[Node] = []
    tensors = dict(graph.tensors)
    index = 0
    while index < len(graph.nodes):
        node = graph.nodes[index]
        if isinstance(node, MatVec):
            following = graph.nodes[index + 1:index + 3]
            bn = following[0] if following and isinstance(following[0], BatchNorm) else None
            rest = following[1:] if bn else following[:1]
            sign = rest[0] if rest and isinstance(rest[0], Sign) else None
            if bn is not None and sign is None:
                raise GraphError(f"{bn.describe()} is not followed by a Sign activation; "
                                 "only batch-norm + sign can be folded into thresholds")
            if sign is not None:
                for single in ([node.outputs[0]] + ([bn.outputs[0]] if bn else [])):
                    if len(graph.consumers(single)) != 1 or single == graph.output:
                        raise GraphError(f"tensor {single!r} has other consumers; cannot fold "
                                         f"{sign.describe()} into thresholds")
                new_mv, mt = _fold_pattern(graph, node, bn, sign)
                nodes += [new_mv, mt]
                if bn is not None:
                    del tensors[bn.outputs[0]]
                index += 3 if bn else 2
                continue
        elif isinstance(node, (BatchNorm, Sign)):
            raise GraphError(f"{node.describe()} does not follow a MatVec; streamlining folds "
                             "only MatVec -> [BatchNorm] -> Sign")
        nodes.append(node)
        index += 1
    result = copy.copy(graph)
    result.nodes = nodes
    result.tensors = tensors
    return result


def to_xnor_popcount(graph: Graph) -> Graph:
    """Switch bipolar x bipolar MatVecs to popcount accumulation, folding 2P - K away."""
    result = copy.copy(graph)
    result.nodes = list(graph.nodes)
    result.tensors = dict(graph.tensors)
    for position, node in enumerate(result.nodes):
        if not (isinstance(node, MatVec) and node.acc == "dot"
                and node.weight_type.kind == "bipolar"
                and result.tensor(node.inputs[0]).dtype.kind == "bipolar"):
            continue
        out = node.outputs[0]
        consumers = result.consumers(out)
        if not all(isinstance(c, MultiThreshold) for c in consumers):
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
            assert isinstance(consumer, MultiThreshold)
            new_mt = copy.copy(consumer)
            # dot = 2P - K >= T  <=>  P >= ceil((T + K) / 2); keep within [0, K + 1]
            new_mt.thresholds = np.clip(-((-(consumer.thresholds + k)) // 2), 0, k + 1)
            result.nodes[result.nodes.index(consumer)] = new_mt
        if out == result.output:
            result.output_offset = result.output_offset - result.output_scale * k
            result.output_scale = 2 * result.output_scale
    return result


def streamline(graph: Graph) -> Graph:
    """The integer graph: thresholds folded, popcount accumulation, validated."""
    result = to_xnor_popcount(fold_batchnorm_sign(graph))
    if not result.is_integer():
        left = [n.describe() for n in result.nodes if not isinstance(n, (MatVec,
                                                                           MultiThreshold))]
        raise GraphError("streamlining left non-integer nodes: " + ", ".join(left))
    result.validate()
    return result
