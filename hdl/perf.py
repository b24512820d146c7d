"""Hardware performance counters, packed into one output port.

Every engine exposes its counters as one flat ``perf`` port (32 bits per counter, counter k
at bits [32k + 31 : 32k]) so a top can concatenate them and a testbench can read them all
through one handle, without knowing the engine's internals.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, Value

COUNTER_BITS = 32


class PerfCounters:
    """A named set of free-running, wrapping counters."""

    def __init__(self, names: tuple[str, ...], prefix: str = "perf") -> None:
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate counter names in {names}")
        self.names = names
        self.signals = {name: Signal(COUNTER_BITS, name=f"{prefix}_{name}") for name in names}

    def __getitem__(self, name: str) -> Signal:
        return self.signals[name]

    def count(self, m: Module, name: str, when: Value, amount: int | Value = 1) -> None:
        """Add ``amount`` to counter ``name`` in every cycle where ``when`` holds."""
        counter = self.signals[name]
        with m.If(when):
            m.d.sync += counter.eq(counter + amount)

    def drive(self, m: Module, port: Value) -> None:
        """Drive the packed ``perf`` output port."""
        m.d.comb += port.eq(Cat(*(self.signals[name] for name in self.names)))

    @property
    def width(self) -> int:
        return COUNTER_BITS * len(self.names)
