"""The QONNX frontend: a QONNX model (Brevitas's export, FINN's thresholds) -> the codesign IR.

Translation only, exact by construction:

- Every tensor the model quantizes (``Quant``, ``BipolarQuant``, ``Trunc``, FINN's
  ``MultiThreshold``) becomes an integer tensor of the IR holding its codes; its real value
  is scale x code (zero point 0). Weights quantized by those operators (or integer-valued
  float weights) become the codes of a ``MatVec`` (``MatMul``/``Gemm``) or a ``Conv``.
- The accumulator of a weight layer has the real value scale_x * scale_w[c] * dot. The float
  nodes that follow it up to the next quantizer (bias, ``Mul``/``Add``/``Sub``/``Div`` by
  constants, ``BatchNormalization``, ``Relu``, the quantizer itself) become one
  ``FloatMap`` whose ``evaluate`` runs *those ONNX nodes* with QONNX's executor on candidate
  accumulators, so streamlining folds exactly what the model computes into integer
  thresholds.
- ``MaxPool`` on codes is an integer max; ``Flatten`` (and a ``Reshape`` that flattens) of an
  NCHW map becomes a ``Flatten`` node in (C, H, W) order.
- The float nodes before the first quantizer are the input edge (run on real inputs to get
  the integer input codes); the float nodes after the last weight layer, when it has no
  quantizer, are the output edge (applied to the integer scores for reporting).

Anything else is refused with the ONNX node's name and op type and what is supported.
A weight layer's float accumulator is the exact product of its scales and the integer dot
product, rounded once to float32; the model's own float32 ``MatMul``/``Conv`` equals it
whenever its products and sums are exact (power-of-two scales, as FINN and Brevitas's
``POWER_OF_TWO`` scaling use), otherwise it may differ by float rounding of the sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.errors import GraphError, UnsupportedLayerError
from codesign.frontends.imported import ImportedNetwork
from codesign.frontends.onnx_run import (
    NodeChain,
    execute_model,
    load_model,
    referee_model,
    run_nodes,
)
from codesign.ir import (
    Conv,
    Flatten,
    FloatMap,
    Graph,
    IntType,
    MatVec,
    MaxPool,
    Node,
    TensorInfo,
    window_output_hw,
)

QUANTIZERS = ("Quant", "IntQuant", "BipolarQuant", "Trunc", "MultiThreshold")
WEIGHT_OPS = ("MatMul", "Gemm", "Conv")
FLOAT_OPS = ("Mul", "Add", "Sub", "Div", "BatchNormalization", "Relu")
PASS_THROUGH = ("Identity", "Dropout")
SUPPORTED = (*QUANTIZERS, *WEIGHT_OPS, *FLOAT_OPS, "MaxPool", "Reshape", "Flatten",
             *PASS_THROUGH)

__all__ = ["SUPPORTED", "from_qonnx", "import_qonnx"]


def _unsupported(node: Any, why: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"ONNX node {node.name!r} ({node.op_type}): {why}. Supported ops: "
        f"{', '.join(SUPPORTED)} (Mul/Add/Sub/Div by constants, between a weight layer and "
        "its quantizer)")


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _int_type(bits: int, signed: bool) -> IntType:
    return IntType.int_(bits) if signed else IntType.uint(bits)


def _per_channel(values: np.ndarray, shape: tuple[int, ...], what: str, node: Any
                 ) -> np.ndarray:
    """[C] values of a constant broadcast over a per-frame ``shape`` (channel axis 0): it must
    not vary along any other axis."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim > len(shape) + 1:
        raise _unsupported(node, f"{what} of shape {arr.shape} does not broadcast over "
                           f"{(1, *shape)}")
    try:
        full = np.broadcast_to(arr, (1, *shape))[0]
    except ValueError:
        raise _unsupported(node, f"{what} of shape {arr.shape} does not broadcast over "
                           f"{(1, *shape)}") from None
    flat = full.reshape(shape[0], -1)
    if np.any(flat != flat[:, :1]):
        raise _unsupported(node, f"{what} varies within a channel; only per-tensor or "
                           "per-channel constants are supported")
    return flat[:, 0].copy()


@dataclass
class _Quantizer:
    """What a quantizer node produces: integer codes of ``dtype``, real value scale x code."""

    dtype: IntType
    scale: np.ndarray
    """Float32, broadcastable over the node's output (with the batch axis)."""

    def codes(self, node: Any, y: np.ndarray) -> np.ndarray:
        """The integer codes of the quantizer's float outputs ``y``."""
        if self.dtype.kind == "bipolar":
            return np.where(y >= 0, 1, -1).astype(np.int64)
        ratio = np.asarray(y, dtype=np.float64) / np.asarray(self.scale, dtype=np.float64)
        codes = np.rint(ratio)
        if np.any(np.abs(ratio - codes) > 1e-3):
            raise _unsupported(node, "its outputs are not integer multiples of its scale")
        return codes.astype(np.int64)


