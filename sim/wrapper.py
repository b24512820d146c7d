"""Render the streaming testbench wrapper and check a DUT against the port contract.

The DUT contract (what the hardware generator hands over) is a Verilog module with ports
``clk``, ``rst`` (sync, active high), ``i__valid``/``i__ready``/``i__payload[W_IN-1:0]``,
``o__valid``/``o__ready``/``o__payload[W_OUT-1:0]`` and, when it has counters,
``perf[32*NC-1:0]`` with counter ``k`` at bits ``[32k+31:32k]``.

Width mismatches between the wrapper and the DUT would be silently truncated by Verilator once
width warnings are suppressed (Amaranth's Verilog needs that), so the declared port widths are
checked here, before any build, with a message that says which port is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

TB_NAME = "codesign_stream_tb"
"""Module name of the wrapper; also the cocotb toplevel."""

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_SRC_ATTR = re.compile(r'\(\*\s*src\s*=\s*"[^"\n]*"\s*\*\)\s?')

PUBLIC_SIGNALS = (
    "done",
    "stuck",
    "in_count",
    "out_count",
    "cycle",
    "total_cycles",
    "first_in_cycle",
    "last_out_cycle",
    "perf_final",
)
"""Wrapper signals the cocotb test reads; only these are made visible to VPI."""


@dataclass(frozen=True)
class StreamPorts:
    """Widths of a stream DUT's ports."""

    in_width: int
    out_width: int
    n_counters: int


def template_text() -> str:
    """The raw wrapper template shipped inside the package."""
    return (resources.files("sim") / "templates" / "stream_tb.sv").read_text(encoding="utf-8")


def normalize_verilog(verilog: str) -> str:
    """Drop ``(* src = "..." *)`` attributes.

    They only record the Python file and line that produced each signal, so they change with
    the checkout path while the hardware does not; dropping them lets identical designs from
    different directories share one cached build.
    """
    return _SRC_ATTR.sub("", verilog)


def render_wrapper(top: str, ports: StreamPorts) -> str:
    """Fill in the wrapper template for one DUT module name and its port widths."""
    check_identifier(top)
    nc = ports.n_counters
    perf_w = max(32 * nc, 32)
    if nc > 0:
        perf_assign = ""
        perf_conn = ",\n    .perf(perf_flat)"
    else:
        perf_assign = "  assign perf_flat = '0;"
        perf_conn = ""
    fields = {
        "TB_NAME": TB_NAME,
        "DUT_TOP": top,
        "W_IN": str(ports.in_width),
        "W_OUT": str(ports.out_width),
        "NC": str(nc),
        "PERF_W": str(perf_w),
        "PERF_ASSIGN": perf_assign,
        "PERF_CONN": perf_conn,
    }
    text = template_text()
    for name, value in fields.items():
        text = text.replace(f"@{name}@", value)
    leftover = re.search(r"@[A-Z_]+@", text)
    if leftover:  # pragma: no cover - guards template edits
        raise RuntimeError(f"wrapper template field {leftover.group(0)} was not filled in")
    return text


def control_file(dut_file_name: str) -> str:
    """Verilator control (.vlt) text for the cocotb build.

    Lint waivers apply to the generated DUT file only, so the wrapper itself (and its port
    hookup) stays width-checked. Only the few signals the cocotb test reads are made public:
    ``--public-flat-rw`` on everything (cocotb's default) was measured to slow simulation down.
    """
    lines = ["`verilator_config"]
    lines += [f'lint_off -rule {rule} -file "*{dut_file_name}"' for rule in DUT_LINT_WAIVERS]
    lines += [f'public_flat_rd -module "{TB_NAME}" -var "{sig}"' for sig in PUBLIC_SIGNALS]
    return "\n".join(lines) + "\n"


def lint_control_file(dut_file_name: str) -> str:
    """Verilator control text with only the DUT lint waivers (for builds without VPI)."""
    lines = ["`verilator_config"]
    lines += [f'lint_off -rule {rule} -file "*{dut_file_name}"' for rule in DUT_LINT_WAIVERS]
    return "\n".join(lines) + "\n"


DUT_LINT_WAIVERS = ("WIDTH", "CASEINCOMPLETE", "UNOPTFLAT", "MULTIDRIVEN", "LATCH", "ASCRANGE",
                    "UNSIGNED", "CMPCONST")
