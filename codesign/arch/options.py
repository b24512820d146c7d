"""Mapping options: every hardware choice a user makes for one design, frozen and hashable.

A sweep evaluates many designs of one graph; it keys them by these options. One rule per
option, the same for the command line and the API: ``None`` means "the default" and any
other value is used as given or refused with a one-line error saying what is accepted
(never silently replaced).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codesign.errors import FoldingError, OptionError

DEFAULT_FIFO_DEPTH = 4
"""Smallest FIFO between two stages, in beats."""


@dataclass(frozen=True)
class Folding:
    """Parallelism of one engine: PE rows (output channels) x SIMD lanes (inputs)."""

    pe: int
    simd: int

    @staticmethod
    def parse(layer: str, value: Any) -> Folding:
        """A ``Folding``, a (PE, SIMD) pair or ``"PE,SIMD"`` text; anything else is refused."""
        if isinstance(value, Folding):
            pair: Sequence[Any] = (value.pe, value.simd)
        elif isinstance(value, str):
            pair = value.replace(" ", "").split(",")
        elif isinstance(value, Sequence):
            pair = value
        else:
            pair = ()
        try:
            if len(pair) != 2:
                raise ValueError
            pe, simd = (_positive_int(v) for v in pair)
        except (TypeError, ValueError):
            raise FoldingError(f"layer {layer!r}: folding {value!r} is not accepted; give "
                               "(PE, SIMD) as two positive integers, e.g. (16, 8) or "
                               "'16,8'") from None
        return Folding(pe, simd)


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    number = int(str(value)) if isinstance(value, str) else value
    if not isinstance(number, int) and not (isinstance(number, float)
                                            and number.is_integer()):
        raise ValueError
    if int(number) < 1:
        raise ValueError
    return int(number)


SparseChoice = tuple[str, ...] | float | None
"""Layers on the zero-skipping engine: names, a weight sparsity threshold, or the default."""


@dataclass(frozen=True)
class MappingOptions:
    """Folding, throughput target, sparse choice, FIFO depth and PE families of one design.

    ``folding`` and ``families`` are sorted (layer, value) pairs so equal options hash
    equally; build them with :meth:`create`, which validates what can be checked without
    the graph (layer names are checked when the options meet a graph).
    """

    folding: tuple[tuple[str, Folding], ...] = ()
    target_cycles: int | None = None
    sparse: SparseChoice = None
    fifo_depth: int = DEFAULT_FIFO_DEPTH
    families: tuple[tuple[str, str], ...] = ()
    organisation: str = "dataflow"

    @staticmethod
    def create(folding: Mapping[str, Any] | None = None, *,
               target_cycles: int | None = None,
               sparse: Sequence[str] | float | None = None,
               fifo_depth: int | None = None,
               families: Mapping[str, str] | None = None,
               organisation: str = "dataflow") -> MappingOptions:
        """Validated options; ``None`` for any argument means its default."""
        if folding is not None and not isinstance(folding, Mapping):
            raise FoldingError(f"folding must map layer names to (PE, SIMD), got "
                               f"{type(folding).__name__}")
        folds = tuple(sorted((str(name), Folding.parse(str(name), value))
                             for name, value in (folding or {}).items()))
        if target_cycles is not None:
            if isinstance(target_cycles, bool) or not isinstance(target_cycles, int) \
                    or target_cycles < 1:
                raise OptionError(f"target_cycles={target_cycles!r}: give a whole number of "
                                  "cycles per frame, at least 1 (or leave it unset for the "
                                  "default)")
        if fifo_depth is None:
            fifo_depth = DEFAULT_FIFO_DEPTH
        if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int) or fifo_depth < 2:
            raise OptionError(f"fifo_depth={fifo_depth!r}: a FIFO between stages needs at "
                              "least 2 beats (a whole number >= 2, default "
                              f"{DEFAULT_FIFO_DEPTH})")
        choice: SparseChoice
        if sparse is None:
            choice = None
        elif isinstance(sparse, (int, float)) and not isinstance(sparse, bool):
            if not (0.0 <= float(sparse) <= 1.0) or math.isnan(float(sparse)):
                raise OptionError(f"sparse={sparse!r}: a weight sparsity must be in 0..1")
            choice = float(sparse)
        elif isinstance(sparse, str):
            raise OptionError(f"sparse={sparse!r}: give a list of layer names or a "
                              "sparsity in 0..1")
        else:
            choice = tuple(sorted(str(name) for name in sparse))
        if families is not None and not isinstance(families, Mapping):
            raise OptionError(f"families must map layer names to family names, got "
                              f"{type(families).__name__}")
        fams = tuple(sorted((str(k), str(v)) for k, v in (families or {}).items()))
        return MappingOptions(folds, target_cycles, choice, fifo_depth, fams, organisation)

    def folding_for(self, layer: str) -> Folding | None:
        return dict(self.folding).get(layer)

    def family_for(self, layer: str) -> str | None:
        return dict(self.families).get(layer)

    def named_layers(self) -> dict[str, tuple[str, ...]]:
        """Option name -> the layer names it mentions (checked against the graph)."""
        return {
            "folding": tuple(name for name, _ in self.folding),
            "families": tuple(name for name, _ in self.families),
            "sparse": self.sparse if isinstance(self.sparse, tuple) else (),
        }
