import pytest
from test_mapping import two_layer_graph

from codesign.energy import EnergyTable, event_costs
from codesign.errors import CodesignError
from codesign.mapping import build_design


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
    design = build_design(two_layer_graph(), {"fc0": (2, 3), "fc1": (4, 8)})
    table = EnergyTable.load()
    bw = event_costs(design.layers[0], table)["effective_lane_ops"]
    xnor = event_costs(design.layers[1], table)["effective_lane_ops"]
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
    from netgen import random_layer_stack

    graph = random_layer_stack(16, IntType.parse(xname), [(8, wname, None)], seed,
                               sparsity=sparsity)
    return build_design(graph, [(2, 4)]).layers[0]


def test_energy_per_lane_follows_family_order():
    table = EnergyTable.load()
    xnor = event_costs(_single_layer("bipolar", "bipolar"), table)["effective_lane_ops"]
    ternary = event_costs(_single_layer("ternary", "int8"), table)["effective_lane_ops"]
    mac8 = event_costs(_single_layer("int8", "int8"), table)["effective_lane_ops"]
    assert xnor * 5 < ternary < mac8 / 5
    assert mac8 == pytest.approx(table.mult(8) + table.add(16))


def test_gated_zero_weights_cost_a_cycle_but_no_lane_energy():
    from codesign.analytical import predict_counters
    from codesign.energy import layer_energy

    table = EnergyTable.load()
    dense = _single_layer("ternary", "int4", sparsity=0.0, seed=1)
    gated = _single_layer("ternary", "int4", sparsity=0.6, seed=1)
    c_dense, c_gated = predict_counters(dense, 10), predict_counters(gated, 10)
    assert c_dense["issue"] == c_gated["issue"]                 # same cycles
    zeros = int((gated.matvec.weight == 0).sum())
    assert c_gated["zero_weight_lanes"] == 10 * zeros
    e_dense = layer_energy(dense, c_dense, table)["lanes"]
    e_gated = layer_energy(gated, c_gated, table)["lanes"]
    lane = event_costs(gated, table)["effective_lane_ops"]
    nonzero_dense = int((dense.matvec.weight != 0).sum())
    assert e_dense == pytest.approx(10 * nonzero_dense * lane)
    assert e_gated == pytest.approx(10 * (16 * 8 - zeros) * lane)
