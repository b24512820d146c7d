"""What the dense and the zero-skipping matrix-vector engines share.

Both compute one ``MatVec`` (with its fused epilogue) on PE rows x SIMD lanes of one PE
family; they differ in weight storage and schedule (:mod:`codesign.arch.stages.mvu`,
:mod:`codesign.arch.stages.sparse_mvu`). The encoding rule of the weights between the IR and
the hardware (storage codes) is stated here once; the epilogue's, which every accumulating
stage shares, in :mod:`codesign.arch.stages.epilogue`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.arch.families import Family
from codesign.arch.options import Folding
from codesign.arch.stage import Stage
from codesign.arch.stages.epilogue import epilogue_costs, hardware_epilogue
from codesign.energy import EnergyTable, EventCost
from codesign.errors import EnergyTableError
from codesign.ir import IntType, MatVec, MultiThreshold, Requantize
from hdl.epilogue import Epilogue
from hdl.lanes import Lane
from hdl.mvu import FILL_CYCLES
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
        return FILL_CYCLES

    @property
    def weight_sparsity(self) -> float:
        return float(np.mean(self.node.weight == 0))

    @property
    def acc_range(self) -> tuple[int, int]:
        return self.node.output_range(self.input_type)

    @property
    def weight_storage(self) -> IntType:
        return self.family.weight_storage(self.node.weight_type)

    # ---- the hardware's view -------------------------------------------------------------
    def lane(self) -> Lane:
        return self.family.make_lane(self.weight_storage, self.input_type)

    def weight_codes(self) -> np.ndarray:
        return self.weight_storage.encode(self.node.weight)

    def epilogue(self) -> Epilogue:
        """Thresholds, requantization or the accumulator itself, as the hardware computes it."""
        return hardware_epilogue(self.post, self.output_type, self.acc_range, self.mh)

    def engine_fields(self) -> dict[str, Any]:
        """The parameters every engine configuration takes."""
        return dict(name=self.name, mw=self.mw, mh=self.mh, pe=self.pe, simd=self.simd,
                    lane=self.lane(), weight_codes=self.weight_codes(),
                    acc_range=self.acc_range, epilogue=self.epilogue())

    # ---- models --------------------------------------------------------------------------
    def zero_activation_lanes(self, inputs: np.ndarray) -> int:
        """Lanes pairing a non-zero weight with a zero activation, every row, every vector."""
        x = np.asarray(inputs).reshape(-1, self.mw)
        return int(((x == 0).astype(np.int64) @ (self.node.weight != 0).T).sum())

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
        return events

    def event_costs(self, table: EnergyTable) -> dict[str, EventCost]:
        """Lanes by family, accumulators, memories by word width, the epilogue by kind."""
        acc_lo, acc_hi = self.acc_range
        acc_bits = IntType.for_range(acc_lo, acc_hi).bits
        w_bits = self.weight_storage.bits
        in_bits = self.input_type.bits
        costs = {
            "effective_lane_ops": EventCost(
                "lanes", self.family.lane_energy(self.weight_storage, self.input_type, table)),
            Counter.ACC_ADDS: EventCost("accumulators", table.add(acc_bits)),
            Counter.WEIGHT_READS: EventCost("weight memory",
                                            table.sram_read(self.pe * self.simd * w_bits)),
            Counter.IBUF_WRITES: EventCost("input buffer", table.sram_write(self.simd * in_bits)),
            Counter.IBUF_READS: EventCost("input buffer", table.sram_read(self.simd * in_bits)),
        }
        costs.update(epilogue_costs(self.post, self.acc_range, self.pe, table))
        return costs

    # ---- reporting -----------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        weight = self.node.weight
        return {
            **self.common_record(),
            "family": self.family.name,
            "sparse": self.kind == "sparse_mvu",
            "weight_type": str(self.node.weight_type),
            "weight_sparsity": self.weight_sparsity,
            # rows with no non-zero weight: handled (acc = 0 goes through the epilogue)
            "empty_rows": int(np.count_nonzero(~weight.any(axis=1))),
            "mw": self.mw, "mh": self.mh, "pe": self.pe, "simd": self.simd,
            "vectors_per_frame": self.vectors,
            "epilogue": "accumulator" if self.post is None else self.post.op_type,
        }
