"""Frontend: a quant_models network -> the codesign IR.

The frontend only translates; it never approximates. Quantized weights become exact
integer matrices with their exact type (bipolar, ternary, intN). Whatever float arithmetic
sits between a layer's integer accumulator and the next integer activation (weight and
input scales, batch-norm, ReLU, the activation quantizer) is captured as a ``FloatMap``
that calls the model's own modules, so streamlining can fold it into integer thresholds
that reproduce torch's float rounding exactly. Anything it does not understand is refused
with the module's path and the list of what is supported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from codesign.errors import UnsupportedLayerError
from codesign.ir import (
    FloatMap,
    Graph,
    IntType,
    MatVec,
    MaxPool,
    Requantize,
    Reshape,
    SlidingWindow,
    TensorInfo,
)

SUPPORTED = ("IntegerInput (first)", "BinaryLinear", "TernaryLinear", "QuantLinear",
             "BinaryConv2d", "TernaryConv2d", "QuantConv2d", "BatchNorm1d", "BatchNorm2d",
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


def conv_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """torch conv weights [Cout, Cin/groups, kh, kw] -> [Cout, kh*kw*Cin], window order
    (ky, kx, c); a grouped (e.g. depthwise) convolution becomes a block matrix whose zeros
    a sparse engine skips."""
    cout, cin_g, kh, kw = weight.shape
    cin = cin_g * groups
    matrix = np.zeros((cout, kh, kw, cin), dtype=np.int64)
    per_group = cout // groups
    for o in range(cout):
        g = o // per_group
        matrix[o, :, :, g * cin_g:(g + 1) * cin_g] = weight[o].transpose(1, 2, 0)
    return matrix.reshape(cout, kh * kw * cin)


def _weights(path: str, module: nn.Module) -> tuple[np.ndarray, IntType, Callable | None, float]:
    """Integer weights, their type, the post-accumulator float op, and a per-tensor scale."""
    from quant_models.conv import BinaryConv2d, IntegerConv2d, TernaryConv2d
    from quant_models.fixed_point import IntegerLinear
    from quant_models.layers import BinaryLinear
    from quant_models.ternary import TernaryLinear

    if isinstance(module, (BinaryLinear, BinaryConv2d)):
        weight = module.binary_weight().detach().cpu().numpy()
        weight = np.where(weight >= 0, 1, -1).astype(np.int64)
        if weight.ndim == 4:
            weight = conv_matrix(weight, module.groups)
            if module.groups > 1:
                raise _unsupported(path, module, "a grouped binary convolution has zeros a "
                                   "bipolar weight cannot hold; use a ternary or fixed-point "
                                   "one")
        return weight, IntType.bipolar(), None, 1.0
    if isinstance(module, (IntegerLinear, IntegerConv2d)):
        w_int, scale = module.integer_weight()
        weight = w_int.cpu().numpy().astype(np.int64)
        if weight.ndim == 4:
            weight = conv_matrix(weight, module.groups)
        values = set(np.unique(weight).tolist())
        if isinstance(module, (TernaryLinear, TernaryConv2d)) and values <= {-1, 0, 1}:
            wtype = IntType.ternary()
        else:
            wtype = IntType.for_range(int(min(weight.min(), 0)), int(max(weight.max(), 0)))
        scale_t = torch.as_tensor(scale)
        per_tensor = float(scale_t.reshape(-1)[0]) if scale_t.numel() == 1 else float("nan")
        input_scale = module.input_scale()
        if input_scale is not None and not np.isnan(per_tensor):
            per_tensor *= float(input_scale.detach())
        return weight, wtype, module.scale_accumulator, per_tensor
    raise _unsupported(path, module)


def _float_map(post: Callable | None, modules: list[nn.Module], spatial: bool
               ) -> Callable[[np.ndarray], np.ndarray]:
    """[R, C] accumulators -> [R, C] activations through the model's own modules (as
    [R, C, 1, 1] images for a convolution, so 2-D batch-norm and per-channel scales apply)."""
    def evaluate(acc: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            value = torch.as_tensor(np.asarray(acc, dtype=np.float32))
            if spatial:
                value = value[:, :, None, None]
            if post is not None:
                value = post(value)
            for module in modules:
                value = module(value)
            return value.reshape(acc.shape).numpy()
    return evaluate


def from_quant_model(model: nn.Module, *, name: str = "network",
                     input_shape: tuple[int, ...] | None = None,
                     input_type: IntType | None = None) -> Graph:
    """Lower a quant_models network (in eval mode) to an IR graph with ``FloatMap`` nodes.

    Run :func:`codesign.passes.streamline` on the result to get the integer-only graph the
    reference and the hardware execute.
    """
    from quant_models.conv import BinaryConv2d, IntegerConv2d
    from quant_models.fixed_point import IntegerLinear, QuantAct, Requant
    from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation

    if model.training:
        raise UnsupportedLayerError(f"model {type(model).__name__} is in training mode; call "
                                    ".eval() first (batch-norm and quantizers must use their "
                                    "frozen statistics and scales)")
    modules = [(p, m) for p, m in _modules_in_order(model)
               if not isinstance(m, (nn.Identity, nn.Dropout))]
    tensors: dict[str, TensorInfo] = {}
    nodes: list = []
    current: TensorInfo | None = None
    if input_type is not None and input_shape is not None:
        current = TensorInfo("input", tuple(input_shape), input_type)
        tensors["input"] = current
    output_scale = 1.0
    pending: tuple[str, float] | None = None  # last MatVec output awaiting a quantizer
    float_ops: list[nn.Module] = []
    post: Callable | None = None
    flatten_from: tuple[int, ...] | None = None
    linear_types = (BinaryLinear, IntegerLinear, BinaryConv2d, IntegerConv2d)

    def add_tensor(tensor_name: str, shape: tuple[int, ...], dtype: IntType) -> TensorInfo:
        info = TensorInfo(tensor_name, shape, dtype)
        tensors[tensor_name] = info
        return info

    for index, (path, module) in enumerate(modules):
        if isinstance(module, IntegerInput):
            if current is not None:
                raise _unsupported(path, module, "IntegerInput must be the first layer")
            nxt = next((m for _, m in modules[index + 1:] if isinstance(m, linear_types)), None)
            image = getattr(model, "input_shape", None)
            if input_shape is not None:
                shape = tuple(input_shape)
            elif image is not None and len(image) == 3:
                channels, height, width = image
                shape = (height, width, channels)      # the IR and the stream are HWC
            elif isinstance(nxt, nn.Linear):
                shape = (nxt.in_features,)
            else:
                raise _unsupported(path, module, "cannot infer the input shape; pass "
                                   "input_shape (H, W, C for images)")
            current = add_tensor("input", shape, _int_type(module.bits, module.signed))
            continue
        if current is None:
            raise _unsupported(path, module, "the network must start with IntegerInput (or pass "
                               "input_type and input_shape) so the input's integer type is known")
        if isinstance(module, nn.Flatten):
            if len(current.shape) == 3:
                # torch flattens (C, H, W); the stream is (H, W, C): the next layer's weight
                # columns are permuted to match, so nothing moves in hardware
                flatten_from = current.shape
                out = add_tensor(f"flat{len(nodes)}", (current.size,), current.dtype)
                nodes.append(Reshape(f"flatten{len(nodes)}", [current.name], [out.name]))
                current = out
            continue
        if output_scale != 1.0:
            raise _unsupported(path, module, "LogitScale must be the last layer")
        if isinstance(module, linear_types):
            if pending is not None:
                raise _unsupported(path, module, "the previous layer's accumulator has no "
                                   "activation quantizer (SignActivation, QuantAct or Requant)")
            if getattr(module, "bias", None) is not None:
                raise _unsupported(path, module, "a bias is not supported")
            weight, wtype, post, per_tensor = _weights(path, module)
            if isinstance(module, nn.Conv2d):
                if len(current.shape) != 3:
                    raise _unsupported(path, module, f"needs an (H, W, C) map, the previous "
                                       f"layer gives shape {current.shape}")
                if current.shape[2] != module.in_channels:
                    raise _unsupported(path, module, f"expects {module.in_channels} channels, "
                                       f"the input has {current.shape[2]}")
                (kh, kw), (sh, sw) = module.kernel_size, module.stride
                ph, pw = int(module.padding[0]), int(module.padding[1])
                window = SlidingWindow(f"swg{len(nodes)}", [current.name], [],
                                       kernel=(kh, kw), stride=(sh, sw),
                                       padding=(ph, pw, ph, pw), pad_value=module.pad_value)
                if not current.dtype.contains(np.array([module.pad_value])):
                    raise _unsupported(path, module, f"pad value {module.pad_value} is not a "
                                       f"{current.dtype} value (bipolar maps pad with +1 or -1)")
                height, width, channels = current.shape
                if height + 2 * ph < kh or width + 2 * pw < kw:
                    raise _unsupported(path, module, f"the {height}x{width} feature map is "
                                       f"smaller than the {kh}x{kw} kernel")
                oh, ow = window.output_hw(height, width)
                win = add_tensor(f"{window.name}_out", (oh, ow, kh * kw * channels),
                                 current.dtype)
                window.outputs = [win.name]
                nodes.append(window)
                current, out_shape = win, (oh, ow, module.out_channels)
            else:
                if current.shape != (module.in_features,):
                    raise _unsupported(path, module, f"expects {module.in_features} inputs, "
                                       f"the previous layer gives shape {current.shape}")
                if flatten_from is not None:
                    c, h, w = flatten_from[2], flatten_from[0], flatten_from[1]
                    order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
                    weight = weight[:, order]
                    flatten_from = None
                out_shape = (module.out_features,)
            spatial = isinstance(module, nn.Conv2d)
            node_name = (f"conv{sum(isinstance(n, SlidingWindow) for n in nodes) - 1}" if spatial
                         else f"fc{sum(isinstance(n, MatVec) for n in nodes)}")
            node = MatVec(node_name, [current.name], [], weight=weight, weight_type=wtype)
            lo, hi = node.output_range(current.dtype)
            out = add_tensor(f"{node_name}_acc", out_shape, IntType.for_range(lo, hi))
            node.outputs = [out.name]
            nodes.append(node)
            current, pending, float_ops = out, (path, per_tensor), []
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
            h, w, c = current.shape
            out = add_tensor(f"pool{len(nodes)}_out",
                             ((h - k) // stride + 1, (w - k) // stride + 1, c), current.dtype)
            nodes.append(MaxPool(f"pool{len(nodes)}", [current.name], [out.name], kernel=k,
                                 stride=stride))
            current = out
            continue
        if pending is None:
            raise _unsupported(path, module, "only follows a linear layer's accumulator")
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU)):
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and \
                    module.num_features != current.shape[-1]:
                raise _unsupported(path, module, f"has {module.num_features} channels, the "
                                   f"accumulator has {current.shape[-1]}")
            float_ops.append(module)
        elif isinstance(module, (SignActivation, QuantAct)):
            out_type = (IntType.bipolar() if isinstance(module, SignActivation)
                        else _int_type(module.bits, module.signed))
            node_name = f"act{sum(isinstance(n, FloatMap) for n in nodes)}"
            described = " -> ".join(["acc"] + ([] if post is None else ["scale"])
                                    + [type(m).__name__ for m in [*float_ops, module]])
            out = add_tensor(f"{node_name}_out", current.shape, out_type)
            nodes.append(FloatMap(node_name, [current.name], [out.name],
                                  evaluate=_float_map(post, [*float_ops, module],
                                                      len(current.shape) == 3),
                                  out_type=out_type, description=described))
            current, pending = out, None
        elif isinstance(module, Requant):
            if post is not None or float_ops:
                raise _unsupported(path, module, "Requant must read the raw integer accumulator "
                                   "(a layer without float scales, nothing in between)")
            out_type = _int_type(module.bits, module.signed)
            node_name = f"rq{sum(isinstance(n, Requantize) for n in nodes)}"
            out = add_tensor(f"{node_name}_out", current.shape, out_type)
            nodes.append(Requantize(node_name, [current.name], [out.name],
                                    multiplier=np.array([module.multiplier], dtype=np.int64),
                                    shift=module.shift, out_type=out_type))
            current, pending = out, None
        elif isinstance(module, LogitScale):
            output_scale = module.scale
            if not output_scale > 0:
                raise _unsupported(path, module, f"scale {output_scale} must be positive")
        else:
            raise _unsupported(path, module)

    if current is None or not nodes:
        raise UnsupportedLayerError(f"model {type(model).__name__} has no layer to lower")
    scale = 1.0
    if pending is not None:
        path, per_tensor = pending
        if float_ops:
            raise UnsupportedLayerError(f"the output layer is followed by "
                                        f"{type(float_ops[0]).__name__} without a quantizer; "
                                        "an output layer must give integer scores")
        if np.isnan(per_tensor):
            raise UnsupportedLayerError(f"layer {path!r}: the output layer has per-channel "
                                        "scales, which change the argmax of its integer scores;"
                                        " use a per-tensor scale for the last layer")
        scale = per_tensor
    return Graph(name, "input", current.name, tensors, nodes,
                 output_scale=scale * output_scale)
