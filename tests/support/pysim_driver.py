"""Drive a stream component in Amaranth's Python simulator (small unit checks, no build)."""

from __future__ import annotations

from amaranth.sim import Simulator


def run_pysim(dut, in_beats: list[int], n_out: int, *, max_cycles: int = 100_000,
              ready_pattern=None) -> tuple[list[int], int, int]:
    """Feed ``in_beats``; collect ``n_out`` output beats. Returns (outputs, perf, cycles)."""
    outputs: list[int] = []
    result = {}

    async def bench(ctx):
        cycle = 0
        index = 0
        ctx.set(dut.o.ready, 1)
        while len(outputs) < n_out:
            ctx.set(dut.i.valid, index < len(in_beats))
            if index < len(in_beats):
                ctx.set(dut.i.payload, in_beats[index])
            if ready_pattern is not None:
                ctx.set(dut.o.ready, ready_pattern(cycle))
            await ctx.delay(0)
            took_in = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            took_out = ctx.get(dut.o.valid) and ctx.get(dut.o.ready)
            if took_out:
                outputs.append(ctx.get(dut.o.payload))
            await ctx.tick()
            if took_in:
                index += 1
            cycle += 1
            if cycle > max_cycles:
                raise RuntimeError(f"stuck: {index} in, {len(outputs)} out")
        for _ in range(3):
            await ctx.tick()
        result["perf"] = ctx.get(dut.perf)
        result["cycles"] = cycle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return outputs, result["perf"], result["cycles"]


def drive(dut, in_beats, n_out, perf_names, *, ready=None, valid=None, max_cycles=50_000):
    """Offer ``in_beats`` (when ``valid(cycle)``), take outputs (when ``ready(cycle)``).

    Runs until every input beat is taken and ``n_out`` outputs came out, then drops valid,
    so no beat is offered twice. Returns (outputs, counters).
    """
    outputs: list[int] = []
    result = {}

    async def bench(ctx):
        cycle = index = 0
        while len(outputs) < n_out or index < len(in_beats):
            offer = index < len(in_beats) and (valid is None or valid(cycle))
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, in_beats[index])
            ctx.set(dut.o.ready, 1 if ready is None else ready(cycle))
            await ctx.delay(0)
            took_in = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                outputs.append(ctx.get(dut.o.payload))
            await ctx.tick()
            index += bool(took_in)
            cycle += 1
            if cycle > max_cycles:
                raise RuntimeError(f"stuck: {index} in, {len(outputs)} out")
        ctx.set(dut.i.valid, 0)
        for _ in range(3):
            await ctx.tick()
        result["perf"] = ctx.get(dut.perf)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    perf = result["perf"]
    return outputs, {name: (perf >> (32 * k)) & 0xFFFFFFFF for k, name in enumerate(perf_names)}


def drive_ports(dut, inputs: dict[str, list[int]], outputs: dict[str, int], perf_names, *,
                valid=None, ready=None, max_cycles=50_000):
    """Like :func:`drive` for a component with several streams: ``inputs`` maps an input
    port name to its beats, ``outputs`` an output port name to the beats to collect.
    ``valid(port, cycle)`` / ``ready(port, cycle)`` throttle them (default: always).
    Returns ({output port: beats}, counters)."""
    got: dict[str, list[int]] = {name: [] for name in outputs}
    result = {}

    async def bench(ctx):
        cycle = 0
        index = dict.fromkeys(inputs, 0)
        while any(len(got[n]) < c for n, c in outputs.items()) or \
                any(index[n] < len(b) for n, b in inputs.items()):
            for name, beats in inputs.items():
                port = getattr(dut, name)
                offer = index[name] < len(beats) and (valid is None or valid(name, cycle))
                ctx.set(port.valid, offer)
                if offer:
                    ctx.set(port.payload, beats[index[name]])
            for name in outputs:
                ctx.set(getattr(dut, name).ready, 1 if ready is None else ready(name, cycle))
            await ctx.delay(0)
            took = {name: ctx.get(getattr(dut, name).valid) and ctx.get(getattr(dut, name).ready)
                    for name in inputs}
            for name in outputs:
                port = getattr(dut, name)
                if ctx.get(port.valid) and ctx.get(port.ready):
                    got[name].append(ctx.get(port.payload))
            await ctx.tick()
            for name in inputs:
                index[name] += bool(took[name])
            cycle += 1
            if cycle > max_cycles:
                raise RuntimeError(f"stuck: {index} in, {[len(v) for v in got.values()]} out")
        for name in inputs:
            ctx.set(getattr(dut, name).valid, 0)
        for _ in range(3):
            await ctx.tick()
        result["perf"] = ctx.get(dut.perf)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    perf = result["perf"]
    return got, {name: (perf >> (32 * k)) & 0xFFFFFFFF for k, name in enumerate(perf_names)}
