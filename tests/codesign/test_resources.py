"""Memory styles, the resource model's exact parts and resource-aware folding (no synthesis).

The model's LUT and FF coefficients are checked against Yosys by benchmarks/resources.py;
here: the memories every stage configuration lists are the ones it builds, the styles reach
the Verilog, block RAM geometry agrees with hand-worked cases, and the budget and frame-rate
options choose the folding they promise or name why none exists.
"""

import re

import numpy as np
import pytest

from codesign.arch import MappingOptions, build_design
from codesign.arch.dataflow.cost import fifo_resources
from codesign.arch.dataflow.mapping import candidate_targets
from codesign.arch.resource_model import (
    Structure,
    memory_structure,
    rom_columns,
    xc7_block_rams,
    xc7_dsps,
)
from codesign.errors import BudgetError, FoldingError, OptionError
from codesign.ir import IntType
from codesign.resources import Resources
from hdl.memory import MemorySpec, memory_attrs, resolve_style
from hdl.top import emit_verilog
from netgen import folds, random_cnn, random_layer_stack

VERILOG_MEMORY = re.compile(r"^\s*(?:\(\*.*\*\)\s*)?reg \[(\d+):0\] (\w+) \[(\d+):0\];", re.M)


def memories_in_verilog(text):
    return {name: (int(hi) + 1, int(depth) + 1) for hi, name, depth in VERILOG_MEMORY.findall(text)}


@pytest.mark.parametrize("sparse", [False, True])
def test_listed_memories_are_the_built_ones(sparse):
    graph = random_layer_stack(16, IntType.uint(4), [(8, "int4", ("threshold", "uint2"))], 3,
                               sparsity=0.5)
    design = build_design(graph, folding=folds(graph, [(2, 4)]),
                          sparse=["fc0"] if sparse else None)
    config = design.stages[0].hdl_config
    built = memories_in_verilog(emit_verilog(config.build(False), "top"))
    assert built == {m.name: (m.width, m.depth) for m in config.memories}


def test_window_and_pool_memories_are_the_built_ones():
    design = build_design(random_cnn(1), folding=None)
    for stage in design.stages:
        config = stage.hdl_config
        built = memories_in_verilog(emit_verilog(config.build(False), "top"))
        assert built == {m.name: (m.width, m.depth) for m in config.memories}, stage.name


def test_styles_reach_the_verilog_and_the_records():
    graph = random_layer_stack(32, IntType.uint(4), [(16, "int4", ("threshold", "uint2"))], 1)
    for style in ("block", "distributed", "registers"):
        design = build_design(graph, folding=folds(graph, [(2, 4)]),
                              memory_styles={"fc0": style})
        stage = design.stages[0]
        text = emit_verilog(stage.hdl_config.build(False), "top")
        attrs = re.findall(r'\(\* ram_style = "(\w+)" \*\)', text)
        record = stage.record()
        assert record["memory_style"] == style
        # two PEs: one threshold bank per search level and PE
        assert set(record["memories"]) == {"weights", "thresholds_l0_p0", "thresholds_l0_p1",
                                           "thresholds_l1_p0", "thresholds_l1_p1", "ibuf"}
        # read-only memories in LUTs are emitted as logic (Yosys builds no LUT ROMs)
        expected = {"block": {"block"}, "distributed": {"logic", "distributed"},
                    "registers": {"registers"}}[style]
        assert set(attrs) == expected


def test_auto_rule():
    def style(width, depth, rom=True):
        return resolve_style("auto", MemorySpec("m", width, depth, writable=not rom))

    assert style(64, 2) == "registers"          # two words
    assert style(8, 8) == "registers"           # 64 bits
    assert style(16, 64) == "distributed"       # 1 Kbit
    assert style(17, 64) == "block"             # more than 1 Kbit, deeper than 16 words
    assert style(1024, 16) == "distributed"     # shallow: a sliver of a block RAM
    assert style(4, 65) == "block"              # deeper than 64 words
    comb = MemorySpec("m", 8, 1024, sync_read=False)
    assert resolve_style("block", comb) == "distributed"
    assert memory_attrs("distributed", MemorySpec("m", 8, 32)) == {"ram_style": "logic"}
    assert memory_attrs("distributed", MemorySpec("m", 8, 32, writable=True)) == {
        "ram_style": "distributed"}


@pytest.mark.parametrize("width, depth, rom, expected", [
    (64, 64, True, Resources(bram36=1)),          # one 72-bit simple-dual-port RAMB36
    (28, 16, True, Resources(bram18=1)),          # 36-bit simple-dual-port RAMB18
    (36, 512, False, Resources(bram18=1)),        # 512 x 36 fills a RAMB18
    (36, 1024, False, Resources(bram36=1)),       # 1024 x 36 fills a RAMB36
    (8, 4096, False, Resources(bram36=1)),        # 4096 x 9
    (72, 1024, True, Resources(bram36=2)),
    (1, 65536, True, Resources(bram36=2)),        # the 64K x 1 cascade
])
def test_block_ram_geometry(width, depth, rom, expected):
    memory = MemorySpec("m", width, depth, writable=not rom)
    assert xc7_block_rams(memory) == expected