def _quantizer(node: Any, const: dict[str, np.ndarray]) -> _Quantizer:
    """Type and scale of a quantizer node; its parameters must be constants."""
    def param(index: int, what: str) -> np.ndarray:
        if len(node.input) <= index or node.input[index] not in const:
            raise _unsupported(node, f"its {what} must be a constant (a dynamic quantizer is not "
                               "supported)")
        return np.asarray(const[node.input[index]])

    def bit_width(index: int) -> int:
        bits = param(index, "bit width")
        if bits.size != 1 or float(bits.reshape(-1)[0]) != int(bits.reshape(-1)[0]) \
                or not 1 <= int(bits.reshape(-1)[0]) <= 32:
            raise _unsupported(node, f"bit width {bits.reshape(-1)[:4].tolist()} must be one "
                               "integer in 1..32")
        return int(bits.reshape(-1)[0])

    def positive(scale: np.ndarray) -> np.ndarray:
        if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
            raise _unsupported(node, "its scale must be positive and finite")
        return scale.astype(np.float32)

    op = node.op_type
    if op in ("Quant", "IntQuant"):
        scale = positive(param(1, "scale"))
        zero = param(2, "zero point")
        if np.any(zero != 0):
            raise _unsupported(node, f"zero point {zero.reshape(-1)[:4].tolist()} is not "
                               "supported: the hardware takes symmetric or unsigned quantizers "
                               "(zero point 0)")
        bits = bit_width(3)
        signed, narrow = bool(_attr(node, "signed", 1)), bool(_attr(node, "narrow", 0))
        if signed and narrow and bits == 2:
            return _Quantizer(IntType.ternary(), scale)
        if signed and bits == 1:          # QONNX's signed 1-bit range is {-1, +1}
            return _Quantizer(IntType.bipolar(), scale)
        return _Quantizer(_int_type(bits, signed), scale)
    if op == "BipolarQuant":
        return _Quantizer(IntType.bipolar(), positive(param(1, "scale")))
    if op == "Trunc":
        zero = param(2, "zero point")
        if np.any(zero != 0):
            raise _unsupported(node, "zero point must be 0")
        if len(node.input) >= 6:        # version 2: X, scale, zeropt, in_bits, out_scale, out_bits
            return _Quantizer(_int_type(bit_width(5), bool(_attr(node, "signed", 1))),
                              positive(param(4, "output scale")))
        # version 1: X, scale, zeropt, in_bits, out_bits; the output keeps the input's grid
        # coarsened by 2^(in_bits - out_bits)
        in_bits, out_bits = bit_width(3), bit_width(4)
        scale = positive(param(1, "scale")).astype(np.float64) * 2.0 ** (in_bits - out_bits)
        return _Quantizer(IntType.int_(out_bits), scale.astype(np.float32))
    # FINN's MultiThreshold: out_scale * count + out_bias
    out_dtype = str(_attr(node, "out_dtype", "")).upper()
    out_scale = float(_attr(node, "out_scale", 1.0))
    out_bias = float(_attr(node, "out_bias", 0.0))
    if len(node.input) < 2 or node.input[1] not in const:
        raise _unsupported(node, "its thresholds must be a constant")
    count = int(np.asarray(const[node.input[1]]).shape[-1])
    if out_dtype == "BIPOLAR":
        if (out_scale, out_bias) != (2.0, -1.0) or count != 1:
            raise _unsupported(node, "a BIPOLAR MultiThreshold needs one threshold, out_scale 2 "
                               "and out_bias -1")
        return _Quantizer(IntType.bipolar(), np.float32(1.0))
    offset = out_bias / out_scale if out_scale > 0 else float("nan")
    if not (out_scale > 0 and offset == round(offset)):
        raise _unsupported(node, f"out_bias {out_bias} is not a whole number of out_scale "
                           f"{out_scale} steps (a non-zero zero point)")
    lo, hi = int(offset), int(offset) + count
    dtype = IntType.for_range(min(lo, 0), max(hi, 0))
    if out_dtype:
        try:
            declared = IntType.parse(out_dtype.lower())
            if declared.contains(np.array([lo, hi])):
                dtype = declared
        except GraphError:
            pass
    return _Quantizer(dtype, np.float32(out_scale))


@dataclass
class _Codes:
    """An integer IR tensor; the ONNX tensor is scale x code (per channel, channel axis 1)."""

    tensor: TensorInfo
    scale: np.ndarray
    """[1] or [C] float32: one scale, or one per channel of the ONNX layout."""
    shape: tuple[int, ...]
    """Per-frame ONNX shape: (C, H, W) or (F,)."""


