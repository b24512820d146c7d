"""The compression techniques a recipe step may name, each with its options, its plan and its
run.

A technique's *plan* applies only the change of shape (which layers shrink or split, with
placeholder channels and ranks), without data or training: recipes are planned before any
training, so an unknown layer or an impossible target is reported at once. Its *run* does
the real thing and fine-tunes. Every option is checked by :meth:`Technique.check`, which
names the step, the option and what is accepted.

- ``train``: (re)train or fine-tune the network as it is;
- ``channel_pruning``: remove a fraction of the output channels of named layers, ranked by
  ``l1``, ``bn_scale`` (after network slimming's sparsity training) or ``thinet``
  (:mod:`quant_models.channel_pruning`), one-shot or gradually (``agp``), then thin the
  network (:mod:`quant_models.thinning`);
- ``low_rank``: factorize named layers (``svd``, ``tucker``, ``cp``) with a rank or an
  energy fraction (:mod:`quant_models.lowrank`);
- ``weight_bits``: requantize named k-bit layers to fewer (or more) bits.

Every step fine-tunes for ``epochs`` (``0``: none) with the recipe's loss: cross-entropy, or
distillation from the recipe's teacher (:mod:`quant_models.distillation`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from codesign.errors import CodesignError
from quant_models.architecture import SequentialNet, as_sequential
from quant_models.channel_pruning import (
    CRITERIA,
    ChannelPruningSchedule,
    choose_channels,
    gamma_penalty,
    kept_channels,
    mask_channels_,
    masked_channels,
)
from quant_models.data import DigitsSplit
from quant_models.fixed_point import set_weight_bits_
from quant_models.lowrank import METHODS, check_factorization, factorize
from quant_models.structure import find_site, layer_sites
from quant_models.thinning import check_removal, thin
from quant_models.train import (
    EpochCallback,
    LossFn,
    ProgressFn,
    TrainReport,
    train_classifier,
)

__all__ = [
    "TECHNIQUES",
    "RecipeOptionError",
    "StepContext",
    "Technique",
    "UnknownTechniqueError",
    "technique",
]

TRAINING_DEFAULTS: dict[str, Any] = {"lr": 3e-3, "batch_size": 64, "seed": 0}
"""Fine-tuning defaults of every step (a recipe's ``training`` section overrides them)."""

TRAINING_OPTIONS = ("epochs", "lr", "batch_size", "seed")


class RecipeOptionError(CodesignError):
    """A recipe option that is unknown or has a value that is not accepted."""


class UnknownTechniqueError(CodesignError):
    """A recipe step names a technique that does not exist."""


def _fail(where: str, message: str) -> RecipeOptionError:
    return RecipeOptionError(f"{where}: {message}")


def number(value: Any, where: str, *, lo: float, hi: float, integer: bool = False,
           open_lo: bool = False, open_hi: bool = False) -> Any:
    """``value`` if it is a number in the range (whole for ``integer``), else a named error."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        v = float(value)
        ok = (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)
    if not ok:
        kind = "a whole number" if integer else "a number"
        left, right = "(" if open_lo else "[", ")" if open_hi else "]"
        raise _fail(where, f"{value!r} is not accepted; give {kind} in {left}{lo:g}, "
                           f"{hi:g}{right}")
    return int(value) if integer else float(value)


def check_keys(options: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """Every key of ``options`` is one of ``allowed``."""
    if not isinstance(options, Mapping):
        raise _fail(where, f"expected a mapping of options, got {type(options).__name__}")
    for key in options:
        if key not in allowed:
            raise _fail(where, f"unknown option {key!r}; options: {', '.join(allowed)}")


def training_options(options: Mapping[str, Any], defaults: Mapping[str, Any], where: str
                     ) -> dict[str, Any]:
    """The step's fine-tuning run: ``epochs`` (0: none) and the recipe's defaults."""
    run = {**TRAINING_DEFAULTS, **defaults}
    run.update({k: options[k] for k in TRAINING_OPTIONS if k in options})
    run["epochs"] = number(run.get("epochs", 0), f"{where}: epochs", lo=0, hi=10_000,
                           integer=True)
    run["lr"] = number(run["lr"], f"{where}: lr", lo=0, hi=1, open_lo=True)
    run["batch_size"] = number(run["batch_size"], f"{where}: batch_size", lo=2, hi=1 << 16,
                               integer=True)
    run["seed"] = number(run["seed"], f"{where}: seed", lo=0, hi=2**31 - 1, integer=True)
    return run


@dataclass
class StepContext:
    """What a running step needs: data, the loss and progress reporting."""

    split: DigitsSplit
    sample: Tensor
    """Training inputs for calibration and data-driven criteria (ThiNet)."""
    make_loss: Callable[[Callable[[], Tensor] | None], LossFn | None]
    """The recipe's loss (distillation or cross-entropy) plus an optional extra term."""
    say: Callable[[str], None] = print
    progress: ProgressFn | None = None
    reports: list[TrainReport] = field(default_factory=list)

    def train(self, model: nn.Module, run: Mapping[str, Any], *,
              step_callback: EpochCallback | None = None,
              extra: Callable[[], Tensor] | None = None, epochs: int | None = None) -> None:
        """Fine-tune ``model`` in place for ``run``'s epochs (or ``epochs``)."""
        count = run["epochs"] if epochs is None else epochs
        if count < 1:
            return
        report = train_classifier(model, self.split, epochs=count, lr=run["lr"],
                                  batch_size=run["batch_size"], seed=run["seed"],
                                  progress=self.progress, step_callback=step_callback,
                                  loss=self.make_loss(extra))
        self.reports.append(report)
        self.say(f"      trained {count} epochs: test accuracy {report.test_accuracy:.4f}")


@dataclass(frozen=True)
class Technique:
    """One technique: its options, how to plan it and how to run it."""

    name: str
    options: tuple[str, ...]
    check: Callable[[Mapping[str, Any], str], dict[str, Any]]
    """Validated options (layer names are checked by ``plan``)."""
    plan: Callable[[SequentialNet, dict[str, Any], str], SequentialNet]
    run: Callable[[SequentialNet, dict[str, Any], StepContext], SequentialNet]


def _layer_map(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    layers = options.get("layers")
    if not isinstance(layers, Mapping) or not layers:
        raise _fail(where, "needs 'layers': a mapping of layer names to settings")
    return {str(k): v for k, v in layers.items()}


def _check_names(model: nn.Module, names: list[str], where: str) -> None:
    for name in names:
        find_site(model, name, where)


# -- train -----------------------------------------------------------------------------


def _check_train(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not options.get("epochs"):
        raise _fail(where, "a train step needs epochs >= 1")
    return {}


def _run_train(model: SequentialNet, options: dict[str, Any], ctx: StepContext
               ) -> SequentialNet:
    ctx.train(model, options["run"])
    return model


# -- channel pruning ---------------------------------------------------------------------

_PRUNING_OPTIONS = ("layers", "criterion", "round_to", "schedule", "penalty",
                    "sparsity_epochs")


def _check_pruning(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    layers = {name: number(f, f"{where}: layers.{name}", lo=0, hi=1, open_lo=True,
                           open_hi=True)
              for name, f in _layer_map(options, where).items()}
    criterion = options.get("criterion", "l1")
    if criterion not in CRITERIA:
        raise _fail(where, f"criterion {criterion!r} is not accepted; criteria: "
                           + ", ".join(CRITERIA))
    round_to = number(options.get("round_to", 1), f"{where}: round_to", lo=1, hi=1024,
                      integer=True)
    schedule = options.get("schedule", "one_shot")
    agp: dict[str, int] | None = None
    if schedule != "one_shot":
        if not isinstance(schedule, Mapping) or set(schedule) != {"agp"}:
            raise _fail(where, f"schedule {schedule!r} is not accepted; give one_shot or "
                               "{agp: {start_epoch, num_steps, frequency}}")
        check_keys(schedule["agp"] or {}, ("start_epoch", "num_steps", "frequency"),
                   f"{where}: schedule.agp")
        agp = {key: number((schedule["agp"] or {}).get(key, default),
                           f"{where}: schedule.agp.{key}", lo=1, hi=10_000, integer=True)
               for key, default in (("start_epoch", 1), ("num_steps", 5), ("frequency", 1))}
    penalty = options.get("penalty")
    sparsity_epochs = options.get("sparsity_epochs", 0)
    if criterion != "bn_scale" and (penalty is not None or sparsity_epochs):
        raise _fail(where, "penalty and sparsity_epochs belong to criterion bn_scale "
                           "(network slimming)")
    return {"layers": layers, "criterion": criterion, "round_to": round_to, "agp": agp,
            "penalty": number(1e-4 if penalty is None else penalty, f"{where}: penalty",
                              lo=0, hi=1),
            "sparsity_epochs": number(sparsity_epochs, f"{where}: sparsity_epochs", lo=0,
                                      hi=10_000, integer=True)}


def _removal_counts(model: nn.Module, options: dict[str, Any], where: str) -> dict[str, int]:
    counts = {}
    for name, fraction in options["layers"].items():
        site = find_site(model, name, where)
        module = site.module
        channels = int(module.out_channels if isinstance(module, nn.Conv2d)
                       else module.out_features)
        counts[name] = channels - kept_channels(channels, fraction, options["round_to"])
    return counts


def _plan_pruning(model: SequentialNet, options: dict[str, Any], where: str) -> SequentialNet:
    counts = _removal_counts(model, options, where)
    removal = {}
    for site in layer_sites(model):
        if site.name in counts:
            total = int(site.module.weight.shape[0])
            removal[site.name] = list(range(total - counts[site.name], total))
    try:
        check_removal(layer_sites(model), removal)
    except CodesignError as exc:
        raise _fail(where, str(exc)) from None
    return thin(model, removal)


def _run_pruning(model: SequentialNet, options: dict[str, Any], ctx: StepContext
                 ) -> SequentialNet:
    counts = _removal_counts(model, options, "channel_pruning")
    criterion, run = options["criterion"], options["run"]
    if criterion == "bn_scale" and options["sparsity_epochs"]:
        ctx.say(f"      sparsity training: L1 penalty {options['penalty']:g} on the gammas")
        ctx.train(model, run, epochs=options["sparsity_epochs"],
                  extra=gamma_penalty(model, list(counts), options["penalty"]))
    agp = options["agp"]
    if agp is None:
        for name, count in counts.items():
            if count:
                mask_channels_(model, {name: choose_channels(model, name, count, criterion,
                                                             ctx.sample)})
        model = thin(model, _masked(model, counts))
        ctx.train(model, run)
        return model
    schedule = ChannelPruningSchedule(model, counts, criterion, ctx.sample, **agp)
    if run["epochs"] < schedule.end_epoch:
        raise RecipeOptionError(f"channel_pruning: the agp schedule ends at epoch "
                                f"{schedule.end_epoch}; give epochs >= {schedule.end_epoch}")
    ctx.train(model, run, step_callback=schedule)
    return thin(model, _masked(model, counts))


def _masked(model: nn.Module, counts: Mapping[str, int]) -> dict[str, list[int]]:
    return {name: masked_channels(model, name) for name in counts}


# -- low rank ----------------------------------------------------------------------------

_LOW_RANK_OPTIONS = ("layers", "factor_bits", "intermediate_bits")


def _check_low_rank(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    layers = {}
    for name, spec in _layer_map(options, where).items():
        at = f"{where}: layers.{name}"
        check_keys(spec, ("method", "rank", "ranks", "energy"), at)
        method = spec.get("method")
        if method not in METHODS:
            raise _fail(at, f"method {method!r} is not accepted; methods: "
                            + ", ".join(METHODS))
        given = [k for k in ("rank", "ranks", "energy") if k in spec]
        wanted = "ranks" if method == "tucker" else "rank"
        if len(given) != 1 or given[0] not in (wanted, "energy"):
            raise _fail(at, f"{method} takes either '{wanted}' or 'energy'")
        entry: dict[str, Any] = {"method": method, "rank": None, "energy": None}
        if "energy" in spec:
            entry["energy"] = number(spec["energy"], f"{at}.energy", lo=0, hi=1,
                                     open_lo=True)
        elif method == "tucker":
            ranks = spec["ranks"]
            if not isinstance(ranks, list) or len(ranks) != 2:
                raise _fail(f"{at}.ranks", f"{ranks!r} is not accepted; give [r_in, r_out]")
            entry["rank"] = [number(r, f"{at}.ranks", lo=1, hi=1 << 16, integer=True)
                             for r in ranks]
        else:
            entry["rank"] = number(spec["rank"], f"{at}.rank", lo=1, hi=1 << 16,
                                   integer=True)
        layers[name] = entry
    factor_bits = options.get("factor_bits")
    return {"layers": layers,
            "factor_bits": None if factor_bits is None else number(
                factor_bits, f"{where}: factor_bits", lo=2, hi=8, integer=True),
            "intermediate_bits": number(options.get("intermediate_bits", 8),
                                        f"{where}: intermediate_bits", lo=2, hi=16,
                                        integer=True)}


def _factorize_all(model: SequentialNet, options: dict[str, Any], where: str,
                   data: Tensor | None, planning: bool) -> SequentialNet:
    sites = {site.name: site for site in layer_sites(model)}
    for name in options["layers"]:
        if name not in sites:
            find_site(model, name, where)
    # the last layer first: factorizing a layer renames the weight layers after it
    for name in sorted(options["layers"], key=lambda n: -sites[n].index):
        spec = options["layers"][name]
        try:
            check_factorization(sites[name], spec["method"])
            rank = spec["rank"]
            if planning and rank is None:      # energy: the smallest rank is the best case
                rank = [1, 1] if spec["method"] == "tucker" else 1
            model = factorize(model, name, spec["method"], rank=rank,
                              energy=None if rank is not None else spec["energy"],
                              factor_bits=options["factor_bits"],
                              intermediate_bits=options["intermediate_bits"], data=data)
        except CodesignError as exc:
            raise _fail(where, str(exc)) from None
    return model


def _plan_low_rank(model: SequentialNet, options: dict[str, Any], where: str
                   ) -> SequentialNet:
    return _factorize_all(model, options, where, None, planning=True)


def _run_low_rank(model: SequentialNet, options: dict[str, Any], ctx: StepContext
                  ) -> SequentialNet:
    model = _factorize_all(model, options, "low_rank", ctx.sample, planning=False)
    ctx.train(model, options["run"])
    return model


# -- weight bits -------------------------------------------------------------------------


def _check_bits(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"layers": {name: number(b, f"{where}: layers.{name}", lo=2, hi=8, integer=True)
                       for name, b in _layer_map(options, where).items()}}


def _set_bits(model: SequentialNet, options: dict[str, Any], where: str) -> SequentialNet:
    for name, bits in options["layers"].items():
        module = find_site(model, name, where).module
        if not hasattr(module, "weight_bits"):
            raise _fail(where, f"layer {name!r} ({type(module).__name__}) has no k-bit "
                               "weights (weight_bits takes QuantLinear, QuantConv2d and "
                               "factor layers)")
        set_weight_bits_(module, bits)
    return as_sequential(model)


def _run_bits(model: SequentialNet, options: dict[str, Any], ctx: StepContext
              ) -> SequentialNet:
    model = _set_bits(model, options, "weight_bits")
    ctx.train(model, options["run"])
    return model


TECHNIQUES: dict[str, Technique] = {
    t.name: t for t in (
        Technique("train", (), _check_train, lambda m, o, w: m, _run_train),
        Technique("channel_pruning", _PRUNING_OPTIONS, _check_pruning, _plan_pruning,
                  _run_pruning),
        Technique("low_rank", _LOW_RANK_OPTIONS, _check_low_rank, _plan_low_rank,
                  _run_low_rank),
        Technique("weight_bits", ("layers",), _check_bits, _set_bits, _run_bits),
    )
}
"""Every technique a recipe step may name."""


def technique(name: Any, where: str) -> Technique:
    """The technique called ``name``, or :class:`UnknownTechniqueError` listing them."""
    found = TECHNIQUES.get(name) if isinstance(name, str) else None
    if found is None:
        raise UnknownTechniqueError(f"{where}: unknown technique {name!r}; techniques: "
                                    + ", ".join(TECHNIQUES))
    return found


