"""Deep Compression (Han et al., ICLR 2016) as a recipe: prune -> share -> fine-tune -> Huffman.

1. **Prune** (AGP): train the network with float weights while Zhu & Gupta's gradual
   schedule (:class:`~quant_models.pruning.PruningSchedule`) raises every layer's sparsity
   to its target, then keep training at the final masks.
2. **Share**: cluster each layer's surviving weights into its codebook
   (:func:`~quant_models.sharing.share_weights_`: k-means, linear initialisation, centroids
   on a fixed-point grid, pruned weights stay zero).
3. **Fine-tune** the centroids (and batch norms, activation scales): each centroid's
   gradient is the sum of its members' gradients.
4. **Huffman**-code the stored streams (:mod:`quant_models.huffman`): storage only, the
   network is unchanged.

:func:`run_recipe` runs 1-3 and records each stage's accuracy in the training report;
:func:`compression_table` computes the paper's per-stage table (weights, bits and the
compression rate alpha after pruning, after sharing and after Huffman coding) from the
trained model, against the float32 weights of the same topology.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from quant_models.data import DigitsSplit
from quant_models.huffman import FLOAT_BITS, LayerStorage, layer_storage
from quant_models.pruning import PruningSchedule
from quant_models.sharing import WeightSharingError, share_weights_, shared_layers
from quant_models.train import ProgressFn, TrainReport, evaluate, train_classifier

__all__ = [
    "CompressionTable",
    "DeepCompressionRecipe",
    "StageRow",
    "compression_table",
    "recipe_trainer",
    "run_recipe",
]


@dataclass(frozen=True)
class DeepCompressionRecipe:
    """The pipeline's settings; ``sparsity`` holds one AGP target per shared layer, in
    module order (the paper prunes each layer to its own rate)."""

    sparsity: tuple[float, ...]
    prune_epochs: int = 60
    start_epoch: int = 6
    num_steps: int = 10
    frequency: int = 2
    lr: float = 3e-3
    finetune_epochs: int = 30
    finetune_lr: float = 3e-4
    batch_size: int = 64
    seed: int = 0

    @staticmethod
    def create(settings: dict[str, Any]) -> DeepCompressionRecipe:
        return DeepCompressionRecipe(**{**settings,
                                        "sparsity": tuple(float(s) for s in
                                                          settings["sparsity"])})

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sparsity": list(self.sparsity)}


def _stage(name: str, model: nn.Module, split: DigitsSplit, epochs: int) -> dict[str, Any]:
    return {"stage": name, "epochs": epochs,
            "train_accuracy": evaluate(model, split.x_train, split.y_train),
            "test_accuracy": evaluate(model, split.x_test, split.y_test)}


def run_recipe(model: nn.Module, split: DigitsSplit, recipe: DeepCompressionRecipe,
               progress: ProgressFn | None = None) -> TrainReport:
    """Prune, share and fine-tune ``model`` in place; the report's ``stages`` hold the
    accuracy after each stage (its own accuracies are the final model's)."""
    start = time.perf_counter()
    layers = [name for name, _ in shared_layers(model)]
    if len(recipe.sparsity) != len(layers):
        raise WeightSharingError(f"the recipe gives {len(recipe.sparsity)} sparsities for "
                                 f"{len(layers)} shared layers ({', '.join(layers)})")
    schedules = [PruningSchedule(model, sparsity, start_epoch=recipe.start_epoch,
                                 num_steps=recipe.num_steps, frequency=recipe.frequency,
                                 exclude=[other for other in layers if other != name])
                 for name, sparsity in zip(layers, recipe.sparsity, strict=True)]

    def prune(epoch: int) -> None:
        for schedule in schedules:
            schedule(epoch)

    common = dict(batch_size=recipe.batch_size, seed=recipe.seed, progress=progress)
    train_classifier(model, split, epochs=recipe.prune_epochs, lr=recipe.lr,
                     step_callback=prune, **common)
    stages = [_stage("pruned", model, split, recipe.prune_epochs)]
    sharing = share_weights_(model)
    stages.append({**_stage("shared", model, split, 0),
                   "empty_clusters": {s.name: s.empty for s in sharing}})
    final = train_classifier(model, split, epochs=recipe.finetune_epochs,
                             lr=recipe.finetune_lr, **common)
    stages.append(_stage("fine-tuned", model, split, recipe.finetune_epochs))
    return TrainReport(epochs=recipe.prune_epochs + recipe.finetune_epochs,
                       final_loss=final.final_loss, train_accuracy=final.train_accuracy,
                       test_accuracy=final.test_accuracy,
                       seconds=time.perf_counter() - start, stages=tuple(stages))


def recipe_trainer(settings: dict[str, Any]
                   ) -> Callable[[nn.Module, DigitsSplit, ProgressFn | None], TrainReport]:
    """The training function of an example whose record carries these recipe settings."""
    recipe = DeepCompressionRecipe.create(settings)

    def train(model: nn.Module, split: DigitsSplit, progress: ProgressFn | None
              ) -> TrainReport:
        return run_recipe(model, split, recipe, progress)

    return train


@dataclass(frozen=True)
class StageRow:
    """One row of the per-stage table."""

    stage: str
    weights: int
    """Weights stored: every weight of the float model, the non-zeros after pruning."""
    bits: int
    accuracy: float | None
    alpha: float
    """Compression rate: float32 bits / this stage's bits."""


@dataclass(frozen=True)
class CompressionTable:
    """The paper's tables for one trained model: per stage and per layer."""

    layers: list[LayerStorage]
    rows: list[StageRow] = field(default_factory=list)

    @property
    def alpha(self) -> float:
        """Final compression rate (after Huffman coding)."""
        return self.rows[-1].alpha


def compression_table(model: nn.Module, report: TrainReport,
                      float_accuracy: float | None = None) -> CompressionTable:
    """Per-stage and per-layer storage of a model trained by :func:`run_recipe`.

    Bits are the weight storage (as the paper counts them): float32 values; after pruning
    float32 values plus fixed-width relative indices; after sharing fixed-width codebook
    indices plus relative indices plus the codebooks; after Huffman the encoded streams
    plus codebooks and code tables. Accuracies come from the report's stages.
    """
    layers = []
    for name, layer in shared_layers(model):
        values, index_bits = layer.weight_codebook()
        layers.append(layer_storage(name, layer.codebook_indices(), index_bits,
                                    layer.grid_bits, len(values)))
    accuracy = {stage["stage"]: stage["test_accuracy"] for stage in report.stages}
    weights = sum(s.weights for s in layers)
    nonzero = sum(s.nonzero for s in layers)
    base = weights * FLOAT_BITS
    rows = []
    for stage, count, bits, acc in (
            ("float32", weights, base, float_accuracy),
            ("pruned", nonzero, sum(s.pruned_bits for s in layers), accuracy.get("pruned")),
            ("shared", nonzero, sum(s.shared_bits for s in layers),
             accuracy.get("fine-tuned")),
            ("huffman", nonzero, sum(s.huffman_bits for s in layers),
             accuracy.get("fine-tuned"))):
        rows.append(StageRow(stage, count, bits, acc, base / bits))
    return CompressionTable(layers, rows)

