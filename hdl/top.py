"""The streaming dataflow top: one engine per layer, FIFOs and width converters between.

Engines run concurrently on successive frames. Between two engines a width converter
regroups the producer's PE-wide beats into the consumer's SIMD-wide beats, and a FIFO holds
one whole input vector of the consumer (and at least four beats: a buffered FIFO needs two
entries behind its output register to pass one beat per cycle), so a layer can finish a
frame while its consumer is still busy with the previous one, and the network's throughput
is set by its slowest layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hdl.dwc import StreamWidthConverter
from hdl.mvu import MatrixVectorUnit, MVUConfig
from hdl.pool import MaxPool, PoolConfig
from hdl.sparse import SparseMatrixVectorUnit, SparseMVUConfig
from hdl.window import SlidingWindow, WindowConfig

StageConfig = MVUConfig | SparseMVUConfig | WindowConfig | PoolConfig


def engine_for(config: StageConfig) -> wiring.Component:
    """The component a configuration describes."""
    if isinstance(config, SparseMVUConfig):
        return SparseMatrixVectorUnit(config)
    if isinstance(config, WindowConfig):
        return SlidingWindow(config)
    if isinstance(config, PoolConfig):
        return MaxPool(config)
    return MatrixVectorUnit(config)


def input_elements(config: StageConfig) -> int:
    """Elements per input beat."""
    return config.in_simd if isinstance(config, SparseMVUConfig) else config.simd


def output_elements(config: StageConfig) -> int:
    """Elements per output beat."""
    return config.simd if isinstance(config, (WindowConfig, PoolConfig)) else config.pe


def element_bits(config: StageConfig, side: str) -> int:
    if isinstance(config, (WindowConfig, PoolConfig)):
        return config.elem_bits
    return config.out_bits if side == "out" else config.lane.input_bits


def fifo_depth(config: StageConfig, minimum: int = 4) -> int:
    """Input FIFO of a stage: one whole input vector of an engine, and at least ``minimum``.

    Deeper FIFOs absorb the bursts of window generators and engines of similar rates, so a
    chain of nearly balanced stages reaches its slowest stage's throughput (CNV at FINN's
    folding needs about 256 beats; the default suits chains with one clear bottleneck).
    """
    if isinstance(config, (MVUConfig, SparseMVUConfig)):
        return max(minimum, config.sf + 1)
    return max(minimum, 4)


class NetworkTop(wiring.Component):
    """Chain of stages (engines, window generators, pools); ``perf`` concatenates every
    stage's counters."""

    def __init__(self, stages: Sequence[StageConfig], min_fifo_depth: int = 4) -> None:
        if not stages:
            raise ValueError("a network needs at least one engine")
        for prev, nxt in zip(stages, stages[1:], strict=False):
            if element_bits(prev, "out") != element_bits(nxt, "in"):
                raise ValueError(f"stage {prev.name!r} emits {element_bits(prev, 'out')}-bit "
                                 f"elements but {nxt.name!r} takes {element_bits(nxt, 'in')}-bit")
        self.stages = list(stages)
        self.min_fifo_depth = min_fifo_depth
        self.engines = [engine_for(config) for config in self.stages]
        super().__init__({
            "i": In(stream.Signature(len(self.engines[0].i.payload))),
            "o": Out(stream.Signature(len(self.engines[-1].o.payload))),
            "perf": Out(sum(len(engine.perf) for engine in self.engines)),
        })

    @property
    def counter_names(self) -> list[tuple[str, str]]:
        """(engine name, counter name) for each 32-bit field of ``perf``, low bits first."""
        return [(stage.name, counter) for stage, engine in zip(self.stages, self.engines,
                                                               strict=True)
                for counter in engine.perf_names]

    def elaborate(self, platform):
        m = Module()
        engines = self.engines
        for index, (config, engine) in enumerate(zip(self.stages, engines, strict=True)):
            m.submodules[f"engine_{index}_{config.name}"] = engine
        wiring.connect(m, wiring.flipped(self.i), engines[0].i)
        for index, (prev, nxt) in enumerate(zip(engines, engines[1:], strict=False)):
            pc, nc = prev.config, nxt.config
            head = prev.o
            if output_elements(pc) != input_elements(nc):
                # regroup at the producer's rate, so the FIFO hands the consumer one full
                # input beat per cycle whenever it has buffered data
                dwc = StreamWidthConverter(element_bits(pc, "out"), output_elements(pc),
                                           input_elements(nc))
                m.submodules[f"dwc_{index}"] = dwc
                wiring.connect(m, head, dwc.i)
                head = dwc.o
            fifo = SyncFIFOBuffered(width=len(nxt.i.payload),
                                    depth=fifo_depth(nc, self.min_fifo_depth))
            m.submodules[f"fifo_{index}"] = fifo
            wiring.connect(m, head, fifo.w_stream)
            wiring.connect(m, fifo.r_stream, nxt.i)
        wiring.connect(m, engines[-1].o, wiring.flipped(self.o))
        offset = 0
        for engine in engines:
            width = len(engine.perf)
            m.d.comb += self.perf[offset:offset + width].eq(engine.perf)
            offset += width
        return m


def emit_verilog(top: wiring.Component, name: str = "codesign_top") -> str:
    """Synthesizable Verilog for a top component (ports: clk, rst, i__*, o__*, perf)."""
    return verilog.convert(top, name=name, emit_src=False)
