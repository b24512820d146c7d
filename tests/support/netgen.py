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


def random_cnn(seed, *, image=(8, 8, 1), in_type=None, convs=((4, 3, 1, 1), (6, 3, 1, 0)),
               pool=(2, 2), weight="int3", act="bipolar", classes=3, pad_value=None):
    """Conv layers (Cout, K, stride, pad), a max-pool, flatten and a dense output layer.

    Each conv is SlidingWindow -> MatVec -> MultiThreshold; activations are ``act``; the
    pad value of every window is 0 for integer maps and +1 for bipolar ones unless given.
    """
    from codesign.ir import MaxPool, Reshape, SlidingWindow

    rng = np.random.default_rng(seed)
    in_type = in_type or IntType.uint(4)
    tensors = {"x": TensorInfo("x", image, in_type)}
    nodes = []
    current, ctype, shape = "x", in_type, image
    for index, (cout, k, stride, pad) in enumerate(convs):
        pv = pad_value if pad_value is not None else (1 if ctype.kind == "bipolar" else 0)
        window = SlidingWindow(f"swg{index}", [current], [f"w{index}"], kernel=(k, k),
                               stride=(stride, stride), padding=(pad,) * 4, pad_value=pv)
        oh, ow = window.output_hw(shape[0], shape[1])
        tensors[f"w{index}"] = TensorInfo(f"w{index}", (oh, ow, k * k * shape[2]), ctype)
        nodes.append(window)
        wtype = IntType.parse(weight)
        values = [-1, 1] if wtype.kind == "bipolar" else list(range(wtype.min, wtype.max + 1))
        w = rng.choice(values, (cout, k * k * shape[2]))
        popcount = wtype.kind == "bipolar" and ctype.kind == "bipolar"
        mv = MatVec(f"conv{index}", [f"w{index}"], [f"a{index}"], weight=w, weight_type=wtype,
                    acc="xnor_popcount" if popcount else "dot")
        lo, hi = mv.output_range(ctype)
        tensors[f"a{index}"] = TensorInfo(f"a{index}", (oh, ow, cout), IntType.for_range(lo, hi))
        nodes.append(mv)
        out_type = IntType.parse(act)
        if out_type.kind == "bipolar":
            th = rng.integers(lo, hi + 2, (cout, 1))
            nodes.append(MultiThreshold(f"th{index}", [f"a{index}"], [f"h{index}"],
                                        thresholds=th))
        else:
            count = out_type.max - out_type.min
            th = np.sort(rng.integers(lo // 2, hi // 2 + 2, (cout, count)), axis=1)
            nodes.append(MultiThreshold(f"th{index}", [f"a{index}"], [f"h{index}"],
                                        thresholds=th, out_type=out_type, out_scale=1,
                                        out_bias=out_type.min))
        tensors[f"h{index}"] = TensorInfo(f"h{index}", (oh, ow, cout), out_type)
        current, ctype, shape = f"h{index}", out_type, (oh, ow, cout)
        if index == 0 and pool is not None:
            k_p, s_p = pool
            ph, pw = (oh - k_p) // s_p + 1, (ow - k_p) // s_p + 1
            nodes.append(MaxPool("pool0", [current], ["p0"], kernel=k_p, stride=s_p))
            tensors["p0"] = TensorInfo("p0", (ph, pw, cout), ctype)
            current, shape = "p0", (ph, pw, cout)
    flat = int(np.prod(shape))
    nodes.append(Reshape("flatten", [current], ["flat"]))
    tensors["flat"] = TensorInfo("flat", (flat,), ctype)
    w = rng.choice([-1, 1], (classes, flat))
    mv = MatVec("fc", ["flat"], ["scores"], weight=w, weight_type=IntType.bipolar(),
                acc="xnor_popcount" if ctype.kind == "bipolar" else "dot")
    lo, hi = mv.output_range(ctype)
    tensors["scores"] = TensorInfo("scores", (classes,), IntType.for_range(lo, hi))
    nodes.append(mv)
    graph = Graph("cnn", "x", "scores", tensors, nodes)
    graph.validate()
    return graph


def folds(graph, pairs):
    """A folding option from (PE, SIMD) pairs given in the graph's MatVec order."""
    names = [node.name for node in graph.ordered_nodes() if isinstance(node, MatVec)]
    if len(names) != len(pairs):
        raise ValueError(f"{len(pairs)} foldings for {len(names)} layers {names}")
    return dict(zip(names, pairs, strict=True))
