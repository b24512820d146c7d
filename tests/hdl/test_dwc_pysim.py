"""Stream width converter: element order kept for every ratio, one beat per cycle."""

import random

from amaranth import ClockDomain, Module
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from hdl.dwc import StreamWidthConverter


def run(dut, beats_in, n_out, ready_rate, seed):
    got = []
    rng = random.Random(seed)

    async def bench(ctx):
        index = cycles = 0
        while len(got) < n_out:
            ctx.set(dut.i.valid, index < len(beats_in))
            if index < len(beats_in):
                ctx.set(dut.i.payload, beats_in[index])
            ctx.set(dut.o.ready, rng.random() < ready_rate)
            await ctx.delay(0)
            took_in = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()
            index += bool(took_in)
            cycles += 1
            assert cycles < 10_000
        return cycles

    top = Module()
    top.domains.sync = ClockDomain()  # a same-width converter is purely combinational
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    result = {}

    async def wrapped(ctx):
        result["cycles"] = await bench(ctx)

    sim.add_testbench(wrapped)
    sim.run()
    return got, result["cycles"]


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6), st.integers(1, 4),
       st.integers(0, 1000), st.sampled_from([1.0, 0.5]))
def test_regroups_in_order(bits, a, b, groups, seed, ready_rate):
    import math

    total = groups * a * b // math.gcd(a, b)
    rng = random.Random(seed)
    elems = [rng.randrange(1 << bits) for _ in range(total)]

    def beats(per):
        return [sum(e << (j * bits) for j, e in enumerate(elems[k:k + per]))
                for k in range(0, total, per)]

    got, cycles = run(StreamWidthConverter(bits, a, b), beats(a), total // b, ready_rate, seed)
    assert got == beats(b)
    if ready_rate == 1.0:
        # moves gcd(a, b) elements per cycle (+ a fixed latency of at most 3 cycles)
        assert cycles <= total // math.gcd(a, b) + 3
