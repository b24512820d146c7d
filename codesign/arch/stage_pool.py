"""Equal stages made once: a pool that hands out one stage object per set of stage choices.

A sweep maps one network under many options; most of its designs share stages (a layer
folded the same way, a FIFO depth that changes no stage). A stage computes what it knows
about itself once per object (its hardware configuration, its resource estimate), so when
the mapping takes its stages from a pool, every design that makes an equal stage gets the
same object and none of that work is repeated.

Two stages are equal when they are of the same kind and every field is equal, the IR node
by identity: a pool is only valid for graphs whose nodes are not changed after mapping (a
sweep's lowered networks; not a test that edits a weight and maps again).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import fields
from typing import Any, TypeVar

from codesign.arch.stage import Stage

S = TypeVar("S", bound=Stage)
T = TypeVar("T")


class StagePool:
    """One stage object per (kind, field values) seen so far, and what the organisation
    derives from the pool's graphs (their checked form, the stages of a set of options)
    made once."""

    def __init__(self) -> None:
        self._stages: dict[tuple[Any, ...], Stage] = {}
        self._made: dict[Hashable, Any] = {}

    def once(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()`` the first time ``key`` is asked for, what it made since (the key names
        the graph and whatever else ``make`` reads; the pool's graphs do not change).
        Nothing is kept of a ``make`` that raised."""
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def get(self, stage: S) -> S:
        """The pooled stage equal to ``stage`` (``stage`` itself the first time)."""
        choices = fields(stage)  # type: ignore[arg-type]  # every stage kind is a dataclass
        key = (type(stage), *(getattr(stage, f.name) for f in choices))
        found = self._stages.setdefault(key, stage)
        assert isinstance(found, type(stage))
        return found
