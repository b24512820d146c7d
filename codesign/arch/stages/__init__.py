"""Stage kinds: one module per kind, registered here once.

A stage kind implements :class:`codesign.arch.stage.Stage` next to the hardware
configuration it builds. Adding a kind touches its own module, its ``hdl`` component and
this registry; organisations decide which IR nodes become which kind.
"""

from __future__ import annotations

from codesign.arch.stage import Stage
from codesign.arch.stages.add import AddStage
from codesign.arch.stages.concat import ConcatStage
from codesign.arch.stages.engine import EngineStage
from codesign.arch.stages.fork import ForkStage
from codesign.arch.stages.global_pool import GlobalPoolStage
from codesign.arch.stages.mvu import DenseEngine
from codesign.arch.stages.pool import PoolStage
from codesign.arch.stages.sparse_mvu import SparseEngine
from codesign.arch.stages.window import WindowStage

STAGE_KINDS: dict[str, type[Stage]] = {
    kind.kind: kind for kind in (DenseEngine, SparseEngine, WindowStage, PoolStage, ForkStage,
                                 AddStage, ConcatStage, GlobalPoolStage)
}
"""Every stage kind by its name."""

__all__ = ["STAGE_KINDS", "AddStage", "ConcatStage", "DenseEngine", "EngineStage", "ForkStage",
           "GlobalPoolStage", "PoolStage", "SparseEngine", "Stage", "WindowStage"]
