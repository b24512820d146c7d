"""Design -> Verilog: the one artefact simulation and synthesis both take.

The organisation builds the top component from its stages' configurations; with
``counters=False`` no stage has any counter logic (what synthesis should see), with
``counters=True`` the top has a ``perf`` port listing every stage's counters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from codesign.arch.design import Design
from hdl.perf import Counter
from hdl.top import emit_verilog

TOP_NAME = "codesign_top"


@dataclass(frozen=True)
class VerilogArtefact:
    """Generated Verilog and what a testbench or a synthesis flow needs to know about it."""

    text: str = field(repr=False)
    top: str
    in_width: int
    out_width: int
    counters: tuple[tuple[str, Counter], ...]
    """(stage name, counter) of each 32-bit field of the ``perf`` port, low bits first;
    empty when the design was generated without counters."""

    @property
    def digest(self) -> str:
        """Content hash of the Verilog, memory images included (what synthesis sees; a
        simulation build is keyed without the read-only memories' images, see
        :mod:`sim.memory_images`)."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def counter_index(self, stage: str, counter: Counter) -> int:
        return self.counters.index((stage, counter))


def generate_verilog(design: Design, *, counters: bool = True, top: str = TOP_NAME
                     ) -> VerilogArtefact:
    """The design's Verilog (module ``top``) with or without performance counters."""
    component = design.organisation.build_top(design, counters)
    names = tuple(getattr(component, "counter_names", ())) if counters else ()
    return VerilogArtefact(emit_verilog(component, top), top, len(component.i.payload),
                           len(component.o.payload), names)
