"""Shared fixtures: every test gets its own weight cache so the user's cache is never touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesign.paths import CACHE_ENV


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "codesign-cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root
