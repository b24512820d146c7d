"""The integer reference: executes an integer IR graph bit-exactly with numpy int64.

This is the oracle every hardware result is checked against, so it is deliberately plain:
each node computes its own semantics (:meth:`codesign.ir.Node.execute`); this module walks
the graph in topological order, checks inputs on the way in and every produced value
against its tensor's type on the way out.
"""

from __future__ import annotations

import numpy as np

from codesign.errors import GraphError, InputError
from codesign.ir import Graph, requantize

__all__ = ["check_inputs", "execute", "execute_all", "predict", "requantize"]


def check_inputs(graph: Graph, inputs: np.ndarray) -> np.ndarray:
    """Validate a batch of frames [N, *input_shape] against the graph input type.

    Accepts flattened frames [N, size] for an image input. Returns int64 frames of the
    input's shape; anything else (wrong shape, non-numbers, values outside the input type,
    no frames at all) is an :class:`InputError` naming the input and what it accepts.
    """
    info = graph.input_info
    expected = f"[N, {', '.join(map(str, info.shape))}]"
    try:
        arr = np.asarray(inputs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"input {info.name!r}: cannot read the frames as an array ({exc}); "
                         f"expected integers of shape {expected}") from None
    if arr.dtype.kind not in "biuf":
        raise InputError(f"input {info.name!r} is {info.dtype}: expected an integer array of "
                         f"shape {expected}, got an array of {arr.dtype} values")
    if arr.ndim == len(info.shape) and len(info.shape) > 1 and arr.shape == info.shape:
        arr = arr[None, ...]
    if len(info.shape) > 1 and arr.ndim == 2 and arr.shape[1] == info.size:
        arr = arr.reshape((arr.shape[0], *info.shape))   # flattened frames, row-major
    if arr.shape[1:] != info.shape:
        raise InputError(f"input {info.name!r} expects frames of shape {info.shape} "
                         f"(batch first: {expected}), got {tuple(np.asarray(inputs).shape)}")
    if arr.shape[0] == 0:
        raise InputError(f"input {info.name!r}: no frames given; pass at least one frame of "
                         f"shape {info.shape}")
    if not info.dtype.contains(arr):
        finite = arr[np.isfinite(arr)] if np.issubdtype(arr.dtype, np.floating) else arr
        seen = (f"{finite.min()}..{finite.max()}" if finite.size else "non-finite values")
        raise InputError(f"input {info.name!r} is {info.dtype}: accepted integers "
                         f"{info.dtype.min}..{info.dtype.max}"
                         f"{' (excluding 0)' if info.dtype.kind == 'bipolar' else ''}; "
                         f"got {seen}{'' if np.all(arr == np.round(arr)) else ' (non-integers)'}")
    return arr.astype(np.int64)


def execute_all(graph: Graph, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the graph for every frame of ``inputs``, by tensor name."""
    frames = check_inputs(graph, inputs)
    values = {graph.input: frames}
    for node in graph.ordered_nodes():
        out = node.execute([values[name] for name in node.inputs], graph)
        info = graph.tensor(node.output)
        if not info.dtype.contains(out):
            raise GraphError(f"{node.describe()} produced values outside {info.dtype} "
                             f"({out.min()}..{out.max()}): the graph's types are inconsistent")
        values[node.output] = out
    return values


def execute(graph: Graph, inputs: np.ndarray, *, keep_all: bool = False
            ) -> np.ndarray | dict[str, np.ndarray]:
    """Run every frame of ``inputs`` through the graph.

    Returns the output tensor [N, *output_shape], or with ``keep_all`` every tensor by
    name (see :func:`execute_all`; used to name the first stage where hardware and reference
    differ).
    """
    values = execute_all(graph, inputs)
    return values if keep_all else values[graph.output]


def predict(graph: Graph, inputs: np.ndarray) -> np.ndarray:
    """Class predictions (argmax, first index on ties as numpy and torch do)."""
    return np.argmax(execute_all(graph, inputs)[graph.output], axis=1)
