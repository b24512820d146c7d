"""Analytical performance model: cycles and event counts per layer from weights and folding.

For every engine the model predicts the performance counters the RTL reports, from the
layer's weights, folding and frame count alone. For a layer run on its own at full rate
(no stalls) every counter is predicted exactly; inside a network the stall counters depend
on the neighbours, so only the stall-independent counters are compared there (every other
counter is exact by construction: an engine issues the same steps whatever its traffic).
"""

from __future__ import annotations

import numpy as np

from codesign.mapping import Layer, PoolStage, WindowStage
from hdl.mvu import FILL_CYCLES
from hdl.pool import FILL_CYCLES as POOL_FILL
from hdl.pool import pool_cycles
from hdl.sparse import fold_steps, sparse_cycles
from hdl.window import FILL_CYCLES as WINDOW_FILL
from hdl.window import window_schedule

TRAFFIC_COUNTERS = ("stall_in", "stall_out", "span", "in_blocked")
"""Counters that depend on the traffic around an engine, not on the engine alone."""

DATA_COUNTERS = ("zero_act_lanes",)
"""Counters that depend on the activations: predicted only when they are given."""


def dense_counters(layer: Layer, frames: int) -> dict[str, int]:
    """The dense engine's counters for ``frames`` input vectors at full rate."""
    nf, sf, pe, simd = layer.nf, layer.sf, layer.pe, layer.simd
    issue = frames * nf * sf
    zeros = int(np.count_nonzero(layer.matvec.weight == 0)) if layer_has_zero_weights(layer) \
        else 0
    counters = {
        "issue": issue,
        "stall_in": 0,
        "stall_out": 0,
        "span": issue + FILL_CYCLES,
        "in_beats": frames * sf,
        "out_beats": frames * nf,
        "lane_ops": issue * pe * simd,
        "acc_adds": issue * pe,
        "weight_reads": issue,
        "ibuf_writes": frames * sf if nf > 1 else 0,
        "ibuf_reads": frames * (nf - 1) * sf,
        "param_reads": frames * nf if _has_params(layer) else 0,
        "zero_weight_lanes": frames * zeros,
    }
    return counters


def layer_has_zero_weights(layer: Layer) -> bool:
    """Families whose lanes can hold a zero weight (and gate it)."""
    return layer.family in ("ternary", "mac", "sparse")


def _has_params(layer: Layer) -> bool:
    return layer.post is not None


def sparse_counters(layer: Layer, frames: int) -> dict[str, int]:
    """The zero-skipping engine's counters for ``frames`` vectors at full rate.

    Each fold costs its busiest PE's ceil(nnz / SIMD) steps (at least one); the other PEs
    idle on padding slots (``zero_weight_lanes``: the load-imbalance loss); zero weights
    are never issued (``skipped_weights``). Input loading overlaps compute (two banks).
    """
    weight = layer.matvec.weight
    steps = sum(fold_steps(weight, layer.pe, layer.simd))
    nnz = int(np.count_nonzero(weight))
    load = layer.mw // layer.in_simd
    issue = frames * steps
    span = sparse_cycles(weight, layer.pe, layer.simd, layer.in_simd, frames)
    return {
        "issue": issue,
        # a load-bound layer (more input beats than compute steps) waits for its own input
        "stall_in": span - issue - FILL_CYCLES,
        "stall_out": 0,
        "span": span,
        "in_beats": frames * load,
        "out_beats": frames * layer.nf,
        "lane_ops": issue * layer.pe * layer.simd,
        "acc_adds": issue * layer.pe,
        "weight_reads": issue,
        "ibuf_writes": frames * load,
        "ibuf_reads": issue,
        "param_reads": frames * layer.nf if _has_params(layer) else 0,
        "zero_weight_lanes": frames * (steps * layer.pe * layer.simd - nnz),
        "skipped_weights": frames * (weight.size - nnz),
    }


