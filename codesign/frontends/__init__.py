"""Frontends: translate a network from some source into the codesign IR (and nothing more).

Each frontend lives in its own module and is registered here once. A frontend only
translates: lowering (convolutions to windows, flatten orders, epilogue fusion) and
streamlining are passes (:mod:`codesign.passes`) that every frontend's graph goes through.
"""

from __future__ import annotations

from codesign.frontends.torch import from_quant_model

FRONTENDS = {"quant_models": from_quant_model}
"""Frontend name -> function returning an IR graph."""

__all__ = ["FRONTENDS", "from_quant_model"]