def test_rom_columns_fold_constants_and_merge_duplicates():
    # bit 0 constant 1, bits 1 and 2 identical, bit 3 differs from both
    words = (0b0011 | 0b0101, 0b1001, 0b0111, 0b0001)
    assert rom_columns(MemorySpec("m", 4, 4, init=words)) == 3
    assert rom_columns(MemorySpec("m", 4, 4, init=words), distinct=True) == 2
    assert rom_columns(MemorySpec("m", 8, 1, init=(0xA5,))) == 0


@pytest.mark.parametrize("a, b, dsps", [
    # lanes of synthesised engines: int8 x uint8 and x int8 in DSPs, int4 x uint4 in LUTs
    ((-128, 127), (0, 255), 1), ((-128, 127), (-128, 127), 1), ((-8, 7), (0, 15), 0),
    ((-2, 1), (0, 3), 0), ((0, 15), (0, 15), 0), ((-16, 15), (-8, 7), 1),
    # registered a x b products: 25 x 18 per DSP, split beyond
    ((-2**24, 2**24 - 1), (-128, 127), 1), ((-2**25, 2**25 - 1), (-128, 127), 2),
    ((-2**17, 2**17 - 1), (-2**17, 2**17 - 1), 1), ((-2**18, 2**18 - 1), (-2**18, 2**18 - 1), 2),
    ((-2**29, 2**29 - 1), (-2**19, 2**19 - 1), 4),
])
def test_dsp_mapping_rule(a, b, dsps):
    assert xc7_dsps(a, b) == dsps


def test_memory_style_option_errors():
    graph = random_layer_stack(16, IntType.uint(4), [(8, "int4", None)], 0)
    with pytest.raises(OptionError, match="layer 'fc0': memory style 'ultra' is not one of"):
        MappingOptions.create(memory_styles={"fc0": "ultra"})
    with pytest.raises(FoldingError, match=r"memory_styles names unknown stage\(s\) \['fc9'\]"):
        build_design(graph, memory_styles={"fc9": "block"})


def test_budget_options_are_checked():
    with pytest.raises(OptionError, match="target_fps and fmax_mhz go together"):
        MappingOptions.create(target_fps=100.0)
    with pytest.raises(OptionError, match="each choose the automatic folding"):
        MappingOptions.create(target_cycles=10, lut_budget=100)
    with pytest.raises(OptionError, match="lut_budget=-1"):
        MappingOptions.create(lut_budget=-1)


def _chain():
    return random_layer_stack(64, IntType.uint(4), [(32, "bipolar", ("threshold", "bipolar")),
                                                    (16, "bipolar", ("threshold", "bipolar")),
                                                    (10, "bipolar", None)], 5)


def test_lut_budget_picks_the_fastest_folding_that_fits():
    graph = _chain()
    budget = 900
    design = build_design(graph, lut_budget=budget)
    assert design.estimate_resources().lut <= budget
    nodes = graph.ordered_nodes()
    faster = [t for t in candidate_targets(graph, nodes, design.options)
              if t < design.cycles_per_frame]
    # every faster target the search could have taken needs more LUTs than the budget
    for target in faster[-3:]:
        quicker = build_design(graph, target_cycles=target, folding_objective="luts")
        assert (quicker.cycles_per_frame >= design.cycles_per_frame
                or quicker.estimate_resources().lut > budget)


def test_budget_no_folding_meets_names_the_smallest():
    graph = _chain()
    smallest = build_design(graph, target_cycles=10**9)
    need = smallest.estimate_resources().lut
    with pytest.raises(BudgetError, match=rf"no folding fits the budget \({need} LUTs > "
                                          rf"--lut-budget 10\): the smallest design, "
                                          rf"{smallest.cycles_per_frame} cycles/frame"):
        build_design(graph, lut_budget=10)


def test_target_fps_picks_the_cheapest_folding_reaching_the_rate():
    graph = _chain()
    design = build_design(graph, target_fps=2e6, fmax_mhz=100.0)    # 50 cycles per frame
    assert design.cycles_per_frame <= 50
    assert design.options.objective == "luts"
    cheapest = build_design(graph, target_cycles=50, folding_objective="luts")
    assert [s.folding for s in design.engines] == [s.folding for s in cheapest.engines]
    fewest_lanes = build_design(graph, target_fps=2e6, fmax_mhz=100.0,
                                folding_objective="lanes")
    assert [s.folding for s in fewest_lanes.engines] == [
        s.folding for s in build_design(graph, target_cycles=50).engines]
    with pytest.raises(BudgetError, match=r"--target-fps 1e\+09 at 100 MHz needs at most 0 "
                                          r"cycles per frame; the fastest folding takes 1 "):
        build_design(graph, target_fps=1e9, fmax_mhz=100.0)


