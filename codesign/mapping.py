"""Mapping: an integer graph + per-layer hardware choices -> a ``Design``.

A hardware layer is a ``MatVec`` plus the ``MultiThreshold`` that consumes it (if any). This
module picks each layer's PE family from its operand types (overridable), checks and
chooses the folding (PE, SIMD), and produces the engine configurations the hardware
generator consumes, plus the stream packing both the simulator and the reference share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.errors import FoldingError, GraphError
from codesign.ir import (
    Graph,
    IntType,
    MatVec,
    MaxPool,
    MultiThreshold,
    Requantize,
    Reshape,
    SlidingWindow,
)

FAMILIES = {
    ("bipolar", "bipolar"): "xnor_popcount",
    ("bipolar", "int"): "binary_weight",
    ("bipolar", "uint"): "binary_weight",
    ("ternary", "bipolar"): "ternary",
    ("ternary", "ternary"): "ternary",
    ("ternary", "int"): "ternary",
    ("ternary", "uint"): "ternary",
    ("int", "bipolar"): "mac",
    ("int", "ternary"): "mac",
    ("int", "int"): "mac",
    ("int", "uint"): "mac",
    ("uint", "bipolar"): "mac",
    ("uint", "ternary"): "mac",
    ("uint", "int"): "mac",
    ("uint", "uint"): "mac",
}
"""PE family per (weight kind, activation kind): the cheapest engine that is exact."""

SPARSE_FAMILIES = ("ternary", "mac")
"""Families whose weights can be zero, so a zero-skipping engine has something to skip."""

MAC_MAX_BITS = 16
"""The fixed-point MAC engine takes weights and activations of 2 to 16 bits."""


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class Folding:
    """Parallelism of one engine: PE rows (output channels) x SIMD lanes (inputs)."""

    pe: int
    simd: int


@dataclass(eq=False)
class Layer:
    """One engine's worth of the graph and its hardware choices.

    ``post`` is the node that turns the accumulator into the layer's output (thresholds or
    a requantization), or ``None`` when the accumulator is the output.
    """

    name: str
    matvec: MatVec
    post: MultiThreshold | Requantize | None
    input_type: IntType
    output_type: IntType
    family: str
    folding: Folding
    sparse: bool = False
    in_simd: int = 0
    vectors: int = 1

    kind = "mvu"

    def __post_init__(self) -> None:
        if not self.in_simd:
            self.in_simd = self.folding.simd

    @property
    def mw(self) -> int:
        return self.matvec.mw

    @property
    def mh(self) -> int:
        return self.matvec.mh

    @property
    def pe(self) -> int:
        return self.folding.pe

    @property
    def simd(self) -> int:
        return self.folding.simd

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def cycles_per_frame(self) -> int:
        """Issue cycles per input vector: (MH/PE)*(MW/SIMD) at initiation interval 1, or for a
        sparse engine the steps of its busiest PE in every fold (or the input load if longer).
        """
        if self.sparse:
            from hdl.sparse import fold_steps

            return self.vectors * max(sum(fold_steps(self.matvec.weight, self.pe, self.simd)),
                                      self.mw // self.in_simd)
        return self.vectors * self.nf * self.sf

    @property
    def dense_cycles_per_frame(self) -> int:
        return self.vectors * self.nf * self.sf

    @property
    def in_elems(self) -> int:
        return self.in_simd

    @property
    def out_elems(self) -> int:
        return self.pe

    @property
    def weight_sparsity(self) -> float:
        return float(np.mean(self.matvec.weight == 0))

    @property
    def output_tensor(self) -> str:
        return (self.post or self.matvec).outputs[0]


@dataclass(eq=False)
class StreamStage:
    """A stage that moves elements without weights (window generator, pool): its types and
    beat widths follow from its input and its SIMD."""

    name: str
    node: SlidingWindow | MaxPool
    input_type: IntType
    in_shape: tuple[int, ...]
    simd: int

    kind = "stream"

    @property
    def output_type(self) -> IntType:
        return self.input_type

    @property
    def in_elems(self) -> int:
        return self.simd

    @property
    def out_elems(self) -> int:
        return self.simd

    @property
    def output_tensor(self) -> str:
        return self.node.outputs[0]


@dataclass(eq=False)
class WindowStage(StreamStage):
    """A sliding-window generator feeding a convolution's engine SIMD channels per beat."""

    kind = "window"

    @property
    def cycles_per_frame(self) -> int:
        """Output beats per frame: every window element once."""
        h, w, c = self.in_shape
        oh, ow = self.node.output_hw(h, w)
        kh, kw = self.node.kernel
        return oh * ow * kh * kw * c // self.simd


