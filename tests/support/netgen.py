"""Random networks for tests: integer IR chains of layers of every type and epilogue, and
quant_models torch networks of every layer type with random weights and statistics (with
the check that a lowered one agrees with torch)."""

from dataclasses import dataclass, replace

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

from codesign.ir import (
    Codebook,
    Graph,
    IntType,
    MatVec,
    MaxPool,
    MultiThreshold,
    Requantize,
    Reshape,
    SlidingWindow,
    TensorInfo,
)
from codesign.reference import execute
from quant_models.conv import BinaryConv2d, QuantConv2d, TernaryConv2d
from quant_models.fixed_point import (
    QuantAct,
    QuantLinear,
    Requant,
    link_input_scales,
    requant_params,
)
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.ternary import TernaryLinear


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


def share_weights(graph, index_bits, seed, value_type="int8", declared=False):
    """Every MatVec's weights redrawn from a random codebook of ``2^index_bits`` entries
    (zero first, then distinct ``value_type`` values), keeping the zeros where they are;
    ``index_bits`` is one width for all layers or one per layer. The weights are typed by
    the drawn table, or by ``value_type`` itself when ``declared`` (as the frontend types
    a layer that declares that range)."""
    rng = np.random.default_rng(seed)
    t = IntType.parse(value_type)
    nonzero = np.array([v for v in range(t.min, t.max + 1) if v != 0])
    for position, node in enumerate(graph.compute_nodes()):
        bits = index_bits if isinstance(index_bits, int) else index_bits[position]
        size = int(rng.integers(2, (1 << bits) + 1))
        table = np.concatenate([[0], rng.choice(nonzero, min(size - 1, nonzero.size),
                                                replace=False)])
        drawn = table[rng.integers(1, table.size, node.weight.shape)]
        node.weight = np.where(node.weight == 0, 0, drawn)
        node.weight_type = (t if declared else
                            IntType.for_range(min(int(table.min()), 0), int(table.max())))
        node.codebook = Codebook(tuple(int(v) for v in table), bits)
        if node.post is None:       # the accumulator's type follows the new weight type
            out = graph.tensor(node.output)
            lo, hi = node.output_range(graph.tensor(node.inputs[0]).dtype)
            graph.tensors[node.output] = TensorInfo(out.name, out.shape,
                                                    IntType.for_range(lo, hi))
    graph.validate()
    return graph


def random_cnn(seed, *, image=(8, 8, 1), in_type=None, convs=((4, 3, 1, 1), (6, 3, 1, 0)),
               pool=(2, 2), weight="int3", act="bipolar", classes=3, pad_value=None):
    """Conv layers (Cout, K, stride, pad), a max-pool, flatten and a dense output layer.

    Each conv is SlidingWindow -> MatVec -> MultiThreshold; activations are ``act``; the
    pad value of every window is 0 for integer maps and +1 for bipolar ones unless given.
    """
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


# -- random quant_models networks: every layer type, random weights and statistics ----------

@dataclass(frozen=True)
class LayerSpec:
    """One compute layer of a random torch network and what follows its accumulator.

    ``weights``: ``binary``, ``twn``, ``ttq``, or ``intN``/``uintN`` (QuantLinear/QuantConv2d
    with that weight type); ``sparsity`` masks that fraction of the weights, ``empty_row``
    all of the first output's. ``kernel`` 0 is a linear layer. ``act`` is ``sign``, ``quant``
    (QuantAct of ``act_type``), ``requant`` (Requant to ``act_type``, after a binary layer
    only) or ``None`` (the layer's scores are the network output). ``pool`` > 0 max-pools
    the activation with that kernel and ``pool_stride``.
    """

    weights: str
    width: int
    narrow: bool = True
    per_channel: bool = True
    ratio_frac_bits: int = 4
    sparsity: float = 0.0
    empty_row: bool = False
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    groups: int = 1
    pad_value: int = 0
    flatten: bool = False
    batch_norm: bool = True
    relu: bool = False
    act: str | None = "sign"
    act_type: str = "uint2"
    act_narrow: bool = False
    pool: int = 0
    pool_stride: int = 1


