import numpy as np
import pytest
from test_mapping import two_layer_graph

from codesign.arch import build_design
from codesign.energy import EnergyTable, stage_energy
from codesign.errors import CodesignError


def test_default_table_values():
    t = EnergyTable.load()
    assert t.technology_node == "45nm"
    assert t.add(8) == pytest.approx(0.03)
    assert t.add(16) == pytest.approx(0.05)
    assert t.add(32) == pytest.approx(0.1)
    assert t.add(64) == pytest.approx(0.2)     # linear in width beyond the table
    assert t.add(4) == pytest.approx(0.015)
    assert t.mult(8) == pytest.approx(0.2)
    assert t.mult(16) == pytest.approx(0.8)    # quadratic from the 8-bit point
    assert t.sram_read(64) == pytest.approx(10.0)
    assert t.sram_read(8) == pytest.approx(1.25)


def test_binary_lane_much_cheaper_than_binary_weight_lane():
    design = build_design(two_layer_graph(), folding={"fc0": (2, 3), "fc1": (4, 8)})
    table = EnergyTable.load()
    bw = design.stages[0].event_costs(table)["effective_lane_ops"].pj
    xnor = design.stages[1].event_costs(table)["effective_lane_ops"].pj
    assert xnor < bw / 3
    assert xnor < table.add(8)


def test_bad_tables(tmp_path):
    missing = tmp_path / "t.yaml"
    missing.write_text("name: x\ntechnology_node: 7nm\n")
    with pytest.raises(CodesignError, match="missing int_add"):
        EnergyTable.load(missing)
    broken = tmp_path / "b.yaml"
    broken.write_text("name: [\n")
    with pytest.raises(CodesignError, match="not valid YAML"):
        EnergyTable.load(broken)
    with pytest.raises(CodesignError, match="cannot read"):
        EnergyTable.load(tmp_path / "absent.yaml")


def _single_layer(wname, xname, sparsity=0.0, seed=0):
    from codesign.ir import IntType
    from netgen import folds, random_layer_stack

    graph = random_layer_stack(16, IntType.parse(xname), [(8, wname, None)], seed,
                               sparsity=sparsity)
    return build_design(graph, folding=folds(graph, [(2, 4)])).stages[0]


def test_energy_per_lane_follows_family_order():
    table = EnergyTable.load()
    xnor = _single_layer("bipolar", "bipolar").event_costs(table)["effective_lane_ops"].pj
    ternary = _single_layer("ternary", "int8").event_costs(table)["effective_lane_ops"].pj
    mac8 = _single_layer("int8", "int8").event_costs(table)["effective_lane_ops"].pj
    assert xnor * 5 < ternary < mac8 / 5
    assert mac8 == pytest.approx(table.mult(8) + table.add(16))


def test_gated_zero_weights_cost_a_cycle_but_no_lane_energy():
    table = EnergyTable.load()
    dense = _single_layer("ternary", "int4", sparsity=0.0, seed=1)
    gated = _single_layer("ternary", "int4", sparsity=0.6, seed=1)
    # non-zero activations: only zero weights gate lanes here
    ones = np.ones((10, 16), dtype=int)
    c_dense, c_gated = dense.predict_counters(10, ones), gated.predict_counters(10, ones)
    assert c_dense["issue"] == c_gated["issue"]                 # same cycles
    zeros = int((gated.matvec.weight == 0).sum())
    assert c_gated["zero_weight_lanes"] == 10 * zeros
    e_dense = stage_energy(dense, c_dense, table)["lanes"]
    e_gated = stage_energy(gated, c_gated, table)["lanes"]
    lane = gated.event_costs(table)["effective_lane_ops"].pj
    nonzero_dense = int((dense.matvec.weight != 0).sum())
    assert e_dense == pytest.approx(10 * nonzero_dense * lane)
    assert e_gated == pytest.approx(10 * (16 * 8 - zeros) * lane)


def test_missing_counter_is_an_error_not_zero_energy():
    from codesign.errors import EnergyTableError

    stage = _single_layer("ternary", "int4", sparsity=0.5, seed=2)
    counters = stage.predict_counters(3, np.ones((3, 16), dtype=int))
    del counters["acc_adds"]
    with pytest.raises(EnergyTableError, match=r"stage 'fc0': the energy model prices "
                                               r"'acc_adds', which the hardware does not count"):
        stage_energy(stage, counters, EnergyTable.load())
    counters = stage.predict_counters(3)        # no activations: zero_act_lanes unknown
    with pytest.raises(EnergyTableError, match=r"lane energy needs the counters zero_act_lanes"):
        stage_energy(stage, counters, EnergyTable.load())


@pytest.mark.parametrize("text, message", [
    ("sram_read_64b: ten", "sram_read_64b is 'ten'; expected a non-negative number of pJ"),
    ("sram_read_64b: -1", "sram_read_64b is -1; expected a non-negative number of pJ"),
    ("int_add: {8: fast}", r"int_add\[8\] is 'fast'"),
    ("int_add: {eight: 0.03}", "int_add has width 'eight'; widths are positive whole numbers"),
])
def test_malformed_table_values_are_named(tmp_path, text, message):
    base = {"name": "t", "technology_node": "7nm", "int_add": "{8: 0.03}",
            "int_mult": "{8: 0.2}", "sram_read_64b": "10", "sram_write_64b": "10",
            "xnor_gate": "0.001"}
    key = text.split(":")[0]
    base[key] = text.split(":", 1)[1].strip()
    path = tmp_path / "table.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in base.items()))
    with pytest.raises(CodesignError, match=f"energy table {path}: {message}"):
        EnergyTable.load(path)
