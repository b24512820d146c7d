"""Filter (channel) pruning: which channels of a layer to remove, masking them, gradually.

Three ways to rank a layer's output channels, least important first:

- ``l1`` (Li et al. 2017, "Pruning Filters for Efficient ConvNets"): the L1 norm of each
  filter's latent weights;
- ``bn_scale`` (Liu et al. 2017, network slimming): the magnitude of the channel's
  batch-norm scale gamma, after training with an L1 penalty on the gammas
  (:func:`gamma_penalty`) that drives unimportant ones towards zero;
- ``thinet`` (in the spirit of Luo et al. 2017, ThiNet): a greedy choice on sample data of
  the channels whose removal least changes the *next* layer's output: channels are added to
  the removed set one at a time, each time the one that keeps the squared norm of the
  removed channels' summed contribution to the next layer's (scaled) accumulators smallest.

A chosen channel is *masked*: the filter's weights and the next layer's weights that read
the channel become exact zeros (their ``weight_mask``), so the channel contributes nothing
whatever its activation; :func:`quant_models.thinning.thin` then removes it physically
without changing any output. Pruning is one-shot, or gradual along Zhu & Gupta's cubic
schedule (:class:`ChannelPruningSchedule`, the AGP schedule of
:class:`quant_models.pruning.PruningSchedule` applied to channel counts). Masked channels
stay masked (pruning is cumulative). :func:`kept_channels` rounds a layer's remaining
channel count to a multiple that folds well onto hardware.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codesign.errors import CodesignError
from quant_models.conv import pad_integer
from quant_models.pruning import cubic_sparsity
from quant_models.structure import LayerSite, layer_sites
from quant_models.thinning import check_removal, consumer_columns

__all__ = [
    "CRITERIA",
    "ChannelPruningError",
    "ChannelPruningSchedule",
    "Criterion",
    "choose_channels",
    "gamma_penalty",
    "kept_channels",
    "mask_channels_",
    "masked_channels",
]

Criterion = Literal["l1", "bn_scale", "thinet"]
CRITERIA: tuple[str, ...] = ("l1", "bn_scale", "thinet")


class ChannelPruningError(CodesignError):
    """A layer whose channels cannot be ranked or masked as asked."""


def kept_channels(channels: int, fraction: float, round_to: int = 1) -> int:
    """Channels left after removing ``fraction`` of ``channels``, rounded to the nearest
    multiple of ``round_to`` (ties up), at least ``round_to`` and at most ``channels``."""
    if not 0.0 <= fraction < 1.0:
        raise ChannelPruningError(f"a pruned fraction must be in [0, 1), got {fraction}")
    if round_to < 1:
        raise ChannelPruningError(f"round_to must be a positive integer, got {round_to}")
    keep = channels - round(fraction * channels)
    rounded = ((2 * keep + round_to) // (2 * round_to)) * round_to
    return max(min(rounded, channels), min(round_to, channels))


def _site(sites: Sequence[LayerSite], name: str) -> LayerSite:
    for site in sites:
        if site.name == name:
            return site
    raise ChannelPruningError(f"unknown layer {name!r}; layers: "
                              + ", ".join(s.name for s in sites))


def _consumer(sites: Sequence[LayerSite], site: LayerSite) -> nn.Module:
    return next(s.module for s in sites if s.index == site.consumer)


def _mask(module: nn.Module, name: str, role: str) -> Tensor:
    mask = getattr(module, "weight_mask", None)
    if not isinstance(mask, Tensor):
        raise ChannelPruningError(
            f"layer {name!r}: {role} {type(module).__name__} has no weight mask (binary "
            "weights have no zero), so the channel cannot be masked; prune layers whose "
            "consumer has integer (k-bit or ternary) weights")
    return mask


def masked_channels(model: nn.Module, name: str) -> list[int]:
    """Output channels of layer ``name`` whose consumer inputs are all masked."""
    sites = layer_sites(model)
    site = _site(sites, name)
    if site.consumer is None:
        return []
    mask = _mask(_consumer(sites, site), name, "its consumer")
    per = site.features_per_channel
    columns = mask.flatten(2).amax(dim=2) if mask.dim() == 4 else mask
    alive = columns.amax(dim=0) > 0
    channels = alive.numel() // per
    return [c for c in range(channels) if not bool(alive[c * per:(c + 1) * per].any())]


@torch.no_grad()
def mask_channels_(model: nn.Module, removed: Mapping[str, Sequence[int]]) -> None:
    """Mask ``removed`` output channels of each named layer (filter rows and the consumer's
    inputs), and zero the latent weights there, in place."""
    sites = layer_sites(model)
    check_removal(sites, removed)
    for name, channels in removed.items():
        if not channels:
            continue
        site = _site(sites, name)
        consumer = _consumer(sites, site)
        consumer_mask = _mask(consumer, name, "its consumer")
        rows = torch.as_tensor(sorted(int(c) for c in channels))
        own = getattr(site.module, "weight_mask", None)
        if isinstance(own, Tensor):
            own[rows] = 0
            site.module.weight[rows] = 0
        columns = torch.as_tensor(consumer_columns(site, sorted(int(c) for c in channels)))
        consumer_mask[:, columns] = 0
        consumer.weight[:, columns] = 0


def gamma_penalty(model: nn.Module, layers: Sequence[str], strength: float
                  ) -> Callable[[], Tensor]:
    """``strength * sum |gamma|`` over the batch norms of ``layers`` (network slimming's
    sparsity term, added to the training loss)."""
    sites = layer_sites(model)
    modules = list(getattr(model, "layers", model))
    norms = []
    for name in layers:
        site = _site(sites, name)
        if site.norm is None:
            raise ChannelPruningError(f"layer {name!r} has no batch norm, so it has no "
                                      "gamma to rank by (criterion bn_scale)")
        norms.append(modules[site.norm])

    def penalty() -> Tensor:
        return strength * sum(norm.weight.abs().sum() for norm in norms)

    return penalty


def _ranking(model: nn.Module, sites: Sequence[LayerSite], site: LayerSite,
             criterion: str) -> Tensor:
    """Importance of each output channel (float64), for ``l1`` and ``bn_scale``."""
    if criterion == "l1":
        weight = site.module.weight.detach().to(torch.float64)
        mask = getattr(site.module, "weight_mask", None)
        if isinstance(mask, Tensor):
            weight = weight * mask.to(torch.float64)
        return weight.abs().flatten(1).sum(dim=1)
    if site.norm is None:
        raise ChannelPruningError(f"layer {site.name!r} has no batch norm, so it has no "
                                  "gamma to rank by (criterion bn_scale)")
    norm = list(getattr(model, "layers", model))[site.norm]
    return norm.weight.detach().to(torch.float64).abs()


@torch.no_grad()
def _contributions(model: nn.Module, sites: Sequence[LayerSite], site: LayerSite,
                   data: Tensor, samples: int, seed: int) -> Tensor:
    """[channels, samples]: each output channel's contribution to sampled accumulator
    entries of the consumer (integer weights times their scales, so rows compare)."""
    modules = list(getattr(model, "layers", model))
    assert site.consumer is not None
    consumer = modules[site.consumer]
    was_training = model.training
    model.eval()
    try:
        value = data
        shape = getattr(model, "input_shape", None)
        if shape is not None and value.dim() == 2:
            value = value.reshape(value.shape[0], *shape)
        for module in modules[:site.consumer]:
            value = module(value)
    finally:
        model.train(was_training)
    w_int, scale = consumer.integer_weight()
    scale_t = torch.as_tensor(scale, dtype=torch.float64)
    weight = w_int.to(torch.float64)
    weight = weight * (scale_t.view(-1, *([1] * (weight.dim() - 1))) if scale_t.dim() else
                       scale_t)
    value = value.to(torch.float64)
    channels = int(site.module.out_channels if isinstance(site.module, nn.Conv2d)
                   else site.module.out_features)
    generator = torch.Generator().manual_seed(seed)
    parts = []
    if isinstance(consumer, nn.Conv2d):
        padded = pad_integer(value, (int(consumer.padding[0]), int(consumer.padding[1])),
                             int(consumer.pad_value))
        pick = None
        for c in range(channels):
            out = F.conv2d(padded[:, c:c + 1], weight[:, c:c + 1], None, consumer.stride)
            flat = out.flatten()
            if pick is None:
                pick = torch.randperm(flat.numel(), generator=generator)[:samples]
            parts.append(flat[pick])
    else:
        flat_in = value.flatten(1)
        for c in range(channels):
            cols = consumer_columns(site, [c])
            out = flat_in[:, cols] @ weight[:, cols].T
            parts.append(out.flatten())
        total = parts[0].numel()
        pick = torch.randperm(total, generator=generator)[:samples]
        parts = [p[pick] for p in parts]
    return torch.stack(parts)


def _greedy_order(z: Tensor, already: Sequence[int], count: int) -> list[int]:
    """Channels removed one at a time, each the one keeping ||sum of removed rows|| least."""
    chosen = list(already)
    total = z[chosen].sum(dim=0) if chosen else torch.zeros(z.shape[1], dtype=z.dtype)
    while len(chosen) < count:
        norms = (total.unsqueeze(0) + z).square().sum(dim=1)
        norms[chosen] = float("inf")
        best = int(torch.argmin(norms))     # ties: the lowest channel index
        chosen.append(best)
        total = total + z[best]
    return chosen


def choose_channels(model: nn.Module, name: str, count: int, criterion: str,
                    data: Tensor | None = None, *, samples: int = 4096, seed: int = 0
                    ) -> list[int]:
    """The ``count`` output channels of layer ``name`` to remove, least important first:
    the channels masked already, then the next by ``criterion`` (``data``: sample inputs,
    needed by ``thinet``). Ties go to the lower channel index."""
    if criterion not in CRITERIA:
        raise ChannelPruningError(f"unknown criterion {criterion!r}; criteria: "
                                  + ", ".join(CRITERIA))
    sites = layer_sites(model)
    site = _site(sites, name)
    already = masked_channels(model, name)
    channels = int(site.module.out_channels if isinstance(site.module, nn.Conv2d)
                   else site.module.out_features)
    if not len(already) <= count < channels:
        raise ChannelPruningError(f"layer {name!r}: cannot go to {count} removed channels "
                                  f"of {channels} ({len(already)} are removed already)")
    if criterion == "thinet":
        if data is None:
            raise ChannelPruningError("criterion thinet needs sample data")
        z = _contributions(model, sites, site, data, samples, seed)
        return _greedy_order(z, already, count)
    score = _ranking(model, sites, site, criterion)
    order = [int(c) for c in torch.argsort(score, stable=True) if int(c) not in already]
    return [*already, *order[:count - len(already)]]


class ChannelPruningSchedule:
    """Gradual channel pruning: an epoch callback for :func:`quant_models.train.
    train_classifier` that masks, layer by layer, ``round(p * final)`` channels at epoch
    ``e``, with ``p`` Zhu & Gupta's cubic schedule from 0 to 1 (``cubic_sparsity``), so the
    final counts are reached at ``start_epoch + num_steps * frequency`` and fine-tuned
    afterwards. ``history`` records ``(epoch, {layer: removed})`` of every step."""

    def __init__(self, model: nn.Module, removed: Mapping[str, int], criterion: str,
                 data: Tensor | None = None, *, start_epoch: int = 1, num_steps: int = 5,
                 frequency: int = 1) -> None:
        if start_epoch < 1 or num_steps < 1 or frequency < 1:
            raise ChannelPruningError("need start_epoch >= 1, num_steps >= 1 and "
                                      "frequency >= 1")
        self.model, self.final = model, dict(removed)
        self.criterion, self.data = criterion, data
        self.start_epoch, self.num_steps, self.frequency = start_epoch, num_steps, frequency
        self.history: list[tuple[int, dict[str, int]]] = []

    @property
    def end_epoch(self) -> int:
        return self.start_epoch + self.num_steps * self.frequency

    def __call__(self, epoch: int) -> None:
        progress = cubic_sparsity(epoch, 0.0, 1.0, self.start_epoch, self.num_steps,
                                  self.frequency)
        step: dict[str, list[int]] = {}
        for name, final in self.final.items():
            count = round(progress * final)
            if count > len(masked_channels(self.model, name)):
                step[name] = choose_channels(self.model, name, count, self.criterion,
                                             self.data)
        if step:
            mask_channels_(self.model, step)
            self.history.append((int(epoch), {k: len(v) for k, v in step.items()}))
