"""Where the weight layers of a sequential network are, what follows them, and their names.

The compression techniques (channel pruning, thinning, low-rank factorization, sensitivity
analysis) and the recipes that compose them all speak of a network's weight layers by the
names the compiler gives them (``conv0``, ``conv1``, ``fc3``: the kind and the position among
weight layers, as in the IR and in ``codesign run --fold``); :func:`weight_layer_names` is
that naming, and the torch frontend uses it too. :func:`layer_sites` adds what a technique
needs to change a layer consistently: its batch norm, its activation, the weight layer that
consumes its channels and how (through a flatten, each channel is several features).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from codesign.errors import CodesignError

__all__ = [
    "LayerSite",
    "UnknownLayerError",
    "feature_shapes",
    "find_site",
    "is_weight_layer",
    "layer_sites",
    "weight_count",
    "weight_layer_name",
    "weight_layer_names",
]


class UnknownLayerError(CodesignError):
    """A layer name that the network does not have."""

    def __init__(self, name: str, available: Sequence[str], where: str = "") -> None:
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}unknown layer {name!r}; layers: {', '.join(available)}")


def is_weight_layer(module: nn.Module) -> bool:
    """A linear or convolutional layer (the modules the compiler turns into engines)."""
    return isinstance(module, (nn.Linear, nn.Conv2d))


def weight_layer_name(module: nn.Module, position: int) -> str:
    """``conv<k>`` for a convolution, ``fc<k>`` for a linear layer, ``k`` its ``position``
    among the network's weight layers (in the order the network applies them)."""
    return f"{'conv' if isinstance(module, nn.Conv2d) else 'fc'}{position}"


def weight_layer_names(modules: Sequence[tuple[str, nn.Module]]) -> dict[str, str]:
    """Path -> name (:func:`weight_layer_name`) of every weight layer among ``modules``
    (in network order)."""
    names: dict[str, str] = {}
    for path, module in modules:
        if is_weight_layer(module):
            names[path] = weight_layer_name(module, len(names))
    return names


def _layers(model: nn.Module) -> nn.Sequential:
    layers = getattr(model, "layers", model)
    if not isinstance(layers, nn.Sequential):
        raise CodesignError(f"{type(model).__name__} is not a sequential network (an "
                            "nn.Sequential, or a model whose .layers is one)")
    return layers


@torch.no_grad()
def feature_shapes(model: nn.Module) -> list[tuple[int, ...]]:
    """The output shape (without the batch axis) of every module of ``model.layers``, from
    one all-zero input of the model's ``input_shape`` (or the first layer's features)."""
    layers = _layers(model)
    shape = getattr(model, "input_shape", None)
    if shape is None:
        first = next((m for m in layers if is_weight_layer(m)), None)
        if not isinstance(first, nn.Linear):
            raise CodesignError(f"{type(model).__name__}: cannot tell the input shape")
        shape = (first.in_features,)
    was_training = model.training
    model.eval()
    try:
        value = torch.zeros(1, *shape)
        shapes = []
        for module in layers:
            value = module(value)
            shapes.append(tuple(value.shape[1:]))
    finally:
        model.train(was_training)
    return shapes


@dataclass(frozen=True)
class LayerSite:
    """One weight layer of ``model.layers`` and its neighbourhood (indices into ``layers``)."""

    name: str
    index: int
    module: nn.Module
    norm: int | None
    """The batch norm after it, before the next weight layer."""
    between: tuple[int, ...]
    """Every module between it and the next weight layer (batch norm, activation, pool...)."""
    consumer: int | None
    """The next weight layer (``None`` for the last)."""
    features_per_channel: int
    """Consumer inputs each output channel feeds: its pixels after a flatten, else 1."""


def layer_sites(model: nn.Module) -> list[LayerSite]:
    """Every weight layer of a sequential network, in order."""
    layers = _layers(model)
    modules = list(layers)
    names = weight_layer_names([(str(i), m) for i, m in enumerate(modules)])
    positions = [int(p) for p in names]
    shapes: list[tuple[int, ...]] | None = None
    sites = []
    for k, index in enumerate(positions):
        consumer = positions[k + 1] if k + 1 < len(positions) else None
        end = consumer if consumer is not None else len(modules)
        between = tuple(range(index + 1, end))
        norm = next((i for i in between
                     if isinstance(modules[i], (nn.BatchNorm1d, nn.BatchNorm2d))), None)
        per_channel = 1
        if any(isinstance(modules[i], nn.Flatten) for i in between):
            if shapes is None:
                shapes = feature_shapes(model)
            flat = next(i for i in between if isinstance(modules[i], nn.Flatten))
            before = shapes[flat - 1]
            per_channel = int(torch.tensor(before[1:]).prod()) if len(before) > 1 else 1
        sites.append(LayerSite(names[str(index)], index, modules[index], norm, between,
                               consumer, per_channel))
    return sites


def find_site(model: nn.Module, name: str, where: str = "") -> LayerSite:
    """The weight layer called ``name``, or :class:`UnknownLayerError` listing the names."""
    sites = layer_sites(model)
    for site in sites:
        if site.name == name:
            return site
    raise UnknownLayerError(name, [s.name for s in sites], where)


def weight_count(model: nn.Module) -> int:
    """Weights of the network's linear and convolution layers (every entry of every weight
    matrix, biases not included)."""
    return sum(int(m.weight.numel()) for m in model.modules() if is_weight_layer(m))
