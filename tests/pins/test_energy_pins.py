"""Energies computed by hand, with exact fractions, from a custom energy table.

One tiny network holds every kind of stage the energy model costs: a sliding window with
padding, a binary-weight engine with a requantization epilogue, a max-pool, a second window,
a dense MAC engine and a dense ternary engine with threshold epilogues (both gating zero
weights and zero activations), an XNOR-popcount engine, and a zero-skipping MAC engine whose
accumulators are the output (pass-through). Its event counts are derived here from the
shapes, foldings and weights (the schedules documented in hdl/), the zero activations from
torch's own forward pass, and each stage's energy by component from the table's values and
the widths documented in codesign/energy.py. They must equal
codesign.energy.stage_energy on the counters the RTL measured.

The CLI part runs a built-in example with --energy-table and checks summary.json's energies
against the same arithmetic on the summary's own counters.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pin_runs import PIN_FRAMES
from torch import nn

from codesign.energy import EnergyTable, stage_energy
from codesign.flow import compile_model
from codesign.reference import execute
from codesign.simulate import simulate
from codesign.verify import compare
from quant_models.conv import BinaryConv2d, QuantConv2d
from quant_models.fixed_point import QuantAct, QuantLinear, Requant, link_input_scales
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.ternary import TernaryLinear

# ---- the table of tests/pins/pin_runs.py, exactly ------------------------------------------
ADD_POINTS = {4: Fraction("0.2"), 8: Fraction("0.6"), 32: Fraction("2.0")}
MULT_POINTS = {4: Fraction("1.0"), 16: Fraction("20.0")}
SRAM_READ_64, SRAM_WRITE_64, XNOR = Fraction(8), Fraction(12), Fraction("0.01")


def add(bits: int) -> Fraction:
    """An adder of ``bits``: linear through (0, 0) and the table's points; beyond the last
    point, the last segment's slope."""
    points = [(0, Fraction(0)), *sorted(ADD_POINTS.items())]
    for (w0, e0), (w1, e1) in zip(points, points[1:], strict=False):
        if bits <= w1:
            return e0 + (e1 - e0) * (bits - w0) / (w1 - w0)
    (w0, e0), (w1, e1) = points[-2:]
    return e1 + (e1 - e0) * (bits - w1) / (w1 - w0)


def mult(w_bits: int, x_bits: int) -> Fraction:
    """A w_bits x x_bits multiplier: quadratic in width, its width sqrt(w_bits * x_bits),
    anchored on the nearest table width W: E(W) * w_bits * x_bits / W^2."""
    width = min(MULT_POINTS, key=lambda w: abs(w - math.sqrt(w_bits * x_bits)))
    return MULT_POINTS[width] * w_bits * x_bits / width**2


def read(bits: int) -> Fraction:
    return SRAM_READ_64 * bits / 64


def write(bits: int) -> Fraction:
    return SRAM_WRITE_64 * bits / 64


def test_table_arithmetic_by_hand():
    # the helpers above, on the points the stages below use
    assert add(1) == Fraction(1, 20) and add(3) == Fraction(3, 20)
    assert add(5) == Fraction(3, 10) and add(7) == Fraction(1, 2)
    assert add(11) == Fraction(6, 10) + 3 * Fraction(14, 10) / 24
    assert add(40) == 2 + 8 * Fraction(14, 10) / 24
    assert mult(3, 4) == Fraction(12, 16)            # sqrt(12) = 3.5: the 4-bit point
    assert mult(7, 4) == Fraction(28, 16)            # sqrt(28) = 5.3: the 4-bit point
    assert mult(11, 11) == 20 * Fraction(121, 256)   # 11 bits: the 16-bit point
    assert read(64) == 8 and write(32) == 6


def assert_energies(got: dict[str, float], want: dict[str, Fraction], where: str) -> None:
    assert set(got) == set(want), where
    for component, value in want.items():
        assert got[component] == pytest.approx(float(value), rel=1e-12), (where, component)


