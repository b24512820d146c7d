"""FIFO depths from the stages' beat schedules: on the paths into a join, and on every
stream with ``fifo_depth="auto"``.

A join (add, concatenation) takes beat k of every input together (or in turn per pixel).
When one path delivers beat k long before the other (an identity shortcut beside a branch of
convolutions that first need rows of the map, a 1x1 convolution beside a 3x3 one), the
early path must buffer its beats until the late one catches up, or the fork feeding both
stops and the late path starves: a deadlock, or a design slower than its bottleneck.

The depth comes from the analytical model of every stage: its beat schedule
(:meth:`codesign.arch.stage.Stage.schedule`: when it takes each input beat and offers each
output beat). The model runs the design with unbounded FIFOs on :data:`MODEL_FRAMES`
frames entering at the bottleneck's period (one frame every ``cycles_per_frame`` cycles,
each frame's beats at one per cycle, as fast as the design's input takes them): the steady
state the design reaches. Streams pass width converters (a split offers its pieces on the
cycles after it takes a wide beat, a gather its wide beat the cycle after the last piece;
a split takes one wide beat per piece count of cycles, which paces its producer, and a
fork's every output with it: :meth:`codesign.arch.stage.Stage.throttled`) and FIFOs (a
beat written in cycle t is readable in cycle t + :data:`FIFO_LATENCY`). For each stream
into a join the model counts the beats waiting in its FIFO before each write; a FIFO of
that maximum plus two never refuses a write (a buffered FIFO of depth d takes a write while
fewer than d - 1 beats sit behind its output register), so the design runs the model's
schedule: no deadlock, no stall below the bottleneck.

``fifo_depth="auto"`` sizes every FIFO the same way (:func:`auto_fifo_depths`), with the
design's input paced evenly over each period (a frame's beats spread over the bottleneck's
cycles, not one per cycle from its start), so a stage far from the input does not run
ahead of a slower consumer by a whole frame. Why the depths suffice: every stage starts
each event (taking a beat, issuing a step, offering a beat) as soon as its inputs, its own
earlier events and the space in the FIFO behind it allow, so the hardware's event times
are the least ones meeting those constraints. The modelled schedule meets all of them with
these depths (no write is ever refused; a paced input is only a later input), so the
hardware is never later than the model, whose slowest stage keeps the bottleneck's period.
What is minimal: each depth is the smallest with which the modelled schedule runs without a
refused write. A shallower FIFO may still reach the bottleneck rate when backpressure slows
a producer that has slack; the model does not follow stalled stages, so it does not search
below that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codesign.arch.dataflow.wiring import Stream
from codesign.arch.stage import Stage
from hdl.stage import input_ports, output_ports

MODEL_FRAMES = 4
"""Frames the schedule model runs: the first fills the pipeline, the others repeat."""

FIFO_LATENCY = 2
"""Cycles from a write into an empty buffered FIFO to the beat being readable."""

AUTO_MODEL_FRAMES = 6
"""Frames the automatic sizing models: the first fills the pipeline, the others repeat (a
margin over :data:`MODEL_FRAMES`, as every FIFO depends on it)."""

MIN_AUTO_DEPTH = 2
"""The smallest FIFO the hardware builds (a buffered FIFO's output register and one
entry)."""


def regroup(times: np.ndarray, out_elems: int, in_elems: int) -> np.ndarray:
    """When the beats of a stream offered at ``times`` (``out_elems`` elements each) leave
    a width converter regrouping them into beats of ``in_elems`` elements."""
    if out_elems == in_elems:
        return times
    common = math.gcd(out_elems, in_elems)
    split, gather = out_elems // common, in_elems // common
    pieces = np.asarray(times, dtype=np.int64)
    if split > 1:       # one wide beat taken per `split` cycles, its pieces on the next ones
        steps = np.arange(pieces.size, dtype=np.int64) * split
        taken = np.maximum.accumulate(pieces - steps) + steps
        pieces = (taken[:, None] + 1 + np.arange(split)[None, :]).reshape(-1)
    if gather > 1:      # a wide beat the cycle after its last piece
        pieces = pieces[gather - 1::gather] + 1
    return pieces


def waiting(writes: np.ndarray, reads: np.ndarray) -> int:
    """Most beats in a FIFO just before a write: beats written before minus beats read."""
    if writes.size == 0:
        return 0
    before = np.arange(writes.size) - np.searchsorted(reads, writes, side="left")
    return int(before.max())


@dataclass(frozen=True)
class Traffic:
    """The model's run with unbounded FIFOs: when each stream's beats are written into its
    FIFO and taken by its consumer (by stream index), and each stage's output beats."""

    writes: dict[int, np.ndarray]
    reads: dict[int, np.ndarray]
    outputs: dict[int, list[np.ndarray]]
    """Each stage's output beats, by output port."""

    def peak(self, k: int) -> int:
        """Most beats waiting in stream ``k``'s FIFO before a write."""
        return waiting(self.writes[k], self.reads[k])


