"""Frontends: translate a network from some source into the codesign IR (and nothing more).

Each frontend lives in its own module and is registered here once. A frontend only
translates: lowering (convolutions to windows, flatten orders, epilogue fusion) and
streamlining are passes (:mod:`codesign.passes`) that every frontend's graph goes through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codesign.frontends.torch import from_quant_model
from codesign.ir import Graph


def from_qonnx(source: Any, **kwargs: Any) -> Graph:
    """QONNX model -> IR graph (needs the ``onnx`` extra; imported on first use)."""
    from codesign.frontends.qonnx import from_qonnx as translate

    return translate(source, **kwargs)


def from_torch_ao(model: Any, input_shape: tuple[int, ...], **kwargs: Any) -> Graph:
    """Converted torch.ao int8 model -> IR graph."""
    from codesign.frontends.torch_ao import from_torch_ao as translate

    return translate(model, input_shape, **kwargs)


FRONTENDS: dict[str, Callable[..., Graph]] = {
    "quant_models": from_quant_model,
    "qonnx": from_qonnx,
    "torch_ao": from_torch_ao,
}
"""Frontend name -> function returning an IR graph."""

__all__ = ["FRONTENDS", "from_qonnx", "from_quant_model", "from_torch_ao"]
