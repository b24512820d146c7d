"""Errors a user can act on: each names the layer, tensor or option at fault and what is accepted.

They all derive from :class:`CodesignError` so a CLI or a script can catch one type and
print the message instead of a traceback from deep inside a dependency.
"""

from __future__ import annotations


class CodesignError(Exception):
    """Base of every error codesign raises on purpose."""


class GraphError(CodesignError):
    """The IR is malformed (types, shapes, ordering)."""


class UnsupportedLayerError(CodesignError):
    """The frontend met a module it cannot lower to the integer IR."""


class FoldingError(CodesignError):
    """A folding (PE, SIMD) does not fit a layer's matrix."""


class InputError(CodesignError):
    """Inputs handed to the reference or the simulator have the wrong shape or range."""


class MismatchError(CodesignError):
    """Hardware outputs differ from the integer reference."""
