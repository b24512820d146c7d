"""Design -> Amaranth components -> Verilog.

The only place that translates codesign's typed layers into the hardware generators'
parameters, so the encoding rules (bipolar bit 1 = +1, two's complement elsewhere,
threshold counts as output codes) are stated once.
"""

from __future__ import annotations

from codesign.errors import GraphError
from codesign.mapping import Design, Layer
from hdl.lanes import BinaryWeightLane, Lane, XnorPopcountLane
from hdl.mvu import MVUConfig
from hdl.top import NetworkTop, emit_verilog

TOP_NAME = "codesign_top"


def lane_for(layer: Layer) -> Lane:
    if layer.family == "xnor_popcount":
        return XnorPopcountLane()
    if layer.family == "binary_weight":
        return BinaryWeightLane(layer.input_type.bits, layer.input_type.signed)
    raise GraphError(f"layer {layer.name!r}: no hardware generator for family {layer.family!r}")


def engine_config(layer: Layer) -> MVUConfig:
    """The engine parameters of one layer."""
    mv, th = layer.matvec, layer.threshold
    out_type = layer.output_type
    code_bias = 0
    if th is not None:
        if out_type.kind == "bipolar":
            if (th.out_scale, th.out_bias) != (2, -1) or th.thresholds.shape[1] != 1:
                raise GraphError(f"{th.describe()}: a bipolar output needs one threshold, "
                                 "out_scale 2 and out_bias -1")
        elif th.out_scale != 1:
            raise GraphError(f"{th.describe()}: out_scale {th.out_scale} is not supported in "
                             "hardware for integer outputs (only 1)")
        else:
            code_bias = th.out_bias
    return MVUConfig(
        name=layer.name, mw=layer.mw, mh=layer.mh, pe=layer.pe, simd=layer.simd,
        lane=lane_for(layer), weight_codes=mv.weight_type.encode(mv.weight),
        acc_range=mv.output_range(layer.input_type),
        thresholds=None if th is None else th.thresholds,
        out_bits=out_type.bits, out_code_bias=code_bias)


def build_top(design: Design) -> NetworkTop:
    return NetworkTop([engine_config(layer) for layer in design.layers])


def generate_verilog(design: Design) -> tuple[NetworkTop, str]:
    """The top component and its Verilog (module ``codesign_top``)."""
    top = build_top(design)
    return top, emit_verilog(top, TOP_NAME)
