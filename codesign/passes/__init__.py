"""Compiler passes over the IR."""

from codesign.passes.streamline import fold_float_maps, streamline, to_xnor_popcount

__all__ = ["fold_float_maps", "streamline", "to_xnor_popcount"]
