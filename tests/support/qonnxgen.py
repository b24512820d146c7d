"""Random QONNX models for tests, written node by node with onnx.helper.

Every scale is a power of two, so the model's own float32 MatMul/Conv is exact and
``execute_onnx`` (the referee) computes the same real numbers as the integer reference;
batch-norm parameters, biases, constants and thresholds are arbitrary floats (the importer
runs those nodes themselves). ``QonnxSpec`` says what to build; ``random_qonnx`` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

QONNX_DOMAIN = "qonnx.custom_op.general"

ACT_QUANTIZERS = ("quant", "bipolar", "multithreshold", "trunc")
WEIGHT_KINDS = ("int", "bipolar", "ternary")


@dataclass(frozen=True)
class LayerSpec:
    """One weight layer and what follows it."""

    out: int
    weight: str = "int"              # int, bipolar, ternary
    weight_bits: int = 4
    weight_signed: bool = True
    weight_narrow: bool = True
    per_channel: bool = True
    op: str = "gemm"                 # gemm, matmul, conv
    bias: bool = False
    kernel: int = 3
    stride: int = 1
    pad: int = 0
    batch_norm: bool = False
    mul_add: bool = False
    relu: bool = False
    act: str | None = "quant"        # one of ACT_QUANTIZERS, or None (the output layer)
    act_bits: int = 2
    act_signed: bool = False
    act_narrow: bool = False
    pool: bool = False
    flatten: bool = False            # flatten the (quantized) map after this layer


@dataclass(frozen=True)
class QonnxSpec:
    """A chain: input quantizer, then the layers."""

    input_shape: tuple[int, ...]     # per frame: (F,) or (C, H, W)
    input_bits: int = 4
    input_signed: bool = False
    input_narrow: bool = False
    input_kind: str = "quant"        # quant, bipolar
    layers: tuple[LayerSpec, ...] = field(default_factory=tuple)


class _Builder:
    def __init__(self, rng: np.random.Generator) -> None:
        from onnx import TensorProto, helper

        self.helper, self.float = helper, TensorProto.FLOAT
        self.rng = rng
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, value, prefix: str = "c", dtype=np.float32) -> str:
        from onnx import numpy_helper

        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=self.name(op),
                                                domain=domain, **attrs))
        return out

    def quant(self, x: str, scale, bits: int, signed: bool, narrow: bool) -> str:
        return self.node("Quant", [x, self.const(scale, "scale"), self.const(0.0, "zeropt"),
                                   self.const(float(bits), "bits")], QONNX_DOMAIN,
                         signed=int(signed), narrow=int(narrow), rounding_mode="ROUND")

    def bipolar(self, x: str, scale) -> str:
        return self.node("BipolarQuant", [x, self.const(scale, "scale")], QONNX_DOMAIN)

    def pot(self, shape, lo: int = -4, hi: int = 1) -> np.ndarray:
        return (2.0 ** self.rng.integers(lo, hi + 1, shape)).astype(np.float32)


def _weights(b: _Builder, layer: LayerSpec, shape: tuple[int, ...], channel_axis: int
             ) -> tuple[str, np.ndarray]:
    """A float weight initializer through its quantizer (per-channel scales along axis), and
    the scale."""
    rng = b.rng
    scale_shape = [1] * len(shape)
    if layer.per_channel:
        scale_shape[channel_axis] = shape[channel_axis]
    scale = b.pot(scale_shape, -3, 0)
    if layer.weight == "bipolar":
        raw = rng.normal(size=shape).astype(np.float32)
        return b.bipolar(b.const(raw, "w"), scale), scale
    if layer.weight == "ternary":
        codes = rng.integers(-1, 2, shape)
        return b.quant(b.const(codes * scale, "w"), scale, 2, True, True), scale
    bits, signed, narrow = layer.weight_bits, layer.weight_signed, layer.weight_narrow
    lo = (-(1 << (bits - 1)) + int(narrow)) if signed else 0
    hi = ((1 << (bits - 1)) - 1) if signed else (1 << bits) - 1
    # off-grid values and some out of range: the quantizer rounds and clamps
    raw = (rng.integers(lo, hi + 1, shape) + rng.uniform(-0.6, 0.6, shape)) * scale
    return b.quant(b.const(raw.astype(np.float32), "w"), scale, bits, signed, narrow), scale


def _activation(b: _Builder, x: str, layer: LayerSpec, channels: int, spatial: bool,
                acc_scale: float) -> tuple[str, str]:
    """The quantizer after a layer; returns (output, kind of codes)."""
    rng = b.rng
    if layer.act == "bipolar":
        return b.bipolar(x, b.pot(1, -2, 1)), "bipolar"
    if layer.act == "multithreshold":
        levels = (1 << layer.act_bits) - 1
        th = np.sort(rng.normal(0, 2.0, (channels, levels)), axis=1).astype(np.float32)
        signed = layer.act_signed
        bias = -float(1 << (layer.act_bits - 1)) if signed else 0.0
        dtype = f"{'INT' if signed else 'UINT'}{layer.act_bits}"
        out = b.node("MultiThreshold", [x, b.const(th, "thresholds")], QONNX_DOMAIN,
                     out_dtype=dtype, out_scale=1.0, out_bias=bias, data_layout="NCHW")
        return out, "int"
    if layer.act == "trunc":
        out_bits = layer.act_bits + 2
        in_bits = out_bits + int(rng.integers(1, 4))
        out_scale = acc_scale * 2.0 ** (in_bits - out_bits)
        inputs = [x, b.const(acc_scale, "scale"), b.const(0.0, "zeropt"),
                  b.const(float(in_bits), "in_bits"), b.const(out_scale, "out_scale"),
                  b.const(float(out_bits), "out_bits")]
        return b.node("Trunc", inputs, QONNX_DOMAIN, signed=1, narrow=0,
                      rounding_mode="FLOOR"), "int"
    scale = b.pot(1, -3, 0)
    return b.quant(x, scale, layer.act_bits, layer.act_signed, layer.act_narrow), "int"


def _quantizer_scale(b: _Builder) -> float:
    """The scale of the quantizer just added (1 for thresholds)."""
    from onnx import numpy_helper

    node = b.nodes[-1]
    index = {"Quant": 1, "BipolarQuant": 1, "Trunc": 4}.get(node.op_type)
    if index is None:
        return 1.0
    init = next(i for i in b.inits if i.name == node.input[index])
    return float(numpy_helper.to_array(init).reshape(-1)[0])


def random_qonnx(spec: QonnxSpec, seed: int):
    """The ONNX model (``onnx.ModelProto``) of ``spec`` with random parameters."""
    from onnx import helper

    b = _Builder(np.random.default_rng(seed))
    rng = b.rng
    shape = spec.input_shape
    x_in = "x"
    in_scale = b.pot(1, -3, 0)
    if spec.input_kind == "bipolar":
        x = b.bipolar(x_in, in_scale)
    else:
        x = b.quant(x_in, in_scale, spec.input_bits, spec.input_signed, spec.input_narrow)
    x_scale = float(in_scale.reshape(-1)[0])
    # QONNX's signed 1-bit Quant gives -1 and +1: a bipolar map, which has no zero to pad
    bipolar_input = spec.input_kind == "bipolar" or (spec.input_signed and spec.input_bits == 1)
    codes = "bipolar" if bipolar_input else "int"
    for layer in spec.layers:
        if layer.op == "conv":
            cin, h, w = shape
            pad = 0 if codes == "bipolar" else layer.pad
            kernel = min(layer.kernel, h + 2 * pad, w + 2 * pad)
            layer = LayerSpec(**{**layer.__dict__, "kernel": kernel})
            wshape = (layer.out, cin, layer.kernel, layer.kernel)
            weights, w_scale = _weights(b, layer, wshape, 0)
            inputs = [x, weights] + ([b.const(rng.normal(size=layer.out), "bias")]
                                     if layer.bias else [])
            x = b.node("Conv", inputs, kernel_shape=[layer.kernel] * 2,
                       strides=[layer.stride] * 2, pads=[pad] * 4)
            oh = (h + 2 * pad - layer.kernel) // layer.stride + 1
            ow = (w + 2 * pad - layer.kernel) // layer.stride + 1
            shape = (layer.out, oh, ow)
        else:
            (features,) = shape
            if layer.op == "matmul":
                weights, w_scale = _weights(b, layer, (features, layer.out), 1)
                x = b.node("MatMul", [x, weights])
                if layer.bias:
                    x = b.node("Add", [x, b.const(rng.normal(size=layer.out), "bias")])
            else:
                weights, w_scale = _weights(b, layer, (layer.out, features), 0)
                inputs = [x, weights] + ([b.const(rng.normal(size=layer.out), "bias")]
                                         if layer.bias else [])
                x = b.node("Gemm", inputs, transB=1)
            shape = (layer.out,)
        channels = shape[0]
        per = (1, channels, 1, 1) if len(shape) == 3 else (1, channels)
        if layer.batch_norm:
            x = b.node("BatchNormalization", [
                x, b.const(rng.uniform(-2, 2, channels), "gamma"),
                b.const(rng.normal(0, 1, channels), "beta"),
                b.const(rng.normal(0, 2, channels), "mean"),
                b.const(rng.uniform(0.5, 4, channels), "var")], epsilon=1e-5)
        if layer.mul_add:       # Mul or Div, then Add or Sub, by per-channel constants
            scale_op = "Mul" if rng.random() < 0.5 else "Div"
            x = b.node(scale_op, [x, b.const(rng.uniform(0.25, 2, per), "mul")])
            shift_op = "Add" if rng.random() < 0.5 else "Sub"
            x = b.node(shift_op, [x, b.const(rng.normal(0, 1, per), "add")])
        if layer.relu:
            x = b.node("Relu", [x])
        if layer.act is None:
            break
        acc_scale = x_scale * float(w_scale.reshape(-1)[0])
        x, codes = _activation(b, x, layer, channels, len(shape) == 3, acc_scale)
        x_scale = _quantizer_scale(b)
        if layer.pool and len(shape) == 3 and min(shape[1:]) >= 2:
            x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
        if layer.flatten and len(shape) == 3:
            if rng.random() < 0.5:
                x = b.node("Flatten", [x], axis=1)
            else:
                x = b.node("Reshape", [x, b.const([1, -1], "shape", np.int64)])
            shape = (int(np.prod(shape)),)
    inp = helper.make_tensor_value_info("x", b.float, [1, *spec.input_shape])
    out = helper.make_tensor_value_info(x, b.float, None)
    graph = helper.make_graph(b.nodes, "random", [inp], [out], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(QONNX_DOMAIN, 2)])
    return model


def random_inputs(spec: QonnxSpec, frames: int, seed: int) -> np.ndarray:
    """Real inputs spread over the input quantizer's range and beyond (it clamps)."""
    rng = np.random.default_rng(seed + 1)
    return rng.normal(0, 1.5, (frames, *spec.input_shape)).astype(np.float32)


