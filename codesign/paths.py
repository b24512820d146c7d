"""Where codesign keeps cached artefacts, and how it writes files without ever leaving a torn one.

Everything expensive (trained weights, Verilator builds) is cached under one root so a second
run is fast and a user can wipe it with one ``rm -rf``. Results are written atomically
(write to a temporary file in the same directory, then ``os.replace``) so an interrupted run
never leaves a half-written file that a later run would trust.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "CODESIGN_CACHE"


def cache_root() -> Path:
    """The cache directory: ``$CODESIGN_CACHE`` if set, else ``~/.cache/codesign``."""
    root = os.environ.get(CACHE_ENV)
    path = Path(root) if root else Path.home() / ".cache" / "codesign"
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see either the old file or the whole new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise whoever reads results
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Text variant of :func:`atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def content_key(*parts: tuple[str, str]) -> str:
    """sha256 over labelled text parts (label, value), each length-prefixed so no two part
    lists hash alike: the key of a cache entry, from everything that can change it."""
    digest = hashlib.sha256()
    for label, value in parts:
        data = value.encode("utf-8")
        digest.update(f"{label}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing): one builder per cache key."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` (a run directory) and prove it is writable, before any long work.

    Raises :class:`codesign.errors.OptionError` naming the directory and the reason, so a bad
    ``--out`` fails in a second instead of after the whole simulation.
    """
    from codesign.errors import OptionError

    target = Path(path)
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OptionError(f"output directory {str(target)!r} cannot be written "
                          f"({exc.strerror or exc}); give a writable directory") from None
    return target
