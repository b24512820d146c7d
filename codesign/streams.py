"""Frames <-> stream beats: how values travel on a stage's or a design's streams.

Element j of a beat sits at bits [j*b, (j+1)*b) as its storage code (bipolar 1 = +1,
two's complement otherwise); earlier elements of a frame travel in earlier beats. The
simulator, the generators and the tests share this one definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codesign.errors import InputError
from codesign.ir import IntType


def pack_beats(values: np.ndarray, dtype: IntType, elems_per_beat: int) -> list[int]:
    """Frames [N, C] -> stream beats: element j of a beat at bits [j*b, (j+1)*b)."""
    arr = np.asarray(values, dtype=np.int64)
    frames, channels = arr.shape
    if channels % elems_per_beat:
        raise InputError(f"{channels} elements per frame do not split into beats of "
                         f"{elems_per_beat}")
    codes = dtype.encode(arr).reshape(frames * channels // elems_per_beat, elems_per_beat)
    bits = dtype.bits
    shifts = [j * bits for j in range(elems_per_beat)]
    return [sum(int(code) << shift for code, shift in zip(row.tolist(), shifts, strict=True))
            for row in codes]


def unpack_beats(beats: Sequence[int], dtype: IntType, elems_per_beat: int, channels: int
                 ) -> np.ndarray:
    """Inverse of :func:`pack_beats`: beats -> frames [N, channels] of values."""
    bits = dtype.bits
    mask = (1 << bits) - 1
    codes = np.array([[(beat >> (j * bits)) & mask for j in range(elems_per_beat)]
                      for beat in beats], dtype=np.int64).reshape(-1, channels)
    return dtype.decode(codes)
