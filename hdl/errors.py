"""Errors the hardware generators raise for a configuration they cannot build.

They derive from :class:`codesign.errors.CodesignError`, so the command line reports them as
one line naming the stage at fault instead of a traceback from inside Amaranth.
"""

from __future__ import annotations

from codesign.errors import CodesignError


class HardwareConfigError(CodesignError, ValueError):
    """A stage configuration the generators cannot build (names the stage and the limit)."""
