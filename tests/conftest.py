"""Session-wide test setup: a private cache, one torch thread, the hypothesis profile.

- Cache: the whole session uses its own ``CODESIGN_CACHE``, never the user's: a fresh
  temporary directory removed at the end, or ``$CODESIGN_TEST_CACHE`` when set (a persistent
  directory keeps Verilator builds warm between local runs). Tests that need an empty cache
  of their own take the ``empty_cache`` fixture.
- torch runs on one thread, so training in tests is fast and reproducible; the built-in
  examples load from the package's shipped weights, so none is trained by the suite.
- Parallel runs (pytest-xdist, ``-n auto`` in pyproject's addopts): the workers share the
  controller's cache (its Verilator builds and sccache server are safe under concurrent
  builders), and each test file runs on one worker, the pin and simulation directories
  (whose session fixtures are runs several files read) each on one worker, so no module or
  session fixture is computed twice.
- hypothesis: by default the seed is fixed (``--hypothesis-seed=0`` in pyproject's addopts),
  so every run explores the same examples. ``CODESIGN_HYPOTHESIS=explore`` draws a random
  seed instead and gives every property test ten times its example budget.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import is_hypothesis_test, settings

from codesign.paths import CACHE_ENV

TEST_CACHE_ENV = "CODESIGN_TEST_CACHE"
WORKER_ENV = "PYTEST_XDIST_WORKER"
SHARED_DIRECTORIES = ("pins", "sim")
"""Test directories whose session fixtures several files use: one worker runs each."""
HYPOTHESIS_ENV = "CODESIGN_HYPOTHESIS"
HYPOTHESIS_MODES = ("fixed", "explore")
EXPLORE_FACTOR = 10

MODE = os.environ.get(HYPOTHESIS_ENV) or "fixed"

settings.register_profile("fixed", settings.get_profile("default"))
settings.register_profile(
    "explore",
    settings.get_profile("default"),
    max_examples=EXPLORE_FACTOR * settings.get_profile("default").max_examples,
)
# Loaded while this conftest is imported, before any test module: the tests' @settings
# decorators then derive from it.
settings.load_profile("explore" if MODE == "explore" else "fixed")

_session: dict[str, str | None] = {}
"""The session cache: ``root``, ``temporary`` (the root if it is removed at the end) and
the ``previous`` value of ``CODESIGN_CACHE``."""


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if MODE not in HYPOTHESIS_MODES:
        raise pytest.UsageError(
            f"{HYPOTHESIS_ENV}={MODE!r}: expected one of {', '.join(HYPOTHESIS_MODES)}"
        )
    if MODE == "explore":
        # tryfirst: this runs before hypothesis's own pytest_configure reads the option
        config.option.hypothesis_seed = None
    import torch  # after the checks: a usage error needs no torch

    torch.set_num_threads(1)
    if os.environ.get(WORKER_ENV) and os.environ.get(CACHE_ENV):
        # an xdist worker: the controller made the session's cache and removes it
        _session.update(previous=os.environ[CACHE_ENV], root=os.environ[CACHE_ENV],
                        temporary=None)
        return
    persistent = os.environ.get(TEST_CACHE_ENV)
    root = persistent or tempfile.mkdtemp(prefix="codesign-test-cache-")
    _session.update(previous=os.environ.get(CACHE_ENV), root=root, temporary=None)
    if not persistent:
        _session["temporary"] = root
    os.environ[CACHE_ENV] = root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests for xdist's ``loadgroup`` (by file, or by shared directory); in explore
    mode, multiply the budgets that tests set explicitly with @settings.

    Tests without an explicit budget already get the explore profile's; a budget equal to the
    profile's counts as inherited.
    """
    for item in items:
        path = Path(str(item.path))
        shared = path.parent.name in SHARED_DIRECTORIES
        group = path.parent.name if shared else f"{path.parent.name}/{path.stem}"
        item.add_marker(pytest.mark.xdist_group(group))
    if MODE != "explore":
        return
    inherited = settings.default.max_examples
    scaled: set[int] = set()
    for item in items:
        test = getattr(item, "obj", None)
        if test is None or not is_hypothesis_test(test) or id(test) in scaled:
            continue
        scaled.add(id(test))
        own = test._hypothesis_internal_use_settings
        if own.max_examples != inherited:
            test._hypothesis_internal_use_settings = settings(
                own, max_examples=EXPLORE_FACTOR * own.max_examples
            )


def pytest_unconfigure(config: pytest.Config) -> None:
    if "root" not in _session:
        return
    temporary = _session["temporary"]
    if temporary is not None:
        if (Path(temporary) / "sccache").exists():
            _stop_compiler_cache()
        shutil.rmtree(temporary, ignore_errors=True)
    previous = _session["previous"]
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous
    _session.clear()


def _stop_compiler_cache() -> None:
    """Stop the sccache server of the session's throw-away cache root, remove its socket."""
    from sim.errors import ToolchainError
    from sim.toolchain import ensure_verilator

    try:
        info = ensure_verilator()
    except ToolchainError:
        return
    socket = info.objcache_env().get("SCCACHE_SERVER_UDS")
    info.stop_objcache()
    if socket is not None:
        for path in (Path(socket), Path(socket + ".lock")):
            path.unlink(missing_ok=True)


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of this test's own, empty at the start (the session cache is shared)."""
    root = tmp_path / "codesign-cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root