"""Warnings Amaranth's Verilog is known to trip, waived for the DUT file only.

WIDTH: Amaranth emits mixed-width arithmetic (``a + 1'h1`` into wider wires).
CASEINCOMPLETE: ``casez`` without a default in generated multiplexers.
UNOPTFLAT: combinational loops through different bits of one wide wire (not real loops).
MULTIDRIVEN: one signal assigned from several ``always`` blocks for memories / ports.
LATCH: ``always @*`` blocks that Verilator cannot prove fully assigned.
ASCRANGE: zero-width wires (``[-1:0]``) for the address of a one-word memory or FIFO.
UNSIGNED, CMPCONST: comparisons a generator leaves constant for some parameters (an unsigned
counter against 0, a threshold above an unsigned accumulator's range).
"""


def check_identifier(name: str) -> None:
    """Reject names that cannot be a Verilog module name or would clash with the wrapper."""
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise ValueError(f"top must be a plain Verilog identifier, got {name!r}")
    if name == TB_NAME:
        raise ValueError(f"top must not be named {TB_NAME!r}: that is the testbench wrapper")


def check_dut_ports(verilog: str, top: str, ports: StreamPorts) -> None:
    """Check that module ``top`` exists and declares the contract's ports with the given widths.

    Only ANSI-less declarations (``input [N:0] name;``, Amaranth's style) and ANSI headers
    (``input wire [N:0] name``) are recognised; a port whose width cannot be read from the text
    is left for Verilator to check.

    Raises:
        ValueError: the module is missing, a port is missing, or a width differs.
    """
    check_identifier(top)
    body = _module_body(verilog, top)
    if body is None:
        found = re.findall(r"\bmodule\s+\\?([A-Za-z_][A-Za-z0-9_$]*)", verilog)
        present = ", ".join(found) or "none"
        raise ValueError(f"module {top!r} not found in the Verilog (modules present: {present})")
    declared = _port_widths(body)
    expected: dict[str, tuple[str, int]] = {
        "clk": ("input", 1),
        "rst": ("input", 1),
        "i__valid": ("input", 1),
        "i__ready": ("output", 1),
        "i__payload": ("input", ports.in_width),
        "o__valid": ("output", 1),
        "o__ready": ("input", 1),
        "o__payload": ("output", ports.out_width),
    }
    if ports.n_counters > 0:
        expected["perf"] = ("output", 32 * ports.n_counters)
    problems = []
    for name, (direction, width) in expected.items():
        if name not in declared:
            problems.append(f"missing {direction} port {name!r} ({width} bits)")
            continue
        got_dir, got_width = declared[name]
        if got_dir != direction:
            problems.append(f"port {name!r} is an {got_dir}, expected an {direction}")
        elif got_width is not None and got_width != width:
            problems.append(f"port {name!r} is {got_width} bits wide, expected {width}")
    if ports.n_counters == 0 and "perf" in declared:
        width = declared["perf"][1]
        problems.append(
            f"module has a 'perf' port ({width} bits) but n_counters=0"
            + (f"; did you mean n_counters={width // 32}?" if width and width % 32 == 0 else "")
        )
    if problems:
        raise ValueError(
            f"DUT module {top!r} does not match the stream contract: " + "; ".join(problems)
        )


def _module_body(verilog: str, top: str) -> str | None:
    match = re.search(rf"\bmodule\s+\\?{re.escape(top)}(?![A-Za-z0-9_$])", verilog)
    if match is None:
        return None
    end = verilog.find("endmodule", match.end())
    return verilog[match.end() : end if end >= 0 else len(verilog)]


_NAME = r"\\?[A-Za-z_][A-Za-z0-9_$]*"
_DECL = re.compile(
    r"\b(input|output|inout)\b\s*(?:(?:wire|reg|logic|signed|unsigned|var)\s+)*"
    r"(?:\[([^\]]*)\]\s*)?"
    rf"({_NAME}(?:\s*,\s*(?!(?:input|output|inout)\b){_NAME})*)"
)


def _port_widths(body: str) -> dict[str, tuple[str, int | None]]:
    body = _SRC_ATTR.sub("", body)
    body = re.sub(r"\(\*.*?\*\)", "", body, flags=re.S)
    declared: dict[str, tuple[str, int | None]] = {}
    for match in _DECL.finditer(body):
        direction, bounds, names = match.groups()
        width: int | None = 1
        if bounds is not None:
            numbers = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", bounds)
            width = abs(int(numbers[1]) - int(numbers[2])) + 1 if numbers else None
        for name in re.split(r"\s*,\s*", names):
            declared.setdefault(name.lstrip("\\").strip(), (direction, width))
    return declared
