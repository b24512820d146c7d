"""Errors a user can act on: each names the layer, tensor, option or file at fault and what is
accepted.

Every error codesign, its hardware generators (``hdl.errors``) and its simulator
(``sim.errors``) raise on purpose derives from :class:`CodesignError`, so the command line
and scripts catch one type and print one line instead of a traceback from deep inside a
dependency.
"""

from __future__ import annotations


class CodesignError(Exception):
    """Base of every error raised on purpose."""


class GraphError(CodesignError):
    """The IR is malformed (types, shapes, ordering)."""


class UnsupportedLayerError(CodesignError):
    """A frontend met a module it cannot lower to the integer IR."""


class FoldingError(CodesignError):
    """A folding (PE, SIMD) or another mapping option does not fit a layer."""


class OptionError(CodesignError):
    """An option (command line or API) has a value that is not accepted."""


class InputError(CodesignError):
    """Inputs handed to the reference or the simulator have the wrong shape, type or range."""


class EnergyTableError(CodesignError):
    """An energy table file cannot be read or lacks what the energy model needs."""


class MismatchError(CodesignError):
    """Hardware outputs differ from the integer reference."""


class SynthesisError(CodesignError):
    """Synthesis or place and route failed, or their output could not be read."""


class UnknownTargetError(SynthesisError):
    """A synthesis target (FPGA family) or part the tools do not know."""


class DoesNotFitError(SynthesisError):
    """A design needs more of some resource than the named part has."""


class BudgetError(FoldingError):
    """No folding meets a resource budget or a frame-rate target."""


class MissingDependencyError(CodesignError):
    """An optional dependency (an extra of the package) is not installed."""


class DataError(CodesignError):
    """A data set directory or file cannot be read or is not in the expected format."""


class SweepError(CodesignError):
    """A sweep file names an unknown axis, option or example, or gives a value not accepted."""


class SchedulerError(CodesignError):
    """The Dask scheduler a sweep was given cannot be reached."""
