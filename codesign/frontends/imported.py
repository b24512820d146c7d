"""A network imported from another framework, ready for the passes, the hardware and a run.

The IR graph is what the hardware computes; the two edges (real inputs -> integer input
codes, integer outputs -> the source model's real outputs) are the source framework's own
arithmetic, kept beside the graph for running data sets and for comparing with the source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codesign.ir import Graph

InputCodes = Callable[[np.ndarray], np.ndarray]
"""Real inputs [N, *source input shape] -> integer frames of the IR input [N, *IR shape]."""
OutputValues = Callable[[np.ndarray, Graph], np.ndarray]
"""Integer outputs of a graph (before or after the passes) -> the source's real outputs."""
SourceRun = Callable[[np.ndarray], np.ndarray]
"""Real inputs -> the source framework's own outputs (the outside referee)."""


@dataclass
class ImportedNetwork:
    """An imported network: its IR graph (before the passes) and its two edges."""

    name: str
    source: str
    """The frontend that made it (``qonnx``, ``torch_ao``)."""
    graph: Graph
    input_shape: tuple[int, ...]
    """Per-frame input shape of the source model (e.g. (1, 8, 8) for NCHW images)."""
    input_codes: InputCodes
    output_values: OutputValues
    run_source: SourceRun

    def scores(self, outputs: np.ndarray, graph: Graph | None = None) -> np.ndarray:
        """The source's real outputs, one row per frame, for integer ``outputs`` of ``graph``
        (default: the imported graph; pass the graph the outputs came from after passes)."""
        values = self.output_values(np.asarray(outputs), graph or self.graph)
        return values.reshape(values.shape[0], -1)

    def predict(self, outputs: np.ndarray, graph: Graph | None = None) -> np.ndarray:
        """Class predictions from integer outputs (argmax of the real scores, first index
        on ties)."""
        return np.argmax(self.scores(outputs, graph), axis=1)

    def source_predict(self, x: np.ndarray) -> np.ndarray:
        """The source model's own predictions for real inputs."""
        out = np.asarray(self.run_source(x))
        return np.argmax(out.reshape(out.shape[0], -1), axis=1)
