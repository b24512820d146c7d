"""The zero-skipping matrix-vector engine stage (:mod:`hdl.sparse`).

Weights are stored compressed per PE; zero weights cost neither cycles nor energy. Each
neuron fold costs its busiest PE's ceil(nnz / SIMD) steps (at least one), input loading
overlaps compute (two register-file banks), so a vector costs max(load beats, steps). A run
of N vectors takes L + C + (N - 1) * max(L, C) + fill_cycles (:func:`hdl.sparse.sparse_cycles`,
fill 4 + the epilogue's stages).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codesign.arch.resource_model import Structure, bits_for
from codesign.arch.stage import StageSchedule
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

    @property
    def weight_memory_bits(self) -> int:
        """On-chip weight storage: every step's PE x SIMD (column index, weight code) slots."""
        column_bits = (self.mw - 1).bit_length()
        return self.steps_per_vector * self.pe * self.simd * (column_bits
                                                               + self.weight_storage.bits)

    def stored_weights(self) -> int:
        return int(np.count_nonzero(self.node.weight))

    def stored_bits(self) -> dict[str, int]:
        """The compressed words as stored: every slot (padding included) holds a column
        index and a weight code."""
        config = self.hdl_config
        assert isinstance(config, SparseMVUConfig)
        slots = sum(config.steps) * self.pe * self.simd
        return {"weights": slots * self.weight_storage.bits,
                "indices": slots * config.index_bits,
                "epilogue": self.epilogue_bits()}

    def make_hdl_config(self) -> SparseMVUConfig:
        return SparseMVUConfig(**self.engine_fields(), in_simd=self.in_simd)

    def schedule(self, arrivals: Sequence[np.ndarray]) -> StageSchedule:
        """A vector's beats load one per cycle into a free register-file bank (released
        when the vector two before has computed); its steps start once its last beat is in
        and the previous vector has computed; each fold's output is offered its fill
        cycles after its last step."""
        (arrive,) = arrivals
        load = self.load_beats
        steps = fold_steps(self.node.weight, self.pe, self.simd)
        vectors = arrive.size // load
        accepts = np.empty(vectors * load, dtype=np.int64)
        outputs: list[int] = []
        fill = self.fill_cycles
        taken = computed = -(1 << 40)
        ends: list[int] = []
        for v in range(vectors):
            bank = ends[v - 2] + 2 if v >= 2 else taken
            for j in range(load):
                taken = max(int(arrive[v * load + j]), taken + 1, bank if j == 0 else taken)
                accepts[v * load + j] = taken
            step = max(taken, computed + 1)
            for count in steps:
                step += count
                outputs.append(step - 1 + fill)
            computed = step - 1
            ends.append(computed)
        return StageSchedule((accepts,), np.array(outputs, dtype=np.int64))

    def hardware(self) -> str:
        return (f"{self.family.name} sparse ({self.weight_sparsity:.0%} zeros) "
                f"{self.mh}x{self.mw} PE={self.pe} SIMD={self.simd}")

    def add_front_control(self, s: Structure) -> None:
        """The beat, fetch and fold counters, the double-buffered input register file and
        each lane's gather multiplexer (one MW:1 choice per element bit)."""
        x_bits = self.lane().input_bits
        counters = (bits_for(self.load_beats) + bits_for(self.steps_per_vector)
                    + bits_for(self.nf))
        s.add_lut("sparse_control", 1)
        s.add_ff("sparse_control", 1)
        s.add_lut(f"{self.kind}_counter_bits", counters)
        s.add_ff(f"{self.kind}_counter_bits", counters)
        s.add_lut("regfile_bits", 2 * self.mw * x_bits)
        s.add_ff("regfile_bits", 2 * self.mw * x_bits)
        s.add_lut("gather_mux", self.pe * self.simd * x_bits * self.mw)

    def resource_structure(self, target: str) -> Structure:
        """The engine's common parts behind its issue stage, its front-end control
        (:meth:`add_front_control`), the prefetched weight word (``head``: slots and the two
        step flags; an engine whose vector is one beat reads it from the memory's port,
        without a register of its own) and the gathered operand registers."""
        s = self.engine_structure(target, FRONT_STAGES)
        self.add_front_control(s)
        c = self.hdl_config
        if c.load_beats > 1:
            s.add_ff("head_bits", c.slots_width + 2)
        s.add_ff(self.operand_feature(target),
                 self.pe * self.simd * (c.lane.input_bits + c.lane.weight_bits))
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
