"""Measured cycles, counters and energy of two built-in examples, pinned while code moves.

binarized-mlp and binary-cnn on the first 20 test frames through codesign.flow.run_example
with the default 45 nm table. The expected values below were computed once by running this
very flow and written in literally: the point is to detect any change of them while the
modules that produce them are reorganised, not to derive them (other tests do that). Every
engine of these two examples is binary (binary-weight or XNOR-popcount), so no counter
depends on the trained weights or on the data, and the energies only on the counters and
the types: the pins hold for any training of the examples.

When the engines were pipelined the figures moved only as the new fills say: every
engine's measured cycles and span grew by its fill's growth (2 -> 6 for thresholds to a
bipolar output: issue, read, terms, adder tree, accumulator, one search level; 2 -> 5 for
integer scores), the windows and the pool saw the same streams shifted in time (their
counters, and every stall count, unchanged), and a run's total cycles grew by the sum of
the fill growth along the chain (binarized-mlp 4 + 4 + 3, binary-cnn 4 + 4 + 4 + 3). The
energies did not move: every threshold here is a single level, one threshold read per row.
When the threshold search registered each level's threshold before comparing it, the
threshold engines' fill grew by one more (6 -> 7), and with it their measured cycles and
span and a run's total cycles (binarized-mlp + 2, binary-cnn + 3); nothing else moved.
"""

from typing import NamedTuple

import pytest
from pin_runs import PIN_FRAMES


class Stage(NamedTuple):
    measured_cycles: int
    energy_pj_per_frame: float
    counters: dict[str, int]


PINNED = {
    "binarized-mlp": {
        "total_cycles": 2767,
        "energy_pj_per_frame": 5838.784000000001,
        "stages": {
            "fc0": Stage(2567, 2550.4, {
                "issue": 2560, "stall_in": 0, "stall_out": 0, "span": 2567, "in_beats": 160,
                "out_beats": 320, "lane_ops": 163840, "acc_adds": 20480, "weight_reads": 2560,
                "ibuf_writes": 160, "ibuf_reads": 2400, "param_reads": 320, "zero_weight_lanes": 0,
                "zero_act_lanes": 0,
            }),
            "fc1": Stage(2567, 3023.1040000000003, {
                "issue": 2560, "stall_in": 105, "stall_out": 0, "span": 2672, "in_beats": 320,
                "out_beats": 160, "lane_ops": 327680, "acc_adds": 40960, "weight_reads": 2560,
                "ibuf_writes": 320, "ibuf_reads": 2240, "param_reads": 160, "zero_weight_lanes": 0,
                "zero_act_lanes": 0,
            }),
            "fc2": Stage(2565, 265.28000000000003, {
                "issue": 2560, "stall_in": 56, "stall_out": 0, "span": 2621, "in_beats": 1280,
                "out_beats": 40, "lane_ops": 25600, "acc_adds": 12800, "weight_reads": 2560,
                "ibuf_writes": 1280, "ibuf_reads": 1280, "param_reads": 0, "zero_weight_lanes": 0,
                "zero_act_lanes": 0,
            }),
        },
    },
    "binary-cnn": {
        "total_cycles": 27849,
        "energy_pj_per_frame": 67848.14099999999,
        "stages": {
            "conv0_window": Stage(11521, 428.125, {
                "issue": 11520, "stall_in": 16, "stall_out": 12911, "span": 24448,
                "in_beats": 1280, "out_beats": 11520, "buffer_reads": 9680, "buffer_writes": 1280,
                "pad_beats": 1840, "in_blocked": 22743,
            }),
            "conv0": Stage(23047, 4505.76, {
                "issue": 23040, "stall_in": 0, "stall_out": 1544, "span": 24591, "in_beats": 11520,
                "out_beats": 2560, "lane_ops": 184320, "acc_adds": 184320, "weight_reads": 23040,
                "ibuf_writes": 11520, "ibuf_reads": 11520, "param_reads": 2560,
                "zero_weight_lanes": 0, "zero_act_lanes": 0,
            }),
            "conv1_window": Stage(11521, 1370.0, {
                "issue": 11520, "stall_in": 1484, "stall_out": 11962, "span": 24967,
                "in_beats": 1280, "out_beats": 11520, "buffer_reads": 9680, "buffer_writes": 1280,
                "pad_beats": 1840, "in_blocked": 9534,
            }),
            "conv1": Stage(23047, 53535.231999999996, {
                "issue": 23040, "stall_in": 0, "stall_out": 1680, "span": 24727, "in_beats": 11520,
                "out_beats": 2560, "lane_ops": 5898240, "acc_adds": 368640, "weight_reads": 23040,
                "ibuf_writes": 11520, "ibuf_reads": 11520, "param_reads": 2560,
                "zero_weight_lanes": 0, "zero_act_lanes": 0,
            }),
            "pool0": Stage(2561, 165.76, {
                "issue": 2560, "stall_in": 19688, "stall_out": 2464, "span": 24713,
                "in_beats": 2560, "out_beats": 640, "buffer_reads": 640, "buffer_writes": 640,
                "compares": 30720,
            }),
            "conv2_window": Stage(5761, 260.0, {
                "issue": 5760, "stall_in": 9248, "stall_out": 10206, "span": 25215,
                "in_beats": 2560, "out_beats": 5760, "buffer_reads": 5760, "buffer_writes": 2560,
                "pad_beats": 0, "in_blocked": 2772,
            }),
            "conv2": Stage(23047, 7138.784, {
                "issue": 23040, "stall_in": 0, "stall_out": 1979, "span": 25026, "in_beats": 5760,
                "out_beats": 320, "lane_ops": 737280, "acc_adds": 184320, "weight_reads": 23040,
                "ibuf_writes": 5760, "ibuf_reads": 17280, "param_reads": 320,
                "zero_weight_lanes": 0, "zero_act_lanes": 0,
            }),
            "fc3": Stage(25605, 444.48, {
                "issue": 25600, "stall_in": 960, "stall_out": 0, "span": 26565, "in_beats": 2560,
                "out_beats": 200, "lane_ops": 25600, "acc_adds": 25600, "weight_reads": 25600,
                "ibuf_writes": 2560, "ibuf_reads": 23040, "param_reads": 0, "zero_weight_lanes": 0,
                "zero_act_lanes": 0,
            }),
        },
    },
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_example_run_is_pinned(example_runs, name):
    summary, pinned = example_runs[name].summary, PINNED[name]
    assert summary["frames"] == PIN_FRAMES
    assert summary["bit_exact"] is True and summary["analytical_match"] is True
    assert summary["total_cycles"] == pinned["total_cycles"]
    assert summary["energy_pj_per_frame"] == pytest.approx(pinned["energy_pj_per_frame"],
                                                           rel=1e-12)
    assert [layer["name"] for layer in summary["layers"]] == list(pinned["stages"])
    for layer in summary["layers"]:
        stage = pinned["stages"][layer["name"]]
        assert layer["measured_cycles"] == stage.measured_cycles, layer["name"]
        assert layer["counters"] == stage.counters, layer["name"]
        assert layer["energy_pj_per_frame"] == pytest.approx(stage.energy_pj_per_frame,
                                                             rel=1e-12), layer["name"]
