"""Hardware outputs vs the integer reference, element by element.

A mismatch names the frame and output element; the design's organisation then localises it
to the first stage whose own output differs (:meth:`codesign.arch.design.Organisation.
localize_mismatch`), which is where a bug actually lives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.arch.design import Design, FirstDifference


def first_difference(expected: np.ndarray, got: np.ndarray) -> tuple[int, int] | None:
    """(frame, element) of the first differing element of two [N, elements] arrays."""
    diff = np.argwhere(expected != got)
    if diff.size == 0:
        return None
    frame, element = diff[0]
    return int(frame), int(element)


@dataclass(frozen=True)
class Verification:
    frames: int
    elements: int
    mismatches: int
    first: FirstDifference | None

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0


def compare(design: Design, expected: np.ndarray, outputs: np.ndarray) -> Verification:
    """The design's final outputs against the reference's output tensor ``expected``."""
    expected = np.asarray(expected).reshape(expected.shape[0], -1)
    got = np.asarray(outputs, dtype=np.int64).reshape(expected.shape)
    where = first_difference(expected, got)
    first = None
    if where is not None:
        frame, element = where
        last = design.stages[-1]
        first = FirstDifference(last.name, last.output_tensor, frame, element,
                                int(expected[frame, element]), int(got[frame, element]))
    return Verification(frames=expected.shape[0], elements=int(expected.size),
                        mismatches=int(np.count_nonzero(expected != got)), first=first)
