"""The fused epilogue of any stage that ends an integer accumulator in codes: engines, joins
and sum pools share it.

:func:`hardware_epilogue` states the encoding rules between an IR epilogue (thresholds,
requantization, or none) and the hardware's (:mod:`hdl.epilogue`): threshold counts as
output codes, a bipolar output as one threshold, multipliers per row. :func:`epilogue_costs`
prices it: one parameter-memory read per group of ``lanes`` outputs, and per output element
a binary search (one comparison per level) or a multiply, round and saturate.
"""

from __future__ import annotations

import math

import numpy as np

from codesign.energy import EnergyTable, EventCost
from codesign.errors import GraphError
from codesign.ir import IntType, MultiThreshold, Requantize
from hdl.epilogue import Epilogue, PassEpilogue, RequantEpilogue, ThresholdEpilogue
from hdl.perf import Counter

IrEpilogue = MultiThreshold | Requantize | None


def hardware_epilogue(post: IrEpilogue, out_type: IntType, acc_range: tuple[int, int],
                      rows: int) -> Epilogue:
    """Thresholds, requantization or the accumulator itself, as the hardware computes it
    for ``rows`` output channels."""
    if post is None:
        return PassEpilogue(out_type.bits)
    if isinstance(post, MultiThreshold):
        # a threshold below the accumulator range always holds, one above never: clipped to
        # [lo, hi + 1] they compare the same and fit the epilogue's threshold width
        lo, hi = acc_range
        thresholds = np.clip(post.thresholds, lo, hi + 1)
        if out_type.kind == "bipolar":
            if (post.out_scale, post.out_bias) != (2, -1) or post.thresholds.shape[1] != 1:
                raise GraphError(f"{post.describe()}: a bipolar output needs one threshold, "
                                 "out_scale 2 and out_bias -1")
            return ThresholdEpilogue(thresholds, acc_range, 1, 0)
        if post.out_scale != 1:
            raise GraphError(f"{post.describe()}: out_scale {post.out_scale} is not "
                             "supported in hardware for integer outputs (only 1)")
        return ThresholdEpilogue(thresholds, acc_range, out_type.bits, post.out_bias)
    mult = np.broadcast_to(np.asarray(post.multiplier, dtype=np.int64).reshape(-1), (rows,))
    return RequantEpilogue(mult, post.shift, acc_range, post.bounds, out_type.bits,
                           post.offsets(rows))


def epilogue_costs(post: IrEpilogue, acc_range: tuple[int, int], lanes: int,
                   table: EnergyTable, *, pipelined: bool = False) -> dict[str, EventCost]:
    """pJ per parameter read (``lanes`` outputs' parameters) and per output beat.

    A ``pipelined`` threshold search (the engines') reads one threshold per level and
    element; the single-cycle form (joins, sum pools) reads a row's whole search tree."""
    acc_lo, acc_hi = acc_range
    acc_bits = IntType.for_range(acc_lo, acc_hi).bits
    if isinstance(post, MultiThreshold):
        levels = post.thresholds.shape[1].bit_length()
        thr_bits = IntType.for_range(acc_lo, acc_hi + 1).bits
        per_element = levels if pipelined else (1 << levels) - 1
        return {
            Counter.PARAM_READS: EventCost(
                "epilogue memory", table.sram_read(lanes * per_element * thr_bits)),
            # each output element: a binary search, one comparison per level of the tree
            Counter.OUT_BEATS: EventCost("epilogue", lanes * levels * table.add(thr_bits)),
        }
    if isinstance(post, Requantize):
        m_bits = IntType.for_range(int(min(np.min(post.multiplier), 0)),
                                   int(max(np.max(post.multiplier), 0))).bits
        return {
            Counter.PARAM_READS: EventCost("epilogue memory", table.sram_read(lanes * m_bits)),
            # multiply by M, round, saturate: one multiplier and two adds per element
            Counter.OUT_BEATS: EventCost(
                "epilogue", lanes * (table.mult(math.sqrt(acc_bits * m_bits))
                                     + 2 * table.add(acc_bits + m_bits))),
        }
    return {}