@dataclass
class _Pending:
    """A weight layer's integer accumulator and the float ONNX nodes applied to it since."""

    tensor: TensorInfo
    scale: np.ndarray
    """[C] float64: the accumulator's real value is scale[c] * dot."""
    shape: tuple[int, ...]
    layer: Any
    """The weight layer's ONNX node."""
    head: str
    """Name of the float accumulator tensor the nodes start from."""
    tail: str
    nodes: list[Any] = field(default_factory=list)


@dataclass
class _Edge:
    """The float model input and the float nodes applied to it before its first quantizer."""

    tail: str
    shape: tuple[int, ...]
    nodes: list[Any] = field(default_factory=list)


State = _Codes | _Pending | _Edge


class _Translator:
    """Walks a cleaned QONNX graph in order, building IR nodes."""

    def __init__(self, model: Any, name: str, referee: Any) -> None:
        from onnx import numpy_helper

        self.model, self.name, self.referee = model, name, referee
        self.graph_proto = model.graph
        self.opset = list(model.model.opset_import)
        self.const: dict[str, np.ndarray] = {
            init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
        self.quantized: dict[str, tuple[np.ndarray, _Quantizer]] = {}
        self.states: dict[str, State] = {}
        self.tensors: dict[str, TensorInfo] = {}
        self.nodes: list[Node] = []
        self.input_info: TensorInfo | None = None
        self.input_edge: tuple[list[Any], Any, _Quantizer] | None = None

    # ---- helpers -------------------------------------------------------------------------
    def shape(self, name: str, node: Any) -> tuple[int, ...]:
        shape = self.model.get_tensor_shape(name)
        if shape is None or any(not isinstance(d, int) or d < 1 for d in shape):
            raise _unsupported(node, f"tensor {name!r} has a dynamic or unknown shape {shape}; "
                               "export with fixed shapes (batch 1)")
        return tuple(int(d) for d in shape)

    def add(self, node: Node, info: TensorInfo) -> TensorInfo:
        self.tensors[info.name] = info
        self.nodes.append(node)
        return info

    def ir_name(self, onnx_name: str) -> str:
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in onnx_name) or "t"
        name, index = base, 1
        while name in self.tensors:
            name, index = f"{base}_{index}", index + 1
        return name

    def run(self, nodes: Sequence[Any], inputs: dict[str, np.ndarray], outputs: list[str],
            shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Run shape-preserving nodes on ``inputs`` (all tensors of ``shape``)."""
        produced = [name for node in nodes for name in node.output]
        return run_nodes(nodes, inputs, self.const, outputs,
                         {name: shape for name in produced}, self.opset)

    # ---- the walk ------------------------------------------------------------------------
    def translate(self) -> ImportedNetwork:
        graph = self.graph_proto
        if len(graph.input) != 1 or len(graph.output) != 1:
            raise UnsupportedLayerError(
                f"ONNX model has {len(graph.input)} inputs and {len(graph.output)} outputs; "
                "one input and one output are supported")
        inp = graph.input[0]
        in_shape = self.model.get_tensor_shape(inp.name)
        dims = inp.type.tensor_type.shape.dim
        if in_shape is None or len(dims) < 2 or any(not d.dim_value for d in dims[1:]):
            raise UnsupportedLayerError(
                f"ONNX input {inp.name!r} has a dynamic shape "
                f"{[d.dim_param or d.dim_value for d in dims]}; only the batch dimension "
                "may be dynamic")
        frame = tuple(int(d.dim_value) for d in dims[1:])
        annotated = self.model.get_tensor_datatype(inp.name)
        if annotated is not None and annotated.is_integer():
            dtype = (IntType.bipolar() if annotated.name == "BIPOLAR"
                     else IntType.for_range(int(annotated.min()), int(annotated.max())))
            self.start_input(inp.name, [], _Quantizer(dtype, np.float32(1.0)), frame)
        else:
            self.states[inp.name] = _Edge(inp.name, frame)
        for node in graph.node:
            self.visit(node)
        return self.finish(graph.output[0].name, frame)

    def visit(self, node: Any) -> None:
        inputs = [name for name in node.input if name]
        if all(name in self.const for name in inputs):
            self.fold_constant(node)
            return
        live = [name for name in inputs if name in self.states]
        if len(live) != 1:
            raise _unsupported(node, "reads two activation tensors (residual joins and "
                               "dynamic weights are not supported); the dataflow chain takes "
                               "one activation per node")
        state = self.states[live[0]]
        op = node.op_type
        if op not in SUPPORTED:
            raise _unsupported(node, "unsupported op")
        if op in PASS_THROUGH:
            self.states[node.output[0]] = state
            return
        if op in QUANTIZERS:
            self.quantize(node, state)
        elif op in WEIGHT_OPS:
            self.weight_layer(node, state)
        elif isinstance(state, _Edge):
            self.edge_op(node, state)
        elif isinstance(state, _Pending):
            self.pending_op(node, state)
        else:
            self.codes_op(node, state)

    def fold_constant(self, node: Any) -> None:
        """A node of constants only (a weight quantizer, a shape computation)."""
        from qonnx.core.onnx_exec import execute_node  # noqa: F401 - executor present

        shapes = {name: self.shape(name, node) for name in node.output}
        values = run_nodes([node], {}, self.const, list(node.output), shapes, self.opset)
        self.const.update(values)
        if node.op_type in ("Quant", "IntQuant", "BipolarQuant"):
            quantizer = _quantizer(node, self.const)
            self.quantized[node.output[0]] = (quantizer.codes(node, values[node.output[0]]),
                                              quantizer)

    # ---- quantizers ----------------------------------------------------------------------
    def start_input(self, name: str, nodes: list[Any], quantizer: _Quantizer,
                    onnx_shape: tuple[int, ...], node: Any = None) -> None:
        ir_shape = ((*onnx_shape[1:], onnx_shape[0]) if len(onnx_shape) == 3
                    else onnx_shape if len(onnx_shape) == 1 else None)
        if ir_shape is None:
            raise _unsupported(node or _Named("input", "Input"),
                               f"input frames of shape {onnx_shape}: (C, H, W) images or flat "
                               "vectors (F,) are supported")
        info = TensorInfo("input", tuple(ir_shape), quantizer.dtype)
        self.tensors["input"] = info
        self.input_info = info
        self.input_edge = (nodes, node, quantizer)
        self.states[name] = _Codes(info, self.channel_scale(quantizer, onnx_shape, node),
                                   onnx_shape)

    def channel_scale(self, quantizer: _Quantizer, shape: tuple[int, ...], node: Any
                      ) -> np.ndarray:
        scale = np.asarray(quantizer.scale, dtype=np.float32)
        if scale.size == 1:
            return scale.reshape(1)
        return _per_channel(scale, shape, "scale", node).astype(np.float32)

    def quantize(self, node: Any, state: State) -> None:
        if node.input[0] not in self.states:
            raise _unsupported(node, "quantizes a constant that is not a weight")
        quantizer = _quantizer(node, self.const)
        out = node.output[0]
        if isinstance(state, _Edge):
            shape = self.shape(out, node)[1:]
            self.start_input(out, [*state.nodes, node], quantizer, shape, node)
            return
        if isinstance(state, _Codes):
            self.requantize_codes(node, state, quantizer)
            return
        # the accumulator's float nodes end here: one FloatMap
        nodes = [*state.nodes, node]
        name = self.ir_name(out)
        info = TensorInfo(name, state.tensor.shape, quantizer.dtype)
        evaluate = self.float_map(state, nodes, out, quantizer, node)
        described = " -> ".join(["acc", f"{state.layer.op_type} scales"]
                                + [f"{n.op_type} {n.name}" for n in nodes])
        self.add(FloatMap(name, [state.tensor.name], [name], evaluate=evaluate,
                          out_type=quantizer.dtype, description=described), info)
        self.states[out] = _Codes(info, self.channel_scale(quantizer, state.shape, node),
                                  state.shape)

    def float_map(self, state: _Pending, nodes: list[Any], out: str, quantizer: _Quantizer,
                  node: Any):
        """[R, C] integer accumulators -> [R, C] codes, through the ONNX nodes themselves."""
        scale = state.scale
        spatial = len(state.shape) == 3
        chain = NodeChain(nodes, self.const, state.head, self.opset)

        def evaluate(acc: np.ndarray) -> np.ndarray:
            acc = np.asarray(acc, dtype=np.float64)
            value = (acc * scale).astype(np.float32)
            if spatial:
                value = value[:, :, None, None]
            return quantizer.codes(node, chain(value)).reshape(acc.shape)
        return evaluate

    def requantize_codes(self, node: Any, state: _Codes, quantizer: _Quantizer) -> None:
        """A quantizer on a tensor that is already integer: allowed when it changes nothing."""
        dtype = state.tensor.dtype
        if dtype.max - dtype.min > 1 << 16:
            raise _unsupported(node, "re-quantizes a wide integer tensor without a weight layer "
                               "in between")
        values = (np.array([-1, 1]) if dtype.kind == "bipolar"
                  else np.arange(dtype.min, dtype.max + 1))
        channels = state.shape[0]
        scale = np.broadcast_to(state.scale.astype(np.float32), (channels,))
        real = (values[:, None].astype(np.float32) * scale[None, :]).astype(np.float32)
        probe = real[:, :, None, None] if len(state.shape) == 3 else real
        got = self.run([node], {node.input[0]: probe}, [node.output[0]],
                       probe.shape)[node.output[0]]
        if not np.array_equal(np.asarray(got, dtype=np.float32), probe):
            raise _unsupported(node, "re-quantizes an integer tensor (changing its values) "
                               "without a weight layer in between; a quantizer must follow a "
                               "weight layer's accumulator")
        self.states[node.output[0]] = state

    # ---- weight layers -------------------------------------------------------------------
    def weights(self, node: Any, name: str) -> tuple[np.ndarray, IntType, np.ndarray]:
        """Integer weights, their type, and their scale (broadcastable over the weights)."""
        if name in self.quantized:
            codes, quantizer = self.quantized[name]
            return codes, quantizer.dtype, np.asarray(quantizer.scale, dtype=np.float64)
        if name not in self.const:
            raise _unsupported(node, "its weights must be constants")
        weight = np.asarray(self.const[name])
        if not np.all(np.isfinite(weight)) or np.any(weight != np.round(weight)):
            raise _unsupported(node, "its weights are float, not quantized: put a Quant or "
                               "BipolarQuant on them (Brevitas exports one per quantized layer)")
        codes = weight.astype(np.int64)
        annotated = self.model.get_tensor_datatype(name)
        dtype = IntType.for_range(int(min(codes.min(), 0)), int(max(codes.max(), 0)))
        if annotated is not None and annotated.name == "BIPOLAR":
            dtype = IntType.bipolar()
        elif annotated is not None and annotated.name == "TERNARY":
            dtype = IntType.ternary()
        return codes, dtype, np.ones(1)

    def weight_layer(self, node: Any, state: State) -> None:
        if not isinstance(state, _Codes):
            what = ("the model input is not quantized: put a Quant, BipolarQuant or "
                    "MultiThreshold before the first weight layer (or annotate the input with "
                    "an integer datatype)" if isinstance(state, _Edge) else
                    f"its input is the float output of {state.layer.name!r} with no quantizer "
                    "in between")
            raise _unsupported(node, what)
        if node.input[0] != self.source_of(node, state):
            raise _unsupported(node, "the activation must be its first input")
        if state.scale.size > 1 and np.any(state.scale != state.scale[0]):
            raise _unsupported(node, "its input has per-channel scales, which do not factor out "
                               "of the dot product; use a per-tensor activation quantizer")
        x_scale = float(state.scale[0])
        op = node.op_type
        if op == "Conv":
            self.conv(node, state, x_scale)
        else:
            self.matmul(node, state, x_scale)

    def source_of(self, node: Any, state: State) -> str:
        return next(name for name in node.input if name in self.states)

    def matmul(self, node: Any, state: _Codes, x_scale: float) -> None:
        if len(state.shape) != 1:
            raise _unsupported(node, f"needs a flat input (F,), got {state.shape}: flatten the "
                               "feature map first")
        codes, wtype, w_scale = self.weights(node, node.input[1])
        if codes.ndim != 2:
            raise _unsupported(node, f"weights of shape {codes.shape} are not a matrix")
        full_scale = np.broadcast_to(w_scale, codes.shape) if w_scale.size > 1 else w_scale
        nodes: list[Any] = []
        transposed = True                         # MatMul and Gemm(transB=0): [K, N]
        if node.op_type == "Gemm":
            if _attr(node, "transA", 0):
                raise _unsupported(node, "transA=1 is not supported")
            transposed = not _attr(node, "transB", 0)
            alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))
            has_bias = len(node.input) > 2 and bool(node.input[2])
            if has_bias or alpha != 1.0:
                rows = codes.shape[1] if transposed else codes.shape[0]
                nodes.append(self.gemm_epilogue(node, rows, alpha, beta, has_bias))
        if transposed:
            codes = codes.T
            full_scale = full_scale.T if w_scale.size > 1 else full_scale
        if codes.shape[1] != state.shape[0]:
            raise _unsupported(node, f"weights {codes.shape} do not take {state.shape[0]} "
                               "inputs")
        mh = codes.shape[0]
        scale = self.row_scale(node, np.asarray(full_scale), mh, codes.shape)
        name = self.ir_name(node.name)
        acc = f"{name}_acc"
        mv = MatVec(name, [state.tensor.name], [acc], weight=codes, weight_type=wtype)
        info = TensorInfo(acc, (mh,), IntType.for_range(*mv.output_range(state.tensor.dtype)))
        self.add(mv, info)
        out = node.output[0]
        head = f"{out}__accumulator" if nodes else out
        if nodes:
            nodes[0].input[0] = head
        self.states[out] = _Pending(info, x_scale * scale, (mh,), node, head, out, nodes)

    def gemm_epilogue(self, node: Any, n: int, alpha: float, beta: float, bias: bool) -> Any:
        """The Gemm's alpha and bias on the accumulator: the same Gemm with identity weights,
        so the bias is added exactly as the model's Gemm adds it."""
        from onnx import helper

        ident = f"{node.name}__identity"
        self.const[ident] = np.eye(n, dtype=np.float32)
        inputs = ["", ident] + ([node.input[2]] if bias else [])
        return helper.make_node("Gemm", inputs, [node.output[0]], name=f"{node.name}_bias",
                                alpha=alpha, beta=beta, transA=0, transB=0)

    def row_scale(self, node: Any, w_scale: np.ndarray, rows: int, shape: tuple[int, ...]
                  ) -> np.ndarray:
        """Per output row scale of weights [rows, ...]: constant along every other axis."""
        if w_scale.size == 1:
            return np.full(rows, float(w_scale.reshape(-1)[0]))
        full = np.broadcast_to(w_scale, shape).reshape(rows, -1)
        if np.any(full != full[:, :1]):
            raise _unsupported(node, "its weight scale varies along the input axis; only "
                               "per-tensor or per-output-channel weight scales are supported")
        return full[:, 0].astype(np.float64)

    def conv(self, node: Any, state: _Codes, x_scale: float) -> None:
        if len(state.shape) != 3:
            raise _unsupported(node, f"needs a (C, H, W) input, got {state.shape}")
        codes, wtype, w_scale = self.weights(node, node.input[1])
        if codes.ndim != 4:
            raise _unsupported(node, f"weights {codes.shape}: only 2-D convolutions are "
                               "supported")
        cout, _, kh, kw = codes.shape
        if _attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise _unsupported(node, "auto_pad SAME_* is not supported; export explicit pads")
        if any(d != 1 for d in _attr(node, "dilations", [1, 1])):
            raise _unsupported(node, "dilations other than 1 are not supported")
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        strides = list(_attr(node, "strides", [1, 1]))
        groups = int(_attr(node, "group", 1))
        padding = (int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3]))
        if any(padding) and state.tensor.dtype.kind == "bipolar":
            raise _unsupported(node, "zero padding of a bipolar (+-1) input has no code; use "
                               "an unpadded convolution on binary maps")
        c, h, w = state.shape
        if c != codes.shape[1] * groups:
            raise _unsupported(node, f"expects {codes.shape[1] * groups} channels, its input "
                               f"has {c}")
        name = self.ir_name(node.name)
        acc = f"{name}_acc"
        pad_value = 1 if state.tensor.dtype.kind == "bipolar" else 0   # unused if unpadded
        conv = Conv(name, [state.tensor.name], [acc], weight=codes, weight_type=wtype,
                    stride=(int(strides[0]), int(strides[1])), padding=padding,
                    pad_value=pad_value, groups=groups)
        oh, ow = window_output_hw(h, w, (kh, kw), conv.stride, padding)
        info = TensorInfo(acc, (oh, ow, cout),
                          IntType.for_range(*conv.output_range(state.tensor.dtype)))
        try:
            self.add(conv, info)
            conv.check(_Probe(self.tensors))
        except GraphError as exc:
            raise _unsupported(node, str(exc)) from None
        scale = self.row_scale(node, w_scale, cout, codes.shape)
        out = node.output[0]
        nodes: list[Any] = []
        if len(node.input) > 2 and node.input[2]:
            from onnx import helper

            bias = f"{node.name}__bias"
            self.const[bias] = np.asarray(self.const[node.input[2]],
                                          dtype=np.float32).reshape(1, cout, 1, 1)
            nodes.append(helper.make_node("Add", [f"{out}__accumulator", bias], [out],
                                          name=f"{node.name}_bias"))
        head = f"{out}__accumulator" if nodes else out
        self.states[out] = _Pending(info, x_scale * scale, (cout, oh, ow), node, head, out,
                                    nodes)

    # ---- float nodes ---------------------------------------------------------------------
    def check_constants(self, node: Any, shape: tuple[int, ...]) -> None:
        for name in node.input[1:]:
            if name and name not in self.const:
                raise _unsupported(node, f"input {name!r} must be a constant")
            if name:
                _per_channel(self.const[name], shape, f"constant {name!r}", node)

    def pending_op(self, node: Any, state: _Pending) -> None:
        op = node.op_type
        if op not in FLOAT_OPS:
            raise _unsupported(node, f"follows the float accumulator of {state.layer.name!r} "
                               "before any quantizer (quantize first: MaxPool, Reshape and "
                               "Flatten act on integer codes)")
        if node.input[0] not in self.states:
            if op in ("Sub", "Div"):
                pass       # constant - x, constant / x: the map just runs it
            elif op not in ("Mul", "Add"):
                raise _unsupported(node, "the activation must be its first input")
        if op == "BatchNormalization" and int(_attr(node, "training_mode", 0)):
            raise _unsupported(node, "training_mode=1 is not supported; export in eval mode")
        import copy

        node = copy.deepcopy(node)
        for index, name in enumerate(node.input):
            if name and name not in self.states:
                if name not in self.const:
                    raise _unsupported(node, f"input {name!r} must be a constant")
                if op == "BatchNormalization":
                    continue           # per-channel parameters by definition
                per = _per_channel(self.const[name], state.shape, f"constant {name!r}", node)
                local = f"{name}__{node.name}"
                self.const[local] = self.reduced(self.const[name], per, state.shape)
                node.input[index] = local
        state.nodes.append(node)
        state.tail = node.output[0]
        self.states[node.output[0]] = state

    def reduced(self, original: np.ndarray, per: np.ndarray, shape: tuple[int, ...]
                ) -> np.ndarray:
        """A per-channel constant shaped for [R, C] / [R, C, 1, 1] candidates."""
        arr = np.asarray(original)
        if arr.size == 1:
            return arr
        target = (1, per.size, 1, 1) if len(shape) == 3 else (1, per.size)
        return per.astype(arr.dtype).reshape(target)

    def edge_op(self, node: Any, state: _Edge) -> None:
        if node.op_type not in (*FLOAT_OPS, "Reshape", "Flatten"):
            raise _unsupported(node, "acts on the float model input before its quantizer")
        state.nodes.append(node)
        state.tail = node.output[0]
        self.states[node.output[0]] = state

    def codes_op(self, node: Any, state: _Codes) -> None:
        op = node.op_type
        out = node.output[0]
        if op == "MaxPool":
            self.max_pool(node, state)
        elif op in ("Flatten", "Reshape"):
            self.flatten(node, state)
        elif op == "Relu" and not state.tensor.dtype.signed:
            self.states[out] = state          # unsigned codes: nothing to do
        elif op in ("Mul", "Div") and node.input[0] in self.states:
            self.check_constants(node, state.shape)
            factor = _per_channel(self.const[node.input[1]], state.shape, "factor", node)
            if np.any(factor <= 0):
                raise _unsupported(node, "scales an integer tensor by a non-positive factor")
            scale = (state.scale.astype(np.float64) * factor if op == "Mul"
                     else state.scale.astype(np.float64) / factor)
            self.states[out] = _Codes(state.tensor, scale.astype(np.float32), state.shape)
        elif op in ("Add", "Sub"):
            raise _unsupported(node, "adds a constant to an integer tensor (a non-zero zero "
                               "point), which the hardware cannot take")
        else:
            raise _unsupported(node, "cannot act on an integer (quantized) tensor here")

    def max_pool(self, node: Any, state: _Codes) -> None:
        if len(state.shape) != 3:
            raise _unsupported(node, f"needs a (C, H, W) map, got {state.shape}")
        kernel = list(_attr(node, "kernel_shape", []))
        strides = list(_attr(node, "strides", kernel))
        if len(kernel) != 2 or kernel[0] != kernel[1] or len(set(strides)) != 1 \
                or any(_attr(node, "pads", [0, 0, 0, 0])) or _attr(node, "ceil_mode", 0) \
                or any(d != 1 for d in _attr(node, "dilations", [1, 1])) \
                or _attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise _unsupported(node, "only square kernels, equal strides, no padding, floor "
                               "mode and dilation 1 are supported")
        if len(node.output) > 1 and node.output[1]:
            raise _unsupported(node, "the indices output is not supported")
        c, h, w = state.shape
        k, s = int(kernel[0]), int(strides[0])
        if h < k or w < k:
            raise _unsupported(node, f"the {h}x{w} map is smaller than the {k}x{k} window")
        name = self.ir_name(node.name)
        pool = MaxPool(name, [state.tensor.name], [f"{name}_out"], kernel=k, stride=s)
        oh, ow = pool.output_hw(h, w)
        info = self.add(pool, TensorInfo(f"{name}_out", (oh, ow, c), state.tensor.dtype))
        self.states[node.output[0]] = _Codes(info, state.scale, (c, oh, ow))

    def flatten(self, node: Any, state: _Codes) -> None:
        out_shape = self.shape(node.output[0], node)
        if node.op_type == "Reshape" and node.input[1] not in self.const:
            raise _unsupported(node, "its shape input is not a constant (a dynamic shape)")
        if node.op_type == "Flatten" and int(_attr(node, "axis", 1)) != 1:
            raise _unsupported(node, "only axis=1 (flatten every frame) is supported")
        size = int(np.prod(state.shape))
        if out_shape[1:] == state.shape:
            self.states[node.output[0]] = state
            return
        if out_shape[0] != 1 or out_shape[1:] != (size,) or len(state.shape) != 3:
            raise _unsupported(node, f"reshapes {state.shape} to {out_shape[1:]}; only "
                               "flattening a (C, H, W) map is supported")
        name = self.ir_name(node.name)
        info = self.add(Flatten(name, [state.tensor.name], [f"{name}_out"]),
                        TensorInfo(f"{name}_out", (size,), state.tensor.dtype))
        c, h, w = state.shape
        scale = state.scale if state.scale.size == 1 else np.repeat(state.scale, h * w)
        self.states[node.output[0]] = _Codes(info, scale, (size,))

    # ---- the result ----------------------------------------------------------------------
    def finish(self, output: str, frame: tuple[int, ...]) -> ImportedNetwork:
        if output not in self.states:
            raise UnsupportedLayerError(f"ONNX output {output!r} does not depend on the input")
        state = self.states[output]
        if isinstance(state, _Edge) or self.input_info is None or not self.nodes:
            raise UnsupportedLayerError("the ONNX model has no weight layer to compile")
        graph = Graph(self.name, "input", state.tensor.name, dict(self.tensors),
                      list(self.nodes))
        try:
            graph.validate()
        except GraphError as exc:
            raise UnsupportedLayerError(f"the imported graph is inconsistent: {exc}") from None
        return ImportedNetwork(
            name=self.name, source="qonnx", graph=graph, input_shape=frame,
            input_codes=self.input_function(),
            output_values=self.output_function(state),
            run_source=lambda x: execute_model(self.referee, x))

    def input_function(self):
        assert self.input_edge is not None and self.input_info is not None
        nodes, last, quantizer = self.input_edge
        info = self.input_info
        chain = NodeChain(nodes, self.const, self.graph_proto.input[0].name, self.opset)

        def input_codes(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x, dtype=np.float32)
            codes = quantizer.codes(last, chain(x) if nodes else x)
            if codes.ndim == 4:
                codes = codes.transpose(0, 2, 3, 1)
            return codes.reshape((codes.shape[0], *info.shape))
        return input_codes

    def output_function(self, state: State):
        if isinstance(state, _Codes):
            scale = state.scale
            shape = state.shape

            def codes_values(outputs: np.ndarray, graph: Graph) -> np.ndarray:
                codes = np.asarray(outputs, dtype=np.int64)
                if len(shape) == 3:
                    codes = codes.reshape(-1, shape[1], shape[2], shape[0]).transpose(0, 3, 1, 2)
                    per = scale.reshape(1, -1, 1, 1) if scale.size > 1 else scale
                else:
                    per = scale
                return codes.astype(np.float32) * np.asarray(per, dtype=np.float32)
            return codes_values
        assert isinstance(state, _Pending)
        nodes, acc_scale = list(state.nodes), state.scale
        shape = state.shape
        chain = NodeChain(nodes, self.const, state.head, self.opset)

        def pending_values(outputs: np.ndarray, graph: Graph) -> np.ndarray:
            # the graph's integer output -> the dot product (popcount engines report P)
            dot = (np.asarray(outputs, dtype=np.float64) * graph.output_scale
                   + graph.output_offset)
            if len(shape) == 3:
                dot = dot.reshape(-1, shape[1], shape[2], shape[0]).transpose(0, 3, 1, 2)
                value = (dot * acc_scale.reshape(1, -1, 1, 1)).astype(np.float32)
            else:
                value = (dot * acc_scale).astype(np.float32)
            return chain(value) if nodes else value
        return pending_values


@dataclass
class _Named:
    name: str
    op_type: str


class _Probe:
    """Just enough of a graph for a node's check() during translation."""

    def __init__(self, tensors: dict[str, TensorInfo]) -> None:
        self.tensors = tensors

    def tensor(self, name: str) -> TensorInfo:
        return self.tensors[name]


def import_qonnx(source: Any, *, name: str | None = None) -> ImportedNetwork:
    """A QONNX model (path, ``onnx.ModelProto`` or QONNX ``ModelWrapper``) -> the imported
    network: IR graph with ``FloatMap``s (run :func:`codesign.passes.run_passes` on
    ``.graph``), the input quantization and the output dequantization of the model."""
    model = load_model(source)
    referee = referee_model(source)
    if name is None:
        from pathlib import Path

        name = Path(str(source)).stem if isinstance(source, (str, Path)) else "imported"
    return _Translator(model, name, referee).translate()


def from_qonnx(source: Any, *, name: str | None = None) -> Graph:
    """The IR graph of a QONNX model (the frontend entry of :data:`FRONTENDS`)."""
    return import_qonnx(source, name=name).graph