def predict_counters(layer: Layer, frames: int, inputs: np.ndarray | None = None
                     ) -> dict[str, int]:
    """Predicted counters for a layer's engine (dense or sparse).

    A convolution's engine sees one vector per output pixel, back to back, so ``frames``
    frames are ``frames * layer.vectors`` vectors. With the layer's ``inputs`` (its input
    tensor, any shape ending in MW) the activation-dependent counters are predicted too.
    """
    vectors = frames * layer.vectors
    counters = (sparse_counters(layer, vectors) if layer.sparse
                else dense_counters(layer, vectors))
    if inputs is not None:
        x = np.asarray(inputs).reshape(-1, layer.mw)
        gated = 0
        if layer_has_zero_weights(layer) and not layer.sparse:
            # lanes pairing a non-zero weight with a zero activation, every row, every vector
            gated = int(((x == 0).astype(np.int64) @ (layer.matvec.weight != 0).T).sum())
        counters["zero_act_lanes"] = gated
    return counters


def predicted_cycles(layer: Layer, frames: int) -> int:
    """Cycles the layer needs on its own: first input accepted to last output produced."""
    return predict_counters(layer, frames)["span"]


def compare_counters(predicted: dict[str, int], measured: dict[str, int], *,
                     in_network: bool) -> dict[str, tuple[int, int]]:
    """Counters where prediction and measurement differ: name -> (predicted, measured)."""
    skip = TRAFFIC_COUNTERS if in_network else ()
    return {name: (value, measured.get(name, 0)) for name, value in predicted.items()
            if name not in skip and measured.get(name, 0) != value}


def window_counters(stage: WindowStage, frames: int) -> dict[str, int]:
    """Every counter of a sliding-window generator run alone at full rate (see hdl.window).

    The emitter issues every window element once (a line-buffer read, or a padding beat
    where the element lies outside the image); the writer stores every input beat and is
    blocked while the ring holds rows an unfinished output row still needs, which the
    hardware's row-level schedule gives exactly (it also gives the span; the cycles the
    emitter is not issuing, less the output register's fill, are waits for input rows).
    """
    from codesign.generate import window_config

    config = window_config(stage)
    schedule = window_schedule(config, frames)
    in_beats = frames * config.in_frame_beats
    out_beats = frames * config.out_frame_beats
    rows_inside = sum(hi - lo + 1 for lo, hi in map(config.input_rows, range(config.oh)))
    cols_inside = sum(hi - lo + 1 for lo, hi in map(config.input_cols, range(config.ow)))
    reads = frames * rows_inside * cols_inside * config.folds
    return {
        "issue": out_beats,
        "stall_in": schedule.span - out_beats - WINDOW_FILL,
        "stall_out": 0,
        "span": schedule.span,
        "in_beats": in_beats,
        "out_beats": out_beats,
        "buffer_reads": reads,
        "buffer_writes": in_beats,
        "pad_beats": out_beats - reads,
        "in_blocked": schedule.input_cycles - in_beats,
    }


def pool_counters(stage: PoolStage, frames: int) -> dict[str, int]:
    """Every counter of a max-pool unit run alone at full rate (see hdl.pool).

    ``issue`` counts the input beats up to the last one that closes a window (the dropped
    tail of the last frame comes after the last output). Every beat of a column that closes
    a window horizontally takes K - 1 maxima per element, and the K - 1 row-buffer words of
    its column when it also closes a window vertically (K - 1 maxima more); a row's maxima
    are buffered when a later window still needs that row.
    """
    from codesign.generate import pool_config

    config = pool_config(stage)
    span = pool_cycles(config, frames)
    out_beats = frames * config.out_frame_beats
    k1 = config.k - 1
    kept_rows = sum(config.kept(y, config.oh) for y in range(config.ih))
    row_maxima = frames * config.ih * config.ow * config.folds
    return {
        "issue": span - POOL_FILL,
        "stall_in": 0,
        "stall_out": 0,
        "span": span,
        "in_beats": frames * config.in_frame_beats,
        "out_beats": out_beats,
        "buffer_reads": k1 * out_beats,
        "buffer_writes": frames * kept_rows * config.ow * config.folds,
        "compares": k1 * config.simd * (row_maxima + out_beats),
    }


def predict_stream_stage(stage: WindowStage | PoolStage, frames: int) -> dict[str, int]:
    """Every counter of a sliding-window or pooling stage, from its shape alone.

    Exact for the stage run alone at full rate; inside a network the traffic counters
    (:data:`TRAFFIC_COUNTERS`) depend on the neighbours. ``issue`` is the output beats of a
    window generator and the input beats (up to the last window) of a pool.
    """
    if isinstance(stage, WindowStage):
        return window_counters(stage, frames)
    return pool_counters(stage, frames)
