"""The quant_models frontend: a PyTorch network -> the codesign IR.

The frontend only translates; it never approximates and never lowers. Every weight layer is
read through the :class:`quant_models.protocol.IntegerLayer` protocol: its exact integer
weights become a ``MatVec`` (linear) or a ``Conv`` (convolution) node, typed (bipolar,
ternary, intN) by the range the layer's quantizer declares, so re-trained weights keep the
hardware, or by their values (:data:`WEIGHT_TYPES`). Whatever float arithmetic sits between
an integer accumulator (a weight layer's, a residual join's, an average pool's sums) and the
next integer activation (weight and input scales, batch-norm, ReLU, the activation
quantizer) is captured as a ``FloatMap`` that calls the model's own modules, so streamlining
can fold it into integer thresholds that reproduce torch's float rounding exactly.
``nn.Flatten`` of an image becomes a ``Flatten`` node in torch's (C, H, W) order;
``torch.cat`` of codes along the channels a ``Concat``; a
:class:`~quant_models.residual.ResidualAdd` (or ``+`` of two code tensors) an ``Add`` with
its integer multipliers; average pools ``SumPool``/``GlobalSumPool``. A tensor read by
several layers is simply a tensor with several consumers (a fork).

Two ways in, one translation:

- a network whose body is an ``nn.Sequential`` (``model.layers``, or the model itself) is
  read in order, as a chain;
- any other network is traced with ``torch.fx``, the quant_models layers kept whole, and
  its graph translated node by node. A forward ``torch.fx`` cannot trace (data-dependent
  control flow, an unsupported operation) is refused with a named error.

Anything it does not understand is refused with the module's path and the list of what is
supported.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from codesign.errors import GraphError, OptionError, UnsupportedLayerError
from codesign.ir import (
    Add,
    Codebook,
    Concat,
    Conv,
    Flatten,
    FloatMap,
    GlobalSumPool,
    Graph,
    IntType,
    MatVec,
    MaxPool,
    Node,
    Requantize,
    SumPool,
    TensorInfo,
    window_output_hw,
)

SUPPORTED = ("IntegerInput (first)", "Images", "BinaryLinear", "TernaryLinear", "QuantLinear",
             "BinaryConv2d", "TernaryConv2d", "QuantConv2d", "SharedLinear", "SharedConv2d",
             "BatchNorm1d", "BatchNorm2d",
             "ReLU", "SignActivation", "QuantAct", "SharedQuantAct", "Requant",
             "MaxPool2d (after an activation)", "QuantAvgPool2d", "QuantGlobalAvgPool2d",
             "ResidualAdd", "+ of two code tensors", "torch.cat of codes along channels",
             "Flatten", "LogitScale (last)", "Identity", "Dropout")


def _unsupported(path: str, module: Any, why: str = "") -> UnsupportedLayerError:
    kind = module if isinstance(module, str) else type(module).__name__
    return UnsupportedLayerError(
        f"layer {path!r} ({kind}) cannot be lowered{': ' + why if why else ''}."
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


WeightTypes = Literal["declared", "values"]
WEIGHT_TYPES: tuple[WeightTypes, ...] = ("declared", "values")
"""How weight types are chosen: ``declared``, the range the layer's quantizer states
(:class:`quant_models.protocol.DeclaredWeightRange`), so re-trained weights keep the
hardware and its simulation build; ``values``, the narrowest type of the trained values (the
smallest multipliers and accumulators for these weights). A layer that declares no range is
typed by its values either way."""


def _weight_type(path: str, module: nn.Module, weight: np.ndarray, codebook: Codebook | None,
                 weight_types: WeightTypes) -> IntType:
    """The type of a layer's integer weights (a shared layer's: of its table values)."""
    from quant_models.protocol import DeclaredWeightRange

    if module.weight_kind() == "bipolar":
        return IntType.bipolar()
    values = codebook.values if codebook is not None else np.unique(weight).tolist()
    lo, hi = int(min(min(values), 0)), int(max(max(values), 0))
    declared = (module.weight_range() if weight_types == "declared"
                and isinstance(module, DeclaredWeightRange) else None)
    if declared is not None:
        if not declared[0] <= lo <= hi <= declared[1]:
            raise _unsupported(path, module, f"its integer weights span [{lo}, {hi}], outside "
                               f"the range [{declared[0]}, {declared[1]}] its weight_range() "
                               "declares")
        lo, hi = min(int(declared[0]), 0), max(int(declared[1]), 0)
    if module.weight_kind() == "ternary" and -1 <= lo and hi <= 1:
        return IntType.ternary()
    return IntType.for_range(lo, hi)    # k-bit integers, or TTQ's levels {2^f, 0, -R}


def _integer_weights(module: nn.Module) -> tuple[np.ndarray, float]:
    """Integer weights as stored and the per-tensor scale of the accumulator (NaN for
    per-channel scales, which the output layer refuses)."""
    w_int, scale = module.integer_weight()
    weight = torch.as_tensor(w_int).cpu().numpy().astype(np.int64)
    scale_t = torch.as_tensor(scale)
    per_tensor = float(scale_t.reshape(-1)[0]) if scale_t.numel() == 1 else float("nan")
    input_scale = module.input_scale()
    if input_scale is not None and not np.isnan(per_tensor):
        per_tensor *= float(input_scale.detach())
    return weight, per_tensor


def _float_map(prefix: Callable | None, modules: list[nn.Module], spatial: bool
               ) -> Callable[[np.ndarray], np.ndarray]:
    """[R, C] accumulators -> [R, C] activations through the model's own modules (as
    [R, C, 1, 1] images for a map, so 2-D batch-norm and per-channel scales apply)."""
    def evaluate(acc: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            value = torch.as_tensor(np.asarray(acc, dtype=np.float32))
            if spatial:
                value = value[:, :, None, None]
            if prefix is not None:
                value = prefix(value)
            for module in modules:
                value = module(value)
            return value.reshape(acc.shape).numpy()
    return evaluate


@dataclass
class _Value:
    """A torch value of the network, in terms of the graph under construction.

    The torch value is ``ops(prefix(tensor))``: ``tensor`` is an integer tensor of the graph,
    ``prefix`` the float scaling its producer applies to the integer result (a weight
    layer's ``scale_accumulator``, a residual join's shared scale; ``None``: none) and
    ``ops`` the float modules applied since (batch norm, ReLU). Without either, the torch
    value *is* the integer tensor (``integer``). ``scale`` is the per-tensor factor
    ``prefix`` multiplies by (NaN when per channel), the output scale of scores.
    ``accumulator`` says whether a float map may follow (the tensor is a MatVec's, Add's or
    pool's accumulator, not codes already produced by a quantizer).
    """

    tensor: TensorInfo
    path: str
    prefix: Callable | None = None
    scale: float = 1.0
    ops: list[nn.Module] = field(default_factory=list)
    accumulator: bool = False
    described: str = "acc"

    @property
    def integer(self) -> bool:
        return self.prefix is None and not self.ops

    def with_op(self, module: nn.Module) -> _Value:
        return _Value(self.tensor, self.path, self.prefix, self.scale, [*self.ops, module],
                      self.accumulator, self.described)


@dataclass(frozen=True)
class _Raw:
    """The network's input before ``IntegerInput`` gave it a type."""


class _Translator:
    """The graph under construction: tensors, nodes, names, and one method per module kind."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...] | None,
                 input_type: IntType | None, weight_types: WeightTypes) -> None:
        self.model = model
        self.weight_types: WeightTypes = weight_types
        self.tensors: dict[str, TensorInfo] = {}
        self.nodes: list[Node] = []
        self.origins: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.weight_layers = 0
        """Weight layers translated so far (their names count them across kinds)."""
        self.input_shape = input_shape
        self.input: _Value | None = None
        self.logit_factor = 1.0
        self.logit_path: str | None = None
        if input_type is not None and input_shape is not None:
            self.input = _Value(self._tensor("input", tuple(input_shape), input_type), "input")

    # ---- graph building ----------------------------------------------------------------
    def _tensor(self, name: str, shape: tuple[int, ...], dtype: IntType) -> TensorInfo:
        info = TensorInfo(name, tuple(shape), dtype)
        self.tensors[name] = info
        return info

    def next_name(self, prefix: str) -> str:
        index = self.counts.get(prefix, 0)
        self.counts[prefix] = index + 1
        return f"{prefix}{index}"

    def _add(self, node: Node, shape: tuple[int, ...], dtype: IntType, path: str) -> TensorInfo:
        info = self._tensor(node.output, shape, dtype)
        self.nodes.append(node)
        self.origins[node.output] = path
        return info

    # ---- values --------------------------------------------------------------------------
    def start(self, path: str, module: nn.Module, value: Any) -> _Value:
        """``IntegerInput`` on the raw network input: the graph input and its type."""
        from quant_models.layers import IntegerInput

        assert isinstance(module, IntegerInput)
        if not isinstance(value, _Raw) or self.input is not None:
            raise _unsupported(path, module, "IntegerInput must be the first layer")
        shape = tuple(self.input_shape) if self.input_shape is not None else None
        if shape is None:
            raise _unsupported(path, module, "cannot infer the input shape; pass input_shape "
                               "(H, W, C for images)")
        self.input = _Value(self._tensor("input", shape, _int_type(module.bits, module.signed)),
                            path)
        return self.input

    def _integer(self, path: str, module: Any, value: Any, what: str) -> _Value:
        """``value`` as integer codes, or a named error saying why it is not."""
        if isinstance(value, _Raw):
            raise _unsupported(path, module, "the network must start with IntegerInput (or "
                               "pass input_type and input_shape) so the input's integer type "
                               "is known")
        if not isinstance(value, _Value):
            raise _unsupported(path, module, f"{what} needs a tensor of integer codes, got "
                               f"{type(value).__name__}")
        if value.ops:
            raise _unsupported(path, module, f"{what} reads float values ("
                               f"{type(value.ops[-1]).__name__} output of {value.path!r}); "
                               "put an activation quantizer (SignActivation, QuantAct or "
                               "Requant) before it")
        if value.prefix is not None:
            raise _unsupported(path, module, f"{what} reads the float-scaled accumulator of "
                               f"{value.path!r}; the previous layer's accumulator has no "
                               "activation quantizer (SignActivation, QuantAct or Requant)")
        return value

    def weight_layer(self, path: str, module: nn.Module, value: Any) -> _Value:
        """A linear layer -> MatVec, a convolution -> Conv; the value is its accumulator."""
        current = self._integer(path, module, value, "a weight layer").tensor
        if getattr(module, "bias", None) is not None:
            raise _unsupported(path, module, "a bias is not supported")
        weight, per_tensor = _integer_weights(module)
        codebook = _codebook(path, module)
        wtype = _weight_type(path, module, weight, codebook, self.weight_types)
        from quant_models.structure import weight_layer_name

        name = weight_layer_name(module, self.weight_layers)
        self.weight_layers += 1
        if isinstance(module, nn.Conv2d):
            if len(current.shape) != 3:
                raise _unsupported(path, module, f"needs an (H, W, C) map, the previous layer "
                                   f"gives shape {current.shape}")
            if current.shape[2] != module.in_channels:
                raise _unsupported(path, module, f"expects {module.in_channels} channels, the "
                                   f"input has {current.shape[2]}")
            if wtype.kind == "bipolar" and module.groups > 1:
                raise _unsupported(path, module, "a grouped binary convolution has zeros a "
                                   "bipolar weight cannot hold; use a ternary or fixed-point one")
            pad_value = int(module.pad_value)
            if not current.dtype.contains(np.array([pad_value])):
                raise _unsupported(path, module, f"pad value {pad_value} is not a "
                                   f"{current.dtype} value (bipolar maps pad with +1 or -1)")
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
            node = MatVec(name, [current.name], [f"{name}_acc"], weight=weight,
                          weight_type=wtype, codebook=codebook)
            shape = (module.out_features,)
            acc_range = node.output_range(current.dtype)
        info = self._add(node, shape, IntType.for_range(*acc_range), path)
        unscaled = per_tensor == 1.0 and module.input_scale() is None
        return _Value(info, path, None if unscaled else module.scale_accumulator, per_tensor,
                      accumulator=True, described=f"acc -> {type(module).__name__} scale")

    def float_op(self, path: str, module: nn.Module, value: Any) -> _Value:
        """Batch norm or ReLU after an accumulator: part of the float map to fold."""
        if not isinstance(value, _Value) or not value.accumulator:
            raise _unsupported(path, module, "only follows an integer accumulator (a weight "
                               "layer, a residual join or an average pool)")
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and \
                module.num_features != value.tensor.shape[-1]:
            raise _unsupported(path, module, f"has {module.num_features} channels, the "
                               f"accumulator has {value.tensor.shape[-1]}")
        return value.with_op(module)

    def quantizer(self, path: str, module: nn.Module, value: Any) -> _Value:
        """Sign or a k-bit quantizer: the float map from the accumulator to codes."""
        from quant_models.layers import SignActivation

        if not isinstance(value, _Value) or not value.accumulator:
            raise _unsupported(path, module, "only follows an integer accumulator (a weight "
                               "layer, a residual join or an average pool)")
        out_type = (IntType.bipolar() if isinstance(module, SignActivation)
                    else _int_type(module.bits, module.signed))
        name = self.next_name("act")
        ops = [*value.ops, module]
        described = " -> ".join([value.described] + [type(m).__name__ for m in ops])
        node = FloatMap(name, [value.tensor.name], [f"{name}_out"],
                        evaluate=_float_map(value.prefix, ops, len(value.tensor.shape) == 3),
                        out_type=out_type, description=described)
        return _Value(self._add(node, value.tensor.shape, out_type, path), path)

    def requant(self, path: str, module: nn.Module, value: Any) -> _Value:
        if not isinstance(value, _Value) or not value.accumulator or not value.integer:
            raise _unsupported(path, module, "Requant must read the raw integer accumulator "
                               "(a layer without float scales, nothing in between)")
        out_type = _int_type(module.bits, module.signed)
        name = self.next_name("rq")
        node = Requantize(name, [value.tensor.name], [f"{name}_out"],
                          multiplier=np.array([module.multiplier], dtype=np.int64),
                          shift=module.shift, out_type=out_type,
                          saturate=(module.min_value, module.max_value))
        return _Value(self._add(node, value.tensor.shape, out_type, path), path)

    def max_pool(self, path: str, module: nn.MaxPool2d, value: Any) -> _Value:
        if not isinstance(value, _Value) or not value.integer:
            raise _unsupported(path, module, "max-pool must follow the activation "
                               "quantizer (it then is an integer max on the codes)")
        k, stride = module.kernel_size, module.stride
        if (isinstance(k, tuple) and k[0] != k[1]) or module.padding not in (0, (0, 0)) \
                or module.dilation not in (1, (1, 1)) or module.ceil_mode:
            raise _unsupported(path, module, "only square kernels, no padding, dilation 1 "
                               "and floor mode are supported")
        k = k[0] if isinstance(k, tuple) else k
        stride = stride[0] if isinstance(stride, tuple) else stride
        current = value.tensor
        if len(current.shape) != 3 or min(current.shape[:2]) < k:
            raise _unsupported(path, module, f"needs an (H, W, C) map of at least {k}x{k}, "
                               f"got {current.shape}")
        name = self.next_name("pool")
        node = MaxPool(name, [current.name], [f"{name}_out"], kernel=k, stride=stride)
        h, w, c = current.shape
        return _Value(self._add(node, (*node.output_hw(h, w), c), current.dtype, path), path)

    def avg_pool(self, path: str, module: nn.Module, value: Any) -> _Value:
        """QuantAvgPool2d -> SumPool (window sums); a float map may follow."""
        current = self._integer(path, module, value, "average pooling").tensor
        k, stride = module.kernel_size, module.stride
        if len(current.shape) != 3 or min(current.shape[:2]) < k:
            raise _unsupported(path, module, f"needs an (H, W, C) map of at least {k}x{k}, "
                               f"got {current.shape}")
        name = self.next_name("avgpool")
        node = SumPool(name, [current.name], [f"{name}_sum"], kernel=k, stride=stride)
        h, w, c = current.shape
        dtype = IntType.for_range(*node.output_range(current.dtype))
        info = self._add(node, (*node.output_hw(h, w), c), dtype, path)
        return _Value(info, path, accumulator=True, described="window sums")

    def global_pool(self, path: str, module: nn.Module, value: Any) -> _Value:
        """QuantGlobalAvgPool2d -> GlobalSumPool (channel sums); a float map may follow."""
        current = self._integer(path, module, value, "global average pooling").tensor
        if len(current.shape) != 3:
            raise _unsupported(path, module, f"needs an (H, W, C) map, got {current.shape}")
        h, w, c = current.shape
        if module.area is not None and module.area != h * w:
            raise _unsupported(path, module, f"built for maps of {module.area} pixels, the "
                               f"map is {h}x{w}")
        name = self.next_name("gap")
        node = GlobalSumPool(name, [current.name], [f"{name}_sum"])
        dtype = IntType.for_range(*node.output_range(current.dtype, h * w))
        return _Value(self._add(node, (c,), dtype, path), path, accumulator=True,
                      described="channel sums")

    def add(self, path: str, module: Any, values: list[Any], weights: tuple[int, int],
            prefix: Callable | None, scale: float) -> _Value:
        """Two integer code tensors joined: ``Add`` with its integer multipliers."""
        a, b = (self._integer(path, module, v, "a residual add") for v in values)
        if a.tensor.shape != b.tensor.shape:
            raise _unsupported(path, module, f"adds tensors of shapes {a.tensor.shape} "
                               f"({a.path!r}) and {b.tensor.shape} ({b.path!r}); they must "
                               "be equal")
        name = self.next_name("add")
        node = Add(name, [a.tensor.name, b.tensor.name], [f"{name}_sum"], weights=weights)
        dtype = IntType.for_range(*node.output_range(a.tensor.dtype, b.tensor.dtype))
        info = self._add(node, a.tensor.shape, dtype, path)
        return _Value(info, path, prefix, scale, accumulator=True,
                      described=f"{weights[0]}*a + {weights[1]}*b"
                                + (" -> shared scale" if prefix is not None else ""))

    def residual_add(self, path: str, module: nn.Module, values: list[Any]) -> _Value:
        scaled = module.scale_source is not None
        scale = float(module.scale.detach()) if scaled else 1.0
        return self.add(path, module, values, module.weights,
                        module.scale_sum if scaled else None, scale)

    def concat(self, path: str, values: list[Any], dim: int) -> _Value:
        parts = [self._integer(path, "torch.cat", v, "a concatenation") for v in values]
        rank = len(parts[0].tensor.shape) + 1            # with the batch axis
        if dim not in (1, 1 - rank):
            raise _unsupported(path, "torch.cat", f"concatenates along dim {dim}; only the "
                               "channels (dim 1) are supported")
        if len(parts) < 2:
            return parts[0]
        types = [str(p.tensor.dtype) for p in parts]
        if len(set(types)) > 1:
            raise _unsupported(path, "torch.cat", "concatenates codes of different types ("
                               + ", ".join(f"{t} from {p.path!r}" for t, p in
                                           zip(types, parts, strict=True))
                               + "); give every input the same quantizer type")
        heads = {p.tensor.shape[:-1] for p in parts}
        if len(heads) > 1:
            raise _unsupported(path, "torch.cat", "concatenates maps of different sizes ("
                               + ", ".join(str(p.tensor.shape) for p in parts) + ")")
        name = self.next_name("concat")
        node = Concat(name, [p.tensor.name for p in parts], [f"{name}_out"])
        shape = (*parts[0].tensor.shape[:-1], sum(p.tensor.shape[-1] for p in parts))
        return _Value(self._add(node, shape, parts[0].tensor.dtype, path), path)

    def flatten(self, path: str, module: Any, value: Any) -> _Value:
        current = self._integer(path, module, value, "Flatten").tensor
        if len(current.shape) != 3:
            return value
        name = self.next_name("flatten")
        node = Flatten(name, [current.name], [f"{name}_out"])
        return _Value(self._add(node, (current.size,), current.dtype, path), path)

    def logit_scale(self, path: str, module: nn.Module, value: Any) -> Any:
        self.logit_factor = module.scale
        self.logit_path = path
        if not self.logit_factor > 0:
            raise _unsupported(path, module, f"scale {self.logit_factor} must be positive")
        return value

    # ---- dispatch ------------------------------------------------------------------------
    def module(self, path: str, module: nn.Module, args: list[Any]) -> Any:
        """The value of ``module(*args)``."""
        from quant_models.fixed_point import QuantAct, Requant
        from quant_models.layers import IntegerInput, LogitScale, SignActivation
        from quant_models.pooling import Images, QuantAvgPool2d, QuantGlobalAvgPool2d
        from quant_models.residual import ResidualAdd, SharedQuantAct

        if self.logit_path is not None:
            raise _unsupported(path, module, f"LogitScale ({self.logit_path!r}) must be the "
                               "last layer")
        if isinstance(module, ResidualAdd):
            if len(args) != 2:
                raise _unsupported(path, module, f"takes (shortcut, branch), got {len(args)} "
                                   "inputs")
            return self.residual_add(path, module, args)
        if len(args) != 1:
            raise _unsupported(path, module, f"called with {len(args)} inputs, takes one")
        (value,) = args
        if isinstance(module, IntegerInput):
            return self.start(path, module, value)
        if isinstance(module, (nn.Identity, nn.Dropout)):
            return value
        if isinstance(module, Images):
            if not isinstance(value, _Raw):
                raise _unsupported(path, module, "views the network's raw input rows as "
                                   "images; it must come first")
            return value
        if isinstance(module, nn.Flatten):
            return self.flatten(path, module, value)
        if _is_weight_layer(module):
            return self.weight_layer(path, module, value)
        if isinstance(module, nn.MaxPool2d):
            return self.max_pool(path, module, value)
        if isinstance(module, QuantAvgPool2d):
            return self.avg_pool(path, module, value)
        if isinstance(module, QuantGlobalAvgPool2d):
            return self.global_pool(path, module, value)
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU)):
            return self.float_op(path, module, value)
        if isinstance(module, (SignActivation, QuantAct, SharedQuantAct)):
            return self.quantizer(path, module, value)
        if isinstance(module, Requant):
            return self.requant(path, module, value)
        if isinstance(module, LogitScale):
            return self.logit_scale(path, module, value)
        raise _unsupported(path, module)

    def function(self, path: str, fn: Any, args: tuple, kwargs: dict) -> Any:
        """The value of a traced function or method call."""
        if fn in (operator.add, torch.add) and not kwargs and len(args) == 2:
            return self.add(path, "+", list(args), (1, 1), None, 1.0)
        if fn in (torch.cat, torch.concat) and args:
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            return self.concat(path, list(args[0]), int(dim))
        if fn in (torch.flatten, "flatten") and len(args) >= 1:
            start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
            if int(start) != 1 or len(args) > 2 or set(kwargs) - {"start_dim"}:
                raise _unsupported(path, "flatten", "only flatten(x, 1) is supported")
            return self.flatten(path, "flatten", args[0])
        name = fn if isinstance(fn, str) else getattr(fn, "__name__", repr(fn))
        raise _unsupported(path, name, "this operation has no integer equivalent here")

    # ---- the result ----------------------------------------------------------------------
    def graph(self, name: str, result: Any) -> Graph:
        if not isinstance(result, _Value) or not self.nodes:
            raise UnsupportedLayerError(f"model {type(self.model).__name__} has no layer to "
                                        "lower")
        if result.ops:
            raise UnsupportedLayerError(f"the output layer is followed by "
                                        f"{type(result.ops[0]).__name__} without a "
                                        "quantizer; an output layer must give integer scores")
        scale = 1.0
        if result.prefix is not None:
            if np.isnan(result.scale):
                raise UnsupportedLayerError(f"layer {result.path!r}: the output layer has "
                                            "per-channel scales, which change the argmax of its "
                                            "integer scores; use a per-tensor scale for the last "
                                            "layer")
            scale = result.scale
        return Graph(name, "input", result.tensor.name, self.tensors, self.nodes,
                     output_scale=scale * self.logit_factor, origins=dict(self.origins))


# ---- the two ways in ----------------------------------------------------------------------

def _sequential_body(model: nn.Module) -> tuple[str, nn.Sequential] | None:
    """The network's ``nn.Sequential`` body and its path prefix, if it has one."""
    body = getattr(model, "layers", None)
    if isinstance(body, nn.Sequential):
        return "layers.", body
    if isinstance(model, nn.Sequential):
        return "", model
    return None


def _image_shape(model: nn.Module, input_shape: tuple[int, ...] | None
                 ) -> tuple[int, ...] | None:
    if input_shape is not None:
        return tuple(input_shape)
    image = getattr(model, "input_shape", None)
    if image is not None and len(image) == 3:
        channels, height, width = image
        return height, width, channels              # the IR and the stream are HWC
    return None


def _translate_sequential(t: _Translator, prefix: str, body: nn.Sequential) -> Any:
    modules = [(f"{prefix}{name}", module) for name, module in body.named_children()]
    if t.input_shape is None:   # a vector input: the width of the first linear layer
        following = next((m for _, m in modules if _is_weight_layer(m)), None)
        if isinstance(following, nn.Linear):
            t.input_shape = (following.in_features,)
    value: Any = t.input if t.input is not None else _Raw()
    for path, module in modules:
        value = t.module(path, module, [value])
    return value


def _leaf_types() -> tuple[type, ...]:
    """quant_models modules the tracer keeps whole (their forwards are not traced)."""
    from quant_models.fixed_point import QuantAct, Requant
    from quant_models.layers import IntegerInput, LogitScale, SignActivation
    from quant_models.pooling import Images, QuantAvgPool2d, QuantGlobalAvgPool2d
    from quant_models.residual import ResidualAdd, SharedQuantAct

    return (IntegerInput, SignActivation, QuantAct, SharedQuantAct, Requant, LogitScale,
            ResidualAdd, QuantAvgPool2d, QuantGlobalAvgPool2d, Images)


class _LayerTracer(torch.fx.Tracer):
    """``torch.fx`` tracing that keeps quant_models layers (and torch's own) as leaves."""

    def __init__(self) -> None:
        super().__init__()
        self.leaves = _leaf_types()

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (isinstance(m, self.leaves) or _is_weight_layer(m)
                or super().is_leaf_module(m, module_qualified_name))


def _traced(model: nn.Module) -> torch.fx.Graph:
    try:
        return _LayerTracer().trace(model)
    except Exception as exc:   # torch.fx raises many kinds; all mean "cannot trace"
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        if len(reason) > 240:
            reason = reason[:237] + "..."
        raise UnsupportedLayerError(
            f"the forward of {type(model).__name__} cannot be traced by torch.fx ({reason}); "
            "write it without data-dependent control flow over quant_models layers, or as an "
            "nn.Sequential `layers`") from None


def _translate_traced(t: _Translator, model: nn.Module) -> Any:
    graph = _traced(model)
    modules = dict(model.named_modules())
    values: dict[str, Any] = {}

    def resolve(arg: Any) -> Any:
        if isinstance(arg, torch.fx.Node):
            return values[arg.name]
        if isinstance(arg, (list, tuple)):
            return type(arg)(resolve(a) for a in arg)
        return arg

    result: Any = None
    for node in graph.nodes:
        if node.op == "placeholder":
            if t.input is not None or values:
                raise UnsupportedLayerError(f"the forward of {type(model).__name__} takes "
                                            "more than one input; the network takes one")
            values[node.name] = _Raw()
        elif node.op == "call_module":
            args = [resolve(a) for a in node.args]
            if node.kwargs:
                raise _unsupported(node.target, modules[node.target],
                                   "called with keyword arguments")
            values[node.name] = t.module(node.target, modules[node.target], args)
        elif node.op in ("call_function", "call_method"):
            values[node.name] = t.function(node.name, node.target, resolve(node.args),
                                           resolve(dict(node.kwargs)))
        elif node.op == "output":
            result = resolve(node.args[0])
        else:
            raise UnsupportedLayerError(f"the forward of {type(model).__name__} reads "
                                        f"{node.op} {node.target!r} directly (a parameter or "
                                        "attribute); only layers and joins are supported")
    return result


def from_quant_model(model: nn.Module, *, name: str = "network",
                     input_shape: tuple[int, ...] | None = None,
                     input_type: IntType | None = None,
                     weight_types: WeightTypes = "declared") -> Graph:
    """Translate a quant_models network (in eval mode) into an IR graph with ``FloatMap``s.

    Run the pass pipeline (:func:`codesign.passes.run_passes`) on the result to get the
    integer-only graph the reference and the hardware execute. ``weight_types`` says how
    weights are typed (:data:`WEIGHT_TYPES`): by the layers' declared ranges (the default:
    re-training keeps the hardware) or by the trained values.
    """
    if weight_types not in WEIGHT_TYPES:
        raise OptionError(f"weight_types={weight_types!r}: expected one of "
                          f"{', '.join(WEIGHT_TYPES)}")
    if model.training:
        raise UnsupportedLayerError(f"model {type(model).__name__} is in training mode; call "
                                    ".eval() first (batch-norm and quantizers must use their "
                                    "frozen statistics and scales)")
    t = _Translator(model, _image_shape(model, input_shape), input_type, weight_types)
    sequential = _sequential_body(model)
    if sequential is not None:
        result = _translate_sequential(t, *sequential)
    else:
        result = _translate_traced(t, model)
    return t.graph(name, result)
