"""Running compression recipes, and loading their results like any other trained model.

:func:`run_recipe` starts from the base example's trained network (or its untrained one),
runs every step of the recipe (:mod:`quant_models.techniques`) and returns the compressed
network with its training report and *history*: each step's test accuracy and weight count
and, when the recipe has a teacher, the test accuracy the same recipe reaches without it
(the recipe is run a second time with plain cross-entropy), so the report can state what
distillation bought.

:func:`load_compressed` gives a recipe's result the life of every built-in model
(:mod:`quant_models.cache`): the shipped weights file when its key matches, else the cache,
else the recipe runs (on one torch thread) and the result is cached. A weights file of a
compressed network records its architecture and history beside the state dict, since its
shape is the recipe's outcome. The key covers the recipe and the keys of its base and
teacher, so a changed base retrains whatever was built on it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from quant_models import catalog
from quant_models.architecture import SequentialNet, as_sequential
from quant_models.cache import (
    WeightsFile,
    build_seeded,
    cache_key,
    cache_path,
    find_weights,
    save_weights,
    training_threads,
)
from quant_models.data import load_digits_split
from quant_models.distillation import distillation_loss
from quant_models.recipe import Recipe, parse_recipe, plan_recipe
from quant_models.structure import weight_count
from quant_models.techniques import RecipeOptionError, StepContext, technique
from quant_models.train import LossFn, ProgressFn, TrainReport, evaluate

__all__ = [
    "CALIBRATION_FRAMES",
    "Compressed",
    "Loader",
    "builtin_recipe",
    "history_of",
    "load_compressed",
    "recipe_key",
    "run_recipe",
    "stderr_say",
]

Loader = Callable[[str], tuple[nn.Module, TrainReport]]
"""Loads a built-in example by name (its trained network and report)."""

Say = Callable[[str], None]

CALIBRATION_FRAMES = 512
"""Training images that calibrate requantizations and feed data-driven criteria."""


@dataclass
class Compressed:
    """A recipe's result: the network (eval mode), its report and history."""

    model: SequentialNet
    report: TrainReport
    history: dict[str, Any]


def _quiet(message: str) -> None:
    return None


def builtin_recipe(example: catalog.Example[Any]) -> Recipe:
    """The validated recipe of a built-in compressed example."""
    assert example.recipe is not None
    kinds = {entry.name: entry.kind for entry in catalog.examples()}
    return parse_recipe(example.recipe, f"recipe {example.name}", kinds)


def recipe_key(recipe: Recipe, base_key: str, teacher_key: str | None) -> str:
    """The weights key of a recipe's result (see the module docstring)."""
    return cache_key({"recipe": recipe.source}, {"base": base_key, "teacher": teacher_key},
                     catalog.SPLIT_PARAMS)


def _start(recipe: Recipe, loader: Loader) -> SequentialNet:
    entry = catalog.example(recipe.base)
    if recipe.from_scratch:
        return as_sequential(build_seeded(entry.build, int(entry.training["seed"]))).train()
    model, _ = loader(recipe.base)
    return as_sequential(model)


def _run_once(recipe: Recipe, loader: Loader, teacher: nn.Module | None, say: Say,
              progress: ProgressFn | None = None
              ) -> tuple[SequentialNet, list[dict[str, Any]], list[TrainReport]]:
    split = load_digits_split(**catalog.SPLIT_PARAMS)
    sample = torch.as_tensor(split.x_train[:CALIBRATION_FRAMES], dtype=torch.float32)

    def make_loss(extra: Callable[[], torch.Tensor] | None) -> LossFn | None:
        if teacher is not None:
            return distillation_loss(teacher, recipe.temperature, recipe.alpha, extra)
        if extra is None:
            return None

        def loss(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(logits, y) + extra()

        return loss

    context = StepContext(split, sample, make_loss, say, progress)
    model = _start(recipe, loader)
    steps = []
    for step in recipe.steps:
        say(f"   {step.where}")
        model = technique(step.technique, step.where).run(model, step.options, context)
        model.eval()
        steps.append({"technique": step.technique,
                      "test_accuracy": evaluate(model, split.x_test, split.y_test),
                      "weights": weight_count(model)})
    return model, steps, context.reports


def run_recipe(recipe: Recipe, loader: Loader, *, say: Say = _quiet,
               progress: ProgressFn | None = None) -> Compressed:
    """Run ``recipe`` (see the module docstring); trains on one torch thread."""
    start = time.perf_counter()
    split = load_digits_split(**catalog.SPLIT_PARAMS)
    teacher = loader(recipe.teacher)[0].eval() if recipe.teacher is not None else None
    with training_threads():
        model, steps, reports = _run_once(recipe, loader, teacher, say, progress)
        history: dict[str, Any] = {"steps": steps}
        if teacher is not None:
            say("   the same recipe without the teacher")
            plain, _, _ = _run_once(recipe, loader, None, _quiet)
            history["teacher"] = recipe.teacher
            history["test_accuracy_without_teacher"] = evaluate(plain, split.x_test,
                                                                split.y_test)
    report = TrainReport(
        epochs=sum(r.epochs for r in reports),
        final_loss=reports[-1].final_loss if reports else float("nan"),
        train_accuracy=evaluate(model, split.x_train, split.y_train),
        test_accuracy=evaluate(model, split.x_test, split.y_test),
        seconds=time.perf_counter() - start)
    history["test_accuracy"] = report.test_accuracy
    model.history = history
    return Compressed(model.eval(), report, history)


def load_compressed(recipe: Recipe, key: str, loader: Loader, *, retrain: bool = False,
                    say: Say = _quiet, progress: ProgressFn | None = None) -> Compressed:
    """The result of ``recipe`` (shipped, cached, or run and cached; see the docstring).

    The recipe is planned first (every layer name, option and target checked on the base
    network), so a bad recipe fails before anything trains.
    """
    baseline = catalog.example(recipe.base).baseline
    if baseline is None:
        raise RecipeOptionError(f"{recipe.origin}: base {recipe.base!r} is a float network; "
                                "start from a quantized example (its float baseline is the "
                                "reference the metrics compare with)")
    if recipe.from_scratch and catalog.example(recipe.base).recipe is not None:
        raise RecipeOptionError(f"{recipe.origin}: from_scratch needs a base with an "
                                f"untrained network; {recipe.base!r} is made by a recipe")
    base, _ = loader(recipe.base)
    baseline_weights = None
    if baseline is not None and "alpha" in recipe.targets:
        baseline_weights = weight_count(loader(baseline)[0])
    plan_recipe(recipe, base, baseline_weights)

    def load(weights: WeightsFile) -> Compressed:
        assert weights.extra is not None
        model = SequentialNet(weights.extra["architecture"])
        model.load_state_dict(weights.state_dict, strict=True)
        model.history = dict(weights.extra["history"])
        return Compressed(model.eval(), weights.report, model.history)

    if not retrain:
        found = find_weights(recipe.name, key, load)
        if found is not None:
            return found[0]
    say(f"running recipe {recipe.name!r} ({len(recipe.steps)} steps)")
    result = run_recipe(recipe, loader, say=say, progress=progress)
    save_weights(cache_path(recipe.name, key), recipe.name, key, result.model, result.report,
                 extra={"architecture": result.model.architecture,
                        "history": result.history})
    return result


def stderr_say(message: str) -> None:
    """Progress lines on stderr."""
    print(message, file=sys.stderr, flush=True)


def history_of(model: nn.Module) -> dict[str, Any] | None:
    """The compression history a recipe's network carries (``None`` for other models)."""
    history = getattr(model, "history", None)
    return history if isinstance(history, dict) else None

