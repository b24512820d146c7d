"""PE families: one module per family, registered here once.

A layer's default family is the cheapest (lowest ``rank``) that computes its operand types
exactly; ``MappingOptions.families`` may ask for any other family that also does (a binary
layer on the MAC engine, say), and anything else is refused with the reason.
"""

from __future__ import annotations

from codesign.arch.families.base import Family
from codesign.arch.families.binary_weight import FAMILY as BINARY_WEIGHT
from codesign.arch.families.codebook import FAMILY as CODEBOOK
from codesign.arch.families.mac import FAMILY as MAC
from codesign.arch.families.ternary import FAMILY as TERNARY
from codesign.arch.families.xnor_popcount import FAMILY as XNOR_POPCOUNT
from codesign.errors import FoldingError
from codesign.ir import AccumulatorMode, Codebook, IntType

FAMILIES: dict[str, Family] = {f.name: f for f in (XNOR_POPCOUNT, BINARY_WEIGHT, TERNARY,
                                                   CODEBOOK, MAC)}
"""Every PE family by name, cheapest first."""


def get_family(name: str, layer: str) -> Family:
    """The family called ``name``, or a named error listing the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise FoldingError(f"layer {layer!r}: unknown PE family {name!r}; families: "
                           + ", ".join(FAMILIES)) from None


def choose_family(layer: str, weight_type: IntType, input_type: IntType,
                  requested: str | None = None, accumulation: AccumulatorMode = "dot",
                  codebook: Codebook | None = None) -> Family:
    """The requested family if it runs these operands exactly, else the cheapest that does
    (a layer with shared weights, ``codebook``, may run on any family that computes its
    values; the codebook family stores its indices)."""
    if requested is not None:
        family = get_family(requested, layer)
        why = family.refusal(weight_type, input_type, accumulation, codebook)
        if why is not None:
            able = [f.name for f in FAMILIES.values()
                    if f.refusal(weight_type, input_type, accumulation, codebook) is None]
            raise FoldingError(f"layer {layer!r}: family {requested!r} cannot run "
                               f"{weight_type} x {input_type} ({why}); families that can: "
                               + (", ".join(able) or "none"))
        return family
    refusals = []
    for family in sorted(FAMILIES.values(), key=lambda f: f.rank):
        why = family.refusal(weight_type, input_type, accumulation, codebook)
        if why is None:
            return family
        refusals.append(why)
    raise FoldingError(f"layer {layer!r}: no engine for {weight_type} weights x {input_type} "
                       f"inputs: " + "; ".join(refusals))


__all__ = ["FAMILIES", "Family", "choose_family", "get_family"]
