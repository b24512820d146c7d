"""The sweep file: which axes a design-space sweep spans and how its front is verified.

A sweep file is YAML with a list (or one value) per axis; the cartesian product of the axes
is the set of design points (:mod:`codesign.dse.points`)::

    examples: [binarized-mlp, ternary-mlp-twn, my-recipe.yaml]
    target_cycles: [128, 256, 512, 1024]     # or foldings: [{fc0: [8, 8]}, ...]
    families: [default, mac, {fc0: ternary}]
    sparse: [default, none, 0.5]
    fifo_depth: [4]
    memory_styles: [auto, block]
    folding_objective: [lanes, luts]         # what automatic folding minimises
    rtl_frames: 16

Every key is checked when the file is read, so an unknown axis, option, example or value is
a one-line error before any point is evaluated; what depends on a network (a layer name, a
folding that must divide a layer) is the point's own failure, recorded with the point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from codesign.arch.families import FAMILIES
from codesign.arch.options import DEFAULT_FIFO_DEPTH, FOLDING_OBJECTIVES, Folding
from codesign.errors import CodesignError, SweepError
from hdl.memory import MEMORY_STYLES

DEFAULT = "default"
"""The axis value that leaves an option as the example sets it."""

AXES = ("examples", "target_cycles", "foldings", "families", "sparse", "fifo_depth",
        "memory_styles", "folding_objective")
"""Every axis a sweep file may span, in the order a point lists them."""
OPTIONS = ("name", "notes", "rtl_front", "rtl_frames", "rtl_limit", "energy_table")
"""The sweep's other keys: a name, notes for its report, whether (and on how many frames, for
how many points) the Pareto front is verified in RTL, and the energy table."""

DEFAULT_RTL_FRAMES = 16

Family = str | tuple[tuple[str, str], ...] | None
"""A family choice: a family name for every layer it computes exactly, per-layer pairs, or
the default (each layer's cheapest family)."""
Sparse = str | float | tuple[str, ...] | None
"""A sparse choice: ``"none"``, a weight sparsity threshold, layer names, or the default."""
MemoryStyle = str | tuple[tuple[str, str], ...] | None
"""A memory style for every stage with memories, per-stage pairs, or the default."""


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the values of every axis and the options of its verification."""

    examples: tuple[str, ...]
    """Built-in example names or recipe file paths (resolved, as text)."""
    target_cycles: tuple[int | None, ...] = (None,)
    foldings: tuple[tuple[tuple[str, Folding], ...], ...] = ((),)
    families: tuple[Family, ...] = (None,)
    sparse: tuple[Sparse, ...] = (None,)
    fifo_depth: tuple[int, ...] = (DEFAULT_FIFO_DEPTH,)
    memory_styles: tuple[MemoryStyle, ...] = (None,)
    folding_objective: tuple[str | None, ...] = (None,)
    """What automatic folding minimises (None: the options' default, fewest lanes for a
    cycle target: :class:`codesign.arch.options.MappingOptions`)."""
    name: str = "sweep"
    notes: str = ""
    """Text the report shows under its title (what the sweep asks, what it found)."""
    rtl_front: bool = True
    rtl_frames: int = DEFAULT_RTL_FRAMES
    rtl_limit: int | None = None
    """Verify at most this many front points in RTL (None: the whole front)."""
    energy_table: str | None = None
    source: str = field(default="", compare=False)
    """The file the spec was read from (for messages), or empty."""

    @staticmethod
    def from_mapping(data: Any, where: str = "sweep") -> SweepSpec:
        """Validate a parsed sweep file (``where`` names it in errors)."""
        if not isinstance(data, Mapping):
            raise SweepError(f"{where}: a sweep file is a mapping of axes ({', '.join(AXES)}) "
                             f"and options ({', '.join(OPTIONS)}), got {type(data).__name__}")
        unknown = [str(k) for k in data if k not in AXES and k not in OPTIONS]
        if unknown:
            raise SweepError(f"{where}: unknown key {unknown[0]!r}; axes: {', '.join(AXES)}; "
                             f"options: {', '.join(OPTIONS)}")
        if "examples" not in data:
            raise SweepError(f"{where}: no 'examples' axis; give built-in example names "
                             "(codesign examples lists them) or recipe files")
        base = Path(where).parent if where.endswith((".yaml", ".yml")) else Path(".")
        if "target_cycles" in data and "foldings" in data:
            raise SweepError(f"{where}: give target_cycles or foldings, not both (a folding "
                             "fixes the layers it names; the others follow the example's "
                             "target)")
        args: dict[str, Any] = {
            "examples": tuple(_example(v, where, base) for v in _values(data, "examples", where)),
            "source": where,
        }
        if "target_cycles" in data:
            args["target_cycles"] = tuple(_target(v, where)
                                          for v in _values(data, "target_cycles", where))
        if "foldings" in data:
            args["foldings"] = tuple(_folding(v, where) for v in _values(data, "foldings", where))
        if "families" in data:
            args["families"] = tuple(_family(v, where) for v in _values(data, "families", where))
        if "sparse" in data:
            args["sparse"] = tuple(_sparse(v, where) for v in _values(data, "sparse", where))
        if "fifo_depth" in data:
            args["fifo_depth"] = tuple(_fifo(v, where) for v in _values(data, "fifo_depth", where))
        if "memory_styles" in data:
            args["memory_styles"] = tuple(_style(v, where)
                                          for v in _values(data, "memory_styles", where))
        if "folding_objective" in data:
            args["folding_objective"] = tuple(_objective(v, where) for v in
                                              _values(data, "folding_objective", where))
        if "name" in data:
            args["name"] = str(data["name"])
        if data.get("notes") is not None:
            args["notes"] = str(data["notes"]).strip()
        if "rtl_front" in data:
            if not isinstance(data["rtl_front"], bool):
                raise SweepError(f"{where}: rtl_front={data['rtl_front']!r}: give true or false")
            args["rtl_front"] = data["rtl_front"]
        if "rtl_frames" in data:
            args["rtl_frames"] = _whole(data["rtl_frames"], "rtl_frames", 1, where)
        if data.get("rtl_limit") is not None:
            args["rtl_limit"] = _whole(data["rtl_limit"], "rtl_limit", 0, where)
        if data.get("energy_table") is not None:
            table = Path(str(data["energy_table"]))
            args["energy_table"] = str(table if table.is_absolute() else base / table)
        return SweepSpec(**args)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file."""
    where = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SweepError(f"sweep file {where!r} cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"sweep file {where!r} is not valid YAML ({exc})".replace("\n", " ")
                         ) from None
    return SweepSpec.from_mapping(data, where)


def _values(data: Mapping[str, Any], axis: str, where: str) -> list[Any]:
    value = data[axis]
    values = list(value) if isinstance(value, list) else [value]
    if not values:
        raise SweepError(f"{where}: axis {axis!r} is empty; give at least one value")
    return values


def _example(value: Any, where: str, base: Path) -> str:
    from codesign.examples import RUNNABLE

    name = str(value)
    if name in RUNNABLE:
        return name
    if name.endswith((".yaml", ".yml")):
        for path in (Path(name), base / name):
            if path.is_file():
                return str(path)
        raise SweepError(f"{where}: examples: recipe file {name!r} not found")
    raise SweepError(f"{where}: examples: unknown example {name!r}; examples: "
                     + ", ".join(RUNNABLE) + " (or a recipe file, *.yaml)")


def _whole(value: Any, what: str, least: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise SweepError(f"{where}: {what}={value!r}: give a whole number >= {least}")
    return value


def _target(value: Any, where: str) -> int | None:
    if value == DEFAULT:
        return None
    return _whole(value, "target_cycles", 1, where)


def _folding(value: Any, where: str) -> tuple[tuple[str, Folding], ...]:
    if value == DEFAULT or value is None:
        return ()
    if not isinstance(value, Mapping):
        raise SweepError(f"{where}: foldings: {value!r}: give a mapping of layer to PE,SIMD, "
                         "e.g. {fc0: [8, 8]}")
    try:
        return tuple(sorted((str(k), Folding.parse(str(k), v)) for k, v in value.items()))
    except CodesignError as exc:
        raise SweepError(f"{where}: foldings: {exc}") from None


def _family_name(name: Any, where: str) -> str:
    if str(name) not in FAMILIES:
        raise SweepError(f"{where}: families: unknown PE family {name!r}; families: "
                         + ", ".join(FAMILIES) + f" (or {DEFAULT!r}, or a mapping of layer "
                         "to family)")
    return str(name)


def _family(value: Any, where: str) -> Family:
    if value == DEFAULT or value is None:
        return None
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _family_name(v, where)) for k, v in value.items()))
    return _family_name(value, where)


