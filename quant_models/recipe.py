"""Compression recipes: a YAML file composing techniques, checked before anything trains.

A recipe (in the manner of Distiller's compression schedules) names a starting network,
optionally a teacher, and the steps that compress it; each step is one technique of
:mod:`quant_models.techniques` with the layers it changes, its targets and its fine-tuning::

    name: compressed-cnn
    description: 4-bit CNN, channels pruned, layers factorized, distilled
    base: fixed-point-cnn-w4a4        # a built-in example (its trained weights)
    from_scratch: false               # true: the base's untrained network instead
    teacher: float-cnn                # optional: distil every training run from it
    distillation: {temperature: 4, alpha: 0.7}
    training: {lr: 0.003, batch_size: 64, seed: 0}   # defaults of every step
    hardware: {target_cycles: 2048, sparse: 0.5}     # codesign's defaults for the result
    targets: {alpha: 10}              # compression rate in weights the plan must allow
    steps:
      - technique: channel_pruning
        layers: {conv0: 0.5, conv1: 0.5, conv2: 0.5}
        criterion: l1                 # l1 | bn_scale | thinet
        round_to: 4
        schedule: {agp: {start_epoch: 1, num_steps: 5, frequency: 2}}   # or one_shot
        epochs: 30
      - technique: low_rank
        layers: {conv1: {method: tucker, ranks: [4, 8]}, fc3: {method: svd, energy: 0.9}}
        epochs: 30

Layer names are the compiler's (``conv0``, ``fc3``, as ``codesign run --fold`` uses them)
as they are when the step runs: a factorized layer becomes several, and the layers after it
are renumbered. :func:`plan_recipe` applies every step's change of shape to the base network
without data or training, so an unknown technique, option or layer, a value out of range, or
a target the planned network cannot meet is a named error before any training.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from codesign.errors import CodesignError
from quant_models.architecture import SequentialNet, as_sequential
from quant_models.structure import weight_count
from quant_models.techniques import (
    TRAINING_OPTIONS,
    RecipeOptionError,
    check_keys,
    number,
    technique,
    training_options,
)

__all__ = [
    "Recipe",
    "RecipeError",
    "RecipeStep",
    "UnmeetableTargetError",
    "load_recipe",
    "parse_recipe",
    "plan_recipe",
]

TOP_LEVEL = ("name", "description", "base", "from_scratch", "teacher", "distillation",
             "training", "hardware", "targets", "steps")
HARDWARE_OPTIONS = ("target_cycles", "sparse")
TARGETS = ("alpha",)
NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")


class RecipeError(CodesignError):
    """A recipe file that cannot be read or is malformed."""


class UnmeetableTargetError(CodesignError):
    """A target the planned network cannot meet, whatever the training does."""


@dataclass(frozen=True)
class RecipeStep:
    """One validated step: its technique and options (``run``: its fine-tuning)."""

    technique: str
    options: dict[str, Any]
    where: str


@dataclass(frozen=True)
class Recipe:
    """A validated recipe; ``source`` is the mapping it was read from (its cache identity)."""

    name: str
    description: str
    base: str
    from_scratch: bool
    teacher: str | None
    temperature: float
    alpha: float
    hardware: dict[str, Any]
    targets: dict[str, float]
    steps: tuple[RecipeStep, ...]
    source: dict[str, Any] = field(compare=False)
    origin: str = "recipe"


def _where(origin: str, index: int, name: Any) -> str:
    return f"{origin}: step {index + 1} ({name})"


def parse_recipe(source: Mapping[str, Any], origin: str = "recipe",
                 examples: Mapping[str, str] | None = None) -> Recipe:
    """Validate a recipe mapping. ``examples`` maps the built-in example names a recipe may
    start from (or learn from) to their kind ("mlp"/"cnn"); ``None`` skips that check."""
    if not isinstance(source, Mapping):
        raise RecipeError(f"{origin}: a recipe is a mapping of sections, got "
                          f"{type(source).__name__}")
    check_keys(source, TOP_LEVEL, origin)
    for key in ("name", "description", "base", "steps"):
        if key not in source:
            raise RecipeError(f"{origin}: the section {key!r} is missing")
    name = source["name"]
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise RecipeOptionError(f"{origin}: name {name!r} is not accepted; use lower-case "
                                "letters, digits, '-' and '.'")
    description = source["description"]
    if not isinstance(description, str) or not description or "\n" in description.strip():
        raise RecipeOptionError(f"{origin}: description must be one line of text")
    base, teacher = source["base"], source.get("teacher")
    for role, example in (("base", base), ("teacher", teacher)):
        if example is None and role == "teacher":
            continue
        if examples is not None and example not in examples:
            raise RecipeOptionError(f"{origin}: {role} {example!r} is not a built-in "
                                    f"example; examples: {', '.join(examples)}")
    if examples is not None and teacher is not None and examples[teacher] != examples[base]:
        raise RecipeOptionError(f"{origin}: teacher {teacher!r} ({examples[teacher]}) does "
                                f"not take the inputs of base {base!r} ({examples[base]})")
    from_scratch = source.get("from_scratch", False)
    if not isinstance(from_scratch, bool):
        raise RecipeOptionError(f"{origin}: from_scratch must be true or false")
    distillation = source.get("distillation") or {}
    check_keys(distillation, ("temperature", "alpha"), f"{origin}: distillation")
    if distillation and teacher is None:
        raise RecipeOptionError(f"{origin}: distillation needs a teacher")
    temperature = number(distillation.get("temperature", 4.0),
                         f"{origin}: distillation.temperature", lo=0, hi=1000, open_lo=True)
    alpha = number(distillation.get("alpha", 0.7), f"{origin}: distillation.alpha", lo=0,
                   hi=1)
    training = source.get("training") or {}
    check_keys(training, TRAINING_OPTIONS[1:], f"{origin}: training")
    hardware = dict(source.get("hardware") or {})
    check_keys(hardware, HARDWARE_OPTIONS, f"{origin}: hardware")
    if "target_cycles" in hardware:
        hardware["target_cycles"] = number(hardware["target_cycles"],
                                           f"{origin}: hardware.target_cycles", lo=1,
                                           hi=1 << 40, integer=True)
    if "sparse" in hardware:
        hardware["sparse"] = number(hardware["sparse"], f"{origin}: hardware.sparse", lo=0,
                                    hi=1)
    targets = source.get("targets") or {}
    check_keys(targets, TARGETS, f"{origin}: targets")
    checked_targets = {key: number(value, f"{origin}: targets.{key}", lo=1, hi=1e9)
                       for key, value in targets.items()}
    raw_steps = source["steps"]
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RecipeError(f"{origin}: steps must be a non-empty list")
    steps = []
    for index, raw in enumerate(raw_steps):
        if not isinstance(raw, Mapping) or "technique" not in raw:
            raise RecipeError(f"{origin}: step {index + 1} must be a mapping with a "
                              "'technique'")
        where = _where(origin, index, raw["technique"])
        found = technique(raw["technique"], f"{origin}: step {index + 1}")
        check_keys(raw, ("technique", *TRAINING_OPTIONS, *found.options), where)
        options = found.check({k: v for k, v in raw.items() if k != "technique"}, where)
        options["run"] = training_options(raw, training, where)
        steps.append(RecipeStep(found.name, options, where))
    return Recipe(name=name, description=description.strip(), base=base,
                  from_scratch=from_scratch, teacher=teacher, temperature=temperature,
                  alpha=alpha, hardware=hardware, targets=checked_targets,
                  steps=tuple(steps), source=dict(source), origin=origin)


def load_recipe(path: str | Path, examples: Mapping[str, str] | None = None) -> Recipe:
    """Read and validate a recipe file (named errors for a missing or malformed file)."""
    path = Path(path)
    try:
        source = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RecipeError(f"recipe {path}: cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise RecipeError(f"recipe {path}: not valid YAML ({reason})") from None
    return parse_recipe(source, str(path), examples)


def plan_recipe(recipe: Recipe, base: nn.Module, baseline_weights: int | None = None
                ) -> SequentialNet:
    """The network's shape after every step (placeholder channels and ranks, no training);
    checks every layer name and, given the float baseline's weight count, the targets."""
    model = as_sequential(base)
    for step in recipe.steps:
        model = technique(step.technique, step.where).plan(model, step.options, step.where)
    if baseline_weights is not None and "alpha" in recipe.targets:
        planned = weight_count(model)
        best = baseline_weights / planned
        if best < recipe.targets["alpha"]:
            raise UnmeetableTargetError(
                f"{recipe.origin}: targets.alpha {recipe.targets['alpha']:g} cannot be met: "
                f"the planned network keeps at least {planned} weights against the float "
                f"baseline's {baseline_weights} (alpha <= {best:.2f}); prune more channels or "
                "lower the ranks")
    return model