@dataclass(eq=False)
class PoolStage(StreamStage):
    """A streaming max-pool unit taking SIMD channels per beat."""

    kind = "pool"

    @property
    def cycles_per_frame(self) -> int:
        """Input beats per frame: the pool consumes one beat per cycle."""
        h, w, c = self.in_shape
        return h * w * c // self.simd


Stage = Layer | WindowStage | PoolStage


@dataclass(eq=False)
class Design:
    """The graph and its hardware stages (engines, window generators, pools) in stream order."""

    graph: Graph
    layers: list[Stage]
    fifo_depth: int = 4
    """Smallest FIFO between two stages, in beats (see hdl.top.fifo_depth)."""

    @property
    def engines(self) -> list[Layer]:
        """The matrix-vector layers only."""
        return [stage for stage in self.layers if isinstance(stage, Layer)]

    @property
    def input_type(self) -> IntType:
        return self.layers[0].input_type

    @property
    def output_type(self) -> IntType:
        return self.layers[-1].output_type

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise GraphError(f"design has no layer {name!r}; layers: "
                         + ", ".join(layer.name for layer in self.layers))

    @property
    def bottleneck_cycles(self) -> int:
        return max(layer.cycles_per_frame for layer in self.layers)

    def describe(self) -> str:
        lines = []
        for stage in self.layers:
            if not isinstance(stage, Layer):
                lines.append(f"{stage.name}: {stage.kind} {stage.node.describe()} "
                             f"{stage.in_shape} {stage.input_type} SIMD={stage.simd} "
                             f"cycles/frame={stage.cycles_per_frame}")
                continue
            layer = stage
            lines.append(f"{layer.name}: {layer.family}{' sparse' if layer.sparse else ''} "
                         f"{layer.mh}x{layer.mw} "
                         f"{layer.input_type}->{layer.output_type} PE={layer.pe} "
                         f"SIMD={layer.simd} cycles/frame={layer.cycles_per_frame}")
        return "\n".join(lines)


def family_for(matvec: MatVec, input_type: IntType) -> str:
    key = (matvec.weight_type.kind, input_type.kind)
    if key not in FAMILIES:
        accepted = ", ".join(sorted({f"{w} weights x {a} inputs" for w, a in FAMILIES}))
        raise GraphError(f"layer {matvec.name!r}: no engine for {matvec.weight_type} weights "
                         f"x {input_type} inputs; available: {accepted}")
    family = FAMILIES[key]
    if family == "mac":
        for what, t in (("weights", matvec.weight_type), ("inputs", input_type)):
            if t.kind in ("int", "uint") and t.bits > MAC_MAX_BITS:
                raise GraphError(f"layer {matvec.name!r}: {t} {what} are wider than the MAC "
                                 f"engine's {MAC_MAX_BITS} bits; requantize to at most "
                                 f"{MAC_MAX_BITS} bits")
    return family


def check_folding(name: str, mh: int, mw: int, folding: Folding) -> None:
    problems = []
    if folding.pe < 1 or mh % folding.pe:
        problems.append(f"PE={folding.pe} does not divide MH={mh} (valid PE: "
                        f"{', '.join(map(str, divisors(mh)))})")
    if folding.simd < 1 or mw % folding.simd:
        problems.append(f"SIMD={folding.simd} does not divide MW={mw} (valid SIMD: "
                        f"{', '.join(map(str, divisors(mw)))})")
    if problems:
        raise FoldingError(f"layer {name!r}: " + "; ".join(problems))


