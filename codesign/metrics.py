"""The seeds' compression metrics of a design, against its float baseline (Cheng et al.):

- compression rate ``alpha = params / params*`` and space saving
  ``beta = (params - params*) / params*``, where ``params`` counts the weights of the float
  baseline's weight layers and ``params*`` the weights the compressed design stores (every
  weight of a dense engine, the non-zeros of a zero-skipping one);
- the same rate in bits, ``alpha_bits``: the float baseline's weights at 32 bits against
  every parameter bit the hardware stores (weight codes, column indices of sparse engines,
  thresholds and requantization multipliers);
- speedup ``delta = time / time*`` in RTL cycles per frame: the baseline is the float
  network's topology as a *dense 8-bit design* (its post-training-quantized twin,
  :func:`quant_models.quantize.dense_twin`) folded with no more lanes (PE x SIMD summed over
  engines) than the compressed design has, each engine folded automatically for the
  fastest frame rate that lane budget allows; both designs run the same frames in RTL.

Every figure comes from the stages themselves (:meth:`codesign.arch.stage.Stage.lanes`,
``stored_weights``, ``stored_bits``), whatever their kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from codesign.arch import Design, MappingOptions
from codesign.arch.dataflow.mapping import engine_folding, vectors
from codesign.arch.stage_pool import StagePool
from codesign.energy import EnergyTable
from codesign.evaluate import evaluate
from codesign.flow import compile_model
from codesign.ir import Graph, MatVec
from codesign.reference import check_inputs, execute_all
from quant_models.structure import weight_count

__all__ = [
    "BASELINE_BITS",
    "FLOAT_BITS",
    "Baseline",
    "baseline_twin",
    "compression_metrics",
    "design_lanes",
    "fold_for_lanes",
    "lanes_at",
    "measure_baseline",
    "stored_bits",
    "stored_weights",
]

FLOAT_BITS = 32
"""Bits of a float baseline weight."""

BASELINE_BITS = 8
"""Weight and activation bits of the dense baseline design."""


def design_lanes(design: Design) -> int:
    """Arithmetic lanes of a design (PE x SIMD over its engines)."""
    return sum(stage.lanes for stage in design.stages)


def stored_weights(design: Design) -> int:
    """Weights the design stores."""
    return sum(stage.stored_weights() for stage in design.stages)


def stored_bits(design: Design) -> dict[str, int]:
    """Parameter bits the design stores, by memory kind, summed over the stages."""
    total: dict[str, int] = {}
    for stage in design.stages:
        for memory, bits in stage.stored_bits().items():
            total[memory] = total.get(memory, 0) + bits
    return total


def _matvecs(graph: Graph) -> list[MatVec]:
    return [node for node in graph.ordered_nodes() if isinstance(node, MatVec)]


def lanes_at(graph: Graph, target: int, pool: StagePool | None = None) -> int:
    """Lanes of the automatic folding of every engine of ``graph`` for ``target`` cycles,
    by the fewest lanes (its stages from ``pool``)."""
    options = MappingOptions.create(target_cycles=target, folding_objective="lanes")
    pool = StagePool() if pool is None else pool
    return sum(fold.pe * fold.simd for fold in
               (engine_folding(graph, mv, options, target, pool) for mv in _matvecs(graph)))


def fold_for_lanes(graph: Graph, lanes: int) -> int:
    """The smallest cycle target whose folding by the fewest lanes needs at most ``lanes``
    lanes (the lanes needed never grow with the target, so a bisection finds it); the
    slowest target (every layer's MACs per frame) if even its folding needs more. The
    baseline is then the fastest design within its lane budget, whatever objective the
    design it is compared with was folded by."""
    pool = StagePool()
    high = max(vectors(graph, mv) * mv.mh * mv.mw for mv in _matvecs(graph))
    if lanes_at(graph, high, pool) > lanes:
        return high
    low = 1
    while low < high:
        middle = (low + high) // 2
        if lanes_at(graph, middle, pool) <= lanes:
            high = middle
        else:
            low = middle + 1
    return low


@dataclass
class Baseline:
    """The dense 8-bit design of a float baseline, and its RTL figures."""

    name: str
    design: Design
    target_cycles: int
    cycles_per_frame: float
    energy_pj_per_frame: float
    bit_exact: bool
    frames: int
    predictions: np.ndarray
    """The RTL's class predictions, frame by frame."""

    def record(self) -> dict[str, Any]:
        return {
            "design": f"{self.name} as a dense w{BASELINE_BITS}a{BASELINE_BITS} design "
                      "(post-training quantized twin)",
            "lanes": design_lanes(self.design),
            "stored_bits_total": sum(stored_bits(self.design).values()),
            "target_cycles": self.target_cycles,
            "cycles_per_frame": self.cycles_per_frame,
            "energy_pj_per_frame": self.energy_pj_per_frame,
            "bit_exact": self.bit_exact,
            "frames": self.frames,
            "folding": {stage.name: [stage.folding.pe, stage.folding.simd]  # type: ignore
                        for stage in self.design.engines},
        }


def baseline_twin(model: nn.Module) -> nn.Module:
    """The dense 8-bit twin of a float baseline, calibrated on the training images."""
    import torch

    from quant_models.catalog import SPLIT_PARAMS
    from quant_models.data import load_digits_split
    from quant_models.quantize import dense_twin

    split = load_digits_split(**SPLIT_PARAMS)
    return dense_twin(model, torch.as_tensor(split.x_train, dtype=torch.float32),
                      BASELINE_BITS, BASELINE_BITS)


def measure_baseline(name: str, model: nn.Module, lanes: int | None, x: np.ndarray,
                     table: EnergyTable, target_cycles: int | None = None) -> Baseline:
    """The dense 8-bit twin of float baseline ``model``, folded for ``lanes`` (or for
    ``target_cycles``), run in RTL on frames ``x``."""
    twin = baseline_twin(model)
    design_name = f"{name}-w{BASELINE_BITS}a{BASELINE_BITS}"
    if lanes is not None:
        target_cycles = fold_for_lanes(compile_model(twin, name=design_name).graph, lanes)
    design = compile_model(twin, name=design_name, target_cycles=target_cycles,
                           folding_objective="lanes")
    target = design.options.target_cycles or 0
    frames = check_inputs(design.graph, x)
    values = execute_all(design.graph, frames)
    evaluation = evaluate(design, frames, values, table, rtl=True, checked=True,
                          localize=False)
    assert evaluation.verification is not None
    assert evaluation.outputs is not None
    return Baseline(name, design, target, evaluation.cycles_per_frame,
                    evaluation.energy_pj_per_frame, evaluation.verification.bit_exact,
                    evaluation.frames, np.argmax(evaluation.outputs, axis=1))


def compression_metrics(design: Design, cycles_per_frame: float, baseline_name: str,
                        baseline_model: nn.Module,
                        measure: Callable[[int], Baseline] | None,
                        unmeasured: str = "the run is not bit-exact") -> dict[str, Any]:
    """The metrics of the module docstring for ``design`` (which ran at
    ``cycles_per_frame`` in RTL); ``measure(lanes)`` runs the baseline in RTL (``None``:
    speedup not measured, for the reason ``unmeasured``)."""
    params = weight_count(baseline_model)
    kept = stored_weights(design)
    bits = stored_bits(design)
    total_bits = sum(bits.values())
    lanes = design_lanes(design)
    record: dict[str, Any] = {
        "baseline": baseline_name,
        "baseline_weights": params,
        "weights": kept,
        "alpha": params / kept,
        "beta": (params - kept) / kept,
        "baseline_bits": FLOAT_BITS * params,
        "stored_bits": bits,
        "stored_bits_total": total_bits,
        "alpha_bits": FLOAT_BITS * params / total_bits,
        "lanes": lanes,
        "delta": None,
        "baseline_design": None,
        "speedup_not_measured": unmeasured if measure is None else None,
    }
    if measure is not None:
        baseline = measure(lanes)
        record["delta"] = baseline.cycles_per_frame / cycles_per_frame
        record["baseline_design"] = baseline.record()
    return record