@dataclass(frozen=True)
class NetSpec:
    """A random network: ``IntegerInput(input_type)`` on ``image`` (C, H, W) or ``features``
    inputs, then ``layers``, then an optional ``LogitScale``."""

    input_type: str
    layers: tuple[LayerSpec, ...]
    image: tuple[int, int, int] | None = None
    features: int = 0
    logit_scale: bool = False

    def ir_input_shape(self) -> tuple[int, ...]:
        if self.image is None:
            return (self.features,)
        channels, height, width = self.image
        return (height, width, channels)


def _act_type(spec: LayerSpec) -> IntType:
    return IntType.bipolar() if spec.act == "sign" else IntType.parse(spec.act_type)


def _pad_values(t: IntType) -> list[int]:
    return [1, -1] if t.kind == "bipolar" else sorted({0, t.min, t.max})


def _int_types(draw, min_bits: int, max_bits: int, label: str) -> IntType:
    kind = draw(st.sampled_from(["int", "uint"]), label=f"{label} kind")
    bits = draw(st.integers(max(min_bits, 2 if kind == "int" else 1), max_bits), label=label)
    return IntType(kind, bits)


def _draw_layer(draw, in_type: IntType, in_channels: int, hw: tuple[int, int] | None,
                last: bool, layer_types: tuple[str, ...]) -> LayerSpec:
    """A valid layer for this input; ``hw`` is the map size of a convolution, else None."""
    kind = draw(st.sampled_from(layer_types), label="weights")
    fields: dict = {"weights": kind}
    if kind == "quant":
        fields["weights"] = str(_int_types(draw, 2, 8, "weight bits"))
        fields["narrow"] = draw(st.booleans(), label="narrow weights")
        fields["per_channel"] = draw(st.booleans(), label="per-channel scale")
    if kind == "ttq":
        fields["ratio_frac_bits"] = draw(st.integers(0, 4), label="ratio_frac_bits")
    if kind != "binary":
        fields["sparsity"] = draw(st.sampled_from([0.0, 0.0, 0.5]), label="sparsity")
        fields["empty_row"] = draw(st.integers(0, 4), label="empty row") == 0
    if hw is not None:
        k = draw(st.integers(1, 3), label="kernel")
        pad = draw(st.integers(0, k - 1), label="padding")
        if min(hw) + 2 * pad < k:
            pad = k - 1
        groups = 1
        if kind != "binary":
            groups = draw(st.sampled_from([g for g in range(1, in_channels + 1)
                                           if in_channels % g == 0]), label="groups")
        width = groups * draw(st.integers(1, max(1, 6 // groups)), label="filters per group")
        fields.update(kernel=k, padding=pad, groups=groups, width=width,
                      stride=draw(st.integers(1, 2), label="stride"),
                      pad_value=draw(st.sampled_from(_pad_values(in_type)), label="pad value"))
    else:
        fields["width"] = draw(st.integers(1, 12), label="width")
    if last and draw(st.integers(0, 4), label="scores") > 0:
        # integer scores: a per-tensor scale, so their argmax is the prediction
        fields.update(act=None, batch_norm=False, per_channel=False)
        return LayerSpec(**fields)
    if kind == "binary" and draw(st.integers(0, 3), label="requant") == 0:
        act_type = _int_types(draw, 1, 8, "requant bits")
        fields.update(act="requant", batch_norm=False, act_type=str(act_type),
                      act_narrow=act_type.kind == "int" and act_type.bits > 1
                      and draw(st.booleans(), label="narrow requant"))
        return LayerSpec(**fields)
    fields["batch_norm"] = draw(st.integers(0, 4), label="batch norm") > 0
    fields["relu"] = draw(st.integers(0, 4), label="relu") == 0
    if draw(st.booleans(), label="sign"):
        fields["act"] = "sign"
    else:
        act_type = _int_types(draw, 1, 8, "act bits")
        fields.update(act="quant", act_type=str(act_type),
                      act_narrow=act_type.kind == "int" and draw(st.booleans(),
                                                                 label="narrow act"))
    return LayerSpec(**fields)


def quant_net_specs(*, images: bool | None = None, max_convs: int = 3, max_dense: int = 3,
                    layer_types: tuple[str, ...] = ("binary", "twn", "ttq", "quant")):
    """Hypothesis strategy for a valid :class:`NetSpec` (image or vector input, any mix of
    layer types, each layer's pad value, groups and pooling fitting its input)."""
    @st.composite
    def specs(draw) -> NetSpec:
        in_type = _int_types(draw, 1, 8, "input bits")
        image = draw(st.booleans(), label="image") if images is None else images
        layers: list[LayerSpec] = []
        current = in_type
        if image:
            shape = (draw(st.integers(1, 3), label="channels"),
                     draw(st.integers(3, 8), label="height"),
                     draw(st.integers(3, 8), label="width"))
            channels, h, w = shape
            for _ in range(draw(st.integers(1, max_convs), label="convolutions")):
                layer = _draw_layer(draw, current, channels, (h, w), False, layer_types)
                h = (h + 2 * layer.padding - layer.kernel) // layer.stride + 1
                w = (w + 2 * layer.padding - layer.kernel) // layer.stride + 1
                if min(h, w) >= 2 and draw(st.integers(0, 2), label="pool") == 0:
                    k = draw(st.integers(2, min(3, h, w)), label="pool kernel")
                    stride = draw(st.sampled_from([1, k]), label="pool stride")
                    layer = replace(layer, pool=k, pool_stride=stride)
                    h, w = (h - k) // stride + 1, (w - k) // stride + 1
                layers.append(layer)
                channels, current = layer.width, _act_type(layer)
            features = channels * h * w
        else:
            shape, features = None, draw(st.integers(1, 16), label="features")
        in_features = features
        dense = draw(st.integers(1, max_dense), label="dense layers")
        for index in range(dense):
            layer = _draw_layer(draw, current, features, None, index == dense - 1,
                                layer_types)
            if image and index == 0:
                layer = replace(layer, flatten=True)
            layers.append(layer)
            features, current = layer.width, _act_type(layer) if layer.act else current
        return NetSpec(str(in_type), tuple(layers), shape, 0 if image else in_features,
                       logit_scale=layers[-1].act is None and draw(st.booleans(),
                                                                   label="logit scale"))

    return specs()


class RandomNet(nn.Module):
    """A random quant_models network: ``layers``, and ``input_shape`` (C, H, W) for images."""

    def __init__(self, modules: list[nn.Module], input_shape: tuple[int, int, int] | None):
        super().__init__()
        self.layers = nn.Sequential(*modules)
        if input_shape is not None:
            self.input_shape = input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def random_model_inputs(spec: NetSpec, frames: int, seed: int) -> np.ndarray:
    """Integer frames in the IR's layout [N, H, W, C] or [N, F]: the first all at the input
    type's minimum, the second all at its maximum, the rest uniform."""
    t = IntType.parse(spec.input_type)
    x = np.random.default_rng(seed + 1).integers(t.min, t.max + 1,
                                                 (frames, *spec.ir_input_shape()))
    x[:1], x[1:2] = t.min, t.max
    return x


def torch_layout(x: np.ndarray) -> torch.Tensor:
    """IR frames (HWC images) -> a float32 torch batch (CHW images)."""
    return torch.as_tensor(x.transpose(0, 3, 1, 2) if x.ndim == 4 else x, dtype=torch.float32)


def _compute_layer(layer: LayerSpec, in_channels: int, rng, gen) -> nn.Module:
    geometry = dict(kernel_size=layer.kernel, stride=layer.stride, padding=layer.padding,
                    pad_value=layer.pad_value)
    if layer.weights == "binary":
        module = (BinaryConv2d(in_channels, layer.width, **geometry) if layer.kernel
                  else BinaryLinear(in_channels, layer.width))
    elif layer.weights in ("twn", "ttq"):
        ternary = dict(method=layer.weights, ratio_frac_bits=layer.ratio_frac_bits)
        module = (TernaryConv2d(in_channels, layer.width, groups=layer.groups, **geometry,
                                **ternary) if layer.kernel
                  else TernaryLinear(in_channels, layer.width, **ternary))
    else:
        t = IntType.parse(layer.weights)
        quant = dict(weight_bits=t.bits, weight_signed=t.signed,
                     narrow_range=t.signed and layer.narrow, per_channel=layer.per_channel)
        module = (QuantConv2d(in_channels, layer.width, groups=layer.groups, **geometry,
                              **quant) if layer.kernel
                  else QuantLinear(in_channels, layer.width, **quant))
    with torch.no_grad():
        module.weight.copy_(torch.randn(module.weight.shape, generator=gen))
        if layer.weights != "binary":
            keep = torch.rand(module.weight.shape, generator=gen) >= layer.sparsity
            if layer.empty_row:
                keep[0] = False
            module.weight_mask.copy_(keep.float())
        if layer.weights == "ttq":   # R = round(Wn / Wp * 2^f) anywhere in 1..2^(f+2)
            module.wp.fill_(float(np.exp(rng.normal(0, 0.3))))
            module.wn.copy_(module.wp * float(np.exp(rng.uniform(-3, 3))))
    return module


def _channels_of(h: torch.Tensor) -> torch.Tensor:
    """[N, C, ...] -> [C, N * ...] in float64."""
    return h.detach().transpose(0, 1).reshape(h.shape[1], -1).double()


def _calibrated_batch_norm(h: torch.Tensor, rng) -> nn.Module:
    """Statistics near the batch's own, but perturbed: negative and zero gammas, and
    zero or tiny variances, each on some channels."""
    c = h.shape[1]
    values = _channels_of(h)
    mean, std = values.mean(1).numpy(), values.std(1).numpy()
    var = np.where(std > 0, std**2 * np.exp(rng.normal(0, 0.5, c)), np.exp(rng.normal(0, 1, c)))
    var = np.where(rng.random(c) < 0.15, rng.choice([0.0, 1e-7], c), var)
    gamma = np.where(rng.random(c) < 0.1, 0.0, rng.normal(0, 1, c))
    bn = (nn.BatchNorm2d if h.dim() == 4 else nn.BatchNorm1d)(c)
    with torch.no_grad():
        bn.running_mean.copy_(torch.as_tensor(mean + rng.normal(0, 0.5, c) * std))
        bn.running_var.copy_(torch.as_tensor(var))
        bn.weight.copy_(torch.as_tensor(gamma))
        bn.bias.copy_(torch.as_tensor(rng.normal(0, 0.5, c)))
    return bn.eval()


def _calibrated_activation(layer: LayerSpec, h: torch.Tensor, rng) -> nn.Module:
    """The layer's activation with a scale (or multiplier) that spreads the batch over its
    codes, give or take a factor of two."""
    if layer.act == "sign":
        return SignActivation()
    t = IntType.parse(layer.act_type)
    # the typical channel's peak: a zero-variance channel's huge outputs must not set it
    peak = float(np.median(np.quantile(np.abs(_channels_of(h).numpy()), 0.9, axis=1)))
    jitter = float(np.exp(rng.uniform(-0.7, 0.7)))
    if layer.act == "requant":
        multiplier, shift = requant_params(t.max / max(peak, 1.0) * jitter,
                                           int(rng.integers(8, 17)))
        return Requant(multiplier, shift, t.bits, t.signed, narrow_range=layer.act_narrow)
    scale = peak / t.max * jitter if peak > 0 else 1.0
    return QuantAct(t.bits, t.signed, layer.act_narrow, init_scale=max(scale, 1e-4))


def random_quant_model(spec: NetSpec, seed: int) -> RandomNet:
    """The network of ``spec`` in eval mode with random weights; batch-norm statistics,
    activation scales and requantization multipliers are calibrated on a batch of random
    inputs, then perturbed."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    in_type = IntType.parse(spec.input_type)
    modules: list[nn.Module] = [IntegerInput(in_type.bits, in_type.signed)]
    h = torch_layout(random_model_inputs(spec, 64, seed))
    channels = spec.image[0] if spec.image is not None else spec.features
    with torch.no_grad():
        for layer in spec.layers:
            if layer.flatten:
                modules.append(nn.Flatten())
                h = torch.flatten(h, 1)
                channels = h.shape[1]
            compute = _compute_layer(layer, channels, rng, gen)
            modules.append(compute)
            link_input_scales(modules)
            h = compute(h)
            channels = layer.width
            if layer.act is None:
                break
            post: list[nn.Module] = []
            if layer.batch_norm:
                post.append(_calibrated_batch_norm(h, rng))
                h = post[-1](h)
            if layer.relu:
                post.append(nn.ReLU())
                h = post[-1](h)
            post.append(_calibrated_activation(layer, h, rng))
            h = post[-1](h)
            if layer.pool:
                post.append(nn.MaxPool2d(layer.pool, layer.pool_stride))
                h = post[-1](h)
            modules += post
    if spec.logit_scale:
        modules.append(LogitScale(float(np.exp(rng.uniform(-2, 1)))))
    return RandomNet(modules, spec.image).eval()


CODE_MODULES = (SignActivation, QuantAct, Requant, nn.MaxPool2d)
"""The torch modules whose outputs are integer codes: in the integer graph, the outputs of
engines with fused thresholds or requantization, and of max-pools, in the same order."""


def torch_codes(model: nn.Module, x: torch.Tensor) -> tuple[list[np.ndarray], np.ndarray]:
    """Every code-producing module's output (images as HWC, like the IR), and the output."""
    captured: list[np.ndarray] = []

    def keep(_module, _inputs, out):
        value = out.detach().numpy()
        captured.append(value.transpose(0, 2, 3, 1) if value.ndim == 4 else value.copy())

    hooks = [m.register_forward_hook(keep) for m in model.modules()
             if isinstance(m, CODE_MODULES)]
    with torch.no_grad():
        out = model(x).numpy()
    for hook in hooks:
        hook.remove()
    return captured, out


def assert_matches_torch(model: nn.Module, graph: Graph, x: np.ndarray) -> None:
    """The integer graph's reference equals torch on every activation (element by element,
    as integer codes: the outputs of engines with a fused epilogue and of max-pools) and on
    the output: integer scores through the last layer's own float scaling bit for bit, and
    through ``output_scale``/``output_offset``."""
    values = execute(graph, x, keep_all=True)
    codes = [values[n.output] for n in graph.ordered_nodes()
             if isinstance(n, MaxPool) or (isinstance(n, MatVec) and n.post is not None)]
    expected, out = torch_codes(model, torch_layout(x))
    assert len(codes) == len(expected)
    for index, (got, want) in enumerate(zip(codes, expected, strict=True)):
        assert np.array_equal(got, want.astype(np.int64)), f"activation {index}"
    scores = values[graph.output]
    last = graph.producer(graph.output)
    if not isinstance(last, MatVec) or last.post is not None:     # codes out, not scores
        assert np.array_equal(scores.reshape(out.shape), out)
        return
    dot = 2 * scores - last.mw if last.acc == "xnor_popcount" else scores
    layers = list(model.layers)
    position = max(i for i, m in enumerate(layers) if isinstance(m, (nn.Linear, nn.Conv2d)))
    with torch.no_grad():
        value = torch.as_tensor(dot, dtype=torch.float32)
        value = getattr(layers[position], "scale_accumulator", lambda a: a)(value)
        for module in layers[position + 1:]:
            value = module(value)
    assert np.array_equal(value.numpy(), out)
    np.testing.assert_allclose(scores * graph.output_scale + graph.output_offset, out,
                               rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(out).max())))
