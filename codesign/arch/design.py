"""A design: an integer graph, the organisation that runs it, its stages and the options.

An organisation decides how IR nodes become hardware stages and how the stages are wired
(today's streaming dataflow, :mod:`codesign.arch.dataflow`; a time-shared array is a
second organisation beside it). It owns everything that depends on the wiring: the top
component, throughput, the liveness bound and how a mismatch is localised. Steps that use a
design ask its organisation and its stages; they never switch on their types.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from amaranth.lib import wiring

from codesign.arch.options import MappingOptions
from codesign.arch.stage import Stage
from codesign.arch.stage_pool import StagePool
from codesign.arch.stages import EngineStage
from codesign.errors import GraphError
from codesign.ir import Graph, IntType
from codesign.resources import Resources
from hdl.perf import Counter


@dataclass(frozen=True)
class StreamFormat:
    """How frames travel on one of the design's streams: element type and elements per beat."""

    dtype: IntType
    elems: int
    size: int
    """Elements per frame."""


@dataclass(frozen=True)
class FirstDifference:
    """Where a stage's hardware output first differs from the reference."""

    stage: str
    tensor: str
    frame: int
    element: int
    expected: int
    got: int

    def describe(self) -> str:
        return (f"layer {self.stage!r} (tensor {self.tensor!r}) frame {self.frame} element "
                f"{self.element}: reference {self.expected}, hardware {self.got}")


SimulateFn = Callable[["Design", np.ndarray], np.ndarray]
"""(design, inputs) -> hardware outputs [N, elements]: how an organisation runs a sub-design."""


class Organisation(ABC):
    """How stages are made from a graph and wired into one top."""

    name: str

    @abstractmethod
    def map(self, graph: Graph, options: MappingOptions, pool: StagePool | None = None
            ) -> list[Stage]:
        """The stages of an integer graph under these options (named errors otherwise);
        stages equal to ones the ``pool`` holds are taken from it."""

    @abstractmethod
    def build_top(self, design: Design, counters: bool) -> wiring.Component:
        """The top component: ``i``/``o`` streams, with counters a ``perf`` port and a
        ``counter_names`` list of (stage, counter) in port order."""

    @abstractmethod
    def cycles_per_frame(self, design: Design) -> int:
        """Steady-state cycles per frame (the throughput's reciprocal, in cycles)."""

    @abstractmethod
    def input_format(self, design: Design) -> StreamFormat: ...

    @abstractmethod
    def output_format(self, design: Design) -> StreamFormat: ...

    @abstractmethod
    def estimate_resources(self, design: Design, target: str) -> Resources:
        """The resource model's estimate of the whole design: its stages and the
        organisation's own hardware (FIFOs, converters, ...)."""

    @abstractmethod
    def liveness_cycles(self, design: Design) -> int:
        """No handshake for this many cycles means the design is stuck."""

    @abstractmethod
    def localize_mismatch(self, design: Design, inputs: np.ndarray,
                          values: dict[str, np.ndarray], simulate: SimulateFn
                          ) -> FirstDifference | None:
        """The first stage whose own output differs from the reference ``values``."""

    def buffers(self, design: Design) -> list[dict[str, Any]]:
        """The design's stream buffers (FIFOs between stages), for reports: each with its
        ``producer``, ``consumer``, ``depth`` (beats), ``bits`` and whether it leads into a
        ``join``. Empty for an organisation without any."""
        return []

    def explain_stuck(self, design: Design, counters: Mapping[str, Mapping[Counter, int]],
                      frames: int) -> str | None:
        """For a design that stopped moving: the stage it is stuck at, from the counters
        read when the liveness bound fired (``None``: nothing to add)."""
        return None


@dataclass(eq=False)
class Design:
    """The graph, its organisation, the stages it maps to and the options that chose them."""

    graph: Graph
    organisation: Organisation
    stages: list[Stage]
    options: MappingOptions
    derived: dict[str, Any] = field(default_factory=dict, repr=False)
    """What the organisation works out about the design once (a design does not change
    once built; the dataflow's wiring is asked for by its resources, buffers and top)."""

    @property
    def engines(self) -> list[EngineStage]:
        """The matrix-vector engines only."""
        return [stage for stage in self.stages if isinstance(stage, EngineStage)]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise GraphError(f"design has no stage {name!r}; stages: "
                         + ", ".join(stage.name for stage in self.stages))

    @property
    def cycles_per_frame(self) -> int:
        """Steady-state cycles per frame set by the organisation (the bottleneck)."""
        return self.organisation.cycles_per_frame(self)

    @property
    def input_format(self) -> StreamFormat:
        return self.organisation.input_format(self)

    @property
    def output_format(self) -> StreamFormat:
        return self.organisation.output_format(self)

    def estimate_resources(self, target: str | None = None) -> Resources:
        """LUT, FF, block RAM and DSP of the whole design by the resource model (on the
        options' ``resource_target`` unless ``target`` is given)."""
        return self.organisation.estimate_resources(self, target or self.options.resource_target)

    def describe(self) -> str:
        return "\n".join([f"organisation: {self.organisation.name}"]
                         + [stage.describe() for stage in self.stages])