def _sparse(value: Any, where: str) -> Sparse:
    if value == DEFAULT or value is None:
        return None
    if value == "none":
        return "none"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            raise SweepError(f"{where}: sparse={value!r}: a weight sparsity is in 0..1")
        return float(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(sorted(value))
    raise SweepError(f"{where}: sparse={value!r}: give {DEFAULT!r}, 'none', a weight sparsity "
                     "in 0..1 or a list of layer names")


def _fifo(value: Any, where: str) -> int:
    if value == DEFAULT:
        return DEFAULT_FIFO_DEPTH
    return _whole(value, "fifo_depth", 2, where)


def _style_name(style: Any, where: str) -> str:
    if str(style) not in MEMORY_STYLES:
        raise SweepError(f"{where}: memory_styles: unknown memory style {style!r}; styles: "
                         + ", ".join(MEMORY_STYLES))
    return str(style)


def _style(value: Any, where: str) -> MemoryStyle:
    if value == DEFAULT or value is None or value == "auto":
        return None
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _style_name(v, where)) for k, v in value.items()))
    return _style_name(value, where)


def _objective(value: Any, where: str) -> str | None:
    if value == DEFAULT or value is None:
        return None
    if value not in FOLDING_OBJECTIVES:
        raise SweepError(f"{where}: folding_objective={value!r}: give "
                         + ", ".join(FOLDING_OBJECTIVES) + f" or {DEFAULT!r}")
    return str(value)
