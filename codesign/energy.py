"""Event-based energy: hardware event counts x energy per event from a replaceable table.

The counts come from the stages' performance counters (read out of the simulation, or
predicted by the analytical model), the per-event energies from a YAML technology table
(default: 45 nm, Horowitz ISSCC 2014). This module knows no stage kind: every stage states
what each of its events costs (:meth:`codesign.arch.stage.Stage.event_costs`, built from the
table's width-scaling rules below) and which events it derives from its counters; the
energy of a stage is their product, by component. An event the model needs but the
hardware does not count is an error, never a silent 0 pJ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

import yaml

from codesign.errors import EnergyTableError

REQUIRED_KEYS = ("name", "technology_node", "int_add", "int_mult", "sram_read_64b",
                 "sram_write_64b", "xnor_gate")


@dataclass(frozen=True)
class EnergyTable:
    """Energy per event in pJ, with the width-scaling rules of the model."""

    name: str
    technology_node: str
    int_add_points: tuple[tuple[int, float], ...]
    int_mult_points: tuple[tuple[int, float], ...]
    sram_read_64b: float
    sram_write_64b: float
    xnor_gate: float

    @staticmethod
    def load(path: str | Path | None = None) -> EnergyTable:
        """Load a table; ``None`` gives the packaged 45 nm default."""
        if path is None:
            text = resources.files("codesign.data").joinpath("energy_45nm.yaml").read_text()
            where = "energy_45nm.yaml (default)"
        else:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise EnergyTableError(f"energy table {path}: cannot read ({exc})") from None
            where = str(path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise EnergyTableError(f"energy table {where}: not valid YAML ("
                                   f"{' '.join(str(exc).split())})") from None
        if not isinstance(data, dict):
            raise EnergyTableError(f"energy table {where}: expected a mapping of event energies")
        missing = [key for key in REQUIRED_KEYS if key not in data]
        if missing:
            raise EnergyTableError(f"energy table {where}: missing {', '.join(missing)}; needs "
                                + ", ".join(REQUIRED_KEYS))

        def number(key: str, value: object) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise EnergyTableError(f"energy table {where}: {key} is {value!r}; expected "
                                       "a non-negative number of pJ")
            return float(value)

        def points(key: str) -> tuple[tuple[int, float], ...]:
            table = data[key]
            if not isinstance(table, dict) or not table:
                raise EnergyTableError(f"energy table {where}: {key} must map widths to pJ")
            widths = []
            for k, v in table.items():
                if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                    raise EnergyTableError(f"energy table {where}: {key} has width {k!r}; "
                                           "widths are positive whole numbers of bits")
                widths.append((k, number(f"{key}[{k}]", v)))
            return tuple(sorted(widths))

        return EnergyTable(str(data["name"]), str(data["technology_node"]),
                           points("int_add"), points("int_mult"),
                           number("sram_read_64b", data["sram_read_64b"]),
                           number("sram_write_64b", data["sram_write_64b"]),
                           number("xnor_gate", data["xnor_gate"]))

    def add(self, bits: int) -> float:
        """Adder energy for ``bits``-wide operands: linear through (0, 0) and the table."""
        pts = ((0, 0.0),) + self.int_add_points
        for (w0, e0), (w1, e1) in zip(pts, pts[1:], strict=False):
            if bits <= w1:
                return e0 + (e1 - e0) * (bits - w0) / (w1 - w0)
        (w0, e0), (w1, e1) = pts[-2], pts[-1]
        return e1 + (e1 - e0) * (bits - w1) / (w1 - w0)

    def mult(self, bits: int) -> float:
        """Multiplier energy: quadratic in width, anchored on the nearest table point."""
        width, energy = min(self.int_mult_points, key=lambda p: abs(p[0] - bits))
        return energy * (bits / width) ** 2

    def sram_read(self, bits: int) -> float:
        return self.sram_read_64b * bits / 64

    def sram_write(self, bits: int) -> float:
        return self.sram_write_64b * bits / 64


@dataclass(frozen=True)
class EventCost:
    """What one counted event of a stage costs, and which component it belongs to."""

    component: str
    pj: float


class CostedStage(Protocol):
    """What the energy model needs from a stage (see :class:`codesign.arch.stage.Stage`)."""

    name: str

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]: ...

    def events(self, counters: Mapping[str, int]) -> dict[str, int]: ...


def stage_energy(stage: CostedStage, counters: Mapping[str, int], table: EnergyTable
                 ) -> dict[str, float]:
    """Energy in pJ by component for one stage, from its counted (or predicted) events."""
    events = stage.events(counters)
    by_component: dict[str, float] = {}
    for event, cost in stage.event_costs(table).items():
        if event not in events:
            raise EnergyTableError(
                f"stage {stage.name!r}: the energy model prices '{event}', which the hardware "
                f"does not count (counted: {', '.join(sorted(events))})")
        by_component[cost.component] = (by_component.get(cost.component, 0.0)
                                        + events[event] * cost.pj)
    return by_component


def total(energies: Mapping[str, Mapping[str, float]]) -> float:
    return math.fsum(value for parts in energies.values() for value in parts.values())
