"""Compiler passes over the IR."""

from codesign.passes.streamline import fold_batchnorm_sign, streamline, to_xnor_popcount

__all__ = ["fold_batchnorm_sign", "streamline", "to_xnor_popcount"]
