"""The quant_models frontend: a sequential PyTorch network -> the codesign IR.

The frontend only translates; it never approximates and never lowers. Every weight layer is
read through the :class:`quant_models.protocol.IntegerLayer` protocol: its exact integer
weights become a ``MatVec`` (linear) or a ``Conv`` (convolution) node with their exact type
(bipolar, ternary, intN). Whatever float arithmetic sits between a layer's integer
accumulator and the next integer activation (weight and input scales, batch-norm, ReLU, the
activation quantizer) is captured as a ``FloatMap`` that calls the model's own modules, so
streamlining can fold it into integer thresholds that reproduce torch's float rounding
exactly. ``nn.Flatten`` of an image becomes a ``Flatten`` node in torch's (C, H, W) order.
Anything it does not understand is refused with the module's path and the list of what is
supported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from codesign.errors import GraphError, UnsupportedLayerError
from codesign.ir import (
    Codebook,
    Conv,
    Flatten,
    FloatMap,
    Graph,
    IntType,
    MatVec,
    MaxPool,
    Node,
    Requantize,
    TensorInfo,
    window_output_hw,
)

SUPPORTED = ("IntegerInput (first)", "BinaryLinear", "TernaryLinear", "QuantLinear",
             "SharedLinear", "BinaryConv2d", "TernaryConv2d", "QuantConv2d", "SharedConv2d",
             "BatchNorm1d", "BatchNorm2d",
             "ReLU", "SignActivation", "QuantAct", "Requant", "MaxPool2d (after an activation)",
             "Flatten", "LogitScale (last)", "Identity", "Dropout")


def _modules_in_order(model: nn.Module) -> list[tuple[str, nn.Module]]:
    body = getattr(model, "layers", model)
    if isinstance(body, nn.Sequential):
        prefix = "layers." if body is not model else ""
        return [(f"{prefix}{name}", module) for name, module in body.named_children()]
    children = list(model.named_children())
    return children or [("", model)]


def _unsupported(path: str, module: nn.Module, why: str = "") -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"layer {path!r} ({type(module).__name__}) cannot be lowered{': ' + why if why else ''}."
        f" Supported layers: {', '.join(SUPPORTED)}")


def _int_type(bits: int, is_signed: bool) -> IntType:
    return IntType.int_(bits) if is_signed else IntType.uint(bits)


def _is_weight_layer(module: nn.Module) -> bool:
    from quant_models.protocol import IntegerLayer

    return isinstance(module, (nn.Linear, nn.Conv2d)) and isinstance(module, IntegerLayer)


def _codebook(path: str, module: nn.Module) -> Codebook | None:
    """The table a shared layer states (:class:`quant_models.protocol.SharedWeightLayer`)."""
    from quant_models.protocol import SharedWeightLayer

    if not isinstance(module, SharedWeightLayer):
        return None
    values, index_bits = module.weight_codebook()
    try:
        return Codebook(tuple(values), int(index_bits))
    except GraphError as exc:
        raise _unsupported(path, module, str(exc)) from None


def _integer_weights(module: nn.Module) -> tuple[np.ndarray, IntType, float]:
    """Integer weights as stored, their exact type, and the per-tensor scale of the
    accumulator (NaN for per-channel scales, which the output layer refuses)."""
    w_int, scale = module.integer_weight()
    weight = torch.as_tensor(w_int).cpu().numpy().astype(np.int64)
    kind = module.weight_kind()
    values = set(np.unique(weight).tolist())
    if kind == "bipolar":
        wtype = IntType.bipolar()
    elif kind == "ternary" and values <= {-1, 0, 1}:
        wtype = IntType.ternary()
    else:   # k-bit integers, or TTQ's asymmetric levels {2^f, 0, -R}
        wtype = IntType.for_range(int(min(weight.min(), 0)), int(max(weight.max(), 0)))
    scale_t = torch.as_tensor(scale)
    per_tensor = float(scale_t.reshape(-1)[0]) if scale_t.numel() == 1 else float("nan")
    input_scale = module.input_scale()
    if input_scale is not None and not np.isnan(per_tensor):
        per_tensor *= float(input_scale.detach())
    return weight, wtype, per_tensor


def _float_map(post: Callable, modules: list[nn.Module], spatial: bool
               ) -> Callable[[np.ndarray], np.ndarray]:
    """[R, C] accumulators -> [R, C] activations through the model's own modules (as
    [R, C, 1, 1] images for a convolution, so 2-D batch-norm and per-channel scales apply)."""
    def evaluate(acc: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            value = torch.as_tensor(np.asarray(acc, dtype=np.float32))
            if spatial:
                value = value[:, :, None, None]
            value = post(value)
            for module in modules:
                value = module(value)
            return value.reshape(acc.shape).numpy()
    return evaluate


@dataclass
class _Accumulator:
    """A weight layer's integer output waiting for its activation quantizer."""

    path: str
    module: nn.Module
    per_tensor_scale: float
    float_ops: list[nn.Module] = field(default_factory=list)


