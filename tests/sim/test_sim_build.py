"""Build caching: content-hashed keys, cache hits, atomic publication, locking, failures."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import sim.build as build_mod
from sim import SimulationError, StreamTestbench
from sim.build import build_model, model_key
from sim.examples import incrementer_verilog
from sim.toolchain import VerilatorInfo

WIDE = 200
VERILOG, TOP = incrementer_verilog(WIDE)
ARGS = {"in_width": WIDE, "out_width": WIDE, "n_counters": 3}


def test_second_build_is_a_cache_hit(inc_bench: StreamTestbench) -> None:
    first = inc_bench.build()
    again = build_model(VERILOG, TOP, **ARGS)
    assert again.cached
    assert again.directory == first.directory
    assert again.seconds < 1.0
    assert again.executable.is_file()
    assert again.original_build_seconds > 0


def test_key_follows_content() -> None:
    base = model_key(VERILOG, TOP, **ARGS)
    other, _ = incrementer_verilog(WIDE - 1)
    assert model_key(other, TOP, in_width=WIDE - 1, out_width=WIDE - 1, n_counters=3) != base
    assert model_key(VERILOG, TOP, **ARGS, kind="cpp") != base
    assert model_key(VERILOG, TOP, **ARGS, extra_flags=["-O3"]) != base
    # A semantically different DUT with the same ports.
    tweaked = VERILOG.replace("1'h1", "2'h2", 1)
    assert tweaked != VERILOG
    assert model_key(tweaked, TOP, **ARGS) != base
    # Source-location attributes record where the generator ran, not what it built.
    moved = VERILOG.replace('src = "', 'src = "/elsewhere')
    assert moved != VERILOG
    assert model_key(moved, TOP, **ARGS) == base


# ---- cache mechanics, with a fake compiler so no real build is needed ----------------------


@pytest.fixture
def fake_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(VerilatorInfo, "start_objcache", lambda self: False)
    state: dict[str, object] = {"calls": 0, "delay": 0.0, "fail": None}

    def fake_build(tmp: Path, flags: list[str], info: VerilatorInfo, use_cache: bool) -> None:
        state["calls"] = int(state["calls"]) + 1  # type: ignore[call-overload]
        (tmp / "obj").mkdir()
        time.sleep(float(state["delay"]))  # type: ignore[arg-type]
        if state["fail"] is not None:
            raise state["fail"]  # type: ignore[misc]
        (tmp / "obj" / build_mod.executable_name()).write_text("#!/bin/sh\n")
        (tmp / "obj" / "junk.o").write_text("x")

    monkeypatch.setattr(build_mod, "_build_cocotb", fake_build)
    state["root"] = tmp_path / "cache" / "verilator"
    return state


def entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock"))


def test_cold_then_warm(fake_cache: dict[str, object]) -> None:
    root: Path = fake_cache["root"]  # type: ignore[assignment]
    cold = build_model(VERILOG, TOP, **ARGS)
    assert not cold.cached and fake_cache["calls"] == 1
    assert entries(root) == [cold.key]
    assert sorted(p.name for p in (cold.directory / "obj").iterdir()) == [
        build_mod.executable_name()
    ]  # intermediate files pruned
    warm = build_model(VERILOG, TOP, **ARGS)
    assert warm.cached and fake_cache["calls"] == 1


def test_interrupted_build_leaves_nothing(fake_cache: dict[str, object]) -> None:
    root: Path = fake_cache["root"]  # type: ignore[assignment]
    fake_cache["fail"] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        build_model(VERILOG, TOP, **ARGS)
    assert entries(root) == []
    fake_cache["fail"] = None
    assert not build_model(VERILOG, TOP, **ARGS).cached


def test_leftovers_of_a_killed_process_are_ignored(fake_cache: dict[str, object]) -> None:
    root: Path = fake_cache["root"]  # type: ignore[assignment]
    key = model_key(VERILOG, TOP, **ARGS)
    root.mkdir(parents=True)
    stale = root / f".build-{key}"
    (stale / "obj").mkdir(parents=True)
    half = root / key  # a directory without a manifest is never trusted
    (half / "obj").mkdir(parents=True)
    (half / "obj" / build_mod.executable_name()).write_text("garbage")
    model = build_model(VERILOG, TOP, **ARGS)
    assert not model.cached and fake_cache["calls"] == 1
    assert entries(root) == [key]
    assert (model.directory / build_mod.MANIFEST).is_file()


def test_concurrent_builds_share_one_result(fake_cache: dict[str, object]) -> None:
    root: Path = fake_cache["root"]  # type: ignore[assignment]
    fake_cache["delay"] = 0.5
    results = []

    def worker() -> None:
        results.append(build_model(VERILOG, TOP, **ARGS))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake_cache["calls"] == 1
    assert len({r.directory for r in results}) == 1
    assert sorted(r.cached for r in results) == [False, True, True]
    assert entries(root) == [results[0].key]


def test_verilator_error_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(VerilatorInfo, "start_objcache", lambda self: False)
    broken = VERILOG.replace("endmodule", "  this is not verilog;\nendmodule")
    with pytest.raises(SimulationError, match=r"(?s)build failed.*%Error.*Full build log: "):
        build_model(broken, TOP, **ARGS, kind="cpp")
    left = entries(tmp_path / "cache" / "verilator")
    assert len(left) == 1 and left[0].startswith("failed-") and left[0].endswith(".log")


def test_split_model_with_precompiled_header() -> None:
    """Large models are split into several C++ files that share a precompiled header; the
    wheel's makefile and a compiler cache each break that unless the build works around it."""
    bench = StreamTestbench(
        VERILOG, TOP, **ARGS, backend="cpp", extra_flags=["--output-split", "50"]
    )
    model = bench.build()
    assert "pch.h.fast" in (model.directory / "build.log").read_text()
    assert bench.run([1, (1 << WIDE) - 1], 2).out_beats == [2, 0]
