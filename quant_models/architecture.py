"""A sequential network described as data, so a compressed model can be rebuilt from its file.

Compression changes a network's shape (thinning removes channels, low-rank factorization
replaces a layer by two or three thinner ones with a requantization between them), so the
result is no longer an instance of the class it started from. :class:`SequentialNet` is
the one class every compressed model becomes: its ``layers`` are built from an
*architecture*, a list of ``{"type": class name, "args": constructor arguments}`` (plain
JSON values), and the input shape of an image model. :func:`describe` reads that list off
any sequential quant_models network; the weights file of a compressed example stores it
beside the state dict (:mod:`quant_models.cache`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from codesign.errors import CodesignError
from quant_models.conv import BinaryConv2d, FactorConv2d, QuantConv2d, TernaryConv2d
from quant_models.fixed_point import FactorLinear, QuantAct, QuantLinear, Requant, link_input_scales
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.sharing import SharedConv2d, SharedLinear
from quant_models.ternary import TernaryLinear

__all__ = [
    "Architecture",
    "ArchitectureError",
    "SequentialNet",
    "as_sequential",
    "build_module",
    "describe",
    "describe_module",
]

Architecture = dict[str, Any]
"""``{"input_shape": [C, H, W] or None, "layers": [{"type": ..., "args": {...}}, ...]}``."""


class ArchitectureError(CodesignError):
    """A module that has no description, or a description that names no known module."""


_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "groups")

_ARGS: dict[type[nn.Module], tuple[str, ...]] = {
    IntegerInput: ("bits", "signed"),
    BinaryLinear: ("in_features", "out_features"),
    TernaryLinear: ("in_features", "out_features", "method", "ratio_frac_bits"),
    QuantLinear: ("in_features", "out_features", "weight_bits", "weight_signed",
                  "narrow_range", "per_channel"),
    FactorLinear: ("in_features", "out_features", "weight_bits", "narrow_range"),
    BinaryConv2d: (*_CONV, "pad_value"),
    TernaryConv2d: (*_CONV, "method", "ratio_frac_bits", "pad_value"),
    QuantConv2d: (*_CONV, "weight_bits", "weight_signed", "narrow_range", "per_channel",
                  "pad_value"),
    FactorConv2d: (*_CONV, "weight_bits", "narrow_range", "pad_value"),
    SharedLinear: ("in_features", "out_features", "index_bits", "grid_bits"),
    SharedConv2d: (*_CONV, "index_bits", "grid_bits", "pad_value"),
    nn.BatchNorm1d: ("num_features", "eps", "momentum"),
    nn.BatchNorm2d: ("num_features", "eps", "momentum"),
    QuantAct: ("bits", "signed", "narrow_range", "min_scale"),
    SignActivation: (),
    Requant: ("multiplier", "shift", "bits", "signed", "narrow_range"),
    nn.MaxPool2d: ("kernel_size", "stride"),
    nn.Flatten: (),
    LogitScale: (),
    nn.ReLU: (),
}
"""Every module type an architecture may hold, and the attributes that rebuild it (each is
also its constructor argument of the same name)."""

_TYPES: dict[str, type[nn.Module]] = {cls.__name__: cls for cls in _ARGS}


def _plain(value: Any) -> Any:
    """A JSON value: tuples become lists (kernel sizes, strides, paddings)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def describe_module(module: nn.Module, where: str = "") -> dict[str, Any]:
    """``{"type": ..., "args": ...}`` of one module (exact type; subclasses have their own)."""
    names = _ARGS.get(type(module))
    if names is None:
        raise ArchitectureError(
            f"layer {where or type(module).__name__!r} ({type(module).__name__}) cannot be "
            f"described; supported: {', '.join(_TYPES)}")
    return {"type": type(module).__name__,
            "args": {name: _plain(getattr(module, name)) for name in names}}


def build_module(entry: dict[str, Any]) -> nn.Module:
    """The untrained module a :func:`describe_module` entry describes."""
    cls = _TYPES.get(str(entry.get("type")))
    if cls is None:
        raise ArchitectureError(f"unknown layer type {entry.get('type')!r}; known: "
                                + ", ".join(_TYPES))
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in entry["args"].items()}
    return cls(**args)


def describe(model: nn.Module) -> Architecture:
    """The architecture of a sequential network (``model.layers``, or ``model`` itself)."""
    layers = getattr(model, "layers", model)
    if not isinstance(layers, nn.Sequential):
        raise ArchitectureError(f"{type(model).__name__} is not a sequential network "
                                "(an nn.Sequential, or a model whose .layers is one)")
    shape = getattr(model, "input_shape", None)
    return {"input_shape": None if shape is None else [int(v) for v in shape],
            "layers": [describe_module(m, f"layers.{i}") for i, m in enumerate(layers)]}


class SequentialNet(nn.Module):
    """``layers`` built from an architecture; images arrive as ``[N, C, H, W]`` or as the
    data loader's flat ``[N, C*H*W]`` rows, which are reshaped (as the digits CNNs do)."""

    def __init__(self, architecture: Architecture) -> None:
        super().__init__()
        shape = architecture.get("input_shape")
        if shape is not None:
            self.input_shape = tuple(int(v) for v in shape)
        self.layers = nn.Sequential(*(build_module(e) for e in architecture["layers"]))
        link_input_scales(self.layers)
        self.history: dict[str, Any] | None = None
        """What made the network, when a recipe did (:mod:`quant_models.compress`)."""

    @property
    def architecture(self) -> Architecture:
        """The architecture of the network as it is now (a requantization's multiplier or
        a layer's weight bits may have changed since it was built)."""
        return describe(self)

    def forward(self, x: Tensor) -> Tensor:
        shape = getattr(self, "input_shape", None)
        if shape is not None and x.dim() == 2:
            x = x.reshape(x.shape[0], *shape)
        return self.layers(x)


def as_sequential(model: nn.Module,
                  edit: Callable[[Architecture], Architecture] | None = None) -> SequentialNet:
    """``model`` as a :class:`SequentialNet` with the same state (a copy), in eval mode.

    ``edit`` may change the architecture first, as long as every parameter and buffer keeps
    its name and shape (e.g. a layer's weight bits).
    """
    architecture = describe(model)
    if edit is not None:
        architecture = edit(architecture)
    net = SequentialNet(architecture)
    net.load_state_dict(model.state_dict(), strict=True)
    return net.eval()