# ---- the tiny network ------------------------------------------------------------------------
FRAMES = 5
REQUANT_M, REQUANT_SHIFT = 11, 5
FC4_WEIGHTS = [
    [0, 0, 0, 0, 0, 2, 0, 3],          # 2 non-zeros
    [0, 0, -4, 3, -7, 7, -7, -2],      # 6
    [-3, 0, 1, -3, 6, -3, 1, -5],      # 7
    [0, 0, 2, 0, -6, 0, -5, 0],        # 3
]
FOLDING = {"conv0": (2, 1), "conv1": (3, 2), "fc2": (4, 6), "fc3": (2, 8), "fc4": (2, 2)}


class TinyNet(nn.Module):
    """6x6 uint3 images; the stage names the flow gives each part in the comments."""

    input_shape = (1, 6, 6)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.layers = nn.Sequential(
            IntegerInput(3, signed=False),
            BinaryConv2d(1, 4, 3, padding=1, pad_value=0),   # conv0_window + conv0: binary_weight
            Requant(REQUANT_M, REQUANT_SHIFT, bits=4, signed=True),   # -> int4
            nn.MaxPool2d(2),                                 # pool0: 6x6x4 -> 3x3x4
            QuantConv2d(4, 6, 2, weight_bits=3),             # window + conv1: mac, int3 x int4
            nn.BatchNorm2d(6),
            QuantAct(2, signed=False, init_scale=1.0),       # -> uint2 (3 thresholds)
            nn.Flatten(),
            TernaryLinear(24, 16),                           # fc2: ternary x uint2
            nn.BatchNorm1d(16),
            SignActivation(),                                # -> bipolar (1 threshold)
            BinaryLinear(16, 8),                             # fc3: xnor_popcount
            nn.BatchNorm1d(8),
            SignActivation(),
            QuantLinear(8, 4, weight_bits=4, per_channel=False),   # fc4: sparse mac
            LogitScale(1.0),
        )
        with torch.no_grad():      # max |w| = 7 = qmax: the per-tensor scale is 1
            self.layers[14].weight.copy_(torch.tensor(FC4_WEIGHTS, dtype=torch.float32))
        link_input_scales(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.reshape(x.shape[0], *self.input_shape))


@pytest.fixture(scope="module")
def tiny():
    """The design, its RTL run on FRAMES frames, and the inputs torch fed its layers."""
    model = TinyNet().eval()
    design = compile_model(model, name="tiny", folding=FOLDING, sparse=["fc4"])
    x = np.random.default_rng(0).integers(0, 8, (FRAMES, 36))
    seen: dict[str, torch.Tensor] = {}

    def keep_input(name: str):
        def hook(module, args, out) -> None:
            seen[name] = args[0].detach()
        return hook

    hooks = [model.layers[index].register_forward_hook(keep_input(name))
             for index, name in ((4, "conv1"), (8, "fc2"))]
    with torch.no_grad():
        model(torch.tensor(x, dtype=torch.float32))
    for hook in hooks:
        hook.remove()
    result = simulate(design, x)
    assert compare(design, execute(design.graph, x), result.outputs).bit_exact
    return model, design, result, seen


def integer_weight(module) -> np.ndarray:
    return module.integer_weight()[0].numpy().reshape(module.weight.shape[0], -1)


def zero_activation_lanes(columns: torch.Tensor, weight: np.ndarray) -> int:
    """Lanes pairing a zero activation with a non-zero weight: every row, every vector
    (``columns`` [vectors, K] and ``weight`` [rows, K] in the same column order)."""
    zeros = (columns == 0).to(torch.float64)
    return int((zeros @ torch.tensor(weight != 0, dtype=torch.float64).T).sum())


