"""The torch.ao frontend: a converted ``torch.ao.quantization`` int8 model -> the codesign IR.

Translation only. ``QuantStub`` -> the integer input (the uint8 codes torch's own
``quantize_per_tensor`` gives); every quantized ``Linear``/``Conv2d`` (plain or with a fused
ReLU) -> a ``MatVec``/``Conv`` on the raw input codes with weights w_q - w_zero (per-tensor
or per-channel), followed by a ``FloatMap`` marked ``requantize`` that computes what torch's
kernel computes from that accumulator:

    acc = sum (x_q - x_zero) * (w_q - w_zero)         (the input zero point folds into a
                                                       per-channel constant of the map)
    fbgemm, x86:  y = nearbyint(fl(fl(acc + fl(b / fl(s_x s_w))) * fl(fl(s_x s_w) / s_y)))
    qnnpack:      y = nearbyint(fl((acc + nearbyint(b / fl(s_x s_w))) * fl(fl(s_x s_w) / s_y)))
    out = clamp(y + y_zero, ReLU ? y_zero : 0, 255)

all in float32. Streamlining turns each map into integer thresholds by evaluating it, then
into the exact ``Requantize`` (multiplier, offset, shift, saturation) that reproduces every
threshold; the hardware computes only integer arithmetic. ``MaxPool2d`` is an integer max
on codes, ``Flatten`` a (C, H, W)-order ``Flatten``; ``DeQuantStub`` gives the real outputs
(torch's own ``dequantize``) for reporting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from codesign.errors import GraphError, UnsupportedLayerError
from codesign.frontends.imported import ImportedNetwork
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

ENGINES = ("fbgemm", "x86", "qnnpack")
SUPPORTED = ("QuantStub (first)", "quantized Linear", "LinearReLU", "quantized Conv2d",
             "ConvReLU2d", "ReLU (after a Linear or Conv2d)", "MaxPool2d", "Flatten",
             "DeQuantStub (last)", "Identity", "Dropout")

__all__ = ["ENGINES", "SUPPORTED", "from_torch_ao", "import_torch_ao"]


def _unsupported(path: str, module: nn.Module, why: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"torch module {path!r} ({type(module).__name__}): {why}. Supported: "
        f"{', '.join(SUPPORTED)}")


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Modules in registration order, containers (``nn.Sequential``, plain modules)
    flattened; the order of registration is the order of the forward pass."""
    children = list(module.named_children())
    if not children:
        yield prefix or type(module).__name__, module
        return
    for name, child in children:
        path = f"{prefix}.{name}" if prefix else name
        if _is_layer(child):
            yield path, child
        else:
            yield from _leaves(child, path)


def _is_layer(module: nn.Module) -> bool:
    from torch.ao.nn import quantized as nnq

    return isinstance(module, (nnq.Linear, nnq.Conv2d, nnq.Quantize, nnq.DeQuantize))


def _code_type(dtype: torch.dtype) -> IntType:
    if dtype == torch.quint8:
        return IntType.uint(8)
    if dtype == torch.qint8:
        return IntType.int_(8)
    raise UnsupportedLayerError(f"activation dtype {dtype}: quint8 or qint8 are supported")


@dataclass
class _Codes:
    tensor: TensorInfo
    scale: float
    zero: int
    shape: tuple[int, ...]
    """Per-frame torch shape: (C, H, W) or (F,)."""