@st.composite
def layer_specs(draw, *, op: str, last: bool, channels_max: int = 6) -> LayerSpec:
    weight = draw(st.sampled_from(WEIGHT_KINDS))
    act = None if last else draw(st.sampled_from(ACT_QUANTIZERS))
    return LayerSpec(
        out=draw(st.integers(1, channels_max)),
        weight=weight,
        weight_bits=draw(st.integers(2, 8)),
        weight_signed=draw(st.booleans()),
        weight_narrow=draw(st.booleans()),
        per_channel=draw(st.booleans()),
        op=op,
        bias=draw(st.booleans()) and not last,
        kernel=draw(st.integers(1, 3)),
        stride=draw(st.integers(1, 2)),
        pad=draw(st.integers(0, 1)),
        batch_norm=draw(st.booleans()),
        mul_add=draw(st.booleans()),
        relu=draw(st.booleans()),
        act=act,
        act_bits=draw(st.integers(1 if act == "quant" else 1, 4)),
        act_signed=draw(st.booleans()),
        act_narrow=draw(st.booleans()),
        pool=draw(st.booleans()),
    )


@st.composite
def qonnx_specs(draw, *, max_convs: int = 2, max_dense: int = 2) -> QonnxSpec:
    convs = draw(st.integers(0, max_convs))
    dense = draw(st.integers(1, max_dense))
    layers = [draw(layer_specs(op="conv", last=False)) for _ in range(convs)]
    if layers:
        layers[-1] = LayerSpec(**{**layers[-1].__dict__, "flatten": True})
    for index in range(dense):
        op = draw(st.sampled_from(["gemm", "matmul"]))
        layers.append(draw(layer_specs(op=op, last=index == dense - 1)))
    shape = ((draw(st.integers(1, 3)), draw(st.integers(3, 6)), draw(st.integers(3, 6)))
             if convs else (draw(st.integers(1, 12)),))
    kind = draw(st.sampled_from(["quant", "quant", "bipolar"]))
    layers = _legal(layers, shape)
    return QonnxSpec(shape, input_bits=draw(st.integers(1, 8)),
                     input_signed=draw(st.booleans()), input_narrow=draw(st.booleans()),
                     input_kind=kind, layers=tuple(layers))


