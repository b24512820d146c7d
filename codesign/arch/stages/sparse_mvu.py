"""The zero-skipping matrix-vector engine stage (:mod:`hdl.sparse`).

Weights are stored compressed per PE; zero weights cost neither cycles nor energy. Each
neuron fold costs its busiest PE's ceil(nnz / SIMD) steps (at least one), input loading
overlaps compute (two register-file banks), so a vector costs max(load beats, steps). A run
of N vectors takes L + C + (N - 1) * max(L, C) + fill_cycles (:func:`hdl.sparse.sparse_cycles`,
fill 4 + the epilogue's stages).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.arch.resource_model import Structure, bits_for
from codesign.arch.stages.engine import EngineStage
from hdl.perf import Counter
from hdl.sparse import FRONT_STAGES, SparseMVUConfig, fold_steps, sparse_cycles


@dataclass(eq=False)
class SparseEngine(EngineStage):
    """A zero-skipping engine; ``in_simd`` elements per input beat."""

    in_simd: int = 0

    kind = "sparse_mvu"

    def __post_init__(self) -> None:
        if not self.in_simd:
            self.in_simd = self.simd

    @property
    def in_elems(self) -> int:
        return self.in_simd

    @property
    def load_beats(self) -> int:
        return self.mw // self.in_simd

    @property
    def in_beats_per_frame(self) -> int:
        return self.vectors * self.load_beats

    @property
    def steps_per_vector(self) -> int:
        return sum(fold_steps(self.node.weight, self.pe, self.simd))

    @property
    def cycles_per_frame(self) -> int:
        """The busiest PE's steps in every fold (or the input load if longer), per vector."""
        return self.vectors * max(self.steps_per_vector, self.load_beats)

    @property
    def dense_cycles_per_frame(self) -> int:
        return self.vectors * self.nf * self.sf

    def make_hdl_config(self) -> SparseMVUConfig:
        return SparseMVUConfig(**self.engine_fields(), in_simd=self.in_simd)

    def hardware(self) -> str:
        return (f"{self.family.name} sparse ({self.weight_sparsity:.0%} zeros) "
                f"{self.mh}x{self.mw} PE={self.pe} SIMD={self.simd}")

    def resource_structure(self, target: str) -> Structure:
        """The engine's common parts behind its issue stage, its beat, fetch and fold
        counters, the double-buffered input register file, the prefetched weight word
        (``head``: slots and the two step flags), each lane's gather multiplexer (one MW:1
        choice per element bit) and the gathered operand registers."""
        s = self.engine_structure(target, FRONT_STAGES)
        c = self.hdl_config
        x_bits = c.lane.input_bits
        counters = (bits_for(self.load_beats) + bits_for(c.compute_steps)
                    + bits_for(self.nf))
        s.add_lut("sparse_control", 1)
        s.add_ff("sparse_control", 1)
        s.add_lut(f"{self.kind}_counter_bits", counters)
        s.add_ff(f"{self.kind}_counter_bits", counters)
        s.add_lut("regfile_bits", 2 * self.mw * x_bits)
        s.add_ff("regfile_bits", 2 * self.mw * x_bits)
        s.add_ff("head_bits", c.slots_width + 2)
        s.add_lut("gather_mux", self.pe * self.simd * x_bits * self.mw)
        s.add_ff(self.operand_feature(target),
                 self.pe * self.simd * (x_bits + c.lane.weight_bits))
        return s

    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        """Padding slots of the busiest-PE schedule are ``zero_weight_lanes`` (the load
        imbalance); zero weights are never issued (``skipped_weights``)."""
        vectors = frames * self.vectors
        weight = self.node.weight
        steps = self.steps_per_vector
        nnz = int(np.count_nonzero(weight))
        load = self.load_beats
        issue = vectors * steps
        span = sparse_cycles(weight, self.pe, self.simd, self.in_simd, vectors,
                             self.fill_cycles)
        counters = {
            Counter.ISSUE: issue,
            # a load-bound layer (more input beats than compute steps) waits for its input
            Counter.STALL_IN: span - issue - self.fill_cycles,
            Counter.STALL_OUT: 0,
            Counter.SPAN: span,
            Counter.IN_BEATS: vectors * load,
            Counter.OUT_BEATS: vectors * self.nf,
            Counter.LANE_OPS: issue * self.pe * self.simd,
            Counter.ACC_ADDS: issue * self.pe,
            Counter.WEIGHT_READS: issue,
            Counter.IBUF_WRITES: vectors * load,
            Counter.IBUF_READS: issue,
            Counter.PARAM_READS: vectors * self.nf if self.post is not None else 0,
            Counter.ZERO_WEIGHT_LANES: vectors * (steps * self.pe * self.simd - nnz),
            Counter.SKIPPED_WEIGHTS: vectors * (weight.size - nnz),
        }
        if inputs is not None:
            counters[Counter.ZERO_ACT_LANES] = 0    # zero activations are not gated here
        return counters

    def record(self) -> dict:
        return {**super().record(), "in_simd": self.in_simd}
