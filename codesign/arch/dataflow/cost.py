"""What a dataflow chain costs, and folding it to a resource budget or a frame rate.

A chain's resources are its stages' (each stage kind's model) plus the FIFOs and width
converters between them (:func:`chain_resources`). With a budget (``lut_budget``,
``dsp_budget``, ``bram_budget``) the automatic folding takes the fastest cycle target whose
design fits; with ``target_fps`` at ``fmax_mhz`` the automatic folding for the cycles per
frame that rate leaves (each engine with the fewest LUTs that keeps it and its window
generator within them: :mod:`codesign.arch.dataflow.folding`); a budget that no folding
meets, or a rate no folding reaches, is a :class:`codesign.errors.BudgetError` naming the
smallest (or fastest) design there is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

from codesign.arch.options import AUTO_FIFO_DEPTH, FifoDepth, MappingOptions
from codesign.arch.resource_model import bits_for, xc7_unstyled_ram
from codesign.arch.stage import Stage
from codesign.arch.stage_pool import StagePool
from codesign.errors import BudgetError
from codesign.ir import Graph, MatVec
from codesign.resources import Resources, total
from hdl.memory import MemorySpec


@lru_cache(maxsize=1024)
def fifo_resources(width: int, depth: int) -> Resources:
    """One inter-stage FIFO (remembered: a sweep's designs have the same few FIFOs).

    A FIFO of depth D is D - 1 words of memory and an output register (Amaranth's
    ``SyncFIFOBuffered``). One word is two registers; otherwise the memory goes where Yosys
    puts it (:func:`~codesign.arch.resource_model.xc7_unstyled_ram`): in block RAM the
    output register is the RAM's; in LUT RAM it is flip-flops, and each 64-word block
    beyond the first adds a write decoder and read multiplexers (a LUT per bit up to four
    blocks, one per bit and four blocks beyond). Pointers and levels: about four LUTs and
    three flip-flops per address bit."""
    words = depth - 1
    if words <= 1:
        return Resources(lut=4, ff=2 * width + 2)
    address = bits_for(words)
    control = Resources(lut=4 * address + 4, ff=3 * address + 1)
    storage = xc7_unstyled_ram(MemorySpec("fifo", width, words, writable=True))
    if storage.bram18 or storage.bram36:
        return control + storage
    blocks = -(-words // 64)
    mux = 0 if blocks == 1 else width // 2 if blocks == 2 else width * (blocks // 4)
    return control + storage + Resources(lut=mux + (blocks if blocks > 1 else 0), ff=width)


def converter_resources(producer_elems: int, consumer_elems: int, elem_bits: int
                        ) -> Resources:
    """A width converter between a producer's and a consumer's beats (a fixed allowance per
    bit of the wider side)."""
    wide = max(producer_elems, consumer_elems) * elem_bits
    return Resources(lut=wide // 2 + 4, ff=wide + 4)


def chain_depths(stages: Sequence[Stage], min_fifo_depth: FifoDepth) -> list[int]:
    """Depth of the FIFO in front of every stage of a chain but the first."""
    if min_fifo_depth == AUTO_FIFO_DEPTH:
        from codesign.arch.dataflow.fifo_sizing import auto_fifo_depths
        from codesign.arch.dataflow.wiring import Stream

        found = [Stream(k, 0, k + 1, 0) for k in range(len(stages) - 1)]
        first = stages[0]
        return auto_fifo_depths(list(stages), found, (0, 0),
                                first.in_beats_per_frame * first.in_elems)
    assert isinstance(min_fifo_depth, int)
    return [stage.hdl_config.input_fifo_depth(min_fifo_depth) for stage in stages[1:]]


def chain_resources(stages: Sequence[Stage], min_fifo_depth: FifoDepth, target: str
                    ) -> Resources:
    """Stages plus the FIFO (and width converter) in front of every stage but the first."""
    parts = [stage.estimate_resources(target) for stage in stages]
    depths = chain_depths(stages, min_fifo_depth)
    for producer, consumer, depth in zip(stages, stages[1:], depths, strict=False):
        config = consumer.hdl_config
        width = config.in_elems * config.in_elem_bits
        parts.append(fifo_resources(width, depth))
        if producer.out_elems != consumer.in_elems:
            parts.append(converter_resources(producer.out_elems, consumer.in_elems,
                                             config.in_elem_bits))
    return total(parts)


def _cycles(stages: Sequence[Stage]) -> int:
    return max(stage.cycles_per_frame for stage in stages)


def _over(resources: Resources, options: MappingOptions) -> list[str]:
    """What exceeds the options' budgets ('' when everything fits)."""
    over = []
    if options.lut_budget is not None and resources.lut > options.lut_budget:
        over.append(f"{resources.lut} LUTs > --lut-budget {options.lut_budget}")
    if options.dsp_budget is not None and resources.dsp > options.dsp_budget:
        over.append(f"{resources.dsp} DSPs > --dsp-budget {options.dsp_budget}")
    bram = resources.bram18_equivalent
    if options.bram_budget is not None and bram > options.bram_budget:
        over.append(f"{bram:g} 18-Kbit BRAMs > --bram-budget {options.bram_budget}")
    return over


def _describe(stages: Sequence[Stage], resources: Resources) -> str:
    folds = ", ".join(f"{s.name} PE={s.pe} SIMD={s.simd}" for s in stages
                      if hasattr(s, "pe"))
    return (f"{_cycles(stages)} cycles/frame ({folds}) needs {resources.lut} LUTs, "
            f"{resources.dsp} DSPs, {resources.bram18_equivalent:g} 18-Kbit BRAMs")


def budgeted_stages(graph: Graph, nodes: list, options: MappingOptions, matvecs: list[MatVec],
                    build: Callable[[int], list[Stage]], pool: StagePool | None = None
                    ) -> list[Stage]:
    """The stages the options' frame rate and budgets choose (see the module docstring);
    ``build(target)`` maps the chain with automatic foldings aiming at ``target``, its
    stages from ``pool``."""
    from codesign.arch.dataflow.mapping import candidate_targets

    target_name = options.resource_target
    depth = options.fifo_depth

    def cost(stages: list[Stage]) -> Resources:
        return chain_resources(stages, depth, target_name)

    if options.target_fps is not None:
        assert options.fmax_mhz is not None
        needed = math.floor(options.fmax_mhz * 1e6 / options.target_fps)
        stages = build(max(needed, 1))
        reached = _cycles(stages)
        if needed < 1 or reached > needed:
            fastest = build(1)
            best = _cycles(fastest)
            raise BudgetError(
                f"--target-fps {options.target_fps:g} at {options.fmax_mhz:g} MHz needs at "
                f"most {needed} cycles per frame; the fastest folding takes {best} "
                f"({options.fmax_mhz * 1e6 / best:.0f} frames/s)")
        if options.budgeted:
            over = _over(cost(stages), options)
            if over:
                raise BudgetError(f"the cheapest folding reaching {options.target_fps:g} "
                                  f"frames/s ({_describe(stages, cost(stages))}) exceeds the "
                                  "budget: " + "; ".join(over))
        return stages
    candidates = candidate_targets(graph, nodes, options, pool)
    smallest = build(candidates[-1])
    smallest_cost = cost(smallest)
    if _over(smallest_cost, options):
        raise BudgetError("no folding fits the budget (" + "; ".join(_over(smallest_cost,
                                                                            options))
                          + f"): the smallest design, {_describe(smallest, smallest_cost)}")
    lo, hi = 0, len(candidates) - 1       # candidates[hi] fits
    chosen = smallest
    while lo < hi:
        mid = (lo + hi) // 2
        stages = build(candidates[mid])
        if _over(cost(stages), options):
            lo = mid + 1
        else:
            hi, chosen = mid, stages
    return chosen if hi < len(candidates) - 1 else smallest
