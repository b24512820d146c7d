"""Validate stream payloads and convert them to and from the wrapper's binary beat files.

Payloads are arbitrary-width unsigned Python ints (hundreds of bits are normal), so the files
are plain byte strings: inputs as ``ceil(W/8)`` big-endian bytes per beat (what ``$fread``
reads), outputs as ``4*ceil(W/32)`` little-endian bytes per beat (what ``$fwrite("%u")``
writes). Binary files were measured to be several times faster than hex text on both sides.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

MAX_BEATS = 2**32 - 1
"""Beat counters in the wrapper are 32 bits wide."""


def check_count(value: object, name: str, *, minimum: int, maximum: int = MAX_BEATS) -> int:
    """Return ``value`` as an int in ``[minimum, maximum]`` or raise a ValueError naming it."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got a bool ({value!r})")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an int, got {type(value).__name__} {value!r}") from None
    if not minimum <= number <= maximum:
        raise ValueError(f"{name} must be in [{minimum}, {maximum}], got {number}")
    return number


def check_beats(beats: Sequence[int], width: int, name: str = "in_beats") -> list[int]:
    """Return the beats as a list of ints, each checked to fit in ``width`` unsigned bits."""
    if isinstance(beats, (str, bytes, bytearray)):
        raise ValueError(f"{name} must be a sequence of ints, got {type(beats).__name__}")
    try:
        items = list(beats)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of ints, got {type(beats).__name__}") from None
    if len(items) > MAX_BEATS:
        raise ValueError(f"{name} has {len(items)} beats; at most {MAX_BEATS} are supported")
    limit = 1 << width
    out: list[int] = []
    for index, beat in enumerate(items):
        if isinstance(beat, bool):
            raise ValueError(f"{name}[{index}] is a bool ({beat!r}); payloads must be ints")
        try:
            value = operator.index(beat)
        except TypeError:
            raise ValueError(
                f"{name}[{index}] must be an int, got {type(beat).__name__} {beat!r}"
            ) from None
        if value < 0:
            raise ValueError(
                f"{name}[{index}] = {value} is negative; payloads are unsigned "
                f"(encode signed values as two's complement in {width} bits)"
            )
        if value >= limit:
            raise ValueError(
                f"{name}[{index}] = {value:#x} does not fit in {width} bits "
                f"(needs {value.bit_length()})"
            )
        out.append(value)
    return out


def in_beat_bytes(width: int) -> int:
    """Bytes per input beat in the input file."""
    return (width + 7) // 8


def out_beat_bytes(width: int) -> int:
    """Bytes per output beat in the output file."""
    return 4 * ((width + 31) // 32)


def encode_inputs(beats: Sequence[int], width: int) -> bytes:
    """Pack already-checked beats for the wrapper's ``$fread``."""
    size = in_beat_bytes(width)
    return b"".join(beat.to_bytes(size, "big") for beat in beats)


def decode_outputs(data: bytes, width: int, count: int) -> list[int]:
    """Unpack ``count`` beats written by the wrapper's ``$fwrite("%u")``."""
    size = out_beat_bytes(width)
    if len(data) < size * count:
        raise ValueError(
            f"output file holds {len(data) // size} whole beats of {size} bytes, expected {count}"
        )
    mask = (1 << width) - 1
    return [
        int.from_bytes(data[i : i + size], "little") & mask for i in range(0, size * count, size)
    ]
