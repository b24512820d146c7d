"""The stage protocol: what every hardware stage kind answers about itself.

A stage is one hardware unit of a design (a dense or sparse matrix-vector engine, a sliding
window generator, a pool, ...). Each kind implements this class once, in its own module of
:mod:`codesign.arch.stages`, next to the configuration it hands the Verilog generator; the
steps that use stages (evaluation, energy, reports, organisations) only ask through it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from codesign.arch.resource_model import Structure, estimate
from codesign.energy import EnergyTable, EventCost
from codesign.errors import GraphError, UnknownTargetError
from codesign.ir import IntType, Node
from codesign.resources import Resources
from hdl.arith import ElementType
from hdl.errors import HardwareConfigError
from hdl.memory import resolve_style
from hdl.perf import Counter
from hdl.stage import AnyStageConfig, PortFormat, input_ports


def element_type(dtype: IntType) -> ElementType:
    """How the hardware reads a stream element of this IR type."""
    bipolar = dtype.kind == "bipolar"
    return ElementType(dtype.bits, dtype.signed and not bipolar, bipolar)


def in_order(need: np.ndarray) -> np.ndarray:
    """Issue cycles of steps taken in order, at most one per cycle, none before ``need``:
    t[k] = max(need[k], t[k - 1] + 1)."""
    need = np.asarray(need, dtype=np.int64)
    steps = np.arange(need.size, dtype=np.int64)
    return np.maximum.accumulate(need - steps) + steps if need.size else need


@dataclass(frozen=True)
class StageSchedule:
    """When a stage takes its input beats and offers its output beats, in cycles.

    ``accepts[p][k]`` is the cycle input beat k of port p is taken, ``outputs[k]`` the first
    cycle output beat k is offered (on every output port of a fork), for given input
    arrival cycles and an output that is always taken (what the FIFOs behind it allow when
    they never fill). ``port_outputs[p]``, where given, is when output port p hands beat k
    on (a fork whose outputs feed width converters that take beats at different rates).
    """

    accepts: tuple[np.ndarray, ...]
    outputs: np.ndarray
    port_outputs: tuple[np.ndarray, ...] | None = None

    def output(self, port: int) -> np.ndarray:
        """When output ``port`` hands beat k on."""
        return self.outputs if self.port_outputs is None else self.port_outputs[port]


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
    def input_tensors(self) -> list[str]:
        """The tensor each input stream carries, in port order (one for most kinds)."""
        return [self.input_tensor]

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

    @property
    def steady_cycles_per_frame(self) -> int:
        """Cycles per frame the stage sustains at full rate over many frames: its formula,
        plus any bubble it has between frames (a window generator whose ring cannot load
        the next frame's first rows in time). A design runs at its slowest stage's."""
        return self.cycles_per_frame

    # ---- hardware ------------------------------------------------------------------------
    @cached_property
    def hdl_config(self) -> AnyStageConfig:
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
    def make_hdl_config(self) -> AnyStageConfig:
        """Build :attr:`hdl_config`."""

    @cached_property
    def input_formats(self) -> tuple[PortFormat, ...]:
        """Elements and bits of each input stream, in port order (of :attr:`hdl_config`,
        read once: the wiring asks for them on every design the stage is part of)."""
        return input_ports(self.hdl_config)

    # ---- beat schedule ---------------------------------------------------------------------
    def schedule(self, arrivals: Sequence[np.ndarray]) -> StageSchedule:
        """Cycles the stage takes its input beats and offers its output beats, for input
        beats arriving at ``arrivals[port]`` (frames back to back) and an output that is
        always taken. The organisation sizes the FIFOs of skip paths from these."""
        raise GraphError(f"stage {self.name!r} ({self.kind}) states no beat schedule, so the "
                         "FIFOs of the skip paths around it cannot be sized")

    def throttled(self, schedule: StageSchedule, spacing: Sequence[int]) -> StageSchedule:
        """``schedule`` when output port p can hand a beat on only every ``spacing[p]``
        cycles (a width converter behind it splitting each beat into that many pieces).

        A stage with one output is left as it is: the stream's model applies the
        converter's pace to the beats it writes, and the stall the converter causes the
        stage is not followed (it only delays the stage). A stage with several outputs
        couples them, and states how (:class:`~codesign.arch.stages.ForkStage`)."""
        return schedule

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
    def resource_structure(self, target: str) -> Structure:
        """The stage's hardware as the resource model prices it (features and exact counts:
        see :mod:`codesign.arch.resource_model`)."""
        raise UnknownTargetError(f"stage {self.name!r}: the resource model has no structure "
                                 f"for {self.kind} stages yet; synthesise the design instead "
                                 "(codesign run --synth, codesign synth)")

    def priced_structure(self, target: str) -> Structure:
        """The structure with the stage kind's own feature names (what the calibration
        prices)."""
        return self.resource_structure(target).of_kind(self.kind)

    def estimate_resources(self, target: str = "xc7") -> Resources:
        """LUT, FF, block RAM and DSP of the stage on ``target``, without synthesis.

        Counted once per stage and target (a stage's hardware is fixed when it is made, as
        its :attr:`hdl_config` is), answer or refusal: the model reads every ROM column, and
        the designs of a sweep share their equal stages (:mod:`codesign.arch.stage_pool`).
        """
        known = self._resource_estimates
        if target not in known:
            try:
                known[target] = estimate(self.priced_structure(target), target)
            except UnknownTargetError as exc:
                known[target] = exc
        found = known[target]
        if isinstance(found, UnknownTargetError):
            raise type(found)(*found.args)
        return found

    @cached_property
    def _resource_estimates(self) -> dict[str, Resources | UnknownTargetError]:
        """Target -> the resource model's estimate of the stage, or why it has none."""
        return {}

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
        # forks, joins and the global pool keep no memories and take no memory style
        style = getattr(config, "memory_style", None)
        memories = getattr(config, "memories", ()) if style is not None else ()
        return {"name": self.name, "kind": self.kind, "hardware": self.hardware(),
                "input_type": str(self.input_type), "output_type": str(self.output_type),
                "memory_style": style,
                "memories": {m.name: {"style": resolve_style(style, m),
                                      "width": m.width, "depth": m.depth}
                             for m in memories}}