class _Builder:
    """The graph under construction: tensors, nodes and names."""

    def __init__(self) -> None:
        self.tensors: dict[str, TensorInfo] = {}
        self.nodes: list[Node] = []
        self.counts: dict[str, int] = {}

    def tensor(self, name: str, shape: tuple[int, ...], dtype: IntType) -> TensorInfo:
        info = TensorInfo(name, tuple(shape), dtype)
        self.tensors[name] = info
        return info

    def next_name(self, prefix: str) -> str:
        index = self.counts.get(prefix, 0)
        self.counts[prefix] = index + 1
        return f"{prefix}{index}"

    def add(self, node: Node) -> TensorInfo:
        self.nodes.append(node)
        return self.tensors[node.output]


def _input_shape(model: nn.Module, modules: list[tuple[str, nn.Module]], index: int,
                 path: str, module: nn.Module) -> tuple[int, ...]:
    image = getattr(model, "input_shape", None)
    if image is not None and len(image) == 3:
        channels, height, width = image
        return height, width, channels              # the IR and the stream are HWC
    following = next((m for _, m in modules[index + 1:] if _is_weight_layer(m)), None)
    if isinstance(following, nn.Linear):
        return (following.in_features,)
    raise _unsupported(path, module, "cannot infer the input shape; pass input_shape "
                       "(H, W, C for images)")


def _weight_layer(b: _Builder, name: str, path: str, module: nn.Module, current: TensorInfo
                  ) -> tuple[TensorInfo, float]:
    """A linear layer -> MatVec, a convolution -> Conv (node ``name``); returns its
    accumulator and scale."""
    if getattr(module, "bias", None) is not None:
        raise _unsupported(path, module, "a bias is not supported")
    weight, wtype, per_tensor = _integer_weights(module)
    codebook = _codebook(path, module)
    if codebook is not None:
        wtype = IntType.for_range(min(codebook.values), max(codebook.values))
    if isinstance(module, nn.Conv2d):
        if len(current.shape) != 3:
            raise _unsupported(path, module, f"needs an (H, W, C) map, the previous layer "
                               f"gives shape {current.shape}")
        if current.shape[2] != module.in_channels:
            raise _unsupported(path, module, f"expects {module.in_channels} channels, the "
                               f"input has {current.shape[2]}")
        if wtype.kind == "bipolar" and module.groups > 1:
            raise _unsupported(path, module, "a grouped binary convolution has zeros a bipolar "
                               "weight cannot hold; use a ternary or fixed-point one")
        pad_value = int(module.pad_value)
        if not current.dtype.contains(np.array([pad_value])):
            raise _unsupported(path, module, f"pad value {pad_value} is not a {current.dtype} "
                               "value (bipolar maps pad with +1 or -1)")
        (kh, kw), (sh, sw) = module.kernel_size, module.stride
        ph, pw = int(module.padding[0]), int(module.padding[1])
        height, width, _ = current.shape
        if height + 2 * ph < kh or width + 2 * pw < kw:
            raise _unsupported(path, module, f"the {height}x{width} feature map is smaller "
                               f"than the {kh}x{kw} kernel")
        padding = (ph, pw, ph, pw)
        node: Node = Conv(name, [current.name], [f"{name}_acc"], weight=weight,
                          weight_type=wtype, stride=(sh, sw), padding=padding,
                          pad_value=pad_value, groups=module.groups, codebook=codebook)
        oh, ow = window_output_hw(height, width, (kh, kw), (sh, sw), padding)
        shape: tuple[int, ...] = (oh, ow, module.out_channels)
        acc_range = node.output_range(current.dtype)
    else:
        if current.shape != (module.in_features,):
            raise _unsupported(path, module, f"expects {module.in_features} inputs, the "
                               f"previous layer gives shape {current.shape}")
        node = MatVec(name, [current.name], [f"{name}_acc"], weight=weight, weight_type=wtype,
                      codebook=codebook)
        shape = (module.out_features,)
        acc_range = node.output_range(current.dtype)
    b.tensor(f"{name}_acc", shape, IntType.for_range(*acc_range))
    return b.add(node), per_tensor


