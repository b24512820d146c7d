"""Small Amaranth stream designs that exercise the testbench, with Python reference models.

They follow the DUT contract (``i``/``o`` streams, optional ``perf`` counters) so the tests and
the speed benchmark can run the real flow without the network generator. Each ``*_verilog``
helper returns ``(verilog_text, top_name)``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

MASK32 = 0xFFFFFFFF


class StreamIncrementer(wiring.Component):
    """Registered ``out = (in + 1) mod 2**width`` with full backpressure.

    Counters: 0 = input beats accepted, 1 = output beats sent, 2 = cycles an output beat waited
    for ready (stall cycles).
    """

    N_COUNTERS = 3

    def __init__(self, width: int) -> None:
        self.width = width
        super().__init__(
            {
                "i": In(stream.Signature(width)),
                "o": Out(stream.Signature(width)),
                "perf": Out(32 * self.N_COUNTERS),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        accepted = Signal(32)
        sent = Signal(32)
        stalls = Signal(32)
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [self.o.valid.eq(0), sent.eq(sent + 1)]
        with m.If(self.o.valid & ~self.o.ready):
            m.d.sync += stalls.eq(stalls + 1)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.eq(self.i.payload + 1),
                accepted.eq(accepted + 1),
            ]
        m.d.comb += self.perf.eq(Cat(accepted, sent, stalls))
        return m


class NeverValid(wiring.Component):
    """Accepts every input beat but never produces an output: a liveness failure.

    It has no ``perf`` port (``n_counters=0``), which also exercises that side of the contract.
    """

    N_COUNTERS = 0

    def __init__(self, in_width: int, out_width: int) -> None:
        super().__init__(
            {
                "i": In(stream.Signature(in_width)),
                "o": Out(stream.Signature(out_width)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        last = Signal(len(self.i.payload))  # keeps the input port from being optimised away
        m.d.comb += [self.i.ready.eq(1), self.o.valid.eq(0), self.o.payload.eq(last)]
        with m.If(self.i.valid):
            m.d.sync += last.eq(self.i.payload)
        return m


class XnorPopcountAccumulator(wiring.Component):
    """Binary-neuron layer slice: per input beat, ``neurons`` XNOR-popcounts of ``lanes`` bits.

    Each beat carries ``lanes`` binary activations; neuron ``n`` has a fixed ``lanes``-bit weight
    word. Stage 1 registers ``popcount(~(x ^ w_n))`` for every neuron, stage 2 accumulates them;
    after ``group`` beats the accumulators are emitted as one output beat (neuron ``n`` at bits
    ``[acc_width*n + acc_width-1 : acc_width*n]``) and cleared. The whole pipeline stalls under
    output backpressure.

    Counters: 0 = input beats accepted, 1 = output beats sent, 2 = stall cycles.
    """

    N_COUNTERS = 3

    def __init__(
        self,
        lanes: int = 64,
        neurons: int = 16,
        group: int = 4,
        acc_width: int = 16,
        weight_seed: int = 2024,
    ) -> None:
        if group < 1 or lanes < 1 or neurons < 1:
            raise ValueError("lanes, neurons and group must be positive")
        if (1 << acc_width) <= lanes * group:
            raise ValueError(f"acc_width={acc_width} cannot hold {lanes * group}")
        self.lanes = lanes
        self.neurons = neurons
        self.group = group
        self.acc_width = acc_width
        rng = random.Random(weight_seed)
        self.weights = [rng.getrandbits(lanes) for _ in range(neurons)]
        super().__init__(
            {
                "i": In(stream.Signature(lanes)),
                "o": Out(stream.Signature(neurons * acc_width)),
                "perf": Out(32 * self.N_COUNTERS),
            }
        )

    @property
    def out_width(self) -> int:
        return self.neurons * self.acc_width

    def elaborate(self, platform: object) -> Module:
        m = Module()
        pop_width = self.lanes.bit_length()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        s1_valid = Signal()
        s1_pop = [Signal(pop_width, name=f"s1_pop{n}") for n in range(self.neurons)]
        acc = [Signal(self.acc_width, name=f"acc{n}") for n in range(self.neurons)]
        count = Signal(range(self.group))
        accepted = Signal(32)
        sent = Signal(32)
        stalls = Signal(32)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += sent.eq(sent + 1)
        with m.If(self.o.valid & ~self.o.ready):
            m.d.sync += stalls.eq(stalls + 1)

        with m.If(advance):
            m.d.sync += s1_valid.eq(self.i.valid)
            with m.If(self.i.valid):
                m.d.sync += accepted.eq(accepted + 1)
            for n in range(self.neurons):
                agree = Signal(self.lanes, name=f"agree{n}")
                m.d.comb += agree.eq(~(self.i.payload ^ Const(self.weights[n], self.lanes)))
                m.d.sync += s1_pop[n].eq(_popcount(agree, self.lanes))
            m.d.sync += self.o.valid.eq(0)
            with m.If(s1_valid):
                sums = [acc[n] + s1_pop[n] for n in range(self.neurons)]
                with m.If(count == self.group - 1):
                    m.d.sync += [
                        self.o.valid.eq(1),
                        self.o.payload.eq(Cat(*[s[: self.acc_width] for s in sums])),
                        count.eq(0),
                    ]
                    m.d.sync += [a.eq(0) for a in acc]
                with m.Else():
                    m.d.sync += count.eq(count + 1)
                    m.d.sync += [a.eq(s) for a, s in zip(acc, sums, strict=True)]
        m.d.comb += self.perf.eq(Cat(accepted, sent, stalls))
        return m

    def reference(self, beats: Sequence[int]) -> list[int]:
        """Expected output beats for ``beats`` (only complete groups produce output)."""
        mask = (1 << self.lanes) - 1
        out = []
        for start in range(0, len(beats) - self.group + 1, self.group):
            word = 0
            for n, weight in enumerate(self.weights):
                total = sum(
                    bin(~(beat ^ weight) & mask).count("1")
                    for beat in beats[start : start + self.group]
                )
                word |= (total & ((1 << self.acc_width) - 1)) << (self.acc_width * n)
            out.append(word)
        return out


def _popcount(value: Value, width: int) -> Value:
    """Adder-tree popcount (a linear chain of one-bit adds makes far larger Verilog)."""
    terms: list[Value] = [value[b] for b in range(width)]
    while len(terms) > 1:
        paired = [a + b for a, b in zip(terms[0::2], terms[1::2], strict=False)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]


def to_verilog(component: wiring.Component, top: str) -> tuple[str, str]:
    """Convert an Amaranth component to Verilog with module name ``top``."""
    return amaranth_verilog.convert(component, name=top), top


def incrementer_verilog(width: int, top: str = "stream_inc") -> tuple[str, str]:
    return to_verilog(StreamIncrementer(width), top)


def never_valid_verilog(
    in_width: int = 8, out_width: int = 8, top: str = "never_valid"
) -> tuple[str, str]:
    return to_verilog(NeverValid(in_width, out_width), top)
