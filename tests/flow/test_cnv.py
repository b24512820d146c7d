"""FINN's CNV-W1A1 at FINN's published folding: bit-exact in RTL, throughput as FINN expects,
with FIFOs sized automatically (fewer bits than the uniform 256 beats, sized in seconds)."""

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

from codesign.arch import build_design
from codesign.arch.options import MappingOptions
from codesign.arch.stages import EngineStage
from codesign.flow import compile_model
from codesign.reference import execute
from codesign.simulate import simulate
from codesign.verify import compare


def _benchmark():
    path = Path(__file__).parents[2] / "benchmarks" / "cnv_throughput.py"
    spec = importlib.util.spec_from_file_location("cnv_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.extended
def test_cnv_w1a1_bit_exact_at_finn_folding():
    from quant_models.cnn import random_cnv_w1a1

    bench = _benchmark()
    design = compile_model(random_cnv_w1a1(0), name="cnv", folding=bench.FINN_CNV_FOLDING,
                           fifo_depth="auto")
    start = time.perf_counter()
    design.organisation.wiring(design)
    assert time.perf_counter() - start <= 10
    uniform = build_design(design.graph, MappingOptions.create(
        bench.FINN_CNV_FOLDING, fifo_depth=bench.CNV_FIFO_DEPTH))
    bits = [sum(f["bits"] for f in d.organisation.buffers(d)) for d in (design, uniform)]
    assert bits[0] < bits[1]
    engines = [stage for stage in design.stages if isinstance(stage, EngineStage)]
    assert [(e.pe, e.simd) for e in engines] == list(bench.FINN_CNV_FOLDING.values())
    assert design.cycles_per_frame <= bench.FINN_EXPECTED_CYCLES
    rng = np.random.default_rng(0)
    runs = {}
    for frames in (10, 20):
        x = rng.integers(0, 256, (frames, 32, 32, 3))
        result = simulate(design, x)
        assert compare(design, execute(design.graph, x), result.outputs).bit_exact
        runs[frames] = result
        for stage in design.stages:
            # every stage issues its formula's cycles, plus its own fixed fill
            extra = result.measured_cycles(stage.name) - frames * stage.cycles_per_frame
            assert extra == stage.fill_cycles, stage.name
    steady = (runs[20].total_cycles - runs[10].total_cycles) / 10
    assert steady == bench.FINN_EXPECTED_CYCLES     # exactly the slowest stage (fc6, fc7)
