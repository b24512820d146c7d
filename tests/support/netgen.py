"""Random integer networks for tests: chains of binary layers with random thresholds."""

import numpy as np

from codesign.ir import Graph, IntType, MatVec, MultiThreshold, TensorInfo


def random_chain(widths, in_type, seed, last_thresholds=False):
    """A chain of binary layers: first takes ``in_type``, hidden outputs bipolar."""
    rng = np.random.default_rng(seed)
    tensors = {"x": TensorInfo("x", (widths[0],), in_type)}
    nodes = []
    current, current_type = "x", in_type
    for index, (mw, mh) in enumerate(zip(widths, widths[1:], strict=False)):
        w = rng.choice([-1, 1], (mh, mw))
        popcount = current_type.kind == "bipolar"
        mv = MatVec(f"fc{index}", [current], [f"a{index}"], weight=w,
                    weight_type=IntType.bipolar(), acc="xnor_popcount" if popcount else "dot")
        lo, hi = mv.output_range(current_type)
        tensors[f"a{index}"] = TensorInfo(f"a{index}", (mh,), IntType.for_range(lo, hi))
        nodes.append(mv)
        current = f"a{index}"
        last = index == len(widths) - 2
        if not last or last_thresholds:
            th = rng.integers(lo, hi + 2, (mh, 1))
            nodes.append(MultiThreshold(f"th{index}", [current], [f"h{index}"], thresholds=th))
            tensors[f"h{index}"] = TensorInfo(f"h{index}", (mh,), IntType.bipolar())
            current, current_type = f"h{index}", IntType.bipolar()
    graph = Graph("chain", "x", current, tensors, nodes)
    graph.validate()
    return graph


def random_inputs(graph, frames, seed):
    t = graph.input_info.dtype
    rng = np.random.default_rng(seed + 1)
    if t.kind == "bipolar":
        return rng.choice([-1, 1], (frames, graph.input_info.size))
    return rng.integers(t.min, t.max + 1, (frames, graph.input_info.size))