def from_quant_model(model: nn.Module, *, name: str = "network",
                     input_shape: tuple[int, ...] | None = None,
                     input_type: IntType | None = None) -> Graph:
    """Translate a quant_models network (in eval mode) into an IR graph with ``FloatMap``s.

    Run the pass pipeline (:func:`codesign.passes.run_passes`) on the result to get the
    integer-only graph the reference and the hardware execute.
    """
    from quant_models.fixed_point import QuantAct, Requant
    from quant_models.layers import IntegerInput, LogitScale, SignActivation
    from quant_models.structure import weight_layer_names

    if model.training:
        raise UnsupportedLayerError(f"model {type(model).__name__} is in training mode; call "
                                    ".eval() first (batch-norm and quantizers must use their "
                                    "frozen statistics and scales)")
    modules = [(p, m) for p, m in _modules_in_order(model)
               if not isinstance(m, (nn.Identity, nn.Dropout))]
    layer_names = weight_layer_names([(p, m) for p, m in modules if _is_weight_layer(m)])
    b = _Builder()
    current: TensorInfo | None = None
    if input_type is not None and input_shape is not None:
        current = b.tensor("input", tuple(input_shape), input_type)
    output_scale = 1.0
    pending: _Accumulator | None = None

    for index, (path, module) in enumerate(modules):
        if isinstance(module, IntegerInput):
            if current is not None:
                raise _unsupported(path, module, "IntegerInput must be the first layer")
            shape = (tuple(input_shape) if input_shape is not None
                     else _input_shape(model, modules, index, path, module))
            current = b.tensor("input", shape, _int_type(module.bits, module.signed))
            continue
        if current is None:
            raise _unsupported(path, module, "the network must start with IntegerInput (or pass "
                               "input_type and input_shape) so the input's integer type is known")
        if output_scale != 1.0:
            raise _unsupported(path, module, "LogitScale must be the last layer")
        if isinstance(module, nn.Flatten):
            if len(current.shape) == 3:
                name_ = b.next_name("flatten")
                b.tensor(f"{name_}_out", (current.size,), current.dtype)
                current = b.add(Flatten(name_, [current.name], [f"{name_}_out"]))
            continue
        if _is_weight_layer(module):
            if pending is not None:
                raise _unsupported(path, module, "the previous layer's accumulator has no "
                                   "activation quantizer (SignActivation, QuantAct or Requant)")
            current, scale = _weight_layer(b, layer_names[path], path, module, current)
            pending = _Accumulator(path, module, scale)
            continue
        if isinstance(module, nn.MaxPool2d):
            if pending is not None:
                raise _unsupported(path, module, "max-pool must follow the activation "
                                   "quantizer (it then is an integer max on the codes)")
            k, stride = module.kernel_size, module.stride
            if (isinstance(k, tuple) and k[0] != k[1]) or module.padding not in (0, (0, 0)) \
                    or module.dilation not in (1, (1, 1)) or module.ceil_mode:
                raise _unsupported(path, module, "only square kernels, no padding, dilation 1 "
                                   "and floor mode are supported")
            k = k[0] if isinstance(k, tuple) else k
            stride = stride[0] if isinstance(stride, tuple) else stride
            if len(current.shape) != 3 or min(current.shape[:2]) < k:
                raise _unsupported(path, module, f"needs an (H, W, C) map of at least {k}x{k},"
                                   f" got {current.shape}")
            node = MaxPool(b.next_name("pool"), [current.name], [], kernel=k, stride=stride)
            node.outputs = [f"{node.name}_out"]
            h, w, c = current.shape
            b.tensor(node.output, (*node.output_hw(h, w), c), current.dtype)
            current = b.add(node)
            continue
        if pending is None:
            raise _unsupported(path, module, "only follows a linear layer's accumulator")
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU)):
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and \
                    module.num_features != current.shape[-1]:
                raise _unsupported(path, module, f"has {module.num_features} channels, the "
                                   f"accumulator has {current.shape[-1]}")
            pending.float_ops.append(module)
        elif isinstance(module, (SignActivation, QuantAct)):
            out_type = (IntType.bipolar() if isinstance(module, SignActivation)
                        else _int_type(module.bits, module.signed))
            node_name = b.next_name("act")
            ops = [*pending.float_ops, module]
            described = " -> ".join(["acc", f"{type(pending.module).__name__} scale"]
                                    + [type(m).__name__ for m in ops])
            b.tensor(f"{node_name}_out", current.shape, out_type)
            current = b.add(FloatMap(node_name, [current.name], [f"{node_name}_out"],
                                     evaluate=_float_map(pending.module.scale_accumulator, ops,
                                                         len(current.shape) == 3),
                                     out_type=out_type, description=described))
            pending = None
        elif isinstance(module, Requant):
            if pending.float_ops or pending.per_tensor_scale != 1.0 or \
                    pending.module.input_scale() is not None:
                raise _unsupported(path, module, "Requant must read the raw integer accumulator "
                                   "(a layer without float scales, nothing in between)")
            out_type = _int_type(module.bits, module.signed)
            node_name = b.next_name("rq")
            b.tensor(f"{node_name}_out", current.shape, out_type)
            current = b.add(Requantize(node_name, [current.name], [f"{node_name}_out"],
                                       multiplier=np.array([module.multiplier], dtype=np.int64),
                                       shift=module.shift, out_type=out_type,
                                       saturate=(module.min_value, module.max_value)))
            pending = None
        elif isinstance(module, LogitScale):
            output_scale = module.scale
            if not output_scale > 0:
                raise _unsupported(path, module, f"scale {output_scale} must be positive")
        else:
            raise _unsupported(path, module)

    if current is None or not b.nodes:
        raise UnsupportedLayerError(f"model {type(model).__name__} has no layer to lower")
    scale = 1.0
    if pending is not None:
        if pending.float_ops:
            raise UnsupportedLayerError(f"the output layer is followed by "
                                        f"{type(pending.float_ops[0]).__name__} without a "
                                        "quantizer; an output layer must give integer scores")
        if np.isnan(pending.per_tensor_scale):
            raise UnsupportedLayerError(f"layer {pending.path!r}: the output layer has "
                                        "per-channel scales, which change the argmax of its "
                                        "integer scores; use a per-tensor scale for the last "
                                        "layer")
        scale = pending.per_tensor_scale
    return Graph(name, "input", current.name, b.tensors, b.nodes,
                 output_scale=scale * output_scale)
