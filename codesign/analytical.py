"""The analytical performance model of a whole design, and its check against the hardware.

Each stage kind predicts its own counters (:meth:`codesign.arch.stage.Stage.predict_counters`)
from its weights, shape and folding alone; for a stage run on its own at full rate every
counter is exact. Inside a design the traffic counters (stalls, span, blocked inputs) depend
on the neighbours, so only the others are compared there: a stage issues the same steps
whatever its traffic.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from codesign.arch.design import Design
from hdl.perf import TRAFFIC_COUNTERS, Counter


def predict_design(design: Design, frames: int,
                   values: Mapping[str, np.ndarray] | None = None
                   ) -> dict[str, dict[Counter, int]]:
    """Every stage's predicted counters for ``frames`` frames; with the reference's tensor
    ``values`` the activation-dependent counters too."""
    return {stage.name: stage.predict_counters(
        frames, None if values is None else values[stage.input_tensor])
        for stage in design.stages}


def compare_counters(predicted: Mapping[str, int], measured: Mapping[str, int], *,
                     in_network: bool) -> dict[str, tuple[int, int]]:
    """Counters where prediction and measurement differ: name -> (predicted, measured).

    A predicted counter the hardware does not report is a difference (measured -1).
    """
    skip = TRAFFIC_COUNTERS if in_network else frozenset()
    return {str(name): (value, measured.get(name, -1)) for name, value in predicted.items()
            if name not in skip and measured.get(name, -1) != value}
