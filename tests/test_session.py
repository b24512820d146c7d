"""The session setup of tests/conftest.py: private cache, one torch thread, hypothesis modes."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import hypothesis.core
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.paths import CACHE_ENV, cache_root

PROBE_ENV = "CODESIGN_TEST_PROBE"
"""File the probe tests append their examples to (unset: they record nothing)."""

TESTS = Path(__file__).resolve().parent


def test_the_session_cache_is_private() -> None:
    root = cache_root()
    assert root == Path(os.environ[CACHE_ENV]) and root.is_dir()
    assert root != Path.home() / ".cache" / "codesign"
    persistent = os.environ.get("CODESIGN_TEST_CACHE")
    if persistent:
        assert root == Path(persistent)
    else:
        assert root.parent == Path(tempfile.gettempdir())
        assert root.name.startswith("codesign-test-cache-")


def test_empty_cache_is_a_cache_of_its_own(empty_cache: Path) -> None:
    assert cache_root() == empty_cache and list(empty_cache.iterdir()) == []


def test_torch_runs_on_one_thread() -> None:
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("package", ["codesign", "hdl", "quant_models", "sim"])
def test_the_packages_are_not_shadowed_by_the_test_folders(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None, f"{package} resolved to a namespace package"
    assert TESTS not in Path(module.__file__).resolve().parents


def _record(test: str, value: int) -> None:
    path = os.environ.get(PROBE_ENV)
    if path:
        line = {
            "test": test,
            "value": value,
            "seed": hypothesis.core.global_force_seed,
            "profile": settings.get_current_profile_name(),
        }
        with open(path, "a") as handle:
            handle.write(json.dumps(line) + "\n")


@settings(max_examples=7)
@given(st.integers(0, 2**64))
def test_probe_explicit_budget(value: int) -> None:
    _record("explicit", value)


@given(st.integers(0, 2**64))
def test_probe_profile_budget(value: int) -> None:
    _record("profile", value)


def _run_probes(tmp_path: Path, mode: str | None) -> tuple[subprocess.CompletedProcess[str],
                                                           list[dict[str, object]]]:
    out = tmp_path / f"probe-{mode}.jsonl"
    env = {**os.environ, PROBE_ENV: str(out)}
    env.pop("CODESIGN_HYPOTHESIS", None)
    if mode is not None:
        env["CODESIGN_HYPOTHESIS"] = mode
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__)), "-q", "-k", "probe",
         "-p", "no:cacheprovider", "-n", "0"],
        capture_output=True, text=True, env=env, cwd=TESTS.parent,
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return result, lines


@pytest.mark.slow
def test_hypothesis_modes(tmp_path: Path) -> None:
    """Default: the addopts seed and the usual budgets; explore: a random seed (the addopts
    seed dropped) and ten times every budget, the explicit ones too."""
    fixed, fixed_lines = _run_probes(tmp_path, None)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    explore, explore_lines = _run_probes(tmp_path, "explore")
    assert explore.returncode == 0, explore.stdout + explore.stderr
    for lines, seed, profile, budgets in (
        (fixed_lines, 0, "fixed", {"explicit": 7, "profile": 100}),
        (explore_lines, None, "explore", {"explicit": 70, "profile": 1000}),
    ):
        assert {(line["seed"], line["profile"]) for line in lines} == {(seed, profile)}
        for test, budget in budgets.items():
            values = [line["value"] for line in lines if line["test"] == test]
            assert len(values) == budget, (profile, test)


def test_an_unknown_hypothesis_mode_is_a_usage_error(tmp_path: Path) -> None:
    bad, lines = _run_probes(tmp_path, "sometimes")
    assert bad.returncode == pytest.ExitCode.USAGE_ERROR
    assert "CODESIGN_HYPOTHESIS='sometimes': expected one of fixed, explore" in bad.stderr
    assert lines == []
