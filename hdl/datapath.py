"""The pipelined datapath both matrix-vector engines share: lanes, adder tree, accumulator,
epilogue and output register.

An engine's front end (:mod:`hdl.mvu`, :mod:`hdl.sparse`) issues one step per cycle and
hands this datapath, one register stage later, each step's operands (PE weight words and PE
activation words of SIMD elements, in registers) and its control: first and last step of a
neuron fold, and the fold's number. From there every step takes the same stages, one
clock each:

    T  lane terms (XNOR bits, +-x, products)                 -> registered
    P  adder tree of each PE's SIMD terms                     -> registered partial sums
    A  accumulate (the fold's first step starts from zero)    -> accumulator registers
    E  the epilogue's ``latency`` stages (0 when the accumulator is the output)
    -> output register

so an output beat is offered ``DATAPATH_STAGES + epilogue.latency + 1`` cycles after its
fold's last step entered stage T. Nothing in between waits for anything else: initiation
interval 1. Output backpressure freezes the whole engine at once: when the stage that loads
the output register holds a finished fold and the output register cannot take it
(``stall``), no register of the engine, memory read ports included, changes, so no beat is
dropped or repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import stream

from hdl.arith import adder_tree, shape_for_range
from hdl.epilogue import Epilogue, EpilogueOutput
from hdl.lanes import Lane
from hdl.memory import MemoryAttrs

DATAPATH_STAGES = 3
"""Stages T, P and A: from a step's registered operands to its accumulator."""


@lru_cache(maxsize=1024)
def lane_register_bits(lane: Lane, simd: int) -> tuple[int, int]:
    """Bits of one PE's registered lane terms (stage T) and of its registered partial sum
    (stage P), as :func:`build_datapath` declares them (the resource model counts them).

    Every SIMD position computes the same expression on its own element, so the terms all
    have the first one's shape and the tree is summed over signals of that shape: building
    all SIMD expressions of a wide lane took milliseconds. Remembered per lane and SIMD."""
    (term,) = lane.terms(Signal(lane.input_bits, name="x"), Signal(lane.weight_bits, name="w"),
                         1)
    shape = term.shape()
    return simd * shape.width, len(adder_tree([Signal(shape, name="term")] * simd))


def step_control_bits(nf_bits: int) -> int:
    """Registers of one stage's :class:`StepControl`: valid, first, last and the fold."""
    return 3 + nf_bits


@dataclass
class StepControl:
    """A step's control as it moves down the pipeline (all registers but the first)."""

    valid: Value
    first: Value
    last: Value
    nf: Value


def next_stage(m: Module, step: StepControl, advance: Value, name: str) -> StepControl:
    """The step one stage later: registers loaded whenever the pipeline advances."""
    later = StepControl(Signal(name=f"{name}_valid"), Signal(name=f"{name}_first"),
                        Signal(name=f"{name}_last"), Signal.like(step.nf, name=f"{name}_nf"))
    with m.If(advance):
        m.d.sync += [later.valid.eq(step.valid), later.first.eq(step.first),
                     later.last.eq(step.last), later.nf.eq(step.nf)]
    return later


@dataclass
class Datapath:
    """The stages after an engine's operand registers, built by :func:`build_datapath`."""

    stall: Value
    """The engine freezes in this cycle (drive every front-end register's enable with it)."""
    busy: Value
    """A step or a finished fold is in some stage from T to the epilogue's last."""
    param_reads: Value
    """Epilogue parameters of one neuron fold are read in this cycle."""


def build_datapath(m: Module, *, lane: Lane, simd: int, acc_range: tuple[int, int],
                   epilogue: Epilogue, x_words: list[Value], w_words: list[Value],
                   step: StepControl, stall: Signal, out: stream.Interface,
                   memory_attrs: MemoryAttrs | None = None) -> Datapath:
    """Stages T, P, A and the epilogue behind PE operand pairs (``x_words[p]``,
    ``w_words[p]``) whose step is ``step``; drives ``stall`` and the ``out`` stream."""
    advance = ~stall
    acc_shape = shape_for_range(*acc_range)
    lane = lane.bind(m)

    # ---- T: lane terms --------------------------------------------------------------------
    terms = []
    for p, (x_word, w_word) in enumerate(zip(x_words, w_words, strict=True)):
        row = []
        for j, term in enumerate(lane.terms(x_word, w_word, simd)):
            reg = Signal(term.shape(), name=f"term{p}_{j}")
            with m.If(advance):
                m.d.sync += reg.eq(term)
            row.append(reg)
        terms.append(row)
    at_p = next_stage(m, step, advance, "tree")

    # ---- P: adder tree ----------------------------------------------------------------------
    partials = []
    for p, row in enumerate(terms):
        total = adder_tree(row)
        reg = Signal(total.shape(), name=f"partial{p}")
        with m.If(advance):
            m.d.sync += reg.eq(total)
        partials.append(reg)
    at_a = next_stage(m, at_p, advance, "accumulate")

    # ---- A: accumulate ------------------------------------------------------------------------
    accs, acc_next = [], []
    for p, partial in enumerate(partials):
        acc = Signal(acc_shape, name=f"acc{p}")
        nxt = Signal(acc_shape, name=f"acc_next{p}")
        m.d.comb += nxt.eq(Mux(at_a.first, 0, acc) + partial)
        with m.If(at_a.valid & advance):
            m.d.sync += acc.eq(nxt)
        accs.append(acc)
        acc_next.append(nxt)

    # ---- E: the epilogue, then the output register -----------------------------------------
    result: EpilogueOutput = epilogue.pipeline(
        m, acc_next=acc_next, acc=accs, start=at_a.valid & at_a.last, nf=at_a.nf,
        advance=advance, attrs=memory_attrs)
    out_free = ~out.valid | out.ready
    m.d.comb += stall.eq(result.valid & ~out_free)
    with m.If(out.valid & out.ready):
        m.d.sync += out.valid.eq(0)
    with m.If(result.valid & out_free):
        m.d.sync += [out.valid.eq(1), out.payload.eq(Cat(*result.codes))]
    busy = step.valid | at_p.valid | at_a.valid | result.busy
    return Datapath(stall, busy, result.reads)
