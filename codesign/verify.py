"""Hardware outputs vs the integer reference, element by element.

A mismatch is reported with the frame and output element; :func:`localize_mismatch` then
simulates growing prefixes of the network to name the first layer whose own output
differs, which is where a bug actually lives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.mapping import Design
from codesign.reference import execute


@dataclass(frozen=True)
class Mismatch:
    """The first differing element: where, and the two values."""

    layer: str
    tensor: str
    frame: int
    element: int
    expected: int
    got: int

    def describe(self) -> str:
        return (f"layer {self.layer!r} (tensor {self.tensor!r}) frame {self.frame} element "
                f"{self.element}: reference {self.expected}, hardware {self.got}")


@dataclass(frozen=True)
class Verification:
    frames: int
    elements: int
    mismatches: int
    first: Mismatch | None

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0


def first_difference(expected: np.ndarray, got: np.ndarray) -> tuple[int, int] | None:
    diff = np.argwhere(expected != got)
    if diff.size == 0:
        return None
    frame, element = diff[0]
    return int(frame), int(element)


def compare(design: Design, inputs: np.ndarray, outputs: np.ndarray) -> Verification:
    """Compare the design's final outputs with the reference on the same inputs."""
    expected = execute(design.graph, inputs)
    assert isinstance(expected, np.ndarray)
    expected = expected.reshape(expected.shape[0], -1)
    got = np.asarray(outputs, dtype=np.int64).reshape(expected.shape)
    where = first_difference(expected, got)
    first = None
    if where is not None:
        frame, element = where
        last = design.layers[-1]
        first = Mismatch(last.name, last.output_tensor, frame, element,
                         int(expected[frame, element]), int(got[frame, element]))
    return Verification(frames=expected.shape[0], elements=int(expected.size),
                        mismatches=int(np.count_nonzero(expected != got)), first=first)


def localize_mismatch(design: Design, inputs: np.ndarray, **sim_options) -> Mismatch | None:
    """Simulate prefixes of the network; the first prefix that differs names the layer."""
    from codesign.simulate import simulate

    values = execute(design.graph, inputs, keep_all=True)
    assert isinstance(values, dict)
    for count in range(1, len(design.layers) + 1):
        prefix = Design(design.graph, design.layers[:count])
        layer = prefix.layers[-1]
        result = simulate(prefix, inputs, **sim_options)
        expected = values[layer.output_tensor]
        expected = expected.reshape(expected.shape[0], -1)
        where = first_difference(expected, result.outputs.reshape(expected.shape))
        if where is not None:
            frame, element = where
            return Mismatch(layer.name, layer.output_tensor, frame, element,
                            int(expected[frame, element]), int(result.outputs[frame, element]))
    return None
