"""Fork, add, concatenation, sum pool and global sum pool units in Amaranth's simulator.

Each unit is built from the configuration its stage generates (``hdl_config``) for random
shapes, element types, multipliers and epilogues; its outputs must equal the IR node's
reference semantics, every counter at full rate the stage's prediction, and under random
input gaps and output backpressure every cycle of the span must be accounted for
(span = issue + stall_in + stall_out + fill).
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pysim_driver import drive, drive_ports

from codesign import ir
from codesign.arch.dataflow.folding import divisors
from codesign.arch.stages import AddStage, ConcatStage, ForkStage, GlobalPoolStage, PoolStage
from codesign.streams import pack_beats, unpack_beats

TYPES = ["bipolar", "uint1", "uint3", "int2", "int4", "ternary"]


def values(rng, dtype: ir.IntType, shape) -> np.ndarray:
    if dtype.kind == "bipolar":
        return rng.choice([-1, 1], shape)
    return rng.integers(dtype.min, dtype.max + 1, shape)


def random_post(rng, lo: int, hi: int, channels: int, kind: str):
    """Thresholds to uint2 or bipolar, a requantization to int3, or nothing; and the type."""
    if kind == "threshold":
        th = np.sort(rng.integers(lo, hi + 2, (channels, 3)), axis=1)
        return (ir.MultiThreshold("th", ["acc"], ["y"], thresholds=th, out_type=ir.IntType.uint(2),
                                  out_scale=1, out_bias=0), ir.IntType.uint(2))
    if kind == "sign":
        th = rng.integers(lo, hi + 2, (channels, 1))
        return ir.MultiThreshold("th", ["acc"], ["y"], thresholds=th), ir.IntType.bipolar()
    if kind == "requant":
        return (ir.Requantize("rq", ["acc"], ["y"], multiplier=rng.integers(1, 50, channels),
                              shift=int(rng.integers(0, 6)), out_type=ir.IntType.int_(3)),
                ir.IntType.int_(3))
    return None, ir.IntType.for_range(lo, hi)


def accounted(counters, fill: int) -> bool:
    return counters["span"] == (counters["issue"] + counters["stall_in"] + counters["stall_out"]
                                + fill)


def throttles(seed: int):
    rng = np.random.default_rng(seed)
    gaps, stops = rng.random(4096) < 0.3, rng.random(4096) < 0.35
    return (lambda port, cycle: not gaps[(cycle * 7 + len(port)) % 4096],
            lambda port, cycle: not stops[(cycle * 13 + len(port)) % 4096])


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 3), st.integers(1, 6), st.sampled_from(TYPES), st.sampled_from(TYPES),
       st.sampled_from([(1, 1), (3, 1), (-2, 5), (1, -1)]), st.integers(-4, 4),
       st.sampled_from(["threshold", "sign", "requant", None]), st.booleans(),
       st.integers(0, 10**6))
def test_add_unit_exact_with_predicted_counters(pixels, channels, ta, tb, weights, bias, post,
                                                stalls, seed):
    rng = np.random.default_rng(seed)
    a_t, b_t = ir.IntType.parse(ta), ir.IntType.parse(tb)
    simd = int(rng.choice(divisors(channels)))
    node = ir.Add("add", ["a", "b"], ["y"], weights=weights, bias=bias)
    lo, hi = node.output_range(a_t, b_t)
    node.post, out_t = random_post(rng, lo, hi, channels, post)
    stage = AddStage("add", node, (a_t, b_t), out_t, (pixels, channels), simd)
    frames = 3
    a = values(rng, a_t, (frames, pixels, channels))
    b = values(rng, b_t, (frames, pixels, channels))
    expected = node.execute([a, b], None).reshape(frames, -1)
    a, b = a.reshape(frames, -1), b.reshape(frames, -1)
    valid, ready = throttles(seed) if stalls else (None, None)
    got, counters = drive_ports(stage.hdl_config.build(), {"i0": pack_beats(a, a_t, simd),
                                                          "i1": pack_beats(b, b_t, simd)},
                                {"o": frames * stage.out_beats_per_frame},
                                stage.hdl_config.counter_names, valid=valid, ready=ready)
    assert np.array_equal(unpack_beats(got["o"], out_t, simd, pixels * channels), expected)
    if stalls:
        assert accounted(counters, stage.fill_cycles)
    else:
        assert counters == {str(k): v for k, v in stage.predict_counters(frames).items()}


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 4), st.lists(st.integers(1, 3), min_size=2, max_size=3),
       st.sampled_from(TYPES), st.booleans(), st.integers(0, 10**6))
def test_concat_unit_exact_with_predicted_counters(pixels, groups, tname, stalls, seed):
    rng = np.random.default_rng(seed)
    dtype = ir.IntType.parse(tname)
    simd = int(rng.choice([1, 2]))
    parts = tuple(g * simd for g in groups)
    node = ir.Concat("cat", [f"x{k}" for k in range(len(parts))], ["y"])
    stage = ConcatStage("cat", node, dtype, pixels, parts, simd)
    frames = 2
    xs = [values(rng, dtype, (frames, pixels, c)) for c in parts]
    expected = np.concatenate(xs, axis=-1).reshape(frames, -1)
    valid, ready = throttles(seed) if stalls else (None, None)
    got, counters = drive_ports(
        stage.hdl_config.build(),
        {f"i{k}": pack_beats(x.reshape(frames, -1), dtype, simd) for k, x in enumerate(xs)},
        {"o": frames * stage.out_beats_per_frame}, stage.hdl_config.counter_names,
        valid=valid, ready=ready)
    assert np.array_equal(unpack_beats(got["o"], dtype, simd, expected.shape[1]), expected)
    if stalls:
        assert accounted(counters, stage.fill_cycles)
    else:
        assert counters == {str(k): v for k, v in stage.predict_counters(frames).items()}


@settings(max_examples=6, deadline=None)
@given(st.integers(2, 3), st.integers(1, 12), st.booleans(), st.integers(0, 10**6))
def test_fork_unit_delivers_every_beat_to_every_output(outputs, beats, stalls, seed):
    rng = np.random.default_rng(seed)
    dtype = ir.IntType.uint(3)
    stage = ForkStage("fork", "x", dtype, 2 * beats, 2,
                      tuple((f"c{k}", 0) for k in range(outputs)))
    frames = 2
    x = values(rng, dtype, (frames, 2 * beats))
    valid, ready = throttles(seed) if stalls else (None, None)
    names = [f"o{k}" for k in range(outputs)]
    got, counters = drive_ports(stage.hdl_config.build(), {"i": pack_beats(x, dtype, 2)},
                                dict.fromkeys(names, frames * beats),
                                stage.hdl_config.counter_names, valid=valid, ready=ready)
    for name in names:
        assert np.array_equal(unpack_beats(got[name], dtype, 2, 2 * beats), x)
    if stalls:
        assert accounted(counters, stage.fill_cycles)
    else:
        assert counters == {str(k): v for k, v in stage.predict_counters(frames).items()}


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.sampled_from(TYPES),
       st.sampled_from(["threshold", "sign", "requant", None]), st.booleans(),
       st.integers(0, 10**6))
def test_global_pool_unit_exact_with_predicted_counters(h, w, channels, tname, post, stalls,
                                                        seed):
    rng = np.random.default_rng(seed)
    dtype = ir.IntType.parse(tname)
    simd = int(rng.choice(divisors(channels)))
    node = ir.GlobalSumPool("gap", ["x"], ["y"])
    lo, hi = node.output_range(dtype, h * w)
    node.post, out_t = random_post(rng, lo, hi, channels, post)
    stage = GlobalPoolStage("gap", node, dtype, out_t, (h, w, channels), simd)
    frames = 3
    x = values(rng, dtype, (frames, h, w, channels))
    expected = node.execute([x], None)
    valid, ready = throttles(seed) if stalls else (None, None)
    got, counters = drive_ports(stage.hdl_config.build(),
                                {"i": pack_beats(x.reshape(frames, -1), dtype, simd)},
                                {"o": frames * stage.out_beats_per_frame},
                                stage.hdl_config.counter_names, valid=valid, ready=ready)
    assert np.array_equal(unpack_beats(got["o"], out_t, simd, channels), expected)
    if stalls:
        assert accounted(counters, stage.fill_cycles)
    else:
        assert counters == {str(k): v for k, v in stage.predict_counters(frames).items()}


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 3), st.integers(0, 3),
       st.integers(1, 4), st.sampled_from(TYPES),
       st.sampled_from(["threshold", "sign", "requant", None]), st.integers(0, 10**6))
def test_sum_pool_unit_exact_with_predicted_counters(k, stride, extra_h, extra_w, channels,
                                                     tname, post, seed):
    rng = np.random.default_rng(seed)
    dtype = ir.IntType.parse(tname)
    simd = int(rng.choice(divisors(channels)))
    h, w = k + extra_h, k + extra_w
    node = ir.SumPool("avg", ["x"], ["y"], kernel=k, stride=stride)
    lo, hi = node.output_range(dtype)
    node.post, out_t = random_post(rng, lo, hi, channels, post)
    stage = PoolStage("avg", node, dtype, (h, w, channels), simd, out_type=out_t)
    frames = 2
    x = values(rng, dtype, (frames, h, w, channels))
    expected = node.execute([x], None).reshape(frames, -1)
    config = stage.hdl_config
    out, counters = drive(config.build(), pack_beats(x.reshape(frames, -1), dtype, simd),
                          frames * stage.out_beats_per_frame, config.counter_names)
    assert np.array_equal(unpack_beats(out, out_t, simd, expected.shape[1]), expected)
    assert counters == {str(k): v for k, v in stage.predict_counters(frames).items()}
