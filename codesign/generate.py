"""Design -> Amaranth components -> Verilog.

The only place that translates codesign's typed layers into the hardware generators'
parameters, so the encoding rules (bipolar bit 1 = +1, two's complement elsewhere,
threshold counts as output codes) are stated once.
"""

from __future__ import annotations

import numpy as np

from codesign.errors import GraphError
from codesign.ir import MultiThreshold, Requantize
from codesign.mapping import Design, Layer, PoolStage, Stage, WindowStage
from hdl.epilogue import Epilogue, PassEpilogue, RequantEpilogue, ThresholdEpilogue
from hdl.lanes import BinaryWeightLane, Lane, MacLane, TernaryLane, XnorPopcountLane
from hdl.mvu import MVUConfig
from hdl.pool import PoolConfig
from hdl.sparse import SparseMVUConfig
from hdl.top import NetworkTop, StageConfig, emit_verilog
from hdl.window import WindowConfig

TOP_NAME = "codesign_top"


def lane_for(layer: Layer) -> Lane:
    x, w = layer.input_type, layer.matvec.weight_type
    if layer.family == "xnor_popcount":
        return XnorPopcountLane()
    if layer.family == "binary_weight":
        return BinaryWeightLane(x.bits, x.signed, x.kind == "bipolar")
    if layer.family == "ternary":
        return TernaryLane(x.bits, x.signed, x.kind == "bipolar")
    if layer.family == "mac":
        return MacLane(w.bits, w.signed, x.bits, x.signed, x.kind == "bipolar")
    raise GraphError(f"layer {layer.name!r}: no hardware generator for family {layer.family!r}")


def epilogue_for(layer: Layer) -> Epilogue:
    acc_range = layer.matvec.output_range(layer.input_type)
    out_type, post = layer.output_type, layer.post
    if post is None:
        return PassEpilogue(out_type.bits)
    if isinstance(post, MultiThreshold):
        if out_type.kind == "bipolar":
            if (post.out_scale, post.out_bias) != (2, -1) or post.thresholds.shape[1] != 1:
                raise GraphError(f"{post.describe()}: a bipolar output needs one threshold, "
                                 "out_scale 2 and out_bias -1")
            return ThresholdEpilogue(post.thresholds, acc_range, 1, 0)
        if post.out_scale != 1:
            raise GraphError(f"{post.describe()}: out_scale {post.out_scale} is not supported "
                             "in hardware for integer outputs (only 1)")
        return ThresholdEpilogue(post.thresholds, acc_range, out_type.bits, post.out_bias)
    if isinstance(post, Requantize):
        mult = np.broadcast_to(np.asarray(post.multiplier, dtype=np.int64).reshape(-1),
                               (layer.mh,))
        return RequantEpilogue(mult, post.shift, acc_range,
                               (post.out_type.min, post.out_type.max), out_type.bits)
    raise GraphError(f"layer {layer.name!r}: no hardware epilogue for {post.describe()}")


def engine_config(layer: Layer) -> MVUConfig | SparseMVUConfig:
    """The engine parameters of one layer (zero-skipping engine for sparse layers)."""
    mv = layer.matvec
    common = dict(name=layer.name, mw=layer.mw, mh=layer.mh, pe=layer.pe, simd=layer.simd,
                  lane=lane_for(layer), weight_codes=mv.weight_type.encode(mv.weight),
                  acc_range=mv.output_range(layer.input_type), epilogue=epilogue_for(layer))
    if layer.sparse:
        return SparseMVUConfig(**common, in_simd=layer.in_simd)
    return MVUConfig(**common)


def window_config(stage: WindowStage) -> WindowConfig:
    """The sliding-window generator of a convolution: padding with the IR's pad value."""
    h, w, c = stage.in_shape
    (kh, kw), (sh, sw) = stage.node.kernel, stage.node.stride
    top, left, bottom, right = stage.node.padding
    pad_code = int(stage.input_type.encode(np.array([stage.node.pad_value]))[0])
    return WindowConfig(stage.name, h, w, c, kh, kw, sh, sw, top, left, bottom, right,
                        stage.simd, stage.input_type.bits, pad_code)


def pool_config(stage: PoolStage) -> PoolConfig:
    h, w, c = stage.in_shape
    t = stage.input_type
    return PoolConfig(stage.name, h, w, c, stage.node.kernel, stage.node.stride, stage.simd,
                      t.bits, t.signed and t.kind != "bipolar", t.kind == "bipolar")


def stage_config(stage: Stage) -> StageConfig:
    if isinstance(stage, WindowStage):
        return window_config(stage)
    if isinstance(stage, PoolStage):
        return pool_config(stage)
    return engine_config(stage)


def build_top(design: Design) -> NetworkTop:
    return NetworkTop([stage_config(stage) for stage in design.layers],
                      min_fifo_depth=design.fifo_depth)


def generate_verilog(design: Design) -> tuple[NetworkTop, str]:
    """The top component and its Verilog (module ``codesign_top``)."""
    top = build_top(design)
    return top, emit_verilog(top, TOP_NAME)