def _weights(module: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """w_q - w_zero as int64 and the float32 scale of every output channel."""
    weight = module.weight()
    codes = weight.int_repr().numpy().astype(np.int64)
    out = codes.shape[0]
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        if weight.q_per_channel_axis() != 0:
            raise UnsupportedLayerError("per-channel weights must be quantized along the output "
                                        "channels (axis 0)")
        scales = weight.q_per_channel_scales().numpy().astype(np.float32)
        zeros = weight.q_per_channel_zero_points().numpy().astype(np.int64)
    else:
        scales = np.full(out, weight.q_scale(), dtype=np.float32)
        zeros = np.full(out, weight.q_zero_point(), dtype=np.int64)
    shift = zeros.reshape((out,) + (1,) * (codes.ndim - 1))
    return codes - shift, scales


def requantization_map(engine: str, rowsum: np.ndarray, x_zero: int, x_scale: float,
                       w_scale: np.ndarray, bias: np.ndarray | None, y_scale: float,
                       y_zero: int, relu: bool, out_type: IntType):
    """[R, C] raw accumulators (sum x_q * w) -> [R, C] output codes, as torch's kernel."""
    ws = (np.float32(x_scale) * w_scale.astype(np.float32)).astype(np.float32)
    multiplier = (ws / np.float32(y_scale)).astype(np.float32)
    b = np.zeros_like(ws) if bias is None else bias.astype(np.float32)
    correction = np.int64(x_zero) * rowsum.astype(np.int64)
    lo = max(y_zero, out_type.min) if relu else out_type.min
    hi = out_type.max

    def evaluate(raw: np.ndarray) -> np.ndarray:
        acc = np.rint(np.asarray(raw, dtype=np.float64)).astype(np.int64) - correction
        if engine == "qnnpack":
            b_q = np.rint(b / ws).astype(np.int64)
            value = ((acc + b_q).astype(np.float32) * multiplier).astype(np.float32)
        else:
            shifted = (acc.astype(np.float32) + (b / ws).astype(np.float32)).astype(np.float32)
            value = (shifted * multiplier).astype(np.float32)
        return np.clip(np.rint(value).astype(np.int64) + y_zero, lo, hi)
    return evaluate


class _Translator:
    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], engine: str,
                 name: str) -> None:
        self.model, self.input_shape, self.engine, self.name = model, input_shape, engine, name
        self.tensors: dict[str, TensorInfo] = {}
        self.nodes: list[Node] = []
        self.counts: dict[str, int] = {}
        self.state: _Codes | None = None
        self.input_quant: tuple[float, int, torch.dtype] | None = None
        self.last_map: FloatMap | None = None
        self.dequantized = False

    def next_name(self, prefix: str) -> str:
        index = self.counts.get(prefix, 0)
        self.counts[prefix] = index + 1
        return f"{prefix}{index}"

    def add(self, node: Node, info: TensorInfo) -> TensorInfo:
        self.tensors[info.name] = info
        self.nodes.append(node)
        return info

    def translate(self) -> ImportedNetwork:
        from torch.ao.nn import quantized as nnq
        from torch.ao.nn.intrinsic import quantized as nniq

        for path, module in _leaves(self.model):
            if self.dequantized:
                raise _unsupported(path, module, "follows DeQuantStub; the network must end "
                                   "with it (float layers are not compiled)")
            if isinstance(module, (nn.Identity, nn.Dropout)):
                continue
            if isinstance(module, nnq.Quantize):
                self.quantize_input(path, module)
                continue
            if self.state is None:
                raise _unsupported(path, module, "comes before the QuantStub; the network must "
                                   "start with a converted QuantStub")
            if isinstance(module, nnq.DeQuantize):
                self.dequantized = True
            elif isinstance(module, (nnq.Linear, nnq.Conv2d)):
                relu = isinstance(module, (nniq.LinearReLU, nniq.ConvReLU2d))
                self.layer(path, module, relu)
            elif isinstance(module, nn.ReLU):
                self.relu(path, module)
            elif isinstance(module, nn.MaxPool2d):
                self.max_pool(path, module)
            elif isinstance(module, nn.Flatten):
                self.flatten(path, module)
            else:
                raise _unsupported(path, module, "unsupported module")
        if self.state is None or not any(isinstance(n, MatVec | Conv) for n in self.nodes):
            raise UnsupportedLayerError(f"model {type(self.model).__name__} has no quantized "
                                        "Linear or Conv2d to compile")
        graph = Graph(self.name, "input", self.state.tensor.name, dict(self.tensors),
                      list(self.nodes))
        graph.validate()
        return ImportedNetwork(self.name, "torch_ao", graph, self.input_shape,
                               self.input_function(), self.output_function(), self.run_source)

    def quantize_input(self, path: str, module: nn.Module) -> None:
        if self.state is not None:
            raise _unsupported(path, module, "a second QuantStub (re-quantization between "
                               "layers) is not supported")
        scale, zero = float(module.scale), int(module.zero_point)
        dtype = _code_type(module.dtype)
        shape = self.input_shape
        if len(shape) == 3:
            ir_shape: tuple[int, ...] = (shape[1], shape[2], shape[0])
        elif len(shape) == 1:
            ir_shape = shape
        else:
            raise _unsupported(path, module, f"input shape {shape}: (C, H, W) or (F,) frames "
                               "are supported")
        info = TensorInfo("input", ir_shape, dtype)
        self.tensors["input"] = info
        self.input_quant = (scale, zero, module.dtype)
        self.state = _Codes(info, scale, zero, shape)

    def layer(self, path: str, module: nn.Module, relu: bool) -> None:
        from torch.ao.nn import quantized as nnq

        state = self.state
        assert state is not None
        weight, w_scale = _weights(module)
        out_scale, out_zero = float(module.scale), int(module.zero_point)
        out_type = _code_type(torch.quint8)          # static int8 layers give quint8
        wtype = IntType.for_range(int(min(weight.min(), 0)), int(max(weight.max(), 0)))
        bias = module.bias()
        bias_np = None if bias is None else bias.detach().numpy().astype(np.float32)
        if isinstance(module, nnq.Conv2d):
            node, acc_info, shape = self.conv(path, module, weight, wtype, state)
            rowsum = weight.reshape(weight.shape[0], -1).sum(axis=1)
        else:
            if len(state.shape) != 1 or state.shape[0] != module.in_features:
                raise _unsupported(path, module, f"expects {module.in_features} features, its "
                                   f"input has shape {state.shape}")
            name = self.next_name("fc")
            node = MatVec(name, [state.tensor.name], [f"{name}_acc"], weight=weight,
                          weight_type=wtype)
            acc_info = TensorInfo(f"{name}_acc", (weight.shape[0],),
                                  IntType.for_range(*node.output_range(state.tensor.dtype)))
            shape = (weight.shape[0],)
            rowsum = weight.sum(axis=1)
        lo, hi = node.output_range(state.tensor.dtype)
        if max(abs(lo), abs(hi)) + abs(state.zero) * int(np.abs(rowsum).max()) >= 1 << 31:
            raise _unsupported(path, module, "its accumulator could exceed the 32 bits of "
                               "torch's int8 kernels")
        self.add(node, acc_info)
        evaluate = requantization_map(self.engine, rowsum, state.zero, state.scale, w_scale,
                                      bias_np, out_scale, out_zero, relu, out_type)
        act = self.next_name("rq")
        info = TensorInfo(f"{act}_out", acc_info.shape, out_type)
        fmap = FloatMap(act, [acc_info.name], [info.name], evaluate=evaluate, out_type=out_type,
                        description=f"torch.ao {self.engine} requantization of {path}"
                                    f"{' with ReLU' if relu else ''}", requantize=True)
        self.add(fmap, info)
        self.last_map = fmap
        self.layer_params = (self.engine, rowsum, state.zero, state.scale, w_scale, bias_np,
                             out_scale, out_zero, out_type)
        self.state = _Codes(info, out_scale, out_zero, shape)

    def conv(self, path: str, module: nn.Module, weight: np.ndarray, wtype: IntType,
             state: _Codes) -> tuple[Conv, TensorInfo, tuple[int, ...]]:
        if len(state.shape) != 3:
            raise _unsupported(path, module, f"needs a (C, H, W) input, got {state.shape}")
        if module.padding_mode != "zeros" or tuple(module.dilation) != (1, 1):
            raise _unsupported(path, module, "only zero padding and dilation 1 are supported")
        padding = module.padding
        if isinstance(padding, str):
            raise _unsupported(path, module, f"padding={padding!r}: give explicit padding")
        ph, pw = int(padding[0]), int(padding[1])
        c, h, w = state.shape
        if c != module.in_channels:
            raise _unsupported(path, module, f"expects {module.in_channels} channels, its "
                               f"input has {c}")
        kh, kw = weight.shape[2], weight.shape[3]
        name = self.next_name("conv")
        # zero padding in real numbers is the input zero point in codes
        node = Conv(name, [state.tensor.name], [f"{name}_acc"], weight=weight,
                    weight_type=wtype, stride=tuple(int(s) for s in module.stride),
                    padding=(ph, pw, ph, pw), pad_value=state.zero, groups=module.groups)
        oh, ow = window_output_hw(h, w, (kh, kw), node.stride, node.padding)
        info = TensorInfo(f"{name}_acc", (oh, ow, weight.shape[0]),
                          IntType.for_range(*node.output_range(state.tensor.dtype)))
        try:
            node.check(_Tensors({**self.tensors, info.name: info}))
        except GraphError as exc:
            raise _unsupported(path, module, str(exc)) from None
        return node, info, (weight.shape[0], oh, ow)

    def relu(self, path: str, module: nn.Module) -> None:
        """ReLU on codes is a clamp at the zero point: the previous map absorbs it."""
        if self.last_map is None or self.nodes[-1] is not self.last_map:
            raise _unsupported(path, module, "must follow a quantized Linear or Conv2d (fuse "
                               "it, or place it right after one)")
        engine, rowsum, zx, sx, sw, bias, so, zo, out_type = self.layer_params
        self.last_map.evaluate = requantization_map(engine, rowsum, zx, sx, sw, bias, so, zo,
                                                    True, out_type)
        self.last_map.description += " with ReLU"

    def max_pool(self, path: str, module: nn.MaxPool2d) -> None:
        state = self.state
        assert state is not None
        k, s = module.kernel_size, module.stride
        k = k[0] if isinstance(k, tuple) else k
        s = s[0] if isinstance(s, tuple) else s
        if module.padding not in (0, (0, 0)) or module.dilation not in (1, (1, 1)) \
                or module.ceil_mode or len(state.shape) != 3:
            raise _unsupported(path, module, "only square windows on (C, H, W) maps without "
                               "padding, dilation 1, floor mode are supported")
        c, h, w = state.shape
        name = self.next_name("pool")
        pool = MaxPool(name, [state.tensor.name], [f"{name}_out"], kernel=int(k), stride=int(s))
        oh, ow = pool.output_hw(h, w)
        info = self.add(pool, TensorInfo(f"{name}_out", (oh, ow, c), state.tensor.dtype))
        self.state = _Codes(info, state.scale, state.zero, (c, oh, ow))
        self.last_map = None

    def flatten(self, path: str, module: nn.Flatten) -> None:
        state = self.state
        assert state is not None
        if module.start_dim != 1 or module.end_dim != -1:
            raise _unsupported(path, module, "only Flatten(1, -1) is supported")
        if len(state.shape) == 1:
            return
        name = self.next_name("flatten")
        size = int(np.prod(state.shape))
        info = self.add(Flatten(name, [state.tensor.name], [f"{name}_out"]),
                        TensorInfo(f"{name}_out", (size,), state.tensor.dtype))
        self.state = _Codes(info, state.scale, state.zero, (size,))
        self.last_map = None

    # ---- edges ---------------------------------------------------------------------------
    def input_function(self):
        assert self.input_quant is not None
        scale, zero, dtype = self.input_quant
        shape = self.input_shape

        def input_codes(x: np.ndarray) -> np.ndarray:
            t = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1, *shape)
            codes = torch.quantize_per_tensor(t, scale, zero, dtype).int_repr().numpy()
            codes = codes.astype(np.int64)
            return codes.transpose(0, 2, 3, 1) if codes.ndim == 4 else codes
        return input_codes

    def output_function(self):
        state = self.state
        assert state is not None
        scale, zero, shape = state.scale, state.zero, state.shape

        def output_values(outputs: np.ndarray, graph: Graph) -> np.ndarray:
            codes = np.asarray(outputs, dtype=np.int64)
            if len(shape) == 3:
                codes = codes.reshape(-1, shape[1], shape[2], shape[0]).transpose(0, 3, 1, 2)
            q = torch._make_per_tensor_quantized_tensor(
                torch.as_tensor(codes.astype(np.uint8)), scale, zero)
            return q.dequantize().numpy()
        return output_values

    def run_source(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1, *self.input_shape)
            out = self.model(t)
        if out.is_quantized:
            out = out.dequantize()
        return out.numpy()


