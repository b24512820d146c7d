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
from hdl.window import window_cycles

TRAFFIC_COUNTERS = ("stall_in", "stall_out", "span")
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


def predict_stream_stage(stage: WindowStage | PoolStage, frames: int) -> dict[str, int]:
    """Counters of a sliding-window or pooling stage that follow from its shape alone.

    Only the beat counts and the isolated span are predicted; ``issue`` is the output
    beats of a window generator and the input beats of a pool.
    """
    from codesign.generate import pool_config, window_config

    h, w, c = stage.in_shape
    in_beats = frames * h * w * c // stage.simd
    if isinstance(stage, WindowStage):
        config = window_config(stage)
        out_beats = frames * stage.cycles_per_frame
        return {"issue": out_beats, "span": window_cycles(config, frames),
                "in_beats": in_beats, "out_beats": out_beats, "buffer_writes": in_beats}
    config = pool_config(stage)
    oh = (h - stage.node.kernel) // stage.node.stride + 1
    ow = (w - stage.node.kernel) // stage.node.stride + 1
    span = pool_cycles(config, frames)
    return {"issue": span - POOL_FILL, "span": span, "in_beats": in_beats,
            "out_beats": frames * oh * ow * c // stage.simd}
