"""Automatic FIFO sizing (``fifo_depth="auto"``): every FIFO sized from the stages' beat
schedules, the design still at its bottleneck rate in RTL (random chains of windows, pools
and engines, and random networks with forks and joins), each depth the smallest that keeps
the sizing model's schedule free of refused writes (checked by a plain cycle loop).

Each RTL example is a Verilator build, so one of each kind runs (ten times as many with
``CODESIGN_HYPOTHESIS=explore``)."""

import math

import numpy as np
import pytest
import torch
from blocknets import block_inputs, block_net_specs, random_block_net
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from codesign.arch import build_design
from codesign.arch.dataflow.fifo_sizing import (
    AUTO_MODEL_FRAMES,
    auto_fifo_depths,
    model_traffic,
)
from codesign.arch.dataflow.wiring import streams
from codesign.errors import FoldingError, OptionError
from codesign.flow import compile_model
from codesign.generate import generate_verilog
from codesign.ir import MatVec, SlidingWindow
from codesign.reference import execute
from codesign.simulate import simulate
from netgen import random_cnn, random_inputs

NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def cnn_designs(draw):
    """A small CNN (windows, engines, a max-pool) at a random folding, FIFOs sized
    automatically."""
    graph = random_cnn(draw(st.integers(0, 10**6), label="seed"))
    producers = {node.output: node for node in graph.ordered_nodes()}
    folding = {}
    for node in graph.ordered_nodes():
        if isinstance(node, MatVec):
            mh, mw = node.weight.shape
            before = producers.get(node.inputs[0])
            if isinstance(before, SlidingWindow):     # SIMD within a pixel's channels
                mw = math.gcd(mw, graph.tensor(before.inputs[0]).shape[-1])
            folding[node.name] = (draw(st.sampled_from(divisors(mh)), label=f"{node.name} PE"),
                                  draw(st.sampled_from(divisors(mw)), label=f"{node.name} SIMD"))
    try:
        return build_design(graph, folding=folding, fifo_depth="auto")
    except FoldingError:
        assume(False)       # a SIMD the sliding window's channels do not allow


def steady_cycles_per_frame(design, x, first: int, last: int) -> float:
    """Cycles per frame between runs of ``first`` and ``last`` frames (fill cancels), every
    output checked against the reference."""
    artefact = generate_verilog(design)
    totals = []
    for frames in (first, last):
        result = simulate(design, x[:frames], artefact=artefact)
        expected = execute(design.graph, x[:frames]).reshape(frames, -1)
        assert np.array_equal(result.outputs.reshape(frames, -1), expected)
        totals.append(result.total_cycles)
    return (totals[1] - totals[0]) / (last - first)


def refused_writes(writes: np.ndarray, reads: np.ndarray, depth: int) -> int:
    """Writes a FIFO of ``depth`` beats would refuse in a schedule, cycle by cycle: a
    buffered FIFO takes a write while fewer than depth - 1 beats sit behind its output
    register, and a beat in the FIFO may be the one just read (hence depth - 2 waiting)."""
    refused = 0
    read = 0
    for written, cycle in enumerate(writes.tolist()):
        while read < reads.size and reads[read] < cycle:
            read += 1
        refused += written - read > depth - 2
    return refused


@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=NO_SHRINK)
@given(cnn_designs())
def test_auto_sized_chains_reach_the_bottleneck_rate_in_rtl(design):
    x = random_inputs(design.graph, 8, 0).reshape(8, -1)
    assert steady_cycles_per_frame(design, x, 4, 8) == design.cycles_per_frame


@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=NO_SHRINK)
@given(block_net_specs(), st.sampled_from([None, 32, 96]), st.integers(0, 10**6))
def test_auto_sized_forks_and_joins_reach_the_bottleneck_rate_in_rtl(spec, target, seed):
    design = compile_model(random_block_net(spec, seed), target_cycles=target,
                           fifo_depth="auto")
    x = block_inputs(spec, 8, seed)
    assert steady_cycles_per_frame(design, x, 4, 8) == design.cycles_per_frame


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cnn_designs())
def test_each_auto_depth_is_the_smallest_the_model_schedule_runs_with(design):
    found, source = streams(design.graph, design.stages)
    traffic = model_traffic(design.stages, found, source, design.graph.input_info.size,
                            AUTO_MODEL_FRAMES, paced=True)
    depths = auto_fifo_depths(design.stages, found, source, design.graph.input_info.size)
    assert [edge.depth for edge in design.organisation.wiring(design).edges] == depths
    for k, depth in enumerate(depths):
        writes, reads = traffic.writes[k], traffic.reads[k]
        assert depth >= 2
        assert refused_writes(writes, reads, depth) == 0
        if depth > 2:
            assert refused_writes(writes, reads, depth - 1) > 0


def test_summary_fifos_report_the_auto_depths():
    design = build_design(random_cnn(3), folding={}, fifo_depth="auto")
    found, source = streams(design.graph, design.stages)
    depths = auto_fifo_depths(design.stages, found, source, design.graph.input_info.size)
    buffers = design.organisation.buffers(design)
    assert [b["depth"] for b in buffers] == depths
    assert all(b["bits"] == b["depth"] * b["width"] for b in buffers)


def test_a_fifo_depth_that_is_neither_a_number_nor_auto_is_refused():
    with pytest.raises(OptionError, match=r"^fifo_depth='deep': a FIFO between stages needs "
                                          r"at least 2 beats \(a whole number >= 2, default 4, "
                                          r"or 'auto'"):
        build_design(random_cnn(0), folding={}, fifo_depth="deep")