def model_traffic(stages: list[Stage], found: list[Stream], source: tuple[int, int],
                  input_size: int, frames: int = MODEL_FRAMES, paced: bool = False
                  ) -> Traffic:
    """Every stage's schedule with unbounded FIFOs and ``frames`` frames of ``input_size``
    elements entering at the bottleneck's period, each frame's beats one per cycle or, when
    ``paced``, spread evenly over the period."""
    period = max(stage.steady_cycles_per_frame for stage in stages)
    configs = [stage.hdl_config for stage in stages]
    feeding = {(s.consumer, s.in_port): k for k, s in enumerate(found)}
    spacing = [[1] * len(output_ports(config)) for config in configs]
    for s in found:         # a converter splitting each beat takes one per `split` cycles
        produced = output_ports(configs[s.producer])[s.out_port].elems
        taken = input_ports(configs[s.consumer])[s.in_port].elems
        spacing[s.producer][s.out_port] = produced // math.gcd(produced, taken)
    outputs: dict[int, list[np.ndarray]] = {}
    writes: dict[int, np.ndarray] = {}
    reads: dict[int, np.ndarray] = {}
    for index, stage in enumerate(stages):
        arrivals = []
        for port, fmt in enumerate(input_ports(configs[index])):
            if (index, port) == source:
                beats = input_size // fmt.elems
                offsets = np.arange(beats) * (max(1, period // beats) if paced else 1)
                arrivals.append((np.arange(frames)[:, None] * period
                                 + offsets[None, :]).reshape(-1))
                continue
            k = feeding[(index, port)]
            s = found[k]
            produced = output_ports(configs[s.producer])[s.out_port]
            writes[k] = regroup(outputs[s.producer][s.out_port], produced.elems, fmt.elems)
            arrivals.append(writes[k] + FIFO_LATENCY)
        schedule = stage.throttled(stage.schedule(arrivals), spacing[index])
        outputs[index] = [schedule.output(port) for port in range(len(spacing[index]))]
        for port, accepts in enumerate(schedule.accepts):
            k = feeding.get((index, port))
            if k is not None:
                reads[k] = np.sort(accepts)
    return Traffic(writes, reads, outputs)


def model_schedule(stages: list[Stage], found: list[Stream], source: tuple[int, int],
                   input_size: int, frames: int = MODEL_FRAMES) -> dict[int, int]:
    """Most beats waiting in each stream's FIFO (by stream index) with unbounded FIFOs and
    ``frames`` frames of ``input_size`` elements entering at the bottleneck's period."""
    traffic = model_traffic(stages, found, source, input_size, frames)
    return {k: traffic.peak(k) for k in traffic.writes}


def join_fifo_depths(stages: list[Stage], found: list[Stream], source: tuple[int, int],
                     input_size: int, joins: frozenset[int]) -> dict[int, int]:
    """Depth of the FIFO on each stream into a join: the model's peak plus two."""
    peaks = model_schedule(stages, found, source, input_size)
    return {k: peaks[k] + 2 for k in joins}


def auto_fifo_depths(stages: list[Stage], found: list[Stream], source: tuple[int, int],
                     input_size: int) -> list[int]:
    """The depth of every stream's FIFO for ``fifo_depth="auto"`` (by stream index): the
    most beats waiting in it in the model's schedule with the design's input paced over
    each period, plus two, and at least :data:`MIN_AUTO_DEPTH` (see the module docstring for
    what this guarantees)."""
    traffic = model_traffic(stages, found, source, input_size, AUTO_MODEL_FRAMES, paced=True)
    return [max(MIN_AUTO_DEPTH, traffic.peak(k) + 2) for k in range(len(found))]
