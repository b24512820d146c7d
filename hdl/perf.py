"""Hardware performance counters: one enumeration of names, packed into one output port.

Every counter any component can carry is a member of :class:`Counter`; the analytical model,
the energy model and the reports use the same members, so a name cannot drift between the
hardware and the models that predict and price it. A component exposes its counters as one
flat ``perf`` port (32 bits per counter, counter k at bits [32k + 31 : 32k]) so a top can
concatenate them and a testbench can read them all through one handle. Counters are
optional: a component built without them has no ``perf`` port and no counting logic at all
(synthesis sees only the datapath).
"""

from __future__ import annotations

from enum import StrEnum

from amaranth import Cat, Module, Signal, Value

from hdl.errors import HardwareConfigError

COUNTER_BITS = 32


class Counter(StrEnum):
    """Every performance counter, by what it counts."""

    ISSUE = "issue"                    # steps issued (engine fold steps, window beats, ...)
    STALL_IN = "stall_in"              # cycles waiting for input inside the active window
    STALL_OUT = "stall_out"            # cycles frozen by output backpressure
    SPAN = "span"                      # first input accepted .. last output produced
    IN_BEATS = "in_beats"
    OUT_BEATS = "out_beats"
    LANE_OPS = "lane_ops"              # PE * SIMD lane operations per issue
    ACC_ADDS = "acc_adds"              # PE accumulator additions per issue
    WEIGHT_READS = "weight_reads"      # weight-memory words read
    IBUF_WRITES = "ibuf_writes"        # input-buffer words written
    IBUF_READS = "ibuf_reads"          # input-buffer words read
    PARAM_READS = "param_reads"        # neuron folds whose epilogue parameters are read
    ZERO_WEIGHT_LANES = "zero_weight_lanes"  # lanes whose weight is zero (gated)
    ZERO_ACT_LANES = "zero_act_lanes"  # lanes with a non-zero weight and a zero activation
    SKIPPED_WEIGHTS = "skipped_weights"  # zero weights a sparse engine never issues
    BUFFER_READS = "buffer_reads"      # line-buffer words read
    BUFFER_WRITES = "buffer_writes"    # line-buffer words written
    PAD_BEATS = "pad_beats"            # window output beats that were padding
    IN_BLOCKED = "in_blocked"          # cycles an input beat was offered but refused
    COMPARES = "compares"              # element-wise max operations that reach an output
    ELEM_ADDS = "elem_adds"            # element-wise additions (joins, sum pools)


TRAFFIC_COUNTERS = frozenset({Counter.STALL_IN, Counter.STALL_OUT, Counter.SPAN,
                              Counter.IN_BLOCKED})
"""Counters that depend on the traffic around a component, not on the component alone."""

DATA_COUNTERS = frozenset({Counter.ZERO_ACT_LANES})
"""Counters that depend on the activations, predicted only when those are given."""


class PerfCounters:
    """A named set of free-running, wrapping counters (or none at all when disabled)."""

    def __init__(self, names: tuple[Counter, ...], enabled: bool = True,
                 prefix: str = "perf") -> None:
        if len(set(names)) != len(names):
            raise HardwareConfigError(f"duplicate counter names in {names}")
        self.names = names
        self.enabled = enabled
        self.signals = ({name: Signal(COUNTER_BITS, name=f"{prefix}_{name}") for name in names}
                        if enabled else {})

    def __getitem__(self, name: Counter) -> Signal:
        return self.signals[name]

    def count(self, m: Module, name: Counter, when: Value, amount: int | Value = 1) -> None:
        """Add ``amount`` to counter ``name`` in every cycle where ``when`` holds."""
        if not self.enabled:
            return
        counter = self.signals[name]
        with m.If(when):
            m.d.sync += counter.eq(counter + amount)

    def drive(self, m: Module, port: Value | None) -> None:
        """Drive the packed ``perf`` output port (nothing when disabled)."""
        if self.enabled:
            assert port is not None
            m.d.comb += port.eq(Cat(*(self.signals[name] for name in self.names)))

    @property
    def width(self) -> int:
        return COUNTER_BITS * len(self.names) if self.enabled else 0


def perf_port(names: tuple[Counter, ...], enabled: bool) -> dict:
    """The ``perf`` member of a component signature (empty when counters are off)."""
    from amaranth.lib.wiring import Out

    return {"perf": Out(COUNTER_BITS * len(names))} if enabled else {}


def count_issue_span(m: Module, perf: PerfCounters, *, issue: Value, out_fire: Value,
                     stalled: Value) -> None:
    """``issue``, ``stall_in``, ``stall_out`` and ``span`` of a unit that issues one step
    per accepted input beat.

    ``span`` runs from the first issue to the last output handshake, inclusive; in it every
    cycle is an issue, a cycle ``stalled`` by the output, or a wait for input (committed at
    the next issue, so idling after the last beat is not counted): span = issue +
    stall_in + stall_out + the unit's fill.
    """
    if not perf.enabled:
        return
    started = Signal()
    elapsed = Signal(COUNTER_BITS)
    wait_run = Signal(COUNTER_BITS)
    with m.If(issue & ~started):
        m.d.sync += [started.eq(1), elapsed.eq(1)]
    with m.Elif(started):
        m.d.sync += elapsed.eq(elapsed + 1)
    with m.If(out_fire):
        m.d.sync += perf[Counter.SPAN].eq(elapsed + 1)
    with m.If(issue):
        m.d.sync += [perf[Counter.STALL_IN].eq(perf[Counter.STALL_IN] + wait_run),
                     wait_run.eq(0)]
    with m.Elif(started & ~stalled):
        m.d.sync += wait_run.eq(wait_run + 1)
    perf.count(m, Counter.ISSUE, issue)
    perf.count(m, Counter.STALL_OUT, started & stalled & ~issue)
