"""Unsupported QONNX input gets a one-line error naming the ONNX node (name and op type) and
what is supported."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("qonnx")

from codesign.errors import UnsupportedLayerError  # noqa: E402
from codesign.frontends.qonnx import import_qonnx  # noqa: E402
from qonnxgen import QONNX_DOMAIN  # noqa: E402


def const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def model(nodes, inits, in_shape=(1, 4), out="y", input_dims=None):
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, input_dims or list(in_shape))
    graph = helper.make_graph(nodes, "g", [inp],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(QONNX_DOMAIN, 2)])


def quant(name, x, out, zero=0.0, bits=4.0, signed=1):
    return (helper.make_node("Quant", [x, f"{name}_s", f"{name}_z", f"{name}_b"], [out],
                             name=name, domain=QONNX_DOMAIN, signed=signed, narrow=0,
                             rounding_mode="ROUND"),
            [const(f"{name}_s", 0.5), const(f"{name}_z", zero), const(f"{name}_b", bits)])


def layer(tail_nodes, tail_inits, last="q1"):
    """x -> Quant -> Gemm (3 outputs) -> tail."""
    q0, i0 = quant("qin", "x", "xq")
    wq, iw = quant("qw", "w", "wq")
    gemm = helper.make_node("Gemm", ["xq", "wq"], ["acc"], name="fc", transB=1)
    return [q0, wq, gemm, *tail_nodes], [*i0, *iw, const("w", np.ones((3, 4))), *tail_inits]


def test_non_zero_zero_point_is_named():
    q, inits = quant("act", "acc", "y", zero=2.0)
    nodes, all_inits = layer([q], inits)
    with pytest.raises(UnsupportedLayerError,
                       match=r"ONNX node 'act' \(Quant\): zero point \[2.0\] is not supported"):
        import_qonnx(model(nodes, all_inits))


def test_unsupported_op_is_named():
    nodes, inits = layer([helper.make_node("Sigmoid", ["acc"], ["y"], name="squash")], [])
    with pytest.raises(UnsupportedLayerError,
                       match=r"ONNX node 'squash' \(Sigmoid\): unsupported op\. Supported ops: "
                             r"Quant, .*MaxPool"):
        import_qonnx(model(nodes, inits))


def test_float_op_that_cannot_be_absorbed_is_named():
    """A max-pool on a float accumulator (before any quantizer) and a constant added to an
    integer tensor are refused; so is a float op after a quantized tensor feeding a layer."""
    pool_nodes = [helper.make_node("Relu", ["acc"], ["r"], name="relu"),
                  helper.make_node("Add", ["r", "c"], ["y"], name="shift_codes")]
    q, qi = quant("act", "acc", "codes")
    nodes, inits = layer([q, helper.make_node("Add", ["codes", "c"], ["y"], name="offset")],
                         [*qi, const("c", 1.0)])
    with pytest.raises(UnsupportedLayerError,
                       match=r"ONNX node 'offset' \(Add\): adds a constant to an integer "
                             r"tensor \(a non-zero zero point\)"):
        import_qonnx(model(nodes, inits))
    nodes, inits = layer([helper.make_node("Flatten", ["acc"], ["y"], name="flat")], [])
    with pytest.raises(UnsupportedLayerError,
                       match=r"'flat' \(Flatten\): follows the float accumulator of 'fc'"):
        import_qonnx(model(nodes, inits))
    assert pool_nodes


def test_float_input_without_quantizer_is_named():
    gemm = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)
    with pytest.raises(UnsupportedLayerError,
                       match=r"'fc' \(Gemm\): the model input is not quantized"):
        import_qonnx(model([gemm], [const("w", np.ones((3, 4)))]))


def test_dynamic_shape_is_named():
    nodes, inits = layer([], [])
    with pytest.raises(UnsupportedLayerError, match=r"ONNX input 'x' has a dynamic shape "
                                                    r"\['N', 'features'\]"):
        import_qonnx(model(nodes, inits, out="acc", input_dims=["N", "features"]))


def test_residual_join_is_named():
    q0, i0 = quant("qin", "x", "xq")
    add = helper.make_node("Add", ["xq", "xq"], ["y"], name="join")
    with pytest.raises(UnsupportedLayerError,
                       match=r"'join' \(Add\): reads two activation tensors"):
        import_qonnx(model([q0, add], i0))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(UnsupportedLayerError, match="does not exist"):
        import_qonnx(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UnsupportedLayerError, match="bad.onnx' cannot be read"):
        import_qonnx(bad)
