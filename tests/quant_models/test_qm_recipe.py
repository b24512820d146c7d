"""Recipes: every mistake is a named, one-line error before anything trains; a small recipe
runs (once per session) into a thinner, factorized, distilled network whose integer graph
equals torch, and comes back from the cache unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import quant_models.techniques as techniques
from codesign.errors import CodesignError
from codesign.flow import compile_model
from netgen import assert_matches_torch
from quant_models import catalog
from quant_models.compress import load_compressed, recipe_key, run_recipe
from quant_models.recipe import (
    RecipeError,
    UnmeetableTargetError,
    load_recipe,
    parse_recipe,
    plan_recipe,
)
from quant_models.structure import UnknownLayerError, layer_sites, weight_count
from quant_models.techniques import RecipeOptionError, UnknownTechniqueError
from quant_models.zoo import builtin_example, example_key

KINDS = {entry.name: entry.kind for entry in catalog.examples()}

SMALL = {
    "name": "small-mlp",
    "description": "a small test recipe",
    "base": "fixed-point-mlp-w4a4",
    "teacher": "float-mlp",
    "distillation": {"temperature": 3.0, "alpha": 0.5},
    "training": {"lr": 0.003, "batch_size": 128},
    "steps": [
        {"technique": "channel_pruning", "layers": {"fc0": 0.5, "fc1": 0.25},
         "criterion": "l1", "round_to": 4, "epochs": 1},
        {"technique": "low_rank", "layers": {"fc0": {"method": "svd", "rank": 8}},
         "intermediate_bits": 8, "epochs": 1},
    ],
}


def _loader(name):
    return builtin_example(name)


def _recipe(**changes):
    source = {**SMALL, **changes}
    return parse_recipe(source, "small.yaml", KINDS)


def _step(**changes):
    return {**SMALL["steps"][0], **changes}


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(techniques, "train_classifier", fail)


@pytest.mark.parametrize("change, error, message", [
    ({"steps": [{"technique": "prune_harder", "layers": {"fc0": 0.5}}]},
     UnknownTechniqueError,
     "small.yaml: step 1: unknown technique 'prune_harder'; techniques: train, "
     "channel_pruning, low_rank, weight_bits"),
    ({"steps": [_step(criterion="random")]}, RecipeOptionError,
     "small.yaml: step 1 (channel_pruning): criterion 'random' is not accepted; criteria: "
     "l1, bn_scale, thinet"),
    ({"steps": [_step(rounding=4)]}, RecipeOptionError,
     "small.yaml: step 1 (channel_pruning): unknown option 'rounding'; options: technique, "
     "epochs, lr, batch_size, seed, layers, criterion, round_to, schedule, penalty, "
     "sparsity_epochs"),
    ({"steps": [_step(layers={"fc0": 1.0})]}, RecipeOptionError,
     "small.yaml: step 1 (channel_pruning): layers.fc0: 1.0 is not accepted; give a number "
     "in (0, 1)"),
    ({"steps": [{"technique": "low_rank", "layers": {"fc0": {"method": "svd",
                                                             "ranks": [2, 2]}}}]},
     RecipeOptionError,
     "small.yaml: step 1 (low_rank): layers.fc0: svd takes either 'rank' or 'energy'"),
    ({"teacher": "float-cnn"}, RecipeOptionError,
     "small.yaml: teacher 'float-cnn' (cnn) does not take the inputs of base "
     "'fixed-point-mlp-w4a4' (mlp)"),
    ({"base": "no-such-net"}, RecipeOptionError,
     "small.yaml: base 'no-such-net' is not a built-in example; examples: "
     + ", ".join(KINDS)),
    ({"targets": {"speed": 2}}, RecipeOptionError,
     "small.yaml: targets: unknown option 'speed'; options: alpha"),
    ({"epochs": 3}, RecipeOptionError,
     "small.yaml: unknown option 'epochs'; options: name, description, base, from_scratch, "
     "teacher, distillation, training, hardware, targets, steps"),
])
def test_malformed_recipes_are_named_errors(change, error, message, no_training):
    with pytest.raises(error) as info:
        _recipe(**change)
    assert isinstance(info.value, CodesignError)
    assert str(info.value) == message


def test_unknown_layers_and_unmeetable_targets_fail_before_any_training(no_training):
    base, _ = builtin_example("fixed-point-mlp-w4a4")
    bad_layer = _recipe(steps=[_step(layers={"fc7": 0.5})])
    with pytest.raises(UnknownLayerError) as info:
        plan_recipe(bad_layer, base)
    assert str(info.value) == ("small.yaml: step 1 (channel_pruning): unknown layer 'fc7'; "
                               "layers: fc0, fc1, fc2")
    # after fc0's factorization the layers are renumbered: the old fc1 is fc2 now
    renamed = _recipe(steps=[SMALL["steps"][1], _step(layers={"fc2": 0.5})])
    planned = plan_recipe(renamed, base)
    assert [tuple(s.module.weight.shape) for s in layer_sites(planned)] == [
        (8, 64), (128, 8), (32, 128), (10, 32)]
    with pytest.raises(UnknownLayerError, match="step 1 .*unknown layer 'fc3'"):
        plan_recipe(_recipe(steps=[_step(layers={"fc3": 0.5})]), base)
    float_weights = weight_count(builtin_example("float-mlp")[0])
    greedy = _recipe(targets={"alpha": 40})
    with pytest.raises(UnmeetableTargetError) as info:
        load_compressed(greedy, "key", _loader)
    planned = weight_count(plan_recipe(greedy, base))
    assert str(info.value) == (
        f"small.yaml: targets.alpha 40 cannot be met: the planned network keeps at least "
        f"{planned} weights against the float baseline's {float_weights} (alpha <= "
        f"{float_weights / planned:.2f}); prune more channels or lower the ranks")


def test_recipe_files_are_read_with_named_errors(tmp_path):
    with pytest.raises(RecipeError, match=r"recipe .*missing.yaml: cannot be read"):
        load_recipe(tmp_path / "missing.yaml", KINDS)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match=r"recipe .*broken.yaml: not valid YAML"):
        load_recipe(broken, KINDS)
    good = tmp_path / "small.yaml"
    good.write_text(yaml.safe_dump(SMALL))
    assert load_recipe(good, KINDS).steps[1].options["layers"]["fc0"]["rank"] == 8


def test_every_built_in_recipe_is_valid_and_plans_on_its_base(no_training):
    for name in (*catalog.COMPRESSED_MLPS, *catalog.COMPRESSED_CNNS):
        recipe = load_recipe(catalog.RECIPES_DIR / f"{name}.yaml", KINDS)
        assert recipe.name == name
        base, _ = builtin_example(recipe.base)
        float_name = catalog.example(recipe.base).baseline
        plan_recipe(recipe, base, weight_count(builtin_example(float_name)[0]))


@pytest.fixture(scope="session")
def small_result():
    """The small recipe, run once per session (one epoch per step, on one thread)."""
    return run_recipe(_recipe(), _loader)


def test_a_recipe_thins_factorizes_and_distils(small_result):
    model, history = small_result.model, small_result.history
    names = [site.name for site in layer_sites(model)]
    assert names == ["fc0", "fc1", "fc2", "fc3"]                # fc0 became two layers
    shapes = [tuple(site.module.weight.shape) for site in layer_sites(model)]
    assert shapes == [(8, 64), (64, 8), (48, 64), (10, 48)]     # 128 * 0.5, 64 * 0.75
    assert [step["technique"] for step in history["steps"]] == ["channel_pruning", "low_rank"]
    assert history["steps"][-1]["weights"] == weight_count(model)
    assert history["teacher"] == "float-mlp"
    assert 0.0 <= history["test_accuracy_without_teacher"] <= 1.0
    assert small_result.report.epochs == 2


def test_a_recipe_result_lowers_exactly_and_comes_back_from_the_cache(small_result,
                                                                     monkeypatch):
    from quant_models.data import load_digits_split

    x = load_digits_split().x_test[:64]
    design = compile_model(small_result.model, name="small")
    assert_matches_torch(small_result.model, design.graph, x)
    recipe = _recipe()
    key = recipe_key(recipe, example_key(catalog.example(recipe.base)), "t")
    from quant_models.cache import cache_path, save_weights

    save_weights(cache_path(recipe.name, key), recipe.name, key, small_result.model,
                 small_result.report, {"architecture": small_result.model.architecture,
                                       "history": small_result.history})
    monkeypatch.setattr(techniques, "train_classifier", lambda *a, **k: 1 / 0)
    again = load_compressed(recipe, key, _loader)
    assert again.history == small_result.history
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=torch.float32)
        assert torch.equal(again.model(xt), small_result.model(xt))
    assert np.isfinite(again.report.test_accuracy)


def test_recipe_files_ship_with_the_package():
    assert Path(catalog.RECIPES_DIR).is_dir()
    assert sorted(p.stem for p in catalog.RECIPES_DIR.glob("*.yaml")) == sorted(
        (*catalog.COMPRESSED_MLPS, *catalog.COMPRESSED_CNNS))
