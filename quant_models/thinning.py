"""Thinning: remove pruned channels physically, so the network (and its hardware) shrinks.

Channel pruning (:mod:`quant_models.channel_pruning`) first *masks* a channel: the filter's
weights and the consumer's weights that read the channel are masked to exact zeros, so the
channel no longer contributes anything, whatever its activation holds. :func:`thin` then
builds the smaller network: the producer loses those output channels (weight rows), its
batch norm loses their entries, and the next weight layer loses the inputs that read them
(a convolution's input channels, or a linear layer's columns of every pixel of the channel
after a flatten). Every other tensor is copied unchanged.

Because masked weights take no part in any weight scale (per channel or per tensor, see
:func:`quant_models.fixed_point.max_abs_weight_quant` and the TWN threshold), thinning a
masked network changes no output: the thin network computes exactly what the masked one
did, bit for bit, with fewer and smaller layers. Removing nothing rebuilds the same
network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from codesign.errors import CodesignError
from quant_models.architecture import SequentialNet, describe
from quant_models.structure import LayerSite, layer_sites

__all__ = ["ThinningError", "check_removal", "consumer_columns", "thin"]


class ThinningError(CodesignError):
    """Channels that cannot be removed from a layer."""


def _channels(module: nn.Module) -> int:
    return int(module.out_channels if isinstance(module, nn.Conv2d) else module.out_features)


def consumer_columns(site: LayerSite, channels: Sequence[int]) -> list[int]:
    """The consumer's input columns that read ``channels`` of ``site`` (a convolution's input
    channels, or each channel's pixels after a flatten in (C, H, W) order)."""
    per = site.features_per_channel
    return [c * per + p for c in channels for p in range(per)]


def check_removal(sites: Sequence[LayerSite], removed: Mapping[str, Sequence[int]]) -> None:
    """Named errors for removals that cannot be thinned (see :func:`thin`)."""
    by_name = {site.name: site for site in sites}
    for name, channels in removed.items():
        site = by_name.get(name)
        if site is None:
            raise ThinningError(f"unknown layer {name!r}; layers: {', '.join(by_name)}")
        total = _channels(site.module)
        bad = sorted({int(c) for c in channels if not 0 <= int(c) < total})
        if bad:
            raise ThinningError(f"layer {name!r}: channels {bad} do not exist (it has {total})")
        if len(set(channels)) != len(channels):
            raise ThinningError(f"layer {name!r}: a channel is listed twice")
        if channels and len(set(channels)) >= total:
            raise ThinningError(f"layer {name!r}: removing all {total} channels leaves nothing")
        if not channels:
            continue
        if site.consumer is None:
            raise ThinningError(f"layer {name!r} is the output layer: its channels are the "
                                "network's outputs and cannot be removed")
        for module, role in ((site.module, "its"), (_consumer(sites, site), "its consumer's")):
            if getattr(module, "groups", 1) != 1:
                raise ThinningError(f"layer {name!r}: {role} grouped convolution cannot lose "
                                    "channels one by one (only groups=1 layers are thinned)")


def _consumer(sites: Sequence[LayerSite], site: LayerSite) -> nn.Module:
    return next(s.module for s in sites if s.index == site.consumer)


def thin(model: nn.Module, removed: Mapping[str, Sequence[int]]) -> SequentialNet:
    """A new, smaller :class:`SequentialNet` without the ``removed`` output channels of each
    named weight layer (``{"conv1": [3, 7], ...}``); ``model`` is left untouched.

    Refused with :class:`ThinningError`: unknown layers or channels, all of a layer's
    channels, the output layer's channels, and grouped convolutions on either side.
    """
    sites = layer_sites(model)
    removed = {name: sorted(int(c) for c in channels) for name, channels in removed.items()}
    check_removal(sites, removed)
    architecture = describe(model)
    layers = architecture["layers"]
    prefix = "" if hasattr(model, "layers") else "layers."
    state = {prefix + k: v.clone() for k, v in model.state_dict().items()}
    for site in sites:
        drop = removed.get(site.name, [])
        if not drop:
            continue
        keep = torch.tensor([c for c in range(_channels(site.module)) if c not in drop])
        args = layers[site.index]["args"]
        args["out_channels" if "out_channels" in args else "out_features"] = len(keep)
        _slice(state, site.index, ("weight", "weight_mask"), 0, keep)
        if site.norm is not None:
            layers[site.norm]["args"]["num_features"] = len(keep)
            _slice(state, site.norm, ("weight", "bias", "running_mean", "running_var"), 0,
                   keep)
        assert site.consumer is not None
        consumer = _consumer(sites, site)
        width = int(consumer.in_channels if isinstance(consumer, nn.Conv2d)
                    else consumer.in_features)
        gone = set(consumer_columns(site, drop))
        columns = torch.tensor([c for c in range(width) if c not in gone])
        cargs = layers[site.consumer]["args"]
        cargs["in_channels" if "in_channels" in cargs else "in_features"] = len(columns)
        _slice(state, site.consumer, ("weight", "weight_mask"), 1, columns)
    net = SequentialNet(architecture)
    net.load_state_dict(state, strict=True)
    return net.train(model.training)


def _slice(state: dict[str, torch.Tensor], index: int, names: Sequence[str], dim: int,
           keep: torch.Tensor) -> None:
    for name in names:
        key = f"layers.{index}.{name}"
        if key in state:
            state[key] = state[key].index_select(dim, keep).clone()
