"""Networks with forks and joins on Verilator: random residual, fire and pooling blocks at
random foldings, bit-exact, every stage's cycles its formula plus its fill, the design's
steady state its bottleneck's; an undersized skip path is a named failure, not a hang; a
fault in a branch is localised to its stage.

Each example is a Verilator build (cached by content hash), so few run, and a failure is
reported as found rather than shrunk.
"""

import numpy as np
import pytest
import torch
from blocknets import BlockNetSpec, BlockSpec, block_inputs, block_net_specs, random_block_net
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import codesign.arch.dataflow.fifo_sizing as fifo_sizing
from codesign.analytical import compare_counters
from codesign.arch.stages import DenseEngine
from codesign.energy import EnergyTable
from codesign.evaluate import evaluate
from codesign.flow import compile_model
from codesign.generate import generate_verilog
from codesign.reference import execute, execute_all
from codesign.simulate import simulate
from sim.errors import SimulationStuck

NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def steady_cycles_per_frame(design, x, artefact, first: int, last: int) -> float:
    """Cycles per frame between runs of ``first`` and ``last`` frames: the fill of the
    first frames cancels."""
    short = simulate(design, x[:first], artefact=artefact).total_cycles
    long = simulate(design, x[:last], artefact=artefact).total_cycles
    return (long - short) / (last - first)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=NO_SHRINK)
@given(block_net_specs(), st.sampled_from([None, 32, 96, 400]), st.integers(0, 10**6))
def test_random_blocks_rtl_exact_at_the_bottleneck_rate(spec, target, seed):
    model = random_block_net(spec, seed)
    design = compile_model(model, target_cycles=target)
    frames = 8
    x = block_inputs(spec, frames, seed)
    artefact = generate_verilog(design)
    result = simulate(design, x, artefact=artefact)
    assert np.array_equal(result.outputs, execute(design.graph, x).reshape(frames, -1))
    values = execute_all(design.graph, x)
    for stage in design.stages:
        predicted = stage.predict_counters(frames, values[stage.input_tensor])
        measured = result.stage_counters[stage.name]
        assert compare_counters(predicted, measured, in_network=True) == {}, stage.name
        assert result.measured_cycles(stage.name) == predicted["issue"] + stage.fill_cycles
    assert steady_cycles_per_frame(design, x, artefact, 4, 8) == design.cycles_per_frame


RESIDUAL = BlockNetSpec("uint3", (1, 5, 5), 2, False, 3, 3, (BlockSpec("residual"),), True)


def test_an_undersized_skip_path_is_a_named_failure(monkeypatch):
    model = random_block_net(RESIDUAL, 4)
    monkeypatch.setattr(fifo_sizing, "join_fifo_depths",
                        lambda *args: dict.fromkeys(args[-1], 2))
    design = compile_model(model, target_cycles=200)
    with pytest.raises(SimulationStuck, match=r"fork 'act0_out_fork' passed \d+ of 125 beats: "
                                              r"its consumers can never drain, as join 'add0' "
                                              r"waits for one path while the FIFO on the other "
                                              r"is full \(FIFO depths into it: \[4, 4\]"):
        simulate(design, block_inputs(RESIDUAL, 5, 4))


WIDE_FORK = BlockNetSpec("uint3", (1, 6, 6), 16, True, 1, 1, (BlockSpec("residual"),), True)
"""A binary residual block whose fork carries 16-channel beats (one per 9 cycles from the
stem) while the add takes one channel per beat: the converter on the shortcut paces the
fork to one beat per 16 cycles, and so the branch."""


def test_a_shortcut_split_by_a_converter_paces_the_fork():
    """A converter splitting the fork's beats for the shortcut takes one beat per split
    cycles, so the fork passes beats to the branch no faster: the shortcut's FIFO must hold
    what arrives while the slowed branch fills its line buffers (sized without that pace it
    was 241 beats deep, not 346)."""
    model = random_block_net(WIDE_FORK, 3)
    design = compile_model(model, target_cycles=600, folding={"conv0": (16, 1)})
    fork = next(stage for stage in design.stages if stage.kind == "fork")
    add = next(stage for stage in design.stages if stage.kind == "add")
    assert (fork.out_elems, add.simd) == (16, 1)
    assert design.organisation.wiring(design).edges[6].depth == 346
    frames = 8
    x = block_inputs(WIDE_FORK, frames, 3)
    artefact = generate_verilog(design)
    result = simulate(design, x, artefact=artefact)
    assert np.array_equal(result.outputs, execute(design.graph, x).reshape(frames, -1))
    assert steady_cycles_per_frame(design, x, artefact, 4, 8) == design.cycles_per_frame


def test_the_fork_model_follows_a_cycle_by_cycle_fork():
    """ForkStage.throttled against a cycle-stepped fork feeding converters that take a beat
    every spacing[p] cycles."""
    from codesign.arch.stage import StageSchedule
    from codesign.arch.stages import ForkStage

    rng = np.random.default_rng(0)
    for _ in range(50):
        spacing = [int(v) for v in rng.integers(1, 6, rng.integers(2, 4))]
        offers = np.cumsum(rng.integers(0, 4, 40))
        model = ForkStage.throttled(None, StageSchedule((offers,), offers), spacing)
        takes = [[] for _ in spacing]
        free = [0] * len(spacing)          # first cycle each converter can take a beat
        beat, cycle = 0, 0
        while beat < offers.size:
            if cycle >= offers[beat]:
                for p, step in enumerate(spacing):
                    if len(takes[p]) == beat and cycle >= free[p]:
                        takes[p].append(cycle)
                        free[p] = cycle + step
                if all(len(t) == beat + 1 for t in takes):
                    beat += 1
            cycle += 1
        for p in range(len(spacing)):
            assert model.output(p).tolist() == takes[p]
        assert model.outputs.tolist() == np.max(takes, axis=0).tolist()


def test_a_fault_in_a_branch_is_localised(monkeypatch):
    true_config = DenseEngine.make_hdl_config

    def faulty(stage):
        config = true_config(stage)
        if stage.name == "conv2":
            config.weight_codes = config.weight_codes.copy() ^ 1
        return config

    monkeypatch.setattr(DenseEngine, "make_hdl_config", faulty)
    model = random_block_net(RESIDUAL, 4)
    design = compile_model(model, target_cycles=200)
    x = block_inputs(RESIDUAL, 6, 4)
    evaluation = evaluate(design, x, execute_all(design.graph, x), EnergyTable.load())
    assert not evaluation.bit_exact
    assert evaluation.verification.first.stage == "conv2"
