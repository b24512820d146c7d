"""Evaluate one design point: analytically (accuracy, cycles, energy, resources) or in RTL.

A point is built the way ``codesign run`` builds a run (:func:`codesign.flow.example_options`,
the same pass pipeline and mapping): a worker loads each network once, lowers it once per set
of layers that keep dot-product accumulation and runs the integer reference once per lowered
graph (the caches below live as long as the worker process); a point then only maps. The
points of a sweep share most of their stages (a FIFO depth, a family or a folding changes
some stages, never all), so a lowered network keeps every stage its points made
(:class:`~codesign.arch.stage_pool.StagePool`) and each stage's analytical figures: a stage
is configured, predicted, priced and counted by the resource model once per worker, and
every figure is the one a fresh evaluation gives. Every failure a point can cause is caught
and returned as its row (status ``failed`` and the named error), so the sweep goes on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np

from codesign.arch import MappingOptions, build_design
from codesign.arch.design import Design
from codesign.arch.families import FAMILIES
from codesign.arch.stage import Stage
from codesign.arch.stage_pool import StagePool
from codesign.dse.points import Point
from codesign.energy import EnergyTable
from codesign.errors import UnknownTargetError
from codesign.evaluate import StageEvaluation, StageModel, evaluate, model_stage
from codesign.examples import LoadedExample, load_example, load_recipe_example
from codesign.flow import dot_layers, example_graph, example_inputs, example_options, predictions
from codesign.ir import Graph
from codesign.passes import run_passes
from codesign.paths import content_key
from codesign.reference import execute_all

RESOURCE_TARGET = "xc7"
"""The FPGA family the resource model counts LUTs, FFs, block RAMs and DSPs in."""


class SkipPoint(Exception):  # noqa: N818 - a verdict, not a failure
    """The point asks for nothing new (a family that computes no layer differently)."""


@dataclass(frozen=True)
class Lowered:
    """A network lowered once: its graph, checked test frames and reference values."""

    graph: Graph
    inputs: np.ndarray
    values: dict[str, np.ndarray]
    accuracy: float


@dataclass
class DesignSpace:
    """What the designs of one lowered network share: its stages (each made once, whatever
    the FIFO depth, family or folding of the other layers) and each stage's analytical
    figures on the test frames. The network's graph is never changed once lowered, as a
    :class:`~codesign.arch.stage_pool.StagePool` needs."""

    network: Lowered
    pool: StagePool = field(default_factory=StagePool)
    models: dict[tuple[Stage, EnergyTable], StageEvaluation] = field(default_factory=dict)
    """(stage, table) -> the stage's figures on the test frames (:func:`model_stage`)."""

    def design(self, options: MappingOptions) -> Design:
        """The design the options map the network to, its stages taken from the pool."""
        return build_design(self.network.graph, options, pool=self.pool)

    def stage_model(self, table: EnergyTable) -> StageModel:
        """:func:`~codesign.evaluate.model_stage` on the test frames, once per stage."""
        frames, values = len(self.network.inputs), self.network.values

        def model(stage: Stage) -> StageEvaluation:
            key = (stage, table)
            if key not in self.models:
                self.models[key] = model_stage(stage, frames, values, table)
            return self.models[key]

        return model


@lru_cache(maxsize=8)
def loaded_example(name: str) -> LoadedExample:
    """A built-in example by name or a recipe's network by file path (loaded once)."""
    import torch

    torch.set_num_threads(1)
    if name.endswith((".yaml", ".yml")):
        return load_recipe_example(name)
    return load_example(name)


@lru_cache(maxsize=16)
def lowered(name: str, keep_dot: tuple[str, ...]) -> Lowered:
    """The example's integer graph for these dot-accumulating layers, and its reference."""
    example = loaded_example(name)
    graph = run_passes(example_graph(example), keep_dot=list(keep_dot))
    inputs = example_inputs(example, graph, example.x_test)
    values = execute_all(graph, inputs)
    accuracy = float(np.mean(predictions(example, graph, values[graph.output])
                             == example.y_test))
    return Lowered(graph, inputs, values, accuracy)


@lru_cache(maxsize=16)
def design_space(name: str, keep_dot: tuple[str, ...]) -> DesignSpace:
    """What the points of the example lowered for these layers share (kept as long as the
    lowered network; :func:`forget_designs` makes every later point's stages anew)."""
    return DesignSpace(lowered(name, keep_dot))


def forget_designs() -> None:
    """Forget every stage, figure and design the points made so far (the lowered networks
    stay): later points are evaluated as if each were the first."""
    design_space.cache_clear()
    _whole_network_choices.cache_clear()


@lru_cache(maxsize=4)
def energy_table(path: str | None) -> EnergyTable:
    return EnergyTable.load(path)


def point_options(point: Point) -> MappingOptions:
    """The point's mapping options: its axis values over the example's defaults; a family
    or memory style named for the whole network is resolved on the default design."""
    example = loaded_example(point.example)
    families = (dict(point.family) if isinstance(point.family, tuple) else None)
    styles = (dict(point.memory_style) if isinstance(point.memory_style, tuple) else None)
    if isinstance(point.family, str) or isinstance(point.memory_style, str):
        # The FIFO depth changes no engine or memory: points that differ only in it share
        # the resolution (and the default design it is read from).
        chosen_families, chosen_styles = _whole_network_choices(
            replace(point, fifo_depth=0))
        families = dict(chosen_families) if chosen_families is not None else families
        styles = dict(chosen_styles) if chosen_styles is not None else styles
    return example_options(example, **_mapping_axes(point), fifo_depth=point.fifo_depth,
                           families=families, memory_styles=styles)


