"""What the dense and the zero-skipping matrix-vector engines share.

Both compute one ``MatVec`` (with its fused epilogue) on PE rows x SIMD lanes of one PE
family; they differ in weight storage and schedule (:mod:`codesign.arch.stages.mvu`,
:mod:`codesign.arch.stages.sparse_mvu`). The encoding rule of the weights between the IR and
the hardware (storage codes) is stated here once; the epilogue's, which every accumulating
stage shares, in :mod:`codesign.arch.stages.epilogue`.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.arch.families import Family
from codesign.arch.options import Folding
from codesign.arch.resource_model import (
    Structure,
    bits_for,
    estimate,
    memory_structure,
    multiplier_dsps,
)
from codesign.arch.stage import Stage
from codesign.arch.stages.epilogue import epilogue_costs, hardware_epilogue
from codesign.energy import EnergyTable, EventCost
from codesign.errors import EnergyTableError
from codesign.ir import IntType, MatVec, MultiThreshold, Requantize
from codesign.resources import Resources
from hdl.datapath import DATAPATH_STAGES, lane_register_bits, step_control_bits
from hdl.epilogue import Epilogue, RequantEpilogue, ThresholdEpilogue
from hdl.lanes import Lane
from hdl.perf import Counter


@dataclass(eq=False)
class EngineStage(Stage):
    """A matrix-vector engine: one ``MatVec`` of the graph and its hardware choices."""

    name: str
    node: MatVec
    input_type: IntType
    output_type: IntType
    family: Family
    folding: Folding
    vectors: int = 1
    """Vectors per frame: one per output pixel of a convolution."""
    memory_style: str = "auto"

    @property
    def matvec(self) -> MatVec:
        return self.node

    @property
    def post(self) -> MultiThreshold | Requantize | None:
        return self.node.post

    @property
    def mw(self) -> int:
        return self.node.mw

    @property
    def mh(self) -> int:
        return self.node.mh

    @property
    def pe(self) -> int:
        return self.folding.pe

    @property
    def simd(self) -> int:
        return self.folding.simd

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def out_elems(self) -> int:
        return self.pe

    @property
    def out_beats_per_frame(self) -> int:
        return self.vectors * self.nf

    @property
    def fill_cycles(self) -> int:
        """The engine's pipeline depth behind its last issue, the epilogue's stages
        included (``hdl.mvu.fill_cycles``, ``hdl.sparse.fill_cycles``)."""
        return self.hdl_config.fill_cycles

    @property
    @abstractmethod
    def weight_memory_bits(self) -> int:
        """Bits of the engine's on-chip weight memory."""

    @property
    def weight_sparsity(self) -> float:
        return float(np.mean(self.node.weight == 0))

    @property
    def acc_range(self) -> tuple[int, int]:
        return self.node.output_range(self.input_type)

    @property
    def weight_storage(self) -> IntType:
        """The type of one stored weight code (a codebook index on a shared family)."""
        return self.family.stored_type(self.node)

    # ---- the hardware's view -------------------------------------------------------------
    def lane(self) -> Lane:
        return self.family.lane(self.node, self.input_type)

    def weight_codes(self) -> np.ndarray:
        return self.family.weight_codes(self.node)

    def epilogue(self) -> Epilogue:
        """Thresholds, requantization or the accumulator itself, as the hardware computes it."""
        return hardware_epilogue(self.post, self.output_type, self.acc_range, self.mh)

    def engine_fields(self) -> dict[str, Any]:
        """The parameters every engine configuration takes."""
        return dict(name=self.name, mw=self.mw, mh=self.mh, pe=self.pe, simd=self.simd,
                    lane=self.lane(), weight_codes=self.weight_codes(),
                    acc_range=self.acc_range, epilogue=self.epilogue(),
                    memory_style=self.memory_style)

    # ---- what the engine holds ---------------------------------------------------------
    @property
    def lanes(self) -> int:
        return self.pe * self.simd

    def epilogue_bits(self) -> int:
        """Bits of the epilogue's parameter memories (thresholds or multipliers)."""
        return sum(bank.width * len(bank.init) for bank in self.epilogue().banks(self.pe))

    # ---- models --------------------------------------------------------------------------
    def zero_activation_lanes(self, inputs: np.ndarray) -> int:
        """Lanes pairing a non-zero weight with a zero activation, every row, every vector:
        the sum over input columns of (zero activations in the column) x (non-zero weights
        in the column), which needs no product of the two matrices."""
        x = np.asarray(inputs).reshape(-1, self.mw)
        zeros = np.count_nonzero(x == 0, axis=0).astype(np.int64)
        return int(zeros @ np.count_nonzero(self.node.weight, axis=0).astype(np.int64))

    def events(self, counters: Mapping[str, int]) -> dict[str, int]:
        """Counters plus ``effective_lane_ops``: lane operations less the gated ones (a zero
        weight, or a non-zero weight meeting a zero activation, costs its cycle but no
        arithmetic)."""
        needed = (Counter.LANE_OPS, Counter.ZERO_WEIGHT_LANES, Counter.ZERO_ACT_LANES)
        missing = [str(name) for name in needed if name not in counters]
        if missing:
            raise EnergyTableError(f"stage {self.name!r}: lane energy needs the counters "
                                   f"{', '.join(missing)}, which were not counted")
        events = dict(counters)
        events["effective_lane_ops"] = (counters[Counter.LANE_OPS]
                                        - counters[Counter.ZERO_WEIGHT_LANES]
                                        - counters[Counter.ZERO_ACT_LANES])
        events.update(self.family.extra_events(counters))
        return events

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """Lanes by family, accumulators, memories by word width, the epilogue by kind."""
        acc_lo, acc_hi = self.acc_range
        acc_bits = IntType.for_range(acc_lo, acc_hi).bits
        w_bits = self.weight_storage.bits
        in_bits = self.input_type.bits
        costs = {
            "effective_lane_ops": EventCost(
                "lanes", self.family.lane_op_energy(self.node, self.input_type, table)),
            Counter.ACC_ADDS: EventCost("accumulators", table.add(acc_bits)),
            Counter.WEIGHT_READS: EventCost("weight memory",
                                            table.sram_read(self.pe * self.simd * w_bits)),
            Counter.IBUF_WRITES: EventCost("input buffer", table.sram_write(self.simd * in_bits)),
            Counter.IBUF_READS: EventCost("input buffer", table.sram_read(self.simd * in_bits)),
        }
        costs.update(self.family.extra_costs(self.node, self.input_type, table))
        costs.update(epilogue_costs(self.post, self.acc_range, self.pe, table, pipelined=True))
        return costs

    # ---- resources -----------------------------------------------------------------------
    def lane_dsps(self, target: str) -> int:
        """DSPs of one PE row's multipliers (0 when the target keeps them in LUTs)."""
        lane = self.family.lane_cost(self.node, self.weight_storage, self.input_type,
                                       self.simd)
        return sum(multiplier_dsps(a, b, target) for a, b in lane.multipliers)

    def operand_feature(self, target: str) -> str:
        """The front end's operand registers feed the lanes: into DSPs, which can absorb
        them, or into LUTs."""
        return "operand_bits_dsp" if self.lane_dsps(target) else "operand_bits"

    def lane_structure(self, target: str) -> Structure:
        """The PE rows' lanes alone (their LUTs, and their multipliers in DSPs or LUTs):
        the part of an engine that grows with its lanes, known without configuring the
        hardware (every engine's structure starts with it)."""
        s = Structure()
        pe = self.pe
        lane = self.family.lane_cost(self.node, self.weight_storage, self.input_type,
                                       self.simd)
        dsps = self.lane_dsps(target)
        # products in DSPs: Yosys packs the adder tree into the DSPs' post-adders when both
        # operands are signed, and builds it from LUTs when one is unsigned
        signed = all(a[0] < 0 and b[0] < 0 for a, b in lane.multipliers)
        tree = ("" if not dsps else "_dsp_cascade" if signed else "_dsp")
        # the adder tree behind a PE's lanes has log2(SIMD) levels, its partial sums a bit
        # wider at each: its LUTs grow with the lanes and with that depth
        depth = math.log2(max(self.simd, 2))
        for name, units in lane.lut.items():
            feature = name + tree if name == "lane_mac_tree" else name
            s.add_lut(feature, pe * units)
            s.add_lut(feature + "_depth", pe * units * depth)
        if dsps:
            s.add_exact(Resources(dsp=pe * dsps))
        else:
            s.add_lut("lane_mult", pe * lane.mult_lut)
        return s

    def add_front_control(self, s: Structure) -> None:
        """Add the kind's own front-end parts that follow from its folding and lane alone
        (counters, control, input registers and multiplexers: no memory image)."""

    def lut_lower_bound(self, target: str) -> int:
        """LUTs of the parts of the engine known without configuring its hardware (its
        lanes and its kind's front-end control), by the resource model: never more than
        the whole engine's, as every coefficient is at least zero and these parts are in
        the engine's structure as they are here (an
        :class:`~codesign.errors.UnknownTargetError` when the model cannot price them, and
        so cannot price the engine). An automatic folding skips pricing foldings whose
        bound exceeds a price it has found."""
        s = self.lane_structure(target).of_kind("engine")
        self.add_front_control(s)
        return estimate(s.of_kind(self.kind), target).lut

    def engine_structure(self, target: str, front_stages: int,
                         term_lanes: int | None = None) -> Structure:
        """What every engine has, from its operand registers on (:mod:`hdl.datapath`): lanes
        of its family (:meth:`lane_structure`) and their registered terms, the registered
        partial sums, the accumulators, the epilogue's stages and parameter banks, the
        output register, and the step control (valid, first, last, fold) of its
        ``front_stages`` and of every later stage. These parts are built by the same code in
        both engines, so they are priced by coefficients both share (``engine.*``); a kind
        adds its own front end. ``term_lanes`` are the lanes whose term registers synthesis
        keeps (all of them unless the kind knows better)."""
        c = self.hdl_config
        s = self.lane_structure(target)
        pe = self.pe
        dsps = self.lane_dsps(target)
        # stages T and P: DSPs absorb product and sum registers
        term_bits, partial_bits = lane_register_bits(c.lane, self.simd)
        lanes = pe * self.simd if term_lanes is None else term_lanes
        dsp = "_dsp" if dsps else ""
        s.add_ff("term_bits" + dsp, lanes * term_bits // self.simd)
        s.add_ff("partial_bits" + dsp, pe * partial_bits)
        acc_bits = IntType.for_range(*self.acc_range).bits
        s.add_lut("acc_bits", pe * acc_bits)
        s.add_ff("acc_bits", pe * acc_bits)
        nf_bits = bits_for(self.nf)
        control = (front_stages + DATAPATH_STAGES - 1) * step_control_bits(nf_bits)
        epilogue = c.epilogue
        if isinstance(epilogue, ThresholdEpilogue):
            # one comparison per level, each against the threshold its own bank returns
            s.add_lut("thr_compare", pe * epilogue.levels * epilogue.param_bits)
            s.add_ff("thr_search", pe * epilogue.search_register_bits(acc_bits))
            # each stage's valid flag, and the fold that addresses the next level's bank
            control += epilogue.latency + (epilogue.latency - 2) * nf_bits
        elif isinstance(epilogue, RequantEpilogue):
            mult = np.asarray(epilogue.multipliers, dtype=np.int64)
            rq = multiplier_dsps(self.acc_range, (int(min(mult.min(), 0)),
                                                  int(max(mult.max(), 0))), target)
            if rq:
                s.add_exact(Resources(dsp=pe * rq))
            else:
                s.add_lut("lane_mult", pe * acc_bits * epilogue.param_bits)
            s.add_lut("requant_bits", pe * (acc_bits + epilogue.param_bits))
            s.add_ff("requant_product_dsp" if rq else "requant_product",
                     pe * epilogue.product_bits(acc_bits))
            s.add_ff("requant_rounded", pe * epilogue.rounded_bits(acc_bits))
            control += epilogue.latency
        s.add_ff("step_control", control + 1)               # and the output's valid
        s.add_ff("out_bits", pe * c.out_bits)
        memory_structure(c.memories, c.memory_style, target, s)
        return s.of_kind("engine")

    # ---- reporting -----------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        weight = self.node.weight
        return {
            **self.common_record(),
            "family": self.family.name,
            "sparse": self.kind == "sparse_mvu",
            "weight_type": str(self.node.weight_type),
            "weight_storage": str(self.weight_storage),
            "weight_sparsity": self.weight_sparsity,
            # rows with no non-zero weight: handled (acc = 0 goes through the epilogue)
            "empty_rows": int(np.count_nonzero(~weight.any(axis=1))),
            "mw": self.mw, "mh": self.mh, "pe": self.pe, "simd": self.simd,
            "vectors_per_frame": self.vectors,
            "epilogue": "accumulator" if self.post is None else self.post.op_type,
        }