@pytest.mark.parametrize("width, depth, bram18, bram36, lutram", [
    # Yosys 0.70 synth_xilinx on Amaranth's SyncFIFOBuffered alone, counted from its netlist
    (10, 256, 0, 0, 64), (12, 256, 1, 0, 0), (16, 128, 0, 0, 48), (24, 128, 1, 0, 0),
    (4, 512, 0, 0, 64), (6, 512, 1, 0, 0), (2, 1024, 0, 0, 64), (4, 1024, 1, 0, 0),
    (24, 1024, 0, 1, 0), (32, 64, 0, 0, 44), (32, 32, 0, 0, 24), (8, 2, 0, 0, 0),
])
def test_a_fifo_is_stored_where_yosys_puts_it(width, depth, bram18, bram36, lutram):
    found = fifo_resources(width, depth)
    assert (found.bram18, found.bram36, found.lutram) == (bram18, bram36, lutram)


def test_chain_estimate_adds_fifos_to_the_stages():
    graph = _chain()
    design = build_design(graph, target_cycles=64)
    stages = sum((s.estimate_resources() for s in design.stages), Resources())
    whole = design.estimate_resources()
    assert whole.lut > stages.lut and whole.ff > stages.ff
    assert (whole.bram36, whole.bram18, whole.dsp) == (stages.bram36, stages.bram18,
                                                       stages.dsp)
    assert np.isclose(whole.bram18_equivalent, 2 * whole.bram36 + whole.bram18)


def test_a_read_register_without_a_calibrated_case_counts_one_ff_per_bit():
    """A kind whose calibration spread has no memory with a read register (a window's small
    line buffer) still gets an estimate: its read register at one flip-flop per bit; an
    unknown LUT feature is still a named error."""
    from codesign.arch.resource_model import Structure, estimate
    from codesign.errors import UnknownTargetError

    base = Structure(ff={"window.window_counter_bits": 10.0})
    with_register = Structure(ff={"window.window_counter_bits": 10.0,
                                  "window.mem_read_reg": 24.0})
    assert estimate(with_register, "xc7").ff - estimate(base, "xc7").ff == 24
    with pytest.raises(UnknownTargetError, match="no coefficient for window.no_such_feature"):
        estimate(Structure(lut={"window.no_such_feature": 1.0}), "xc7")


def _varying_lane_sequences(weight, pe, simd):
    """Per lane position (PE row p, SIMD lane j): its weight at every address, naive loops;
    the distinct non-constant sequences of each lane j, summed over j."""
    mh, mw = weight.shape
    nf, sf = mh // pe, mw // simd
    total = 0
    for j in range(simd):
        seqs = set()
        for p in range(pe):
            seq = tuple(int(weight[n * pe + p, s * simd + j])
                        for n in range(nf) for s in range(sf))
            if len(set(seq)) > 1:
                seqs.add(seq)
        total += len(seqs)
    return total


@pytest.mark.parametrize("weights, inputs", [("bipolar", "bipolar"), ("bipolar", "uint4")])
def test_lanes_reading_a_shallow_weight_rom_price_its_columns_as_lane_luts(weights, inputs):
    """1-bit weights in a ROM of at most 16 words in logic: no ROM LUTs and no read register
    of their own, one ``rom_lane`` per distinct varying weight sequence of a lane position,
    and the weight address (two registers) instead of the word as operand; a deeper ROM or
    one in block RAM keeps its own LUTs (or block RAM) and its read register."""
    graph = random_layer_stack(64, IntType.parse(inputs), [(32, weights, ("threshold",
                                                                          "bipolar"))], 4)
    shallow = build_design(graph, folding=folds(graph, [(8, 16)])).stages[0]   # 4 x 4 words
    assert shallow.hdl_config.weights_in_lanes
    s = shallow.priced_structure("xc7")
    weight = shallow.weight_codes()
    assert s.lut["mvu.rom_lane"] == _varying_lane_sequences(weight, 8, 16)
    # the ROM LUTs and read registers left are the other memories' (thresholds, buffer)
    config = shallow.hdl_config
    others = Structure()
    memory_structure([m for m in config.memories if m.name != "weights"],
                     config.memory_style, "xc7", others)
    assert s.lut["engine.rom_lut_shallow"] == others.lut["rom_lut_shallow"]
    assert s.ff["engine.mem_read_reg"] == others.ff["mem_read_reg"]
    assert s.ff["mvu.operand_bits"] == 16 * IntType.parse(inputs).bits + 2 * 4
    assert shallow.lut_lower_bound("xc7") <= shallow.estimate_resources("xc7").lut
    block = build_design(graph, folding=folds(graph, [(8, 16)]),
                         memory_styles={"fc0": "block"}).stages[0]
    deep = build_design(graph, folding=folds(graph, [(2, 16)]),                 # 16 x 4 words
                        memory_styles={"fc0": "distributed"}).stages[0]
    for stage in (block, deep):
        assert not stage.hdl_config.weights_in_lanes
        s = stage.priced_structure("xc7")
        assert "mvu.rom_lane" not in s.lut
    assert deep.priced_structure("xc7").lut["engine.rom_lut"] > 0
    assert deep.priced_structure("xc7").ff["engine.mem_read_reg"] > 0
