"""Random integer networks for tests: chains of layers of every type and epilogue."""

import numpy as np

from codesign.ir import Graph, IntType, MatVec, MultiThreshold, Requantize, TensorInfo


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


def random_layer_stack(in_width, in_type, specs, seed, sparsity=0.0):
    """A chain of layers of any weight type, each ending in thresholds, requant or nothing.

    ``specs`` is a list of (MH, weight type name, post) with post one of
    ``("threshold", out type name)``, ``("requant", out type name)`` or ``None`` (last
    layer only). ``sparsity`` zeroes that fraction of the non-bipolar weights.
    """
    rng = np.random.default_rng(seed)
    tensors = {"x": TensorInfo("x", (in_width,), in_type)}
    nodes = []
    current, current_type, mw = "x", in_type, in_width
    for index, (mh, wname, post) in enumerate(specs):
        wtype = IntType.parse(wname)
        values = [-1, 1] if wtype.kind == "bipolar" else list(range(wtype.min, wtype.max + 1))
        w = rng.choice(values, (mh, mw))
        if wtype.kind != "bipolar" and sparsity:
            w = np.where(rng.random((mh, mw)) < sparsity, 0, w)
        popcount = wtype.kind == "bipolar" and current_type.kind == "bipolar"
        mv = MatVec(f"fc{index}", [current], [f"a{index}"], weight=w, weight_type=wtype,
                    acc="xnor_popcount" if popcount else "dot")
        lo, hi = mv.output_range(current_type)
        tensors[f"a{index}"] = TensorInfo(f"a{index}", (mh,), IntType.for_range(lo, hi))
        nodes.append(mv)
        current = f"a{index}"
        if post is not None:
            kind, out_name = post
            out_type = IntType.parse(out_name)
            if kind == "threshold":
                if out_type.kind == "bipolar":
                    th = rng.integers(lo, hi + 2, (mh, 1))
                    node = MultiThreshold(f"th{index}", [current], [f"h{index}"], thresholds=th)
                else:
                    count = out_type.max - out_type.min
                    th = np.sort(rng.integers(lo, hi + 2, (mh, count)), axis=1)
                    node = MultiThreshold(f"th{index}", [current], [f"h{index}"], thresholds=th,
                                          out_type=out_type, out_scale=1, out_bias=out_type.min)
            else:
                node = Requantize(f"rq{index}", [current], [f"h{index}"],
                                  multiplier=rng.integers(1, 200, mh),
                                  shift=int(rng.integers(0, 10)), out_type=out_type)
            nodes.append(node)
            tensors[f"h{index}"] = TensorInfo(f"h{index}", (mh,), out_type)
            current, current_type = f"h{index}", out_type
        mw = mh
    graph = Graph("stack", "x", current, tensors, nodes)
    graph.validate()
    return graph
