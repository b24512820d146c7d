"""Sensitivity analysis (as in Distiller): compress one layer at a time, see what it costs.

For every layer that can take it, :func:`channel_sensitivity` removes a range of fractions of
its filters (masking the channels :mod:`quant_models.channel_pruning` would remove, ranked
by L1 norm or another criterion) and :func:`bits_sensitivity` requantizes its weights to a
range of bit widths, each time with every other layer untouched and without fine-tuning,
and measures the accuracy. The curves say which layers tolerate compression; :func:`propose`
turns them into a per-layer configuration for a target accuracy loss: for each layer the
largest pruned fraction (or the fewest bits) whose accuracy, *and that of every milder
setting*, stays within the loss. Layers interact, so the proposal is a starting point for a
recipe (:func:`proposal_steps`), which fine-tunes; :func:`apply_proposal` measures it
applied all at once, before fine-tuning.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor, nn

from quant_models.architecture import SequentialNet, as_sequential
from quant_models.channel_pruning import choose_channels, mask_channels_
from quant_models.fixed_point import set_weight_bits_
from quant_models.structure import layer_sites
from quant_models.train import evaluate

__all__ = [
    "FRACTIONS",
    "WEIGHT_BITS",
    "SensitivityCurve",
    "apply_proposal",
    "bits_sensitivity",
    "channel_sensitivity",
    "plot_sensitivity",
    "prunable_layers",
    "proposal_steps",
    "propose",
    "quantizable_layers",
]

FRACTIONS: tuple[float, ...] = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875)
WEIGHT_BITS: tuple[int, ...] = (8, 7, 6, 5, 4, 3, 2)


@dataclass(frozen=True)
class SensitivityCurve:
    """Accuracy of the network with one layer compressed to each setting."""

    layer: str
    kind: str
    """``channels`` (settings: fraction of filters removed) or ``weight_bits``."""
    settings: tuple[float, ...]
    accuracies: tuple[float, ...]

    def record(self) -> dict[str, Any]:
        return {"layer": self.layer, "kind": self.kind, "settings": list(self.settings),
                "accuracies": list(self.accuracies)}


def prunable_layers(model: nn.Module) -> list[str]:
    """Layers whose channels can be masked: not the output layer, ungrouped, and read by a
    layer with a weight mask."""
    sites = layer_sites(model)
    by_index = {s.index: s for s in sites}
    names = []
    for site in sites:
        if site.consumer is None or getattr(site.module, "groups", 1) != 1:
            continue
        consumer = by_index[site.consumer].module
        if isinstance(getattr(consumer, "weight_mask", None), Tensor) \
                and getattr(consumer, "groups", 1) == 1:
            names.append(site.name)
    return names


def quantizable_layers(model: nn.Module) -> list[str]:
    """Layers with k-bit weights (their bit width can change)."""
    return [site.name for site in layer_sites(model) if hasattr(site.module, "weight_bits")]


def _channels(model: nn.Module, name: str) -> int:
    site = next(s for s in layer_sites(model) if s.name == name)
    return int(site.module.weight.shape[0])


def _pruned(model: nn.Module, fractions: Mapping[str, float], criterion: str,
            sample: Tensor | None) -> SequentialNet:
    copy = as_sequential(model)
    for name, fraction in fractions.items():
        count = round(fraction * _channels(copy, name))
        if count:
            mask_channels_(copy, {name: choose_channels(copy, name, count, criterion,
                                                        sample)})
    return copy


def channel_sensitivity(model: nn.Module, x: np.ndarray, y: np.ndarray,
                        fractions: Sequence[float] = FRACTIONS, criterion: str = "l1",
                        layers: Sequence[str] | None = None,
                        sample: Tensor | None = None) -> list[SensitivityCurve]:
    """Accuracy on ``(x, y)`` with each layer's filters removed, one layer at a time."""
    curves = []
    for name in layers if layers is not None else prunable_layers(model):
        accuracies = tuple(evaluate(_pruned(model, {name: f}, criterion, sample), x, y)
                           for f in fractions)
        curves.append(SensitivityCurve(name, "channels", tuple(fractions), accuracies))
    return curves