class _Tensors:
    """Just enough of a graph for a node's check() during translation."""

    def __init__(self, tensors: dict[str, TensorInfo]) -> None:
        self.tensors = tensors

    def tensor(self, name: str) -> TensorInfo:
        return self.tensors[name]


def import_torch_ao(model: nn.Module, input_shape: tuple[int, ...], *,
                    engine: str | None = None, name: str = "torch-ao") -> ImportedNetwork:
    """A converted torch.ao int8 model (eval mode, ``torch.ao.quantization.convert`` done)
    and its per-frame input shape ((C, H, W) or (F,)) -> the imported network.

    ``engine`` is the quantized engine the model was converted for and runs on
    (default: ``torch.backends.quantized.engine``): fbgemm, x86 or qnnpack.
    """
    engine = engine or torch.backends.quantized.engine
    if engine not in ENGINES:
        raise UnsupportedLayerError(f"quantized engine {engine!r}: supported engines are "
                                    f"{', '.join(ENGINES)}")
    if model.training:
        raise UnsupportedLayerError(f"model {type(model).__name__} is in training mode; call "
                                    ".eval() and torch.ao.quantization.convert first")
    return _Translator(model, tuple(int(d) for d in input_shape), engine, name).translate()


def from_torch_ao(model: nn.Module, input_shape: tuple[int, ...], **kwargs) -> Graph:
    """The IR graph of a converted torch.ao model (the frontend entry of FRONTENDS)."""
    return import_torch_ao(model, input_shape, **kwargs).graph