def auto_folding(mh: int, mw: int, target_cycles: int,
                 simd_options: Sequence[int] | None = None) -> Folding:
    """Least parallel (fewest lanes) folding with (MH/PE)*(MW/SIMD) <= target_cycles.

    Among foldings with the fewest lanes, the one with PE and SIMD closest to each other
    wins: input-buffer re-reads grow as MH/PE and accumulator updates as MW/SIMD, so a
    balanced folding avoids paying heavily for either. A target below 1 cycle is clamped
    to fully parallel.
    """
    best: tuple[int, float, int, Folding] | None = None
    allowed = set(simd_options) if simd_options is not None else None
    for pe in divisors(mh):
        for simd in divisors(mw):
            if allowed is not None and simd not in allowed:
                continue
            if (mh // pe) * (mw // simd) > max(target_cycles, 1):
                continue
            key = (pe * simd, abs(math.log2(pe) - math.log2(simd)), -pe)
            if best is None or key < best[:3]:
                best = (*key, Folding(pe, simd))
    if best is None:
        return Folding(mh, max(allowed) if allowed else mw)
    return best[3]


def build_design(graph: Graph,
                 folding: Mapping[str, Folding | tuple[int, int]] | Sequence[
                     Folding | tuple[int, int]] | None = None,
                 *, target_cycles: int | None = None,
                 families: Mapping[str, str] | None = None,
                 sparse: Sequence[str] | float | None = None,
                 fifo_depth: int = 4) -> Design:
    """Group the graph into hardware stages and fold each engine.

    ``folding`` maps layer names (or gives a list in layer order) to (PE, SIMD); layers
    without an entry are folded automatically to meet ``target_cycles`` per frame
    (default: the cycles of the largest layer at 64 lanes). ``families`` overrides the PE
    family a layer's types call for (only with one that computes the same thing exactly).
    ``sparse`` puts layers on the zero-skipping engine: a list of layer names, or a weight
    sparsity from which on every layer that can (ternary or fixed-point weights) goes sparse.
    A ``SlidingWindow`` becomes a window-generator stage streaming SIMD channels per beat
    into the convolution's engine (so that engine's SIMD must divide the input channels); a
    ``MaxPool`` a pooling stage; a ``Reshape`` costs nothing (the stream order is already
    row-major HWC).
    """
    if not graph.is_integer():
        raise GraphError("build_design needs an integer graph: run codesign.passes.streamline")
    graph.validate()
    items: list[tuple[str, Any]] = []
    for node in graph.nodes:
        if isinstance(node, MatVec):
            items.append(("mvu", [node, None]))
        elif isinstance(node, (MultiThreshold, Requantize)):
            last = items[-1] if items else None
            if last is None or last[0] != "mvu" or last[1][1] is not None or \
                    last[1][0].outputs[0] != node.inputs[0]:
                raise GraphError(f"{node.describe()} does not follow a MatVec; thresholds and "
                                 "requantization must sit right after a matrix-vector product")
            last[1][1] = node
        elif isinstance(node, SlidingWindow):
            items.append(("window", node))
        elif isinstance(node, MaxPool):
            items.append(("pool", node))
        elif isinstance(node, Reshape):
            items.append(("reshape", node))
        else:
            raise GraphError(f"no hardware stage for {node.describe()}")
    groups = [item for kind, item in items if kind == "mvu"]
    names = [mv.name for mv, _ in groups]
    if isinstance(folding, Sequence) and not isinstance(folding, (str, bytes)):
        if len(folding) != len(groups):
            raise FoldingError(f"folding lists {len(folding)} entries for {len(groups)} layers "
                               f"({', '.join(names)})")
        folding = dict(zip(names, folding, strict=True))
    folding = dict(folding or {})
    unknown = set(folding) - set(names)
    if unknown:
        raise FoldingError(f"folding names unknown layer(s) {sorted(unknown)}; layers: "
                           + ", ".join(names))
    families = dict(families or {})
    sparse_names = set(names) if isinstance(sparse, (int, float)) else set(sparse or ())
    unknown_sparse = sparse_names - set(names)
    if unknown_sparse:
        raise GraphError(f"sparse names unknown layer(s) {sorted(unknown_sparse)}; layers: "
                         + ", ".join(names))
    if target_cycles is None:
        target_cycles = max(_vectors(graph, mv) * mv.mh * mv.mw for mv, _ in groups) // 64
    stages: list[Stage] = []
    previous_out: str = graph.input
    pending_window: SlidingWindow | None = None
    for kind, item in items:
        source = item[0].inputs[0] if kind == "mvu" else item.inputs[0]
        if source != previous_out:
            raise GraphError(f"{(item[0] if kind == 'mvu' else item).describe()} does not "
                             "consume the previous stage's output; only chains are supported")
        if kind == "reshape":
            previous_out = item.outputs[0]
            continue
        if kind == "window":
            pending_window = item
            previous_out = item.outputs[0]
            continue
        if kind == "pool":
            info = graph.tensor(source)
            channels = info.shape[-1]
            producer_elems = stages[-1].out_elems if stages else channels
            stages.append(PoolStage(item.name, item, info.dtype, info.shape,
                                    math.gcd(producer_elems, channels)))
            previous_out = item.outputs[0]
            continue
        matvec, post = item
        layer = _fold_layer(graph, matvec, post, folding, families, sparse, sparse_names,
                            target_cycles, pending_window)
        if pending_window is not None:
            info = graph.tensor(pending_window.inputs[0])
            stages.append(WindowStage(pending_window.name, pending_window, info.dtype,
                                      info.shape, layer.simd))
            pending_window = None
        stages.append(layer)
        previous_out = layer.output_tensor
    if pending_window is not None:
        raise GraphError(f"{pending_window.describe()} must feed a MatVec")
    if previous_out != graph.output:
        raise GraphError(f"the last stage produces {previous_out!r}, not the graph output "
                         f"{graph.output!r}")
    if fifo_depth < 2:
        raise FoldingError(f"fifo_depth={fifo_depth}: a FIFO between stages needs at least 2 "
                           "beats")
    return Design(graph, stages, fifo_depth)


def _vectors(graph: Graph, matvec: MatVec) -> int:
    """Vectors per frame of a MatVec: one per pixel of a convolution."""
    return int(math.prod(graph.tensor(matvec.inputs[0]).shape[:-1]))


def _fold_layer(graph: Graph, matvec: MatVec, post: MultiThreshold | Requantize | None,
                folding: dict, families: dict, sparse: Sequence[str] | float | None,
                sparse_names: set[str], target_cycles: int,
                window: SlidingWindow | None) -> Layer:
    input_type = graph.tensor(matvec.inputs[0]).dtype
    family = family_for(matvec, input_type)
    if matvec.name in families and families[matvec.name] != family:
        raise GraphError(f"layer {matvec.name!r}: family {families[matvec.name]!r} cannot "
                         f"run {matvec.weight_type} x {input_type}; it needs {family!r}")
    vectors = _vectors(graph, matvec)
    channels = graph.tensor(window.inputs[0]).shape[-1] if window is not None else matvec.mw
    entry = folding.get(matvec.name)
    if entry is None:
        fold = auto_folding(matvec.mh, matvec.mw, max(1, target_cycles // vectors),
                            simd_options=divisors(channels))
    else:
        fold = entry if isinstance(entry, Folding) else Folding(*entry)
        check_folding(matvec.name, matvec.mh, matvec.mw, fold)
        if channels % fold.simd:
            raise FoldingError(f"layer {matvec.name!r}: SIMD={fold.simd} must divide the "
                               f"{channels} input channels of its sliding window (valid SIMD: "
                               f"{', '.join(map(str, divisors(channels)))})")
    out_name = (post or matvec).outputs[0]
    go_sparse = matvec.name in sparse_names
    if isinstance(sparse, (int, float)):
        go_sparse = family in SPARSE_FAMILIES and float(np.mean(matvec.weight == 0)) >= sparse
    if go_sparse and family not in SPARSE_FAMILIES:
        raise GraphError(f"layer {matvec.name!r}: {matvec.weight_type} weights have no "
                         f"zeros to skip; the sparse engine takes "
                         f"{' or '.join(SPARSE_FAMILIES)} layers")
    return Layer(matvec.name, matvec, post, input_type, graph.tensor(out_name).dtype, family,
                 fold, sparse=go_sparse, vectors=vectors)


def pack_beats(values: np.ndarray, dtype: IntType, elems_per_beat: int) -> list[int]:
    """Frames [N, C] -> stream beats: element j of a beat at bits [j*b, (j+1)*b)."""
    arr = np.asarray(values, dtype=np.int64)
    frames, channels = arr.shape
    if channels % elems_per_beat:
        raise GraphError(f"{channels} elements per frame do not split into beats of "
                         f"{elems_per_beat}")
    codes = dtype.encode(arr).reshape(frames * channels // elems_per_beat, elems_per_beat)
    bits = dtype.bits
    shifts = [j * bits for j in range(elems_per_beat)]
    return [sum(int(code) << shift for code, shift in zip(row.tolist(), shifts, strict=True))
            for row in codes]


def unpack_beats(beats: Sequence[int], dtype: IntType, elems_per_beat: int, channels: int
                 ) -> np.ndarray:
    """Inverse of :func:`pack_beats`: beats -> frames [N, channels] of values."""
    bits = dtype.bits
    mask = (1 << bits) - 1
    codes = np.array([[(beat >> (j * bits)) & mask for j in range(elems_per_beat)]
                      for beat in beats], dtype=np.int64).reshape(-1, channels)
    return dtype.decode(codes)
