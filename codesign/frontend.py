"""Frontend: a quant_models network -> the codesign IR.

The frontend only translates; it never approximates. Binary weights become exact {-1, +1}
integer matrices, batch-norm keeps its float parameters (streamlining folds it into
integer thresholds later, evaluating it exactly as torch does), and anything it does not
understand is refused with the module's path and the list of what is supported.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from codesign.errors import UnsupportedLayerError
from codesign.ir import BatchNorm, Graph, IntType, MatVec, Sign, TensorInfo

SUPPORTED = ("IntegerInput (first)", "BinaryLinear", "BatchNorm1d", "SignActivation",
             "LogitScale (last)", "Flatten", "Identity", "Dropout")


def _modules_in_order(model: nn.Module) -> list[tuple[str, nn.Module]]:
    body = getattr(model, "layers", model)
    if isinstance(body, nn.Sequential):
        return [(f"layers.{name}" if body is not model else name, module)
                for name, module in body.named_children()]
    children = list(model.named_children())
    if not children:
        return [("", model)]
    return children


def _unsupported(path: str, module: nn.Module, why: str = "") -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"layer {path!r} ({type(module).__name__}) cannot be lowered{': ' + why if why else ''}."
        f" Supported layers: {', '.join(SUPPORTED)}")


def _logit_scale(module: nn.Module) -> float:
    for attr in ("scale", "value"):
        value = getattr(module, attr, None)
        if callable(value):
            value = value()
        if value is not None:
            return float(torch.as_tensor(value).detach().reshape(()))
    return float(torch.exp(module.log_scale.detach()).reshape(()))


def from_quant_model(model: nn.Module, *, name: str = "network",
                     input_shape: tuple[int, ...] | None = None,
                     input_type: IntType | None = None) -> Graph:
    """Lower a quant_models network (e.g. ``BinarizedMLP``) to a float-annotated IR graph.

    The result still holds ``BatchNorm``/``Sign`` nodes; run
    :func:`codesign.passes.streamline` to get the integer graph the reference and the
    hardware execute.
    """
    from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation

    modules = _modules_in_order(model)
    tensors: dict[str, TensorInfo] = {}
    nodes = []
    current: TensorInfo | None = None
    output_scale = 1.0

    if input_type is not None and input_shape is not None:
        current = TensorInfo("input", tuple(input_shape), input_type)
        tensors[current.name] = current

    def new_tensor(base: str, shape: tuple[int, ...], dtype: IntType) -> TensorInfo:
        info = TensorInfo(base, shape, dtype)
        tensors[base] = info
        return info

    for index, (path, module) in enumerate(modules):
        if isinstance(module, IntegerInput):
            if current is not None:
                raise _unsupported(path, module, "IntegerInput must be the first layer")
            dtype = IntType.int_(module.bits) if module.signed else IntType.uint(module.bits)
            shape = tuple(input_shape) if input_shape is not None else None
            if shape is None:
                nxt = next((m for _, m in modules[index + 1:] if isinstance(m, BinaryLinear)),
                           None)
                if nxt is None:
                    raise _unsupported(path, module, "cannot infer the input shape")
                shape = (nxt.in_features,)
            current = new_tensor("input", shape, dtype)
            continue
        if current is None:
            raise _unsupported(path, module,
                               "the network must start with IntegerInput (or pass input_type "
                               "and input_shape) so the input's integer type is known")
        if isinstance(module, (nn.Flatten, nn.Identity, nn.Dropout)):
            if isinstance(module, nn.Flatten) and len(current.shape) != 1:
                current = new_tensor(f"{current.name}_flat", (current.size,), current.dtype)
            continue
        if output_scale != 1.0:
            raise _unsupported(path, module, "LogitScale must be the last layer")
        if isinstance(module, BinaryLinear):
            if getattr(module, "bias", None) is not None:
                raise _unsupported(path, module, "a bias is not supported on binary layers")
            if current.shape != (module.in_features,):
                raise _unsupported(path, module, f"expects {module.in_features} inputs, the "
                                   f"previous layer gives shape {current.shape}")
            weight = module.binary_weight().detach().cpu().numpy()
            weight = np.where(weight >= 0, 1, -1).astype(np.int64)
            wtype = IntType.bipolar()
            node_name = f"fc{len([n for n in nodes if isinstance(n, MatVec)])}"
            tmp = MatVec(node_name, [current.name], [], weight=weight, weight_type=wtype)
            lo, hi = tmp.output_range(current.dtype)
            out = new_tensor(f"{node_name}_acc", (module.out_features,),
                             IntType.for_range(lo, hi))
            tmp.outputs = [out.name]
            nodes.append(tmp)
            current = out
        elif isinstance(module, nn.BatchNorm1d):
            if module.running_mean is None or module.running_var is None:
                raise _unsupported(path, module, "batch-norm needs running statistics")
            if module.num_features != current.size:
                raise _unsupported(path, module, f"has {module.num_features} channels, input "
                                   f"has {current.size}")
            channels = module.num_features
            gamma = (module.weight.detach().float().numpy() if module.weight is not None
                     else np.ones(channels, np.float32))
            beta = (module.bias.detach().float().numpy() if module.bias is not None
                    else np.zeros(channels, np.float32))
            node_name = f"bn{len([n for n in nodes if isinstance(n, BatchNorm)])}"
            nodes.append(BatchNorm(node_name, [current.name], [f"{node_name}_out"],
                                   mean=module.running_mean.detach().float().numpy().copy(),
                                   var=module.running_var.detach().float().numpy().copy(),
                                   gamma=gamma.copy(), beta=beta.copy(), eps=float(module.eps)))
            # a float tensor until streamlining: typed as its input for bookkeeping only
            current = new_tensor(f"{node_name}_out", current.shape, current.dtype)
        elif isinstance(module, SignActivation):
            node_name = f"sign{len([n for n in nodes if isinstance(n, Sign)])}"
            nodes.append(Sign(node_name, [current.name], [f"{node_name}_out"]))
            current = new_tensor(f"{node_name}_out", current.shape, IntType.bipolar())
        elif isinstance(module, LogitScale):
            output_scale = _logit_scale(module)
            if not output_scale > 0:
                raise _unsupported(path, module, f"scale {output_scale} must be positive")
        else:
            raise _unsupported(path, module)

    if current is None or not nodes:
        raise UnsupportedLayerError(f"model {type(model).__name__} has no layer to lower")
    graph = Graph(name, "input", current.name, tensors, nodes, output_scale=output_scale)
    return graph
