"""Event-based energy: hardware event counts x energy per event from a replaceable table.

The counts come from the engines' performance counters (read out of the simulation), the
per-event energies from a YAML technology table (default: 45 nm, Horowitz ISSCC 2014).
Events are costed by what the hardware does: a binary lane is an XNOR plus a 1-bit share
of the popcount adder tree; a binary-weight or ternary lane is an add/subtract of the
activation width; a MAC lane is a multiplier (quadratic in width) plus its adder share; a
lane gated by a zero weight costs nothing (its cycle is still spent); an accumulation is an
add of the accumulator width; memory accesses scale with the word width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from codesign.errors import CodesignError
from codesign.ir import MultiThreshold, Requantize
from codesign.mapping import Layer, PoolStage, Stage, WindowStage
from hdl.mvu import shape_for_range

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
                raise CodesignError(f"energy table {path}: cannot read ({exc})") from None
            where = str(path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CodesignError(f"energy table {where}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise CodesignError(f"energy table {where}: expected a mapping of event energies")
        missing = [key for key in REQUIRED_KEYS if key not in data]
        if missing:
            raise CodesignError(f"energy table {where}: missing {', '.join(missing)}; needs "
                                + ", ".join(REQUIRED_KEYS))

        def points(key: str) -> tuple[tuple[int, float], ...]:
            table = data[key]
            if not isinstance(table, dict) or not table:
                raise CodesignError(f"energy table {where}: {key} must map widths to pJ")
            return tuple(sorted((int(k), float(v)) for k, v in table.items()))

        return EnergyTable(str(data["name"]), str(data["technology_node"]),
                           points("int_add"), points("int_mult"),
                           float(data["sram_read_64b"]), float(data["sram_write_64b"]),
                           float(data["xnor_gate"]))

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


def lane_energy(layer: Layer, table: EnergyTable) -> float:
    """pJ of one effective lane operation of the layer's PE family."""
    x_bits, w_type = layer.input_type.bits, layer.matvec.weight_type
    if layer.family == "xnor_popcount":
        return table.xnor_gate + table.add(1)
    if layer.family in ("binary_weight", "ternary"):
        return table.add(x_bits + 1)
    if layer.family == "mac":
        # a w x x multiplier (quadratic: energy ~ w_bits * x_bits) and its adder-tree share
        return table.mult(math.sqrt(w_type.bits * x_bits)) + table.add(w_type.bits + x_bits)
    raise CodesignError(f"layer {layer.name!r}: no energy model for family {layer.family!r}")


def event_costs(layer: Layer, table: EnergyTable) -> dict[str, float]:
    """pJ per counted event of one layer's engine, keyed by performance-counter name.

    ``effective_lane_ops`` (lane_ops less lanes gated by a zero weight or, with a non-zero
    weight, a zero activation) carries the lane energy: a gated zero costs its cycle but no
    arithmetic.
    """
    acc_lo, acc_hi = layer.matvec.output_range(layer.input_type)
    acc_bits = shape_for_range(acc_lo, acc_hi).width
    w_bits = layer.matvec.weight_type.bits
    in_bits = layer.input_type.bits
    costs = {
        "effective_lane_ops": lane_energy(layer, table),
        "acc_adds": table.add(acc_bits),
        "weight_reads": table.sram_read(layer.pe * layer.simd * w_bits),
        "ibuf_writes": table.sram_write(layer.simd * in_bits),
        "ibuf_reads": table.sram_read(layer.simd * in_bits),
    }
    post = layer.post
    if isinstance(post, MultiThreshold):
        n_thr = post.thresholds.shape[1]
        levels = n_thr.bit_length()
        thr_bits = shape_for_range(acc_lo, acc_hi + 1).width
        costs["param_reads"] = table.sram_read(layer.pe * ((1 << levels) - 1) * thr_bits)
        # each output element: a binary search, one comparison per level of the tree
        costs["out_beats"] = layer.pe * levels * table.add(thr_bits)
    elif isinstance(post, Requantize):
        m_bits = shape_for_range(int(min(np.min(post.multiplier), 0)),
                                 int(max(np.max(post.multiplier), 0))).width
        costs["param_reads"] = table.sram_read(layer.pe * m_bits)
        # multiply by M, round, saturate: one multiplier and two adds per element
        costs["out_beats"] = layer.pe * (table.mult(math.sqrt(acc_bits * m_bits))
                                         + 2 * table.add(acc_bits + m_bits))
    return costs


COMPONENTS = {
    "effective_lane_ops": "lanes",
    "acc_adds": "accumulators",
    "weight_reads": "weight memory",
    "ibuf_writes": "input buffer",
    "ibuf_reads": "input buffer",
    "param_reads": "epilogue memory",
    "out_beats": "epilogue",
}


def derived_events(counters: dict[str, int]) -> dict[str, int]:
    """Counter values plus the events computed from them (effective lane operations)."""
    events = dict(counters)
    events["effective_lane_ops"] = (counters["lane_ops"] - counters.get("zero_weight_lanes", 0)
                                    - counters.get("zero_act_lanes", 0))
    return events


def layer_energy(layer: Layer, counters: dict[str, int], table: EnergyTable
                 ) -> dict[str, float]:
    """Energy in pJ by component for one layer, from its measured event counts."""
    events = derived_events(counters)
    by_component: dict[str, float] = {}
    for event, cost in event_costs(layer, table).items():
        component = COMPONENTS[event]
        by_component[component] = by_component.get(component, 0.0) + events[event] * cost
    return by_component


def stream_stage_energy(stage: WindowStage | PoolStage, counters: dict[str, int],
                        table: EnergyTable) -> dict[str, float]:
    """Line-buffer traffic (and the max comparisons of a pool) of a window or pool stage."""
    word = stage.simd * stage.input_type.bits
    parts = {"line buffer": counters.get("buffer_reads", 0) * table.sram_read(word)
             + counters.get("buffer_writes", 0) * table.sram_write(word)}
    if "compares" in counters:
        parts["max compare"] = counters["compares"] * table.add(stage.input_type.bits)
    return parts


def stage_energy(stage: Stage, counters: dict[str, int], table: EnergyTable
                 ) -> dict[str, float]:
    """Energy in pJ by component for any hardware stage."""
    if isinstance(stage, Layer):
        return layer_energy(stage, counters, table)
    return stream_stage_energy(stage, counters, table)


def total(energies: dict[str, dict[str, float]]) -> float:
    return math.fsum(value for parts in energies.values() for value in parts.values())
