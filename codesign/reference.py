"""The integer reference: executes an integer IR graph bit-exactly with numpy int64.

This is the oracle every hardware result is checked against, so it is deliberately plain:
one small function per node type, no cleverness, explicit range checks on the way in.
"""

from __future__ import annotations

import numpy as np

from codesign.errors import GraphError, InputError
from codesign.ir import (
    Graph,
    MatVec,
    MaxPool,
    MultiThreshold,
    Node,
    Requantize,
    Reshape,
    SlidingWindow,
)


def check_inputs(graph: Graph, inputs: np.ndarray) -> np.ndarray:
    """Validate a batch of frames [N, *input_shape] against the graph input type."""
    info = graph.input_info
    arr = np.asarray(inputs)
    if arr.ndim == len(info.shape) and len(info.shape) > 1 and arr.shape == info.shape:
        arr = arr[None, ...]
    if len(info.shape) > 1 and arr.ndim == 2 and arr.shape[1] == info.size:
        arr = arr.reshape((arr.shape[0], *info.shape))   # flattened frames, row-major
    if arr.shape[1:] != info.shape:
        raise InputError(f"input {info.name!r} expects frames of shape {info.shape} "
                         f"(batch first: [N, {', '.join(map(str, info.shape))}]), "
                         f"got {tuple(np.asarray(inputs).shape)}")
    if not info.dtype.contains(arr):
        finite = arr[np.isfinite(arr)] if np.issubdtype(arr.dtype, np.floating) else arr
        seen = (f"{finite.min()}..{finite.max()}" if finite.size else "non-finite values")
        raise InputError(f"input {info.name!r} is {info.dtype}: accepted integers "
                         f"{info.dtype.min}..{info.dtype.max}"
                         f"{' (excluding 0)' if info.dtype.kind == 'bipolar' else ''}; "
                         f"got {seen}{'' if np.all(arr == np.round(arr)) else ' (non-integers)'}")
    return arr.astype(np.int64)


def _matvec(node: MatVec, x: np.ndarray) -> np.ndarray:
    dot = x @ node.weight.T.astype(np.int64)
    if node.acc == "xnor_popcount":
        return (dot + node.mw) // 2
    return dot


def _multithreshold(node: MultiThreshold, x: np.ndarray) -> np.ndarray:
    counts = (x[..., None] >= node.thresholds).sum(axis=-1)
    return counts.astype(np.int64) * node.out_scale + node.out_bias


def sliding_window(x: np.ndarray, node: SlidingWindow) -> np.ndarray:
    """[N, H, W, C] -> [N, OH, OW, KH*KW*C] with window order (ky, kx, c)."""
    top, left, bottom, right = node.padding
    (kh, kw), (sh, sw) = node.kernel, node.stride
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)),
                    constant_values=node.pad_value)
    n, _, _, c = x.shape
    oh, ow = node.output_hw(x.shape[1], x.shape[2])
    out = np.empty((n, oh, ow, kh, kw, c), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            out[:, :, :, ky, kx, :] = padded[:, ky:ky + sh * (oh - 1) + 1:sh,
                                             kx:kx + sw * (ow - 1) + 1:sw, :]
    return out.reshape(n, oh, ow, kh * kw * c)


def max_pool(x: np.ndarray, node: MaxPool) -> np.ndarray:
    """[N, H, W, C] -> [N, OH, OW, C], floor mode."""
    k, s = node.kernel, node.stride
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    out = np.full((x.shape[0], oh, ow, x.shape[3]), np.iinfo(np.int64).min, dtype=np.int64)
    for ky in range(k):
        for kx in range(k):
            out = np.maximum(out, x[:, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s])
    return out


def requantize(x: np.ndarray, multiplier: np.ndarray, shift: int, lo: int, hi: int
               ) -> np.ndarray:
    """saturate(round_half_even(x * M / 2^shift)) in exact int64 arithmetic."""
    product = x.astype(np.int64) * np.asarray(multiplier, dtype=np.int64)
    if shift:
        floor = product >> shift                    # arithmetic shift: floor division
        rem = product - (floor << shift)            # in [0, 2^shift)
        half = 1 << (shift - 1)
        product = floor + ((rem > half) | ((rem == half) & ((floor & 1) == 1)))
    return np.clip(product, lo, hi)


def _requantize(node: Requantize, x: np.ndarray) -> np.ndarray:
    mult = np.asarray(node.multiplier, dtype=np.int64).reshape(-1)
    return requantize(x, mult if mult.size > 1 else mult[0], node.shift,
                      node.out_type.min, node.out_type.max)


def execute_node(node: Node, x: np.ndarray, shape: tuple[int, ...] = ()) -> np.ndarray:
    """One node on a batch [N, *shape] of int64 values (``shape``: the output's, for Reshape)."""
    if isinstance(node, MatVec):
        return _matvec(node, x)
    if isinstance(node, MultiThreshold):
        return _multithreshold(node, x)
    if isinstance(node, Requantize):
        return _requantize(node, x)
    if isinstance(node, SlidingWindow):
        return sliding_window(x, node)
    if isinstance(node, MaxPool):
        return max_pool(x, node)
    if isinstance(node, Reshape):
        return x.reshape((x.shape[0], *shape))
    raise GraphError(f"the integer reference cannot execute {node.describe()}: "
                     "run codesign.passes.streamline first (it folds float scales, batch-norm "
                     "and activation quantizers into integer thresholds)")


def execute(graph: Graph, inputs: np.ndarray, *, keep_all: bool = False
            ) -> np.ndarray | dict[str, np.ndarray]:
    """Run every frame of ``inputs`` through the graph.

    Returns the output tensor [N, *output_shape], or with ``keep_all`` every tensor by
    name (used to name the first layer where hardware and reference differ).
    """
    frames = check_inputs(graph, inputs)
    values = {graph.input: frames.reshape((frames.shape[0], *graph.input_info.shape))}
    for node in graph.nodes:
        (src,), (dst,) = node.inputs, node.outputs
        info = graph.tensor(dst)
        out = execute_node(node, values[src], info.shape)
        if not info.dtype.contains(out):
            raise GraphError(f"{node.describe()} produced values outside {info.dtype} "
                             f"({out.min()}..{out.max()}): the graph's types are inconsistent")
        values[dst] = out
    if keep_all:
        return values
    return values[graph.output]


def predict(graph: Graph, inputs: np.ndarray) -> np.ndarray:
    """Class predictions (argmax, first index on ties as numpy and torch do)."""
    scores = execute(graph, inputs)
    assert isinstance(scores, np.ndarray)
    return np.argmax(scores, axis=1)
