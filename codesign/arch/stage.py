"""The stage protocol: what every hardware stage kind answers about itself.

A stage is one hardware unit of a design (a dense or sparse matrix-vector engine, a sliding
window generator, a pool, ...). Each kind implements this class once, in its own module of
:mod:`codesign.arch.stages`, next to the configuration it hands the Verilog generator; the
steps that use stages (evaluation, energy, reports, organisations) only ask through it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from codesign.arch.resource_model import Structure, estimate
from codesign.energy import EnergyTable, EventCost
from codesign.ir import IntType, Node
from codesign.resources import Resources
from hdl.errors import HardwareConfigError
from hdl.memory import resolve_style
from hdl.perf import Counter
from hdl.stage import StageConfig


class Stage(ABC):
    """One hardware stage: the IR node(s) it computes and its hardware choices."""

    kind: ClassVar[str]
    """The stage kind's registry name (``mvu``, ``sparse_mvu``, ``window``, ``pool``)."""

    name: str
    node: Node
    input_type: IntType
    output_type: IntType

    # ---- stream interface ----------------------------------------------------------------
    @property
    def input_tensor(self) -> str:
        return self.node.inputs[0]

    @property
    def output_tensor(self) -> str:
        return self.node.output

    @property
    @abstractmethod
    def in_elems(self) -> int:
        """Elements per input beat."""

    @property
    @abstractmethod
    def out_elems(self) -> int:
        """Elements per output beat."""

    @property
    @abstractmethod
    def in_beats_per_frame(self) -> int:
        """Input beats the stage consumes per frame."""

    @property
    @abstractmethod
    def out_beats_per_frame(self) -> int:
        """Output beats the stage produces per frame."""

    # ---- timing --------------------------------------------------------------------------
    @property
    @abstractmethod
    def cycles_per_frame(self) -> int:
        """Issue cycles per frame at full rate: the stage's cycle formula."""

    @property
    @abstractmethod
    def fill_cycles(self) -> int:
        """Cycles from the last issue to the last output (the pipeline's fixed fill)."""

    # ---- hardware ------------------------------------------------------------------------
    @cached_property
    def hdl_config(self) -> StageConfig:
        """The configuration the Verilog generator builds (computed once per stage).

        A configuration the generators cannot build is refused here, naming the stage.
        """
        try:
            return self.make_hdl_config()
        except HardwareConfigError as exc:
            if repr(self.name) in str(exc):
                raise
            raise HardwareConfigError(f"stage {self.name!r}: {exc}") from None

    @abstractmethod
    def make_hdl_config(self) -> StageConfig:
        """Build :attr:`hdl_config`."""

    # ---- models --------------------------------------------------------------------------
    @abstractmethod
    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        """Every counter of the stage run alone at full rate on ``frames`` frames.

        Activation-dependent counters are predicted only when the stage's input tensor
        ``inputs`` (any shape, frames first) is given.
        """

    @abstractmethod
    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """pJ per counted (or derived) event, with the component it belongs to."""

    def events(self, counters: Mapping[str, int]) -> dict[str, int]:
        """Counted events plus those derived from them (default: the counters as they are)."""
        return dict(counters)

    # ---- resources ---------------------------------------------------------------------------
    @abstractmethod
    def resource_structure(self, target: str) -> Structure:
        """The stage's hardware as the resource model prices it (features and exact counts:
        see :mod:`codesign.arch.resource_model`)."""

    def priced_structure(self, target: str) -> Structure:
        """The structure with the stage kind's own feature names (what the calibration
        prices)."""
        return self.resource_structure(target).of_kind(self.kind)

    def estimate_resources(self, target: str = "xc7") -> Resources:
        """LUT, FF, block RAM and DSP of the stage on ``target``, without synthesis."""
        return estimate(self.priced_structure(target), target)

    # ---- what the stage holds -------------------------------------------------------------
    @property
    def lanes(self) -> int:
        """Arithmetic lanes (an engine's PE x SIMD; none for a stage that only moves data)."""
        return 0

    def stored_weights(self) -> int:
        """Weights the stage stores (a dense engine all of its matrix, a sparse engine its
        non-zeros; none for a stage without weights)."""
        return 0

    def stored_bits(self) -> dict[str, int]:
        """Bits of the parameters the stage stores, by memory (weights, column indices,
        epilogue parameters); working buffers are not parameters."""
        return {}

    # ---- reporting -----------------------------------------------------------------------
    @abstractmethod
    def record(self) -> dict[str, Any]:
        """The stage's own fields for ``summary.json`` (no fields of other kinds)."""

    @abstractmethod
    def hardware(self) -> str:
        """A short description for report tables, e.g. ``xnor_popcount 128x64 PE=16 SIMD=8``."""

    def describe(self) -> str:
        return (f"{self.name}: {self.hardware()} {self.input_type}->{self.output_type} "
                f"cycles/frame={self.cycles_per_frame}")

    def common_record(self) -> dict[str, Any]:
        """Fields every stage record starts with: identity, types and where its memories
        went (the requested ``memory_style`` and each memory's resolved style)."""
        config = self.hdl_config
        return {"name": self.name, "kind": self.kind, "hardware": self.hardware(),
                "input_type": str(self.input_type), "output_type": str(self.output_type),
                "memory_style": config.memory_style,
                "memories": {m.name: {"style": resolve_style(config.memory_style, m),
                                      "width": m.width, "depth": m.depth}
                             for m in config.memories}}
