"""Argument validation: every mistake is a ValueError that names the problem, before any build."""

from __future__ import annotations

import pytest

from sim import StreamTestbench, run_stream
from sim.examples import incrementer_verilog
from sim.wrapper import TB_NAME

WIDE = 200
VERILOG, TOP = incrementer_verilog(WIDE)


def call(**overrides: object) -> None:
    kwargs: dict[str, object] = {
        "verilog": VERILOG,
        "top": TOP,
        "in_width": WIDE,
        "out_width": WIDE,
        "n_counters": 3,
        "in_beats": [1, 2, 3],
        "n_out_beats": 3,
    }
    kwargs.update(overrides)
    run_stream(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"in_beats": [1, 1 << WIDE]}, r"in_beats\[1\] = 0x1.* does not fit in 200 bits"),
        ({"in_beats": [-1]}, r"in_beats\[0\] = -1 is negative"),
        ({"in_beats": [True]}, r"in_beats\[0\] is a bool"),
        ({"in_beats": [1.5]}, r"in_beats\[0\] must be an int"),
        ({"in_beats": ["7"]}, r"in_beats\[0\] must be an int"),
        ({"in_beats": "123"}, r"in_beats must be a sequence of ints"),
        ({"in_beats": 5}, r"in_beats must be a sequence of ints"),
        ({"n_out_beats": 0}, r"n_out_beats must be in \[1, "),
        ({"n_out_beats": 2.0}, r"n_out_beats must be an int"),
        ({"liveness_cycles": 0}, r"liveness_cycles must be in \[1, "),
        ({"in_valid_prob": 0}, r"in_valid_prob must be in \[1, 256\]"),
        ({"in_valid_prob": 257}, r"in_valid_prob must be in \[1, 256\]"),
        ({"out_ready_prob": 0}, r"out_ready_prob must be in \[1, 256\]"),
        ({"seed": -1}, r"seed must be in \[0, "),
        ({"seed": 1 << 32}, r"seed must be in \[0, "),
        ({"in_width": 0}, r"in_width must be"),
        ({"in_width": 199}, r"'i__payload' is 200 bits wide, expected 199"),
        ({"out_width": 201, "in_beats": [1]}, r"'o__payload' is 200 bits wide, expected 201"),
        ({"n_counters": 2}, r"'perf' is 96 bits wide, expected 64"),
        (
            {"n_counters": 0},
            r"has a 'perf' port \(96 bits\) but n_counters=0; did you mean n_counters=3",
        ),
        ({"n_counters": -1}, r"n_counters must be an int >= 0"),
        ({"top": "nope"}, r"module 'nope' not found in the Verilog \(modules present: stream_inc"),
        ({"top": "bad name"}, r"top must be a plain Verilog identifier"),
        ({"top": TB_NAME}, r"must not be named"),
        ({"verilog": "  "}, r"verilog must be a non-empty string"),
        ({"timeout_seconds": 0}, r"timeout_seconds must be positive"),
        ({"backend": "iverilog"}, r"backend must be 'cocotb' or 'cpp'"),
    ],
)
def test_bad_arguments(overrides: dict[str, object], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        call(**overrides)


def test_missing_port_is_named() -> None:
    broken = VERILOG.replace("o__ready", "o__rdy")
    with pytest.raises(ValueError, match=r"missing input port 'o__ready'"):
        call(verilog=broken)


def test_numpy_like_ints_are_accepted_without_building() -> None:
    # operator.index() is used for payloads, so integer-like objects pass validation; the build
    # is never reached because the port check fails first.
    class IntLike:
        def __index__(self) -> int:
            return 7

    bench = StreamTestbench(VERILOG, TOP, in_width=WIDE, out_width=WIDE, n_counters=2)
    with pytest.raises(ValueError, match="perf"):
        bench.run([IntLike()], 1)  # type: ignore[list-item]
