"""Synthesis (Yosys) and place and route (nextpnr-ecp5) of one small engine, cached.

Three syntheses and one place-and-route run in all: the yowasp tools compile their
WebAssembly on first use on a machine (about two minutes each), and every result lands in
the session cache, so a warm rerun with CODESIGN_TEST_CACHE takes seconds.
"""

import pytest

from codesign.arch import build_design
from codesign.cli import main
from codesign.errors import DoesNotFitError, SynthesisError, UnknownTargetError
from codesign.ir import IntType
from codesign.resources import Resources
from codesign.synth import check_fits, place_and_route, stage_verilog, synthesize
from netgen import folds, random_layer_stack


def small_engine(style):
    """uint4 x int4 MAC, 32 inputs x 16 outputs at PE 2, SIMD 4, 2-bit thresholded output."""
    graph = random_layer_stack(32, IntType.uint(4), [(16, "int4", ("threshold", "uint2"))], 1)
    design = build_design(graph, folding=folds(graph, [(2, 4)]),
                          memory_styles={"fc0": style})
    return design.stages[0]


@pytest.fixture(scope="module")
def synthesized():
    """style -> (stage, Verilog, top, xc7 result)."""
    results = {}
    for style in ("block", "distributed"):
        stage = small_engine(style)
        text, top = stage_verilog(stage)
        results[style] = (stage, text, top, synthesize(text, top, "xc7"))
    return results


def test_memory_style_changes_what_synthesis_reports(synthesized):
    block = synthesized["block"][3].resources
    distributed = synthesized["distributed"][3].resources
    # the weights, the four threshold banks (2-bit output: two search levels, each a bank
    # per PE, two PEs) and the input buffer each take one RAMB18 ...
    stage = synthesized["block"][0]
    assert [m.name for m in stage.hdl_config.memories] == [
        "weights", "thresholds_l0_p0", "thresholds_l0_p1", "thresholds_l1_p0",
        "thresholds_l1_p1", "ibuf"]
    assert (block.bram36, block.bram18) == (0, 6)
    # ... or none at all, and the LUTs hold them instead
    assert (distributed.bram36, distributed.bram18) == (0, 0)
    assert distributed.lut > block.lut + 32
    assert distributed.lutram > 0


def test_model_counts_block_ram_and_dsp_exactly(synthesized):
    for stage, _, _, result in synthesized.values():
        real, model = result.resources, stage.estimate_resources("xc7")
        assert (model.bram36, model.bram18, model.dsp) == (real.bram36, real.bram18, real.dsp)
        assert abs(model.lut - real.lut) <= 0.15 * real.lut
        assert abs(model.ff - real.ff) <= 0.15 * real.ff


def test_results_are_cached(synthesized):
    _, text, top, first = synthesized["block"]
    again = synthesize(text, top, "xc7")
    assert again.cached and again.resources == first.resources
    assert again.directory == first.directory
    assert (first.directory / "yosys.log").is_file()


@pytest.mark.extended      # nextpnr's WebAssembly compiles on first use (about 2 minutes)
def test_place_and_route_reports_fmax(synthesized):
    _, text, top, _ = synthesized["block"]
    ecp5 = synthesize(text, top, "ecp5")
    assert ecp5.resources.bram18 >= 1 and ecp5.netlist.is_file()
    timing = place_and_route(ecp5, seeds=(1,))
    assert timing.part == "LFE5U-25F" and 10 < timing.fmax_mhz < 1000
    again = place_and_route(ecp5, seeds=(1,))
    assert again == timing and again.seeds == {1: timing.fmax_mhz}
    assert again.seconds == 0.0                                 # cached: nothing ran


def test_named_errors():
    with pytest.raises(UnknownTargetError, match="unknown synthesis target 'virtex2'; "
                                                 "targets: xc7"):
        synthesize("module m(); endmodule", "m", "virtex2")
    with pytest.raises(DoesNotFitError, match=r"does not fit LFE5U-25F \(ecp5\): 30000 LUTs > "
                                              r"24288, 60 18-Kbit BRAMs > 56; other parts"):
        check_fits(Resources(lut=30000, bram18=60), "ecp5", "25k")
    with pytest.raises(UnknownTargetError, match="target 'ecp5' has no part '99k'"):
        check_fits(Resources(), "ecp5", "99k")


def test_synth_command(synthesized, tmp_path, capsys):
    _, text, top, result = synthesized["block"]
    source = tmp_path / "engine.v"
    source.write_text(text)
    assert main(["synth", str(source)]) == 0
    out = capsys.readouterr().out
    assert f"{top} on xc7: {result.resources.describe()}" in out and "(cached)" in out
    assert main(["synth", str(source), "--target", "spartan"]) == 1
    assert "error: unknown synthesis target 'spartan'" in capsys.readouterr().err
    assert main(["synth", str(tmp_path)]) == 1
    assert "is not a run directory" in capsys.readouterr().err


def test_an_unknown_router_is_a_named_error():
    with pytest.raises(SynthesisError, match="router 'router3' is not one of router1, router2"):
        place_and_route(None, router="router3")  # type: ignore[arg-type]
