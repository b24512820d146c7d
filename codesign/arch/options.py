"""Mapping options: every hardware choice a user makes for one design, frozen and hashable.

A sweep evaluates many designs of one graph; it keys them by these options. One rule per
option, the same for the command line and the API: ``None`` means "the default" and any
other value is used as given or refused with a one-line error saying what is accepted
(never silently replaced).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codesign.errors import FoldingError, OptionError
from hdl.memory import MEMORY_STYLES

DEFAULT_FIFO_DEPTH = 4
"""Smallest FIFO between two stages, in beats."""

AUTO_FIFO_DEPTH = "auto"
"""``fifo_depth`` value that sizes every FIFO from the stages' beat schedules
(:func:`codesign.arch.dataflow.fifo_sizing.auto_fifo_depths`)."""

FifoDepth = int | str
"""A smallest FIFO depth in beats, or :data:`AUTO_FIFO_DEPTH`."""

FOLDING_OBJECTIVES = ("lanes", "luts")
"""What an automatic folding minimises among those meeting its cycle target: its lanes, or
its LUTs by the resource model (:mod:`codesign.arch.dataflow.folding`)."""


@dataclass(frozen=True)
class Folding:
    """Parallelism of one engine: PE rows (output channels) x SIMD lanes (inputs)."""

    pe: int
    simd: int

    @staticmethod
    def parse(layer: str, value: Any) -> Folding:
        """A ``Folding``, a (PE, SIMD) pair or ``"PE,SIMD"`` text; anything else is refused."""
        if isinstance(value, Folding):
            pair: Sequence[Any] = (value.pe, value.simd)
        elif isinstance(value, str):
            pair = value.replace(" ", "").split(",")
        elif isinstance(value, Sequence):
            pair = value
        else:
            pair = ()
        try:
            if len(pair) != 2:
                raise ValueError
            pe, simd = (_positive_int(v) for v in pair)
        except (TypeError, ValueError):
            raise FoldingError(f"layer {layer!r}: folding {value!r} is not accepted; give "
                               "(PE, SIMD) as two positive integers, e.g. (16, 8) or "
                               "'16,8'") from None
        return Folding(pe, simd)


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    number = int(str(value)) if isinstance(value, str) else value
    if not isinstance(number, int) and not (isinstance(number, float)
                                            and number.is_integer()):
        raise ValueError
    if int(number) < 1:
        raise ValueError
    return int(number)


SparseChoice = tuple[str, ...] | float | None
"""Layers on the zero-skipping engine: names, a weight sparsity threshold, or the default."""


DEFAULT_RESOURCE_TARGET = "xc7"
"""The FPGA family resource budgets and the resource model count in."""


@dataclass(frozen=True)
class MappingOptions:
    """Folding, throughput target, sparse choice, FIFO depth, PE families and memory styles
    of one design, and the resource budgets or frame rate its automatic folding meets.

    ``folding``, ``families`` and ``memory_styles`` are sorted (layer, value) pairs so equal
    options hash equally; build them with :meth:`create`, which validates what can be
    checked without the graph (layer names are checked when the options meet a graph).

    Automatic folding (layers without ``folding``) aims at ``target_cycles``; or, with a
    budget (``lut_budget``, ``dsp_budget``, ``bram_budget`` in 18-Kbit block RAMs, counted
    by the resource model on ``resource_target``), at the fastest folding that fits; or, with
    ``target_fps`` at ``fmax_mhz``, at the cheapest folding that reaches that frame rate.

    ``folding_objective`` is what each automatically folded engine minimises among the
    foldings that meet its cycles: ``"lanes"`` (then PE and SIMD balanced) or ``"luts"`` by
    the resource model. Left unset it is ``"lanes"`` for a cycle target (given or the
    default): at equal cycles the fewest LUTs often means SIMD 1 and many PEs, whose
    accumulators update MW/SIMD times as often per frame, so the energy per frame grows for
    a LUT saving often within the model's error. A frame rate or a budget asks for the
    cheapest design that meets the rate, or the fastest that fits, and there it is
    ``"luts"`` (:attr:`objective`).
    """

    folding: tuple[tuple[str, Folding], ...] = ()
    target_cycles: int | None = None
    sparse: SparseChoice = None
    fifo_depth: FifoDepth = DEFAULT_FIFO_DEPTH
    families: tuple[tuple[str, str], ...] = ()
    organisation: str = "dataflow"
    memory_styles: tuple[tuple[str, str], ...] = ()
    lut_budget: int | None = None
    dsp_budget: int | None = None
    bram_budget: int | None = None
    target_fps: float | None = None
    fmax_mhz: float | None = None
    resource_target: str = DEFAULT_RESOURCE_TARGET
    folding_objective: str | None = None

    @staticmethod
    def create(folding: Mapping[str, Any] | None = None, *,
               target_cycles: int | None = None,
               sparse: Sequence[str] | float | None = None,
               fifo_depth: FifoDepth | None = None,
               families: Mapping[str, str] | None = None,
               organisation: str = "dataflow",
               memory_styles: Mapping[str, str] | None = None,
               lut_budget: int | None = None,
               dsp_budget: int | None = None,
               bram_budget: int | None = None,
               target_fps: float | None = None,
               fmax_mhz: float | None = None,
               resource_target: str | None = None,
               folding_objective: str | None = None) -> MappingOptions:
        """Validated options; ``None`` for any argument means its default."""
        if folding is not None and not isinstance(folding, Mapping):
            raise FoldingError(f"folding must map layer names to (PE, SIMD), got "
                               f"{type(folding).__name__}")
        folds = tuple(sorted((str(name), Folding.parse(str(name), value))
                             for name, value in (folding or {}).items()))
        if target_cycles is not None:
            if isinstance(target_cycles, bool) or not isinstance(target_cycles, int) \
                    or target_cycles < 1:
                raise OptionError(f"target_cycles={target_cycles!r}: give a whole number of "
                                  "cycles per frame, at least 1 (or leave it unset for the "
                                  "default)")
        if fifo_depth is None:
            fifo_depth = DEFAULT_FIFO_DEPTH
        if fifo_depth != AUTO_FIFO_DEPTH and (isinstance(fifo_depth, bool)
                                              or not isinstance(fifo_depth, int)
                                              or fifo_depth < 2):
            raise OptionError(f"fifo_depth={fifo_depth!r}: a FIFO between stages needs at "
                              "least 2 beats (a whole number >= 2, default "
                              f"{DEFAULT_FIFO_DEPTH}, or 'auto' to size every FIFO from the "
                              "stages' schedules)")
        choice: SparseChoice
        if sparse is None:
            choice = None
        elif isinstance(sparse, (int, float)) and not isinstance(sparse, bool):
            if not (0.0 <= float(sparse) <= 1.0) or math.isnan(float(sparse)):
                raise OptionError(f"sparse={sparse!r}: a weight sparsity must be in 0..1")
            choice = float(sparse)
        elif isinstance(sparse, str):
            raise OptionError(f"sparse={sparse!r}: give a list of layer names or a "
                              "sparsity in 0..1")
        else:
            choice = tuple(sorted(str(name) for name in sparse))
        if families is not None and not isinstance(families, Mapping):
            raise OptionError(f"families must map layer names to family names, got "
                              f"{type(families).__name__}")
        fams = tuple(sorted((str(k), str(v)) for k, v in (families or {}).items()))
        if memory_styles is not None and not isinstance(memory_styles, Mapping):
            raise OptionError(f"memory_styles must map layer names to memory styles, got "
                              f"{type(memory_styles).__name__}")
        styles = tuple(sorted((str(k), str(v)) for k, v in (memory_styles or {}).items()))
        for layer, style in styles:
            if style not in MEMORY_STYLES:
                raise OptionError(f"layer {layer!r}: memory style {style!r} is not one of "
                                  + ", ".join(MEMORY_STYLES))
        budgets = {name: _budget(name, value) for name, value in
                   (("lut_budget", lut_budget), ("dsp_budget", dsp_budget),
                    ("bram_budget", bram_budget))}
        fps, mhz = _rate("target_fps", target_fps), _rate("fmax_mhz", fmax_mhz)
        if (fps is None) != (mhz is None):
            raise OptionError("target_fps and fmax_mhz go together: a frame rate is met at a "
                              "clock frequency (give both, e.g. --target-fps 1000 "
                              "--fmax-mhz 100)")
        aims = [name for name, given in (("target_cycles", target_cycles is not None),
                                         ("target_fps", fps is not None),
                                         ("a resource budget",
                                          any(v is not None for v in budgets.values())))
                if given]
        if len(aims) > 1 and not (aims == ["target_fps", "a resource budget"]):
            raise OptionError(f"{' and '.join(aims)} each choose the automatic folding; "
                              "give one of them (a budget may go with target_fps)")
        if folding_objective is not None and folding_objective not in FOLDING_OBJECTIVES:
            raise OptionError(f"folding_objective={folding_objective!r}: give "
                              + " or ".join(map(repr, FOLDING_OBJECTIVES))
                              + " (or leave it unset for the default)")
        target = resource_target or DEFAULT_RESOURCE_TARGET
        return MappingOptions(folds, target_cycles, choice, fifo_depth, fams, organisation,
                              styles, budgets["lut_budget"], budgets["dsp_budget"],
                              budgets["bram_budget"], fps, mhz, target, folding_objective)

    def memory_style_for(self, layer: str) -> str:
        return dict(self.memory_styles).get(layer, "auto")

    @property
    def budgeted(self) -> bool:
        return any(v is not None for v in (self.lut_budget, self.dsp_budget, self.bram_budget))

    @property
    def objective(self) -> str:
        """What automatic folding minimises: the one given, else ``"luts"`` under a frame
        rate or a budget and ``"lanes"`` for a cycle target (see the class docstring)."""
        if self.folding_objective is not None:
            return self.folding_objective
        return "luts" if self.target_fps is not None or self.budgeted else "lanes"

    def folding_for(self, layer: str) -> Folding | None:
        return dict(self.folding).get(layer)

    def family_for(self, layer: str) -> str | None:
        return dict(self.families).get(layer)

    def named_layers(self) -> dict[str, tuple[str, ...]]:
        """Option name -> the layer names it mentions (checked against the graph)."""
        return {
            "folding": tuple(name for name, _ in self.folding),
            "families": tuple(name for name, _ in self.families),
            "sparse": self.sparse if isinstance(self.sparse, tuple) else (),
        }


def _budget(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OptionError(f"{name}={value!r}: give a whole number of resources, at least 0")
    return value


def _rate(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or math.isinf(value):
        raise OptionError(f"{name}={value!r}: give a positive number")
    return float(value)