def _requantized(model: nn.Module, bits: Mapping[str, int]) -> SequentialNet:
    copy = as_sequential(model)
    for site in layer_sites(copy):
        if site.name in bits:
            set_weight_bits_(site.module, bits[site.name])
    return copy


def bits_sensitivity(model: nn.Module, x: np.ndarray, y: np.ndarray,
                     bits: Sequence[int] = WEIGHT_BITS, layers: Sequence[str] | None = None
                     ) -> list[SensitivityCurve]:
    """Accuracy on ``(x, y)`` with each layer's weights requantized, one layer at a time."""
    curves = []
    for name in layers if layers is not None else quantizable_layers(model):
        accuracies = tuple(evaluate(_requantized(model, {name: b}), x, y) for b in bits)
        curves.append(SensitivityCurve(name, "weight_bits", tuple(float(b) for b in bits),
                                       accuracies))
    return curves


def propose(curves: Sequence[SensitivityCurve], reference: float, max_loss: float
            ) -> dict[str, dict[str, float]]:
    """Per kind, per layer: the most compressed setting whose accuracy, and that of every
    milder setting before it on the curve, is at least ``reference - max_loss`` (layers
    whose mildest setting already misses are left out)."""
    proposal: dict[str, dict[str, float]] = {}
    for curve in curves:
        best = None
        for setting, accuracy in zip(curve.settings, curve.accuracies, strict=True):
            if accuracy < reference - max_loss - 1e-12:
                break
            best = setting
        if best is not None and (curve.kind != "channels" or best > 0):
            proposal.setdefault(curve.kind, {})[curve.layer] = best
    return proposal


def apply_proposal(model: nn.Module, proposal: Mapping[str, Mapping[str, float]],
                   criterion: str = "l1", sample: Tensor | None = None) -> SequentialNet:
    """The network with every proposed setting applied at once (no fine-tuning)."""
    net = _requantized(model, {k: int(v) for k, v in proposal.get("weight_bits", {}).items()})
    return _pruned(net, proposal.get("channels", {}), criterion, sample)


def proposal_steps(proposal: Mapping[str, Mapping[str, float]], epochs: int = 20,
                   criterion: str = "l1") -> list[dict[str, Any]]:
    """Recipe steps (:mod:`quant_models.recipe`) for a proposal: channel pruning, then the
    bit widths, each fine-tuned for ``epochs``."""
    steps: list[dict[str, Any]] = []
    if proposal.get("channels"):
        steps.append({"technique": "channel_pruning", "criterion": criterion,
                      "layers": dict(proposal["channels"]), "epochs": epochs})
    if proposal.get("weight_bits"):
        steps.append({"technique": "weight_bits", "epochs": epochs,
                      "layers": {k: int(v) for k, v in proposal["weight_bits"].items()}})
    return steps


def plot_sensitivity(curves: Sequence[SensitivityCurve], reference: float, max_loss: float,
                     title: str) -> bytes:
    """PNG: accuracy against the setting, one curve per layer, one panel per kind, with the
    reference accuracy and the loss budget drawn across."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in ("channels", "weight_bits") if any(c.kind == k for c in curves)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 3.8), squeeze=False)
    labels = {"channels": "fraction of filters removed (one layer, no fine-tuning)",
              "weight_bits": "weight bits (one layer, no fine-tuning)"}
    for ax, kind in zip(axes[0], kinds, strict=True):
        for curve in (c for c in curves if c.kind == kind):
            ax.plot(curve.settings, curve.accuracies, marker="o", label=curve.layer)
        ax.axhline(reference, color="grey", linewidth=0.8)
        ax.axhline(reference - max_loss, color="grey", linestyle="--", linewidth=0.8,
                   label=f"-{max_loss:.0%} budget" if max_loss >= 0.01 else "budget")
        if kind == "weight_bits":
            ax.invert_xaxis()
        ax.set_xlabel(labels[kind])
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()

