"""Unstructured magnitude pruning with exact zeros, and Zhu & Gupta's gradual schedule.

A pruned layer carries a 0/1 buffer ``weight_mask`` of the weight's shape. Quantized layers
(:class:`~quant_models.fixed_point.IntegerLinear` subclasses) multiply their latent weights by
it before quantizing, so a pruned weight is an exact integer zero in ``integer_weight()``
and gets no gradient. A plain ``nn.Linear`` gets the buffer plus a forward pre-hook that
zeroes the pruned float weights in place, so its ``weight`` is exactly what the forward
uses. Binary layers cannot be pruned (a binary weight has no zero) and are skipped when a
whole model is pruned.

Pruning is cumulative: a weight once pruned stays pruned, which is what a gradual schedule
needs and what keeps the hardware's sparsity pattern a property of the trained model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from quant_models.fixed_point import IntegerLinear
from quant_models.layers import BinaryLinear

__all__ = [
    "PruneScope",
    "PruningSchedule",
    "attach_mask_",
    "cubic_sparsity",
    "is_prunable",
    "magnitude_prune_",
    "prunable_layers",
    "sparsity_report",
]

PruneScope = Literal["layer", "global"]


def is_prunable(module: nn.Module) -> bool:
    """Linear layers other than binary ones (quantized, ternary and plain float), and
    convolutions with integer weights (they carry a ``weight_mask``)."""
    from quant_models.conv import IntegerConv2d

    return (isinstance(module, nn.Linear) and not isinstance(module, BinaryLinear)) \
        or isinstance(module, IntegerConv2d)


def _mask_pre_hook(module: nn.Module, args: Any) -> None:
    mask = module.weight_mask
    with torch.no_grad():
        # Only touch the parameter when needed: an in-place write bumps its version and
        # would invalidate another forward pass still waiting for its backward.
        if bool((module.weight[mask == 0] != 0).any()):
            module.weight.mul_(mask.to(module.weight.dtype))


def attach_mask_(layer: nn.Linear) -> Tensor:
    """Make sure ``layer`` has a ``weight_mask`` buffer (all ones if new) and return it.

    Quantized layers always have one. A plain ``nn.Linear`` gets the buffer and a forward
    pre-hook that zeroes pruned weights in place; a model whose state dict holds masks must
    be rebuilt with :func:`attach_mask_` on those layers before loading it.
    """
    if not is_prunable(layer):
        raise TypeError(f"{type(layer).__name__} cannot be pruned (binary, or neither linear "
                        "nor an integer convolution)")
    mask = getattr(layer, "weight_mask", None)
    if isinstance(mask, Tensor):
        return mask
    layer.register_buffer("weight_mask", torch.ones_like(layer.weight, dtype=torch.float32))
    layer.register_forward_pre_hook(_mask_pre_hook)
    return layer.weight_mask


def prunable_layers(
    module_or_model: nn.Module, exclude: Iterable[str] = ()
) -> list[tuple[str, nn.Linear]]:
    """``(name, layer)`` of every prunable layer in module order, minus ``exclude`` names.

    A prunable module passed on its own is returned under the name ``""``.
    """
    excluded = set(exclude)
    if is_prunable(module_or_model):
        return [] if "" in excluded else [("", module_or_model)]  # type: ignore[list-item]
    return [
        (name, m)
        for name, m in module_or_model.named_modules()
        if is_prunable(m) and name not in excluded
    ]


def _scores(layer: nn.Linear, mask: Tensor) -> Tensor:
    """|latent weight| in float64, with already pruned weights strictly lowest (-1)."""
    mag = layer.weight.detach().to(torch.float64).abs().flatten()
    return torch.where(mask.flatten() > 0, mag, torch.full_like(mag, -1.0))


def _prune_count(sparsity: float, total: int) -> int:
    return int(round(float(sparsity) * total))


@torch.no_grad()
def magnitude_prune_(
    module_or_model: nn.Module,
    sparsity: float,
    scope: PruneScope = "layer",
    exclude: Iterable[str] = (),
) -> dict[str, int]:
    """Prune the smallest-magnitude weights so that ``sparsity`` of them are masked.

    ``scope="layer"``: every prunable layer gets exactly ``round(sparsity * numel)`` masked
    weights. ``scope="global"``: ``round(sparsity * total)`` over all prunable layers
    together, chosen by one ranking of the latent magnitudes. Already pruned weights are
    ranked first (pruning is cumulative); ties in magnitude go to the lower flat index
    (stable sort), so the counts are exact and the result deterministic. Asking for fewer
    pruned weights than are already pruned raises ``ValueError``. The latent weights at the
    pruned positions are set to 0 too. Returns the number of masked weights per layer.
    """
    if not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    if isinstance(module_or_model, BinaryLinear):
        raise TypeError("BinaryLinear cannot be pruned: a binary weight has no zero")
    layers = prunable_layers(module_or_model, exclude)
    if not layers:
        raise ValueError(f"{type(module_or_model).__name__} has no prunable layer")
    masks = [attach_mask_(layer) for _, layer in layers]
    scores = [_scores(layer, mask) for (_, layer), mask in zip(layers, masks, strict=True)]

    def pruned_positions(score: Tensor, count: int, already: int, where: str) -> Tensor:
        if count < already:
            raise ValueError(
                f"{where}: {already} weights are already pruned, cannot go down to {count}"
            )
        return torch.argsort(score, stable=True)[:count]

    counts: dict[str, int] = {}
    if scope == "layer":
        for (name, layer), mask, score in zip(layers, masks, scores, strict=True):
            count = _prune_count(sparsity, score.numel())
            already = int((mask == 0).sum())
            drop = pruned_positions(score, count, already, name or type(layer).__name__)
            _apply(layer, mask, drop)
            counts[name] = count
        return counts
    flat = torch.cat(scores)
    count = _prune_count(sparsity, flat.numel())
    already = sum(int((mask == 0).sum()) for mask in masks)
    drop = pruned_positions(flat, count, already, "global")
    start = 0
    for (name, layer), mask, score in zip(layers, masks, scores, strict=True):
        end = start + score.numel()
        local = drop[(drop >= start) & (drop < end)] - start
        _apply(layer, mask, local)
        counts[name] = int(local.numel())
        start = end
    return counts


def _apply(layer: nn.Linear, mask: Tensor, drop: Tensor) -> None:
    flat = torch.ones(mask.numel(), dtype=mask.dtype, device=mask.device)
    flat[drop] = 0
    mask.copy_(flat.view_as(mask))
    layer.weight.mul_(mask.to(layer.weight.dtype))


def cubic_sparsity(
    step: int, initial: float, final: float, start: int, num_steps: int, frequency: int
) -> float:
    """Zhu & Gupta (2017): ``s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3``.

    Evaluated at the last pruning step ``t0 + k dt <= t`` (``k <= n``), so the sparsity is a
    staircase that starts at ``s_i`` at ``t0`` and reaches ``s_f`` at ``t0 + n dt``; before
    ``t0`` nothing is pruned (0).
    """
    if step < start:
        return 0.0
    k = min((step - start) // frequency, num_steps)
    return final + (initial - final) * (1.0 - k / num_steps) ** 3


class PruningSchedule:
    """Gradual magnitude pruning of ``model`` along :func:`cubic_sparsity`, epoch by epoch.

    Pass it as ``step_callback`` to :func:`quant_models.train.train_classifier`: it is called
    with the 1-based epoch before that epoch's batches and prunes (cumulatively) whenever
    the scheduled sparsity rises, so each new mask is fine-tuned for at least ``frequency``
    epochs, and every epoch after ``start_epoch + num_steps * frequency`` fine-tunes at the
    final sparsity. ``history`` records ``(epoch, sparsity)`` of every pruning.
    """

    def __init__(
        self,
        model: nn.Module,
        final_sparsity: float,
        *,
        initial_sparsity: float = 0.0,
        start_epoch: int = 1,
        num_steps: int = 10,
        frequency: int = 1,
        scope: PruneScope = "layer",
        exclude: Iterable[str] = (),
    ) -> None:
        if not 0.0 <= initial_sparsity <= final_sparsity < 1.0:
            raise ValueError("need 0 <= initial_sparsity <= final_sparsity < 1")
        if start_epoch < 1 or num_steps < 1 or frequency < 1:
            raise ValueError("need start_epoch >= 1, num_steps >= 1 and frequency >= 1")
        self.model = model
        self.final_sparsity = float(final_sparsity)
        self.initial_sparsity = float(initial_sparsity)
        self.start_epoch = int(start_epoch)
        self.num_steps = int(num_steps)
        self.frequency = int(frequency)
        self.scope: PruneScope = scope
        self.exclude = tuple(exclude)
        self.current = 0.0
        self.history: list[tuple[int, float]] = []
        # Masks exist from the start, so the model's state dict has one layout throughout.
        layers = prunable_layers(model, self.exclude)
        if not layers:
            raise ValueError(f"{type(model).__name__} has no prunable layer")
        for _, layer in layers:
            attach_mask_(layer)

    @property
    def end_epoch(self) -> int:
        """The epoch at which the final sparsity is reached."""
        return self.start_epoch + self.num_steps * self.frequency

    def sparsity_at(self, epoch: int) -> float:
        """The scheduled sparsity during ``epoch``."""
        return cubic_sparsity(
            epoch,
            self.initial_sparsity,
            self.final_sparsity,
            self.start_epoch,
            self.num_steps,
            self.frequency,
        )

    def __call__(self, epoch: int) -> None:
        target = self.sparsity_at(epoch)
        if target > self.current:
            magnitude_prune_(self.model, target, self.scope, self.exclude)
            self.current = target
            self.history.append((int(epoch), target))


@torch.no_grad()
def sparsity_report(
    model: nn.Module, source: Literal["weights", "mask"] = "weights"
) -> dict[str, float]:
    """Fraction of zero weights per linear layer (names as in ``named_modules``).

    ``source="weights"``: exact zeros of the weights the forward pass multiplies by (the
    integer weights of quantized layers, so quantization zeros count too; binary layers are
    always 0.0). ``source="mask"``: the fraction of pruned (masked) weights only.
    """
    if source not in ("weights", "mask"):
        raise ValueError(f"source must be 'weights' or 'mask', got {source!r}")
    report: dict[str, float] = {}
    for name, m in model.named_modules():
        if not isinstance(m, nn.Linear):
            continue
        if source == "mask":
            mask = getattr(m, "weight_mask", None)
            zeros = 0 if mask is None else int((mask == 0).sum())
        elif isinstance(m, IntegerLinear):
            zeros = int((m.integer_weight()[0] == 0).sum())
        elif isinstance(m, BinaryLinear):
            zeros = 0
        else:
            mask = getattr(m, "weight_mask", None)
            weight = m.weight if mask is None else m.weight * mask
            zeros = int((weight == 0).sum())
        report[name] = zeros / m.weight.numel()
    return report
