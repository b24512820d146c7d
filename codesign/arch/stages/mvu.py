"""The dense matrix-vector engine stage (FINN's MVAU organisation; :mod:`hdl.mvu`).

Every weight costs its lane a cycle (a zero weight is gated, not skipped): a frame of
``vectors`` input vectors takes exactly vectors * (MH/PE) * (MW/SIMD) issue cycles, and a
run's last output leaves ``fill_cycles`` = 5 + the epilogue's stages after its last issue
(:func:`hdl.mvu.fill_cycles`: 5 for accumulator outputs, 5 + B for B-bit thresholds, 8 for
a requantization).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codesign.arch.resource_model import Structure, bits_for, rom_columns
from codesign.arch.stage import StageSchedule, in_order
from codesign.arch.stages.engine import EngineStage
from hdl.memory import find_memory, resolve_style
from hdl.mvu import FRONT_STAGES, MVUConfig
from hdl.perf import Counter


@dataclass(eq=False)
class DenseEngine(EngineStage):
    """A dense engine: PE rows x SIMD lanes, every weight issued."""

    kind = "mvu"

    @property
    def in_elems(self) -> int:
        return self.simd

    @property
    def in_beats_per_frame(self) -> int:
        return self.vectors * self.sf

    @property
    def cycles_per_frame(self) -> int:
        return self.vectors * self.nf * self.sf

    @property
    def weight_memory_bits(self) -> int:
        """On-chip weight storage: every weight's code."""
        return self.mh * self.mw * self.weight_storage.bits

    def stored_weights(self) -> int:
        return self.mh * self.mw

    def stored_bits(self) -> dict[str, int]:
        return {"weights": self.mh * self.mw * self.weight_storage.bits,
                "epilogue": self.epilogue_bits()}

    def make_hdl_config(self) -> MVUConfig:
        return MVUConfig(**self.engine_fields())

    def schedule(self, arrivals: Sequence[np.ndarray]) -> StageSchedule:
        """One step per cycle in order; the first neuron fold's SF steps of a vector each
        wait for their input beat; a fold's output is offered its fill cycles after its
        last step."""
        (arrive,) = arrivals
        nf, sf = self.nf, self.sf
        vectors = arrive.size // sf
        steps = nf * sf
        first = np.arange(vectors)[:, None] * steps
        need = np.full(vectors * steps, np.iinfo(np.int64).min // 2, dtype=np.int64)
        taking = (first + np.arange(sf)[None, :]).reshape(-1)
        need[taking] = arrive[:vectors * sf]
        issue = in_order(need)
        last = (first + np.arange(nf)[None, :] * sf + sf - 1).reshape(-1)
        return StageSchedule((issue[taking],), issue[last] + self.fill_cycles)

    def hardware(self) -> str:
        return f"{self.family.name} {self.mh}x{self.mw} PE={self.pe} SIMD={self.simd}"

    def add_front_control(self, s: Structure) -> None:
        """The (nf, sf, address) counters, the registered input beat and, with NF > 1, the
        choice between the input beat and the input buffer."""
        in_width = self.simd * self.lane().input_bits
        counters = bits_for(self.nf) + bits_for(self.sf) + bits_for(self.nf * self.sf)
        s.add_lut("dense_control", 1)
        s.add_ff("dense_control", 1)
        s.add_lut(f"{self.kind}_counter_bits", counters)
        s.add_ff(f"{self.kind}_counter_bits", counters)
        s.add_ff("in_bits", in_width)
        if self.nf > 1:
            s.add_lut("ibuf_mux", in_width)

    def resource_structure(self, target: str) -> Structure:
        """The engine's common parts behind its two front stages, its front-end control
        (:meth:`add_front_control`) and the operand registers (input word and weight
        word). With the weights read by the lanes (``weights_in_lanes``: 1-bit weights in
        a shallow ROM in logic) the ROM has no LUTs of its own and no read register: each
        lane with a varying weight computes its weight column in its own LUT (``rom_lane``),
        and the weight address, not the word, takes the read and operand registers."""
        c = self.hdl_config
        weights = find_memory(c.memories, "weights")
        in_logic = resolve_style(c.memory_style, weights) != "block"
        s = self.engine_structure(target, FRONT_STAGES, self.distinct_lanes(in_logic))
        self.add_front_control(s)
        if c.weights_in_lanes:
            s.add_lut("rom_lane", self.distinct_lanes(True, varying=True))
            weight_operand = 2 * bits_for(weights.depth)
        else:
            weight_operand = rom_columns(weights, distinct=in_logic)
        s.add_ff(self.operand_feature(target), c.in_width + weight_operand)
        return s

    def distinct_lanes(self, merged: bool, *, varying: bool = False) -> int:
        """Lanes whose term registers synthesis keeps. A lane whose weights are zero at
        every address computes a constant zero (with a family that has zero weights); with
        the weight memory in logic (``merged``), Yosys also merges the weight registers of
        identical bit columns, and then the term registers of lanes that see the same
        activation and the same weight at every address: one per distinct weight
        sequence of each SIMD position. With ``varying``, only the lanes whose weight
        changes between addresses (the others' terms need no address)."""
        nf, sf, pe, simd = self.nf, self.sf, self.pe, self.simd
        codes = self.weight_codes().reshape(nf, pe, sf, simd).transpose(1, 3, 0, 2)
        lanes = np.ascontiguousarray(codes.reshape(pe, simd, nf * sf))
        kept = 0
        for j in range(simd):
            seqs = lanes[:, j]                  # one weight sequence per PE
            if self.family.zero_weights:
                seqs = seqs[seqs.any(axis=1)]
            if varying:
                seqs = seqs[(seqs != seqs[:, :1]).any(axis=1)]
            kept += len({seq.tobytes() for seq in seqs}) if merged else len(seqs)
        return kept

    def predict_counters(self, frames: int, inputs: np.ndarray | None = None
                         ) -> dict[Counter, int]:
        vectors = frames * self.vectors
        nf, sf, pe, simd = self.nf, self.sf, self.pe, self.simd
        issue = vectors * nf * sf
        zeros = (int(np.count_nonzero(self.node.weight == 0)) if self.family.zero_weights
                 else 0)
        counters = {
            Counter.ISSUE: issue,
            Counter.STALL_IN: 0,
            Counter.STALL_OUT: 0,
            Counter.SPAN: issue + self.fill_cycles,
            Counter.IN_BEATS: vectors * sf,
            Counter.OUT_BEATS: vectors * nf,
            Counter.LANE_OPS: issue * pe * simd,
            Counter.ACC_ADDS: issue * pe,
            Counter.WEIGHT_READS: issue,
            Counter.IBUF_WRITES: vectors * sf if nf > 1 else 0,
            Counter.IBUF_READS: vectors * (nf - 1) * sf,
            Counter.PARAM_READS: vectors * nf if self.post is not None else 0,
            Counter.ZERO_WEIGHT_LANES: vectors * zeros,
        }
        if inputs is not None:
            counters[Counter.ZERO_ACT_LANES] = (self.zero_activation_lanes(inputs)
                                                if self.family.zero_weights else 0)
        return counters
