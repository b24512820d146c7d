"""What the stages that stream one feature map through at SIMD elements per beat share.

A sliding-window generator and a pool read an (H, W, C) map SIMD channels per beat and emit
elements of the same type SIMD per beat; only their output shape, schedule and events
differ (their own modules).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np

from codesign.arch.stage import Stage
from codesign.ir import IntType, Node
from hdl.stage import SimdElems


@dataclass(eq=False)
class MapStage(SimdElems, Stage):
    """A stage over an (H, W, C) map, ``simd`` elements per beat in and out."""

    name: str
    node: Node
    input_type: IntType
    in_shape: tuple[int, int, int]
    simd: int
    memory_style: str = "auto"
    """Where the stage's buffers go (:mod:`hdl.memory`)."""

    @property
    def output_type(self) -> IntType:  # type: ignore[override]
        return self.input_type

    @property
    @abstractmethod
    def out_shape(self) -> tuple[int, int, int]:
        """The output map's (H, W, C)."""

    @property
    def in_beats_per_frame(self) -> int:
        return int(np.prod(self.in_shape)) // self.simd

    @property
    def out_beats_per_frame(self) -> int:
        return int(np.prod(self.out_shape)) // self.simd
