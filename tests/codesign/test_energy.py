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