def dense_events(vectors: int, mh: int, mw: int, pe: int, simd: int, epilogue: bool
                 ) -> dict[str, int]:
    """Events per frame of a dense engine (hdl/mvu.py): every vector takes NF * SF steps of
    PE * SIMD lanes; its SF beats are written into the input buffer and re-read in the
    NF - 1 later neuron folds; each neuron fold reads its epilogue parameters once."""
    nf, sf = mh // pe, mw // simd
    issue = vectors * nf * sf
    return {"issue": issue, "lane_ops": issue * pe * simd, "acc_adds": issue * pe,
            "weight_reads": issue, "in_beats": vectors * sf, "ibuf_writes": vectors * sf,
            "ibuf_reads": vectors * (nf - 1) * sf,
            "param_reads": vectors * nf if epilogue else 0, "out_beats": vectors * nf}


def expected_tiny_events(model: TinyNet, seen: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Events over the whole run (FRAMES frames) of every stage of the tiny design."""
    per_frame: dict[str, dict[str, int]] = {
        # 6x6x1 uint3, 3x3 window, padding 1, SIMD 1: 36 windows of 9 beats. Output rows (and
        # columns) 0 and 5 read 2 image rows, 1..4 read 3: 16 x 16 window positions are in
        # the image, the others are padding beats.
        "conv0_window": {"in_beats": 36, "buffer_writes": 36, "out_beats": 36 * 9,
                 "buffer_reads": 16 * 16, "pad_beats": 36 * 9 - 16 * 16},
        "conv0": {**dense_events(36, 4, 9, 2, 1, True),
                  "zero_weight_lanes": 0, "zero_act_lanes": 0},
        # 6x6x4 int4, 2x2 stride 2, SIMD 2 (2 beats per pixel): 3x3 outputs. Rows 0, 2, 4
        # are buffered (3 rows x 3 columns x 2 beats); every beat of columns 1, 3, 5 takes a
        # max (6 rows x 3 x 2 beats), every output one more, of SIMD 2 elements each.
        "pool0": {"in_beats": 36 * 2, "out_beats": 9 * 2, "buffer_reads": 9 * 2,
                  "buffer_writes": 3 * 3 * 2, "compares": 2 * (6 * 3 * 2 + 9 * 2)},
        # 3x3x4 int4, 2x2 window, no padding, SIMD 2: 4 windows of 2*2*2 beats.
        "conv1_window": {"in_beats": 9 * 2, "buffer_writes": 9 * 2, "out_beats": 4 * 8,
                 "buffer_reads": 4 * 8, "pad_beats": 0},
        "conv1": dense_events(4, 6, 16, 3, 2, True),
        "fc2": dense_events(1, 16, 24, 4, 6, True),
        "fc3": {**dense_events(1, 8, 16, 2, 8, True), "zero_weight_lanes": 0,
                "zero_act_lanes": 0},
        # zero-skipping, PE 2, SIMD 2: fold (rows 0, 1) takes max(ceil(2/2), ceil(6/2)) = 3
        # steps, fold (rows 2, 3) max(ceil(7/2), ceil(3/2)) = 4; 7 steps of 4 lane slots
        # hold the 18 non-zeros and 10 padding slots; 32 - 18 = 14 zeros are skipped. The
        # 8 inputs load as 4 beats of 2; every step gathers once from them.
        "fc4": {"issue": 7, "lane_ops": 7 * 4, "acc_adds": 7 * 2, "weight_reads": 7,
                "in_beats": 4, "ibuf_writes": 4, "ibuf_reads": 7, "param_reads": 0,
                "out_beats": 2, "zero_weight_lanes": 28 - 18, "zero_act_lanes": 0,
                "skipped_weights": 32 - 18},
    }
    events = {name: {k: FRAMES * v for k, v in counts.items()}
              for name, counts in per_frame.items()}
    # conv1: 4 vectors per frame are the 2x2x4 windows of its input (torch's own im2col)
    w_conv1 = integer_weight(model.layers[4])
    cols = F.unfold(seen["conv1"], 2).transpose(1, 2).reshape(-1, 16)
    events["conv1"]["zero_weight_lanes"] = FRAMES * 4 * int(np.count_nonzero(w_conv1 == 0))
    events["conv1"]["zero_act_lanes"] = zero_activation_lanes(cols, w_conv1)
    w_fc2 = integer_weight(model.layers[8])
    events["fc2"]["zero_weight_lanes"] = FRAMES * int(np.count_nonzero(w_fc2 == 0))
    events["fc2"]["zero_act_lanes"] = zero_activation_lanes(seen["fc2"], w_fc2)
    return events


def expected_tiny_energy(n: dict[str, dict[str, int]]) -> dict[str, dict[str, Fraction]]:
    """pJ by component of every stage, from the events ``n`` (widths in the comments)."""

    def effective(name: str) -> int:       # lanes gated by a zero cost no lane energy
        return n[name]["lane_ops"] - n[name]["zero_weight_lanes"] - n[name]["zero_act_lanes"]

    return {
        # line buffer words of SIMD 1 x 3 bits
        "conv0_window": {"line buffer": n["conv0_window"]["buffer_reads"] * read(3)
                 + n["conv0_window"]["buffer_writes"] * write(3)},
        # lane: add/subtract a uint3 (4-bit add); accumulator 9 * [-7, 7] = [-63, 63]: 7
        # bits; weights PE 2 x SIMD 1 x 1 bit; input buffer SIMD 1 x 3 bits; requantization
        # multiplier 11: 4 bits, PE 2 per word; per output: a 7 x 4 multiplier and two adds
        # of 7 + 4 bits per PE
        "conv0": {"lanes": effective("conv0") * add(3 + 1),
                  "accumulators": n["conv0"]["acc_adds"] * add(7),
                  "weight memory": n["conv0"]["weight_reads"] * read(2 * 1 * 1),
                  "input buffer": n["conv0"]["ibuf_writes"] * write(1 * 3)
                  + n["conv0"]["ibuf_reads"] * read(1 * 3),
                  "epilogue memory": n["conv0"]["param_reads"] * read(2 * 4),
                  "epilogue": n["conv0"]["out_beats"] * 2 * (mult(7, 4) + 2 * add(7 + 4))},
        # line buffer words of SIMD 2 x 4 bits; a max of two int4 is a 4-bit add
        "pool0": {"line buffer": n["pool0"]["buffer_reads"] * read(8)
                  + n["pool0"]["buffer_writes"] * write(8),
                  "max compare": n["pool0"]["compares"] * add(4)},
        "conv1_window": {"line buffer": n["conv1_window"]["buffer_reads"] * read(8)
                 + n["conv1_window"]["buffer_writes"] * write(8)},
        # weights int3, inputs int4: lane a 3 x 4 multiplier and a 3 + 4 bit add;
        # accumulator 16 * [-4 * 7, -4 * -8] = [-448, 512]: 11 bits; thresholds over
        # [-448, 513]: 11 bits, 3 of them (uint2) found in 2 comparisons; the binary search
        # reads one threshold per level, so a neuron fold reads 2 thresholds for each of its
        # PE 3 rows (not the whole padded row of 3)
        "conv1": {"lanes": effective("conv1") * (mult(3, 4) + add(3 + 4)),
                  "accumulators": n["conv1"]["acc_adds"] * add(11),
                  "weight memory": n["conv1"]["weight_reads"] * read(3 * 2 * 3),
                  "input buffer": n["conv1"]["ibuf_writes"] * write(2 * 4)
                  + n["conv1"]["ibuf_reads"] * read(2 * 4),
                  "epilogue memory": n["conv1"]["param_reads"] * read(3 * 2 * 11),
                  "epilogue": n["conv1"]["out_beats"] * 3 * 2 * add(11)},
        # ternary x uint2: a 3-bit add; accumulator 24 * [-3, 3] = [-72, 72]: 8 bits; one
        # threshold (bipolar output) over [-72, 73]: 8 bits, one comparison (one level, one
        # threshold read per row); PE 4
        "fc2": {"lanes": effective("fc2") * add(2 + 1),
                "accumulators": n["fc2"]["acc_adds"] * add(8),
                "weight memory": n["fc2"]["weight_reads"] * read(4 * 6 * 2),
                "input buffer": n["fc2"]["ibuf_writes"] * write(6 * 2)
                + n["fc2"]["ibuf_reads"] * read(6 * 2),
                "epilogue memory": n["fc2"]["param_reads"] * read(4 * 1 * 8),
                "epilogue": n["fc2"]["out_beats"] * 4 * 1 * add(8)},
        # XNOR + a 1-bit add; popcount accumulator [0, 16]: 5 bits; threshold over [0, 17]:
        # 5 bits
        "fc3": {"lanes": effective("fc3") * (XNOR + add(1)),
                "accumulators": n["fc3"]["acc_adds"] * add(5),
                "weight memory": n["fc3"]["weight_reads"] * read(2 * 8 * 1),
                "input buffer": n["fc3"]["ibuf_writes"] * write(8 * 1)
                + n["fc3"]["ibuf_reads"] * read(8 * 1),
                "epilogue memory": n["fc3"]["param_reads"] * read(2 * 1 * 5),
                "epilogue": n["fc3"]["out_beats"] * 2 * 1 * add(5)},
        # int4 x bipolar: a 4 x 1 multiplier and a 5-bit add; accumulator 8 * [-8, 8] =
        # [-64, 64]: 8 bits; words of PE 2 x SIMD 2 x 4-bit weights, input words of SIMD
        # 2 x 1 bit; the accumulator is the output (no epilogue)
        "fc4": {"lanes": effective("fc4") * (mult(4, 1) + add(4 + 1)),
                "accumulators": n["fc4"]["acc_adds"] * add(8),
                "weight memory": n["fc4"]["weight_reads"] * read(2 * 2 * 4),
                "input buffer": n["fc4"]["ibuf_writes"] * write(2 * 1)
                + n["fc4"]["ibuf_reads"] * read(2 * 1)},
    }


def test_tiny_design_has_every_kind_of_stage(tiny):
    _, design, _, _ = tiny
    stages = [(s.name, s.kind, s.family.name if hasattr(s, "family") else s.kind, s.simd)
              for s in design.stages]
    assert stages == [
        ("conv0_window", "window", "window", 1),
        ("conv0", "mvu", "binary_weight", 1),
        ("pool0", "pool", "pool", 2),
        ("conv1_window", "window", "window", 2),
        ("conv1", "mvu", "mac", 2),
        ("fc2", "mvu", "ternary", 6),
        ("fc3", "mvu", "xnor_popcount", 8),
        ("fc4", "sparse_mvu", "mac", 2),
    ]
    types = {layer.name: (str(layer.matvec.weight_type), str(layer.input_type),
                          str(layer.output_type), type(layer.post).__name__)
             for layer in design.engines}
    assert types == {
        "conv0": ("bipolar", "uint3", "int4", "Requantize"),
        "conv1": ("int3", "int4", "uint2", "MultiThreshold"),
        "fc2": ("ternary", "uint2", "bipolar", "MultiThreshold"),
        "fc3": ("bipolar", "bipolar", "bipolar", "MultiThreshold"),
        "fc4": ("int4", "bipolar", "int8", "NoneType"),
    }
    assert design.stage("conv1").post.thresholds.shape == (6, 3)
    assert design.stage("conv0").post.multiplier.tolist() == [REQUANT_M]
    assert design.stage("fc4").matvec.weight.tolist() == FC4_WEIGHTS


def test_tiny_design_counts_every_event_as_derived(tiny):
    model, design, result, seen = tiny
    events = expected_tiny_events(model, seen)
    assert events["conv1"]["zero_act_lanes"] > 0 and events["fc2"]["zero_act_lanes"] > 0
    assert events["conv1"]["zero_weight_lanes"] > 0 and events["fc2"]["zero_weight_lanes"] > 0
    for stage in design.stages:
        measured = result.stage_counters[stage.name]
        assert {k: measured[k] for k in events[stage.name]} == events[stage.name], stage.name


def test_tiny_design_energy_by_component_by_hand(tiny, energy_table_file):
    model, design, result, seen = tiny
    table = EnergyTable.load(energy_table_file)
    assert (table.name, table.technology_node) == ("pin-table", "28nm-pin")
    want = expected_tiny_energy(expected_tiny_events(model, seen))
    for stage in design.stages:
        got = stage_energy(stage, result.stage_counters[stage.name], table)
        assert_energies(got, want[stage.name], stage.name)


# ---- the CLI: binarized-mlp with --energy-table ----------------------------------------------
def mlp_energy(layer: dict) -> dict[str, Fraction]:
    """pJ by component of one binarized-mlp layer over the run, from its summary record."""
    n, pe, simd = layer["counters"], layer["pe"], layer["simd"]
    lanes = n["lane_ops"] - n["zero_weight_lanes"] - n["zero_act_lanes"]
    if layer["name"] == "fc0":
        # uint5 x binary weights: a 6-bit add per lane; accumulator 64 * [-31, 31] =
        # [-1984, 1984]: 12 bits; one threshold (bipolar output) over [-1984, 1985]: 12 bits
        lane, acc_bits, in_bits, threshold_bits = add(5 + 1), 12, 5, 12
    else:
        # XNOR-popcount of 128 bipolar inputs: accumulator [0, 128]: 8 bits; a threshold
        # over [0, 129]: 8 bits
        lane, acc_bits, in_bits, threshold_bits = XNOR + add(1), 8, 1, 8
    parts = {
        "lanes": lanes * lane,
        "accumulators": n["acc_adds"] * add(acc_bits),
        "weight memory": n["weight_reads"] * read(pe * simd * 1),
        "input buffer": n["ibuf_writes"] * write(simd * in_bits)
        + n["ibuf_reads"] * read(simd * in_bits),
    }
    if layer["name"] != "fc2":         # fc2's accumulators are the scores
        parts["epilogue memory"] = n["param_reads"] * read(pe * 1 * threshold_bits)
        parts["epilogue"] = n["out_beats"] * pe * 1 * add(threshold_bits)
    return parts


def test_cli_run_with_energy_table_by_hand(mlp_custom_table_run):
    run = mlp_custom_table_run
    assert run.code == 0
    summary = run.summary
    assert (summary["energy_table"], summary["technology_node"]) == ("pin-table", "28nm-pin")
    assert summary["frames"] == PIN_FRAMES
    assert [(layer["name"], layer["family"], layer["weight_type"], layer["input_type"],
             layer["output_type"], layer["mw"], layer["mh"]) for layer in summary["layers"]] == [
        ("fc0", "binary_weight", "bipolar", "uint5", "bipolar", 64, 128),
        ("fc1", "xnor_popcount", "bipolar", "bipolar", "bipolar", 128, 128),
        ("fc2", "xnor_popcount", "bipolar", "bipolar", "uint8", 128, 10),
    ]
    total = Fraction(0)
    for layer in summary["layers"]:
        per_frame = {k: v / PIN_FRAMES for k, v in mlp_energy(layer).items()}
        assert_energies(layer["energy_pj_by_component"], per_frame, layer["name"])
        assert layer["energy_pj_per_frame"] == pytest.approx(float(sum(per_frame.values())),
                                                             rel=1e-12)
        total += sum(per_frame.values())
    assert summary["energy_pj_per_frame"] == pytest.approx(float(total), rel=1e-12)
