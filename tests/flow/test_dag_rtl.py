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
