"""Exceptions raised by the simulation package.

They carry one readable message each, so a caller (or a CI log) sees what went wrong and what to
do about it instead of a deep traceback from a subprocess or a build system.
"""

from __future__ import annotations

from codesign.errors import CodesignError


class ToolchainError(CodesignError, RuntimeError):
    """Verilator, a C++ compiler, make or perl is missing or unusable."""


class SimulationError(CodesignError, RuntimeError):
    """A build or a simulation process failed, or produced no usable result."""


class MemoryImageError(SimulationError):
    """A simulation could not load the initial image of one of the DUT's memories."""


class SimulationStuck(SimulationError):
    """The liveness watchdog fired: no handshake on either stream for too many cycles.

    The attributes let a caller react programmatically (e.g. to tell a deadlock from a design that
    simply produced fewer outputs than expected).
    """

    def __init__(
        self,
        message: str,
        *,
        in_accepted: int,
        n_in: int,
        out_produced: int,
        n_out: int,
        liveness_cycles: int,
        cycle: int,
        partial_out_beats: list[int] | None = None,
        counters: list[int] | None = None,
    ) -> None:
        super().__init__(message)
        self.counters = list(counters or [])
        """The DUT's ``perf`` counters when the watchdog fired (empty without counters)."""
        self.in_accepted = in_accepted
        self.n_in = n_in
        self.out_produced = out_produced
        self.n_out = n_out
        self.liveness_cycles = liveness_cycles
        self.cycle = cycle
        self.partial_out_beats = list(partial_out_beats or [])
        """The output beats that did arrive before the stall, for debugging."""
