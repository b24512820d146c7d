"""The integer dataflow IR: typed tensors and the nodes that compute on them.

Every tensor carries an exact integer type, so the reference interpreter, the analytical
models and the hardware generators all agree on what a value is and how it is stored. Real
numbers exist only at the edges (``Graph.output_scale``/``output_offset`` for reporting, and
the float ``BatchNorm`` node a frontend emits before streamlining folds it away).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from codesign.errors import GraphError
from hdl.arith import range_bits

TypeKind = Literal["bipolar", "ternary", "int", "uint"]


@dataclass(frozen=True)
class IntType:
    """An exact integer value set and its storage encoding.

    ``bipolar`` is {-1, +1} stored in one bit (1 = +1, 0 = -1); ``ternary`` is {-1, 0, +1}
    stored as 2-bit two's complement; ``intN`` is N-bit two's complement; ``uintN`` is
    N-bit unsigned.
    """

    kind: TypeKind
    bits: int

    def __post_init__(self) -> None:
        if self.kind == "bipolar" and self.bits != 1:
            raise GraphError(f"bipolar type must have bits=1, got {self.bits}")
        if self.kind == "ternary" and self.bits != 2:
            raise GraphError(f"ternary type must have bits=2, got {self.bits}")
        if self.kind in ("int", "uint") and not 1 <= self.bits <= 62:
            raise GraphError(f"{self.kind} type needs 1..62 bits, got {self.bits}")
        if self.kind not in ("bipolar", "ternary", "int", "uint"):
            raise GraphError(f"unknown type kind {self.kind!r}; accepted: bipolar, ternary, "
                             "int, uint")

    @staticmethod
    def bipolar() -> IntType:
        return IntType("bipolar", 1)

    @staticmethod
    def ternary() -> IntType:
        return IntType("ternary", 2)

    @staticmethod
    def int_(bits: int) -> IntType:
        return IntType("int", bits)

    @staticmethod
    def uint(bits: int) -> IntType:
        return IntType("uint", bits)

    @staticmethod
    def parse(text: str) -> IntType:
        """Parse ``"bipolar"``, ``"ternary"``, ``"int8"`` or ``"uint5"``."""
        if text == "bipolar":
            return IntType.bipolar()
        if text == "ternary":
            return IntType.ternary()
        match = re.fullmatch(r"(u?int)(\d+)", text)
        if not match:
            raise GraphError(f"cannot parse type {text!r}; accepted: bipolar, ternary, intN, "
                             "uintN")
        return IntType(match.group(1), int(match.group(2)))  # type: ignore[arg-type]

    @staticmethod
    def for_range(lo: int, hi: int) -> IntType:
        """Smallest intN/uintN type that holds every integer in [lo, hi]."""
        if lo > hi:
            raise GraphError(f"empty range [{lo}, {hi}]")
        bits, is_signed = range_bits(lo, hi)
        return IntType.int_(bits) if is_signed else IntType.uint(bits)

    @property
    def name(self) -> str:
        return self.kind if self.kind in ("bipolar", "ternary") else f"{self.kind}{self.bits}"

    def __str__(self) -> str:
        return self.name

    @property
    def signed(self) -> bool:
        return self.kind != "uint"

    @property
    def min(self) -> int:
        if self.kind == "bipolar":
            return -1
        if self.kind == "ternary":
            return -1
        if self.kind == "int":
            return -(1 << (self.bits - 1))
        return 0

    @property
    def max(self) -> int:
        if self.kind in ("bipolar", "ternary"):
            return 1
        if self.kind == "int":
            return (1 << (self.bits - 1)) - 1
        return (1 << self.bits) - 1

    def contains(self, values: np.ndarray) -> bool:
        """True when every value is a member of this type (bipolar excludes 0)."""
        arr = np.asarray(values)
        if arr.size == 0:
            return True
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                return False
        if self.kind == "bipolar":
            return bool(np.all((arr == 1) | (arr == -1)))
        return bool(arr.min() >= self.min and arr.max() <= self.max)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Storage codes (non-negative ints of ``bits`` bits) for the given values."""
        arr = np.asarray(values, dtype=np.int64)
        if self.kind == "bipolar":
            return (arr > 0).astype(np.int64)
        return arr & ((1 << self.bits) - 1)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Values for storage codes (inverse of :meth:`encode`)."""
        arr = np.asarray(codes, dtype=np.int64)
        if self.kind == "bipolar":
            return np.where(arr & 1, 1, -1).astype(np.int64)
        arr = arr & ((1 << self.bits) - 1)
        if self.kind in ("int", "ternary"):
            arr = np.where(arr >= (1 << (self.bits - 1)), arr - (1 << self.bits), arr)
        return arr.astype(np.int64)


@dataclass(frozen=True)
class TensorInfo:
    """A named tensor of the graph: its per-frame shape and its integer type."""

    name: str
    shape: tuple[int, ...]
    dtype: IntType

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))


def dot_range(weight_type: IntType, input_type: IntType, length: int) -> tuple[int, int]:
    """Exact bounds of a length-K dot product of any weights and inputs of these types.

    Derived from the types alone (not the particular weights) so the accumulator width
    holds for any weights a runtime-loaded memory might contain: overflow is impossible
    by construction.
    """
    corners = [a * b for a in (weight_type.min, weight_type.max)
               for b in (input_type.min, input_type.max)]
    return length * min(corners), length * max(corners)


@dataclass(eq=False)
class Node:
    """Base of every IR node: a name, input and output tensor names."""

    name: str
    inputs: list[str]
    outputs: list[str]

    op_type = "Node"

    def describe(self) -> str:
        return f"{self.op_type} {self.name!r}"


AccumulatorMode = Literal["dot", "xnor_popcount"]


@dataclass(eq=False)
class MatVec(Node):
    """y = W x for each frame (for every pixel: W acts on the last axis); W is [MH, MW].

    ``acc="dot"`` outputs the true integer dot product. ``acc="xnor_popcount"`` (bipolar x
    bipolar only) outputs P = popcount(XNOR(w, x)) = (dot + MW) / 2, the quantity the XNOR
    engine accumulates; the streamline pass rewrites thresholds into that domain so the
    back-transform 2P - K costs no hardware.
    """

    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    weight_type: IntType = field(default_factory=IntType.bipolar)
    acc: AccumulatorMode = "dot"

    op_type = "MatVec"

    @property
    def mh(self) -> int:
        return int(self.weight.shape[0])

    @property
    def mw(self) -> int:
        return int(self.weight.shape[1])

    def output_range(self, input_type: IntType) -> tuple[int, int]:
        if self.acc == "xnor_popcount":
            return 0, self.mw
        return dot_range(self.weight_type, input_type, self.mw)


@dataclass(eq=False)
class MultiThreshold(Node):
    """Per-channel multi-threshold (FINN): out = out_scale * sum_i [x >= T[c, i]] + out_bias.

    Thresholds are integers sorted ascending per channel; a B-bit output uses 2^B - 1 of
    them. A bipolar output has one threshold per channel, out_scale 2 and out_bias -1, so
    the stored bit is exactly [x >= T].
    """

    thresholds: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.int64))
    out_type: IntType = field(default_factory=IntType.bipolar)
    out_scale: int = 2
    out_bias: int = -1

    op_type = "MultiThreshold"


@dataclass(eq=False)
class Requantize(Node):
    """Fixed-point requantization: out = saturate(round_half_even(x * M[c] / 2^shift)).

    ``multiplier`` is one integer per channel (or a single one broadcast); the result is
    clamped to ``out_type``'s range. Integer-only: the reference and the hardware compute it
    with the same integer operations.
    """

    multiplier: np.ndarray = field(default_factory=lambda: np.ones(1, dtype=np.int64))
    shift: int = 0
    out_type: IntType = field(default_factory=lambda: IntType.int_(8))

    op_type = "Requantize"


AccumulatorFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(eq=False)
class FloatMap(Node):
    """A per-channel float function from an integer accumulator to an integer activation.

    The frontend builds it from the source model's own modules (weight/input scales,
    batch-norm, activation, quantizer), so ``evaluate`` reproduces the model's float
    arithmetic exactly on a batch [R, C] of integer accumulator values. Streamlining turns it
    into integer thresholds by evaluating it; the reference refuses to run it.
    """

    evaluate: AccumulatorFunction | None = None
    out_type: IntType = field(default_factory=IntType.bipolar)
    description: str = ""

    op_type = "FloatMap"

    def describe(self) -> str:
        return f"{self.op_type} {self.name!r} ({self.description})"


@dataclass(eq=False)
class SlidingWindow(Node):
    """im2col on an (H, W, C) feature map: (OH, OW, KH*KW*C), window order (ky, kx, c).

    Out-of-image positions read ``pad_value``. The padding rule is explicit because ±1 data
    has no zero: a bipolar map pads with +1 (or any value the source model chose), an
    integer map usually with 0; the reference and the hardware use this same value.
    """

    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    pad_value: int = 0

    op_type = "SlidingWindow"

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        top, left, bottom, right = self.padding
        (kh, kw), (sh, sw) = self.kernel, self.stride
        return (height + top + bottom - kh) // sh + 1, (width + left + right - kw) // sw + 1


@dataclass(eq=False)
class MaxPool(Node):
    """Max over k x k windows of an (H, W, C) map, no padding, floor mode (as torch)."""

    kernel: int = 2
    stride: int = 2

    op_type = "MaxPool"


@dataclass(eq=False)
class Reshape(Node):
    """Same elements in the same (row-major) order, another shape (e.g. flatten HWC)."""

    op_type = "Reshape"


INTEGER_NODES = (MatVec, MultiThreshold, Requantize, SlidingWindow, MaxPool, Reshape)


@dataclass(eq=False)
class Graph:
    """A dataflow graph over per-frame tensors.

    ``tensors`` holds every tensor's shape and type; ``nodes`` are in topological order.
    ``output_scale``/``output_offset`` map the integer output to the real scores of the
    source model (reporting only: argmax and every comparison stay in integers).
    """

    name: str
    input: str
    output: str
    tensors: dict[str, TensorInfo]
    nodes: list[Node]
    output_scale: float = 1.0
    output_offset: float = 0.0

    def tensor(self, name: str) -> TensorInfo:
        try:
            return self.tensors[name]
        except KeyError:
            raise GraphError(f"graph {self.name!r} has no tensor {name!r}") from None

    @property
    def input_info(self) -> TensorInfo:
        return self.tensor(self.input)

    @property
    def output_info(self) -> TensorInfo:
        return self.tensor(self.output)

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise GraphError(f"graph {self.name!r} has no node {name!r}; nodes: "
                         + ", ".join(n.name for n in self.nodes))

    def producer(self, tensor: str) -> Node | None:
        for node in self.nodes:
            if tensor in node.outputs:
                return node
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [node for node in self.nodes if tensor in node.inputs]

    def compute_nodes(self) -> list[MatVec]:
        return [node for node in self.nodes if isinstance(node, MatVec)]

    def is_integer(self) -> bool:
        return all(isinstance(node, INTEGER_NODES) for node in self.nodes)

    def validate(self) -> None:
        """Check every tensor is produced once, consumed in order and typed consistently."""
        produced = {self.input}
        for node in self.nodes:
            for name in node.inputs:
                if name not in produced:
                    raise GraphError(f"{node.describe()} reads {name!r} before it is produced")
            for name in node.outputs:
                if name in produced:
                    raise GraphError(f"{node.describe()} writes {name!r}, already produced")
                self.tensor(name)
                produced.add(name)
            _validate_node(self, node)
        if self.output not in produced:
            raise GraphError(f"graph output {self.output!r} is never produced")

    def summary(self) -> str:
        """One line per node: what it computes and on which types."""
        lines = [f"graph {self.name}: input {self.input} {self.input_info.shape} "
                 f"{self.input_info.dtype}"]
        for node in self.nodes:
            ins = ", ".join(f"{n}:{self.tensor(n).dtype}" for n in node.inputs)
            outs = ", ".join(f"{n}:{self.tensor(n).dtype}{list(self.tensor(n).shape)}"
                             for n in node.outputs)
            extra = ""
            if isinstance(node, MatVec):
                extra = f" [{node.mh}x{node.mw} {node.weight_type}, acc={node.acc}]"
            elif isinstance(node, MultiThreshold):
                extra = f" [{node.thresholds.shape[1]} thresholds/channel]"
            lines.append(f"  {node.op_type} {node.name}: {ins} -> {outs}{extra}")
        return "\n".join(lines)


def _validate_node(graph: Graph, node: Node) -> None:
    if isinstance(node, SlidingWindow):
        (src,), (dst,) = node.inputs, node.outputs
        x, y = graph.tensor(src), graph.tensor(dst)
        if len(x.shape) != 3:
            raise GraphError(f"{node.describe()}: input {src}{x.shape} is not (H, W, C)")
        h, w, c = x.shape
        (kh, kw), pads = node.kernel, node.padding
        if max(pads[0], pads[2]) >= kh or max(pads[1], pads[3]) >= kw or min(pads) < 0:
            raise GraphError(f"{node.describe()}: padding {pads} must be 0..kernel-1 "
                             f"for kernel {node.kernel}")
        if h + pads[0] + pads[2] < kh or w + pads[1] + pads[3] < kw:
            raise GraphError(f"{node.describe()}: feature map {h}x{w} (padded "
                             f"{h + pads[0] + pads[2]}x{w + pads[1] + pads[3]}) is smaller "
                             f"than the {kh}x{kw} kernel")
        oh, ow = node.output_hw(h, w)
        if y.shape != (oh, ow, kh * kw * c) or y.dtype != x.dtype:
            raise GraphError(f"{node.describe()}: output must be {x.dtype}"
                             f"{(oh, ow, kh * kw * c)}, is {y.dtype}{y.shape}")
        if not x.dtype.contains(np.array([node.pad_value])):
            raise GraphError(f"{node.describe()}: pad value {node.pad_value} is not a "
                             f"{x.dtype} value")
    elif isinstance(node, MaxPool):
        (src,), (dst,) = node.inputs, node.outputs
        x, y = graph.tensor(src), graph.tensor(dst)
        if len(x.shape) != 3 or x.shape[0] < node.kernel or x.shape[1] < node.kernel:
            raise GraphError(f"{node.describe()}: input {src}{x.shape} must be (H, W, C) "
                             f"with H, W >= {node.kernel}")
        oh = (x.shape[0] - node.kernel) // node.stride + 1
        ow = (x.shape[1] - node.kernel) // node.stride + 1
        if y.shape != (oh, ow, x.shape[2]) or y.dtype != x.dtype:
            raise GraphError(f"{node.describe()}: output must be {x.dtype}"
                             f"{(oh, ow, x.shape[2])}, is {y.dtype}{y.shape}")
    elif isinstance(node, Reshape):
        (src,), (dst,) = node.inputs, node.outputs
        x, y = graph.tensor(src), graph.tensor(dst)
        if x.size != y.size or x.dtype != y.dtype:
            raise GraphError(f"{node.describe()}: {src}{x.shape} cannot become {dst}{y.shape}")
    elif isinstance(node, MatVec):
        (src,), (dst,) = node.inputs, node.outputs
        x, y = graph.tensor(src), graph.tensor(dst)
        if (node.weight.ndim != 2 or x.shape[-1:] != (node.mw,)
                or y.shape != x.shape[:-1] + (node.mh,)):
            raise GraphError(f"{node.describe()}: weight {node.weight.shape} does not map "
                             f"{src}{x.shape} to {dst}{y.shape}")
        if not node.weight_type.contains(node.weight):
            raise GraphError(f"{node.describe()}: weights are not all {node.weight_type}")
        if node.acc == "xnor_popcount" and not (
                node.weight_type.kind == "bipolar" and x.dtype.kind == "bipolar"):
            raise GraphError(f"{node.describe()}: xnor_popcount needs bipolar weights and "
                             f"inputs, got {node.weight_type} x {x.dtype}")
        lo, hi = node.output_range(x.dtype)
        if not (y.dtype.min <= lo and hi <= y.dtype.max):
            raise GraphError(f"{node.describe()}: output type {y.dtype} cannot hold the "
                             f"accumulator range [{lo}, {hi}]")
    elif isinstance(node, Requantize):
        (src,), (dst,) = node.inputs, node.outputs
        x, y = graph.tensor(src), graph.tensor(dst)
        mult = np.asarray(node.multiplier)
        if x.shape != y.shape or mult.size not in (1, x.shape[-1]):
            raise GraphError(f"{node.describe()}: {mult.size} multipliers for {x.size} "
                             f"channels, {src}{x.shape} -> {dst}{y.shape}")
        if node.shift < 0 or node.shift > 62:
            raise GraphError(f"{node.describe()}: shift {node.shift} outside 0..62")
        if y.dtype != node.out_type:
            raise GraphError(f"{node.describe()}: output tensor is {y.dtype}, node saturates "
                             f"to {node.out_type}")
    elif isinstance(node, MultiThreshold):
        (src,), (dst,) = node.inputs, node.outputs
        x, y = graph.tensor(src), graph.tensor(dst)
        th = node.thresholds
        if th.ndim != 2 or th.shape[0] != x.shape[-1] or x.shape != y.shape:
            raise GraphError(f"{node.describe()}: thresholds {th.shape} do not fit "
                             f"{src}{x.shape} -> {dst}{y.shape}")
        if th.shape[1] > 1 and np.any(np.diff(th, axis=1) < 0):
            raise GraphError(f"{node.describe()}: thresholds must be ascending per channel")
        lo = node.out_bias
        hi = node.out_bias + node.out_scale * th.shape[1]
        if not y.dtype.contains(np.array([lo, hi])):
            raise GraphError(f"{node.describe()}: outputs {lo}..{hi} do not fit {y.dtype}")
