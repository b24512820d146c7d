"""The hardware architecture: stages, PE families and organisations, each kind in one module.

- :mod:`codesign.arch.options`: ``MappingOptions`` (folding, target, sparse, FIFO depth,
  families), frozen and hashable;
- :mod:`codesign.arch.families`: one record per PE family;
- :mod:`codesign.arch.stage` and :mod:`codesign.arch.stages`: the stage protocol and one
  module per stage kind;
- :mod:`codesign.arch.design`: ``Design`` and the ``Organisation`` protocol;
- :mod:`codesign.arch.dataflow`: today's organisation, a streaming dataflow (chains and DAGs).
"""

from __future__ import annotations

from typing import Any

from codesign.arch.dataflow.organisation import Dataflow
from codesign.arch.design import Design, Organisation
from codesign.arch.options import Folding, MappingOptions
from codesign.arch.stage_pool import StagePool
from codesign.errors import OptionError
from codesign.ir import Graph

ORGANISATIONS: dict[str, Organisation] = {org.name: org for org in (Dataflow(),)}
"""Every hardware organisation by name."""


def build_design(graph: Graph, options: MappingOptions | None = None, *,
                 pool: StagePool | None = None, **option_args: Any) -> Design:
    """Map an integer graph onto the organisation the options name.

    ``options`` or the keyword arguments of :meth:`MappingOptions.create` (``folding``,
    ``target_cycles``, ``sparse``, ``fifo_depth``, ``families``) choose the hardware. A
    ``pool`` shares equal stages between the designs of one graph whose nodes stay as they
    are (a sweep's; :mod:`codesign.arch.stage_pool`).
    """
    if options is None:
        options = MappingOptions.create(**option_args)
    elif option_args:
        raise OptionError("give either options= or its keyword arguments, not both")
    elif not isinstance(options, MappingOptions):
        raise OptionError(f"options must be MappingOptions, got {type(options).__name__}; "
                          "pass folding=... as a keyword")
    try:
        organisation = ORGANISATIONS[options.organisation]
    except KeyError:
        raise OptionError(f"unknown organisation {options.organisation!r}; organisations: "
                          + ", ".join(ORGANISATIONS)) from None
    return Design(graph, organisation, organisation.map(graph, options, pool), options)


__all__ = ["ORGANISATIONS", "Design", "Folding", "MappingOptions", "Organisation",
           "build_design"]