def _legal(layers: list[LayerSpec], shape: tuple[int, ...]) -> list[LayerSpec]:
    """Keep feature maps at least as large as the kernels; 1-bit signed Quant is a
    BipolarQuant's job, a Trunc needs a per-tensor scale on its accumulator."""
    fixed = []
    for layer in layers:
        changes = {}
        if layer.act == "quant" and layer.act_signed and layer.act_bits == 1:
            changes["act_signed"] = False
        if layer.act == "trunc":
            changes.update(per_channel=False, batch_norm=False, mul_add=False, relu=False,
                           bias=False)
        if layer.weight == "int" and layer.weight_signed and layer.weight_bits == 1:
            changes["weight_bits"] = 2
        if layer.op == "conv" and len(shape) == 3:
            _, h, w = shape
            k = min(layer.kernel, h + 2 * layer.pad, w + 2 * layer.pad)
            pad = min(layer.pad, k - 1)
            changes.update(kernel=k, pad=pad)
            oh = (h + 2 * pad - k) // layer.stride + 1
            ow = (w + 2 * pad - k) // layer.stride + 1
            shape = (layer.out, oh, ow)
            if layer.pool and min(oh, ow) >= 2:
                shape = (layer.out, oh // 2, ow // 2)
            if layer.flatten:
                shape = (int(np.prod(shape)),)
        fixed.append(LayerSpec(**{**layer.__dict__, **changes}))
    return fixed
