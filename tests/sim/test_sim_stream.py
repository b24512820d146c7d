"""End-to-end streaming simulations: bit-exact outputs, counters, cycles, stalls, liveness."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import SimulationError, SimulationStuck, StreamTestbench, run_stream
from sim.examples import incrementer_verilog

WIDE = 200  # matches the conftest fixtures
MASK = (1 << WIDE) - 1


def expected(beats: list[int]) -> list[int]:
    return [(b + 1) & MASK for b in beats]


def random_beats(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    edge = [0, 1, MASK, MASK - 1, 1 << (WIDE - 1), (1 << 64) - 1, 1 << 64]
    return edge + [rng.getrandbits(WIDE) for _ in range(n - len(edge))]


def test_full_rate_bit_exact_with_counters(inc_bench: StreamTestbench) -> None:
    beats = random_beats(3000, seed=11)
    run = inc_bench.run(beats, len(beats))
    assert run.out_beats == expected(beats)
    accepted, sent, stalls = run.counters
    assert (accepted, sent, stalls) == (len(beats), len(beats), 0)
    # One beat per cycle from cycle 0; the registered output trails by one cycle.
    assert run.first_in_cycle == 0
    assert run.last_out_cycle == len(beats)
    assert run.total_cycles == run.last_out_cycle + 1
    assert run.in_beats_accepted == len(beats)
    assert run.backend == "cocotb"
    assert run.process_seconds > 0 and run.sim_cycles_per_second > 0
    assert run.wall_seconds >= run.process_seconds


@pytest.mark.parametrize(
    ("in_prob", "out_prob", "seed"),
    [(64, 256, 1), (256, 48, 2), (37, 91, 3), (200, 200, 0)],
)
def test_gaps_and_backpressure_bit_exact(
    inc_bench: StreamTestbench, in_prob: int, out_prob: int, seed: int
) -> None:
    beats = random_beats(1500, seed=seed + 100)
    run = inc_bench.run(
        beats, len(beats), in_valid_prob=in_prob, out_ready_prob=out_prob, seed=seed
    )
    assert run.out_beats == expected(beats)
    accepted, sent, stalls = run.counters
    assert accepted == sent == len(beats)
    assert run.total_cycles > len(beats) + 1
    if out_prob < 256:
        assert stalls > 0
    # Cycles where an output waited plus cycles it moved cannot exceed the run.
    assert stalls + sent <= run.total_cycles


def test_seed_reproducible_and_varies(inc_bench: StreamTestbench) -> None:
    beats = random_beats(400, seed=5)
    a = inc_bench.run(beats, len(beats), in_valid_prob=100, out_ready_prob=100, seed=42)
    b = inc_bench.run(beats, len(beats), in_valid_prob=100, out_ready_prob=100, seed=42)
    c = inc_bench.run(beats, len(beats), in_valid_prob=100, out_ready_prob=100, seed=43)
    assert (a.total_cycles, a.counters) == (b.total_cycles, b.counters)
    assert a.out_beats == b.out_beats == c.out_beats == expected(beats)
    assert a.total_cycles != c.total_cycles or a.counters != c.counters


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    beats=st.lists(st.integers(min_value=0, max_value=MASK), min_size=1, max_size=60),
    in_prob=st.integers(min_value=1, max_value=256),
    out_prob=st.integers(min_value=1, max_value=256),
)
def test_hypothesis_payloads(
    inc_bench: StreamTestbench, beats: list[int], in_prob: int, out_prob: int
) -> None:
    run = inc_bench.run(beats, len(beats), in_valid_prob=in_prob, out_ready_prob=out_prob)
    assert run.out_beats == expected(beats)
    assert run.counters[0] == len(beats)


def test_fewer_outputs_than_inputs_stops_early(inc_bench: StreamTestbench) -> None:
    beats = random_beats(100, seed=8)
    run = inc_bench.run(beats, 40)
    assert run.out_beats == expected(beats)[:40]
    # The registered incrementer has taken one more beat than it has emitted.
    assert run.in_beats_accepted == 41
    assert run.counters[1] == 40


def test_backends_agree(inc_bench: StreamTestbench, inc_bench_cpp: StreamTestbench) -> None:
    beats = random_beats(700, seed=21)
    kwargs = {"in_valid_prob": 150, "out_ready_prob": 120, "seed": 9}
    a = inc_bench.run(beats, len(beats), **kwargs)
    b = inc_bench_cpp.run(beats, len(beats), **kwargs)
    assert b.backend == "cpp"
    assert a.out_beats == b.out_beats == expected(beats)
    assert (a.counters, a.total_cycles, a.first_in_cycle, a.last_out_cycle) == (
        b.counters,
        b.total_cycles,
        b.first_in_cycle,
        b.last_out_cycle,
    )


def test_run_stream_reuses_cached_build(inc_bench: StreamTestbench) -> None:
    verilog, top = incrementer_verilog(WIDE)
    run = run_stream(
        verilog,
        top,
        in_width=WIDE,
        out_width=WIDE,
        n_counters=3,
        in_beats=[MASK, 5],
        n_out_beats=2,
    )
    assert run.out_beats == [0, 6]
    assert run.build_seconds < 2.0  # a cache hit: hashing only


def test_liveness_never_valid(stuck_bench: StreamTestbench) -> None:
    with pytest.raises(SimulationStuck) as info:
        stuck_bench.run([1, 2, 3, 4, 5], 3, liveness_cycles=200)
    err = info.value
    message = str(err)
    assert "accepted 5 of 5 input beats" in message
    assert "produced 0 of 3 expected output beats" in message
    assert "200 cycles" in message
    assert (err.in_accepted, err.out_produced, err.liveness_cycles) == (5, 0, 200)
    # Five beats taken in cycles 0..4, then 200 idle cycles.
    assert err.cycle == 5 + 200
    assert isinstance(err, SimulationError)


def test_liveness_with_partial_output(inc_bench: StreamTestbench) -> None:
    beats = random_beats(10, seed=3)
    with pytest.raises(SimulationStuck) as info:
        inc_bench.run(beats, 12, liveness_cycles=50)
    err = info.value
    assert "accepted 10 of 10 input beats" in str(err)
    assert "produced 10 of 12" in str(err)
    assert err.partial_out_beats == expected(beats)


def test_no_inputs_is_stuck(stuck_bench: StreamTestbench) -> None:
    with pytest.raises(SimulationStuck, match="accepted 0 of 0 input beats"):
        stuck_bench.run([], 1, liveness_cycles=30)


def test_timeout_seconds_is_enforced(stuck_bench: StreamTestbench) -> None:
    with pytest.raises(SimulationError, match="timeout_seconds"):
        stuck_bench.run([1], 1, liveness_cycles=2**32 - 2, timeout_seconds=1.0)


def test_keep_dir_keeps_job_files(inc_bench: StreamTestbench, tmp_path) -> None:
    keep = tmp_path / "job"
    inc_bench.run([1, 2], 2, keep_dir=keep)
    assert {"in.bin", "out.bin", "job.json", "result.json", "sim.log"} <= {
        p.name for p in keep.iterdir()
    }