def _mapping_axes(point: Point) -> dict[str, Any]:
    """The point's folding, cycle target, sparse choice and folding objective, as
    :func:`~codesign.flow.example_options` takes them."""
    return dict(folding=dict(point.folding), target_cycles=point.target_cycles,
                sparse=[] if point.sparse == "none" else point.sparse,
                folding_objective=point.folding_objective)


Choices = tuple[tuple[str, str], ...] | None


@lru_cache(maxsize=4096)
def _whole_network_choices(point: Point) -> tuple[Choices, Choices]:
    """The per-layer families and memory styles a family or memory style named for the whole
    network stands for, read from the point's default design (``None`` where the point
    names none for the whole network)."""
    default = example_options(loaded_example(point.example), **_mapping_axes(point))
    design = design_space(point.example, ()).design(default)
    families = styles = None
    if isinstance(point.family, str):
        families = tuple(_global_family(design, point.family, point.example).items())
    if isinstance(point.memory_style, str):
        styles = tuple((stage.name, point.memory_style) for stage in design.stages
                       if getattr(stage.hdl_config, "memories", ()))
    return families, styles


def _global_family(design: Design, family: str, example: str) -> dict[str, str]:
    """Every layer ``family`` computes exactly and does not run already."""
    wanted = FAMILIES[family]
    chosen = {}
    for engine in design.engines:
        node = engine.node
        accumulation = "dot" if wanted.accumulates == "dot" else node.acc
        why = wanted.refusal(node.weight_type, engine.input_type, accumulation, node.codebook)
        if why is None and engine.family.name != family:
            chosen[engine.name] = family
    if not chosen:
        raise SkipPoint(f"family {family!r} computes no layer of {example} that does not run "
                        "on it already")
    return chosen


def build_point(point: Point) -> tuple[Design, DesignSpace]:
    """The point's design and the design space (lowered network) it was mapped in."""
    options = point_options(point)
    space = design_space(point.example, dot_layers(options))
    return space.design(options), space


def design_key(point: Point, design: Design) -> str:
    """16 hex digits naming the hardware a point builds (its network, every stage's kind,
    hardware, types and memory style, and the organisation's buffers): points whose axis
    values differ but build the same hardware (a sparse choice on a network without zero
    weights, say) share it, and one RTL run verifies them all."""
    stages = "[" + ", ".join(_stage_json(stage, design.options.memory_style_for(stage.name))
                             for stage in design.stages) + "]"
    buffers = json.dumps(design.organisation.buffers(design), sort_keys=True, default=str)
    return content_key(("example", point.example), ("stages", stages),
                       ("buffers", buffers))[:16]


@lru_cache(maxsize=4096)
def _stage_json(stage: Stage, memory_style: str) -> str:
    """A stage's part of :func:`design_key`, as JSON (the same for every design the stage
    is part of)."""
    return json.dumps([stage.name, stage.kind, stage.hardware(), str(stage.input_type),
                       str(stage.output_type), memory_style])


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


def evaluate_point(point: Point, energy_table_path: str | None = None) -> dict[str, Any]:
    """The point's row: axis values, status and the analytical figures."""
    start = time.perf_counter()
    row: dict[str, Any] = {"key": point.key, **point.axes(), "family_label": point.family_label}
    try:
        design, space = build_point(point)
        row["design"] = design_key(point, design)
        table = energy_table(energy_table_path)
        network = space.network
        result = evaluate(design, network.inputs, network.values, table, rtl=False,
                          checked=True, stage_model=space.stage_model(table))
        row.update(status="ok", accuracy=network.accuracy,
                   cycles_per_frame=result.cycles_per_frame,
                   energy_pj_per_frame=result.energy_pj_per_frame,
                   engines=",".join(e.family.name + ("/sparse" if e.kind == "sparse_mvu" else "")
                                    for e in design.engines))
        try:
            resources = design.estimate_resources(RESOURCE_TARGET)
            row.update(lut=resources.lut, ff=resources.ff,
                       bram18=resources.bram18_equivalent, dsp=resources.dsp)
        except UnknownTargetError as exc:
            row["resources_error"] = _error(exc)
    except SkipPoint as exc:
        row.update(status="skipped", error=str(exc))
    except Exception as exc:  # every failure is the point's own; the sweep goes on
        row.update(status="failed", error=_error(exc))
    row["seconds"] = round(time.perf_counter() - start, 4)
    row["finished_at"] = time.time()
    return row


def verify_point(point: Point, frames: int, energy_table_path: str | None = None
                 ) -> dict[str, Any]:
    """Simulate the point's design on its first ``frames`` test frames in RTL and check every
    output against the reference: bit-exactness and the measured cycles (the row's key is
    the design's, :func:`design_key`)."""
    start = time.perf_counter()
    row: dict[str, Any] = {"key": point.key}
    try:
        design, space = build_point(point)
        network = space.network
        row["key"] = design_key(point, design)
        x = network.inputs[:frames]
        result = evaluate(design, x, execute_all(design.graph, x),
                          energy_table(energy_table_path), rtl=True, checked=True)
        verification = result.verification
        assert verification is not None
        row.update(rtl_status="bit-exact" if verification.bit_exact else "mismatch",
                   rtl_frames=len(x), rtl_cycles_per_frame=result.cycles_per_frame,
                   rtl_total_cycles=result.total_cycles,
                   rtl_energy_pj_per_frame=result.energy_pj_per_frame,
                   analytical_match=result.analytical_match,
                   rtl_error=(None if verification.first is None
                              else verification.first.describe()))
    except Exception as exc:  # recorded with the point; the other points go on
        row.update(rtl_status="failed", rtl_error=_error(exc))
    row["rtl_seconds"] = round(time.perf_counter() - start, 3)
    row["rtl_finished_at"] = time.time()
    return row
