"""The integer dataflow IR: typed tensors and the nodes that compute on them.

Every tensor carries an exact integer type, so the reference interpreter, the analytical
models and the hardware generators all agree on what a value is and how it is stored. Real
numbers exist only at the edges (``Graph.output_scale``/``output_offset`` for reporting, and
the ``FloatMap`` a frontend emits before streamlining folds it into thresholds).

Each node states its own semantics in one place: :meth:`Node.check` validates it against the
graph's tensor types and shapes, :meth:`Node.execute` computes it on a batch of frames with
exact int64 arithmetic (the reference interpreter only walks the graph). A graph is a DAG:
nodes take lists of inputs, tensors are looked up by name, and a tensor may feed several
consumers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from codesign.bits import range_bits
from codesign.errors import GraphError

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


@dataclass(frozen=True)
class Codebook:
    """Weight sharing: a layer's weights are ``index_bits``-bit indices into ``values``.

    The IR keeps the weights themselves (the reference computes with them); the codebook
    states how the hardware stores them: each weight is the index of its value here, and an
    engine holds the table. Entry 0 is the zero weight (the code a zero-skipping engine pads
    with and a dense engine gates), the other entries are distinct non-zero integers.
    """

    values: tuple[int, ...]
    index_bits: int

    def __post_init__(self) -> None:
        values = tuple(self.values)
        if not 1 <= self.index_bits <= 16:
            raise GraphError(f"codebook index_bits={self.index_bits}: indices have 1..16 bits")
        for v in values:
            if isinstance(v, bool) or not float(v).is_integer():
                raise GraphError(f"codebook value {v!r} is not an integer: shared values must "
                                 "lie on the layer's fixed-point grid (whole multiples of its "
                                 "step)")
        values = tuple(int(v) for v in values)
        if len(values) > 1 << self.index_bits:
            raise GraphError(f"a codebook of {len(values)} entries does not fit "
                             f"{self.index_bits}-bit indices (at most {1 << self.index_bits})")
        if not values or values[0] != 0:
            raise GraphError(f"codebook {list(values)}: entry 0 must be the zero weight (code 0 "
                             "is what a gated or skipped lane holds)")
        if len(set(values)) != len(values):
            raise GraphError(f"codebook {list(values)} repeats a value")
        object.__setattr__(self, "values", values)

    @staticmethod
    def covering(weight: np.ndarray, index_bits: int) -> Codebook:
        """The codebook of the distinct values of ``weight``: zero first, then ascending."""
        used = sorted(int(v) for v in np.unique(np.asarray(weight)) if v != 0)
        return Codebook((0, *used), index_bits)

    def indices(self, weight: np.ndarray) -> np.ndarray:
        """The index of every weight's value (int64, the weight's shape)."""
        arr = np.asarray(weight, dtype=np.int64)
        table = np.asarray(self.values, dtype=np.int64)
        order = np.argsort(table)
        pos = np.clip(np.searchsorted(table[order], arr), 0, len(table) - 1)
        found = table[order][pos] == arr
        if not np.all(found):
            missing = int(arr[~found].reshape(-1)[0])
            raise GraphError(f"weight {missing} is not in the codebook {list(self.values)}")
        return order[pos].astype(np.int64)

    def describe(self) -> str:
        return f"codebook {len(self.values)}/{1 << self.index_bits} ({self.index_bits}-bit)"


def dot_range(weight_type: IntType, input_type: IntType, length: int) -> tuple[int, int]:
    """Exact bounds of a length-K dot product of any weights and inputs of these types.

    Derived from the types alone (not the particular weights) so the accumulator width
    holds for any weights a runtime-loaded memory might contain: overflow is impossible
    by construction.
    """
    corners = [a * b for a in (weight_type.min, weight_type.max)
               for b in (input_type.min, input_type.max)]
    return length * min(corners), length * max(corners)


Batch = np.ndarray
"""A batch of frames, int64, shape [N, *tensor shape]."""


@dataclass(eq=False)
class Node:
    """Base of every IR node: a name, input tensor names and one output tensor name."""

    name: str
    inputs: list[str]
    outputs: list[str]

    op_type: ClassVar[str] = "Node"
    integer: ClassVar[bool] = True
    """Whether the integer reference and the hardware can run this node."""

    def describe(self) -> str:
        return f"{self.op_type} {self.name!r}"

    def detail(self) -> str:
        """A short account of the node's parameters for :meth:`Graph.summary`."""
        return ""

    @property
    def output(self) -> str:
        return self.outputs[0]

    def check(self, graph: Graph) -> None:
        """Raise :class:`GraphError` unless the node fits its tensors' types and shapes."""

    def execute(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        """The output batch for the input batches (one per input tensor, same order)."""
        raise GraphError(f"the integer reference cannot execute {self.describe()}: run the "
                         "codesign.passes pipeline first (streamlining folds float scales, "
                         "batch-norm and activation quantizers into integer thresholds)")

    def _io(self, graph: Graph) -> tuple[TensorInfo, TensorInfo]:
        """Input and output tensor of a one-input node."""
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise GraphError(f"{self.describe()} takes one input and gives one output, has "
                             f"inputs {self.inputs} and outputs {self.outputs}")
        return graph.tensor(self.inputs[0]), graph.tensor(self.outputs[0])


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

    def detail(self) -> str:
        return f"[{self.thresholds.shape[1]} thresholds/channel]"

    def apply(self, x: Batch) -> Batch:
        counts = (x[..., None] >= self.thresholds).sum(axis=-1)
        return counts.astype(np.int64) * self.out_scale + self.out_bias

    def check(self, graph: Graph) -> None:
        x, y = self._io(graph)
        self.check_shapes(x.shape, y)

    def check_shapes(self, shape: tuple[int, ...], y: TensorInfo) -> None:
        th = self.thresholds
        if th.ndim != 2 or th.shape[0] != shape[-1] or shape != y.shape:
            raise GraphError(f"{self.describe()}: thresholds {th.shape} do not fit "
                             f"{shape} -> {y.name}{y.shape}")
        if th.shape[1] > 1 and np.any(np.diff(th, axis=1) < 0):
            raise GraphError(f"{self.describe()}: thresholds must be ascending per channel")
        lo = self.out_bias
        hi = self.out_bias + self.out_scale * th.shape[1]
        if not y.dtype.contains(np.array([lo, hi])):
            raise GraphError(f"{self.describe()}: outputs {lo}..{hi} do not fit {y.dtype}")

    def execute(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        return self.apply(inputs[0])


def requantize(x: np.ndarray, multiplier: np.ndarray | int, shift: int, lo: int, hi: int,
               offset: np.ndarray | int = 0) -> np.ndarray:
    """saturate(round_half_even((x * M + offset) / 2^shift)) in exact int64 arithmetic."""
    product = (np.asarray(x, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
               + np.asarray(offset, dtype=np.int64))
    if shift:
        floor = product >> shift                    # arithmetic shift: floor division
        rem = product - (floor << shift)            # in [0, 2^shift)
        half = 1 << (shift - 1)
        product = floor + ((rem > half) | ((rem == half) & ((floor & 1) == 1)))
    return np.clip(product, lo, hi)


@dataclass(eq=False)
class Requantize(Node):
    """Fixed-point requantization: out = saturate(round_half_even((x * M[c] + O[c]) / 2^shift)).

    ``multiplier`` is one integer per channel (or a single one broadcast); ``offset`` (O,
    default 0) one integer per channel or a single one: it states a bias, an input zero point
    folded through the weights and an output zero point (O = zero_point * 2^shift) in the
    units of the scaled accumulator. The result is clamped to ``saturate`` (lo, hi), by
    default ``out_type``'s range (a narrow-range quantizer clamps to -(2^(b-1) - 1) instead,
    a fused ReLU at the output zero point). Integer-only: the reference and the hardware
    compute it with the same integer operations.
    """

    multiplier: np.ndarray = field(default_factory=lambda: np.ones(1, dtype=np.int64))
    shift: int = 0
    out_type: IntType = field(default_factory=lambda: IntType.int_(8))
    saturate: tuple[int, int] | None = None
    offset: np.ndarray | int = 0

    op_type = "Requantize"

    @property
    def bounds(self) -> tuple[int, int]:
        """The clamp range: ``saturate`` or the output type's whole range."""
        return self.saturate or (self.out_type.min, self.out_type.max)

    def detail(self) -> str:
        lo, hi = self.bounds
        offset = "" if not np.any(np.asarray(self.offset)) else "+O"
        return f"[(x*M{offset})>>{self.shift}, saturate to {lo}..{hi} ({self.out_type})]"

    def offsets(self, channels: int) -> np.ndarray:
        """The offset of every channel."""
        return np.broadcast_to(np.asarray(self.offset, dtype=np.int64).reshape(-1),
                               (channels,)).copy()

    def apply(self, x: Batch) -> Batch:
        mult = np.asarray(self.multiplier, dtype=np.int64).reshape(-1)
        offset = np.asarray(self.offset, dtype=np.int64).reshape(-1)
        lo, hi = self.bounds
        return requantize(x, mult if mult.size > 1 else mult[0], self.shift, lo, hi,
                          offset if offset.size > 1 else offset[0])

    def check(self, graph: Graph) -> None:
        x, y = self._io(graph)
        self.check_shapes(x.shape, y)

    def check_shapes(self, shape: tuple[int, ...], y: TensorInfo) -> None:
        mult = np.asarray(self.multiplier)
        offset = np.asarray(self.offset)
        if shape != y.shape or mult.size not in (1, shape[-1]) \
                or offset.size not in (1, shape[-1]):
            raise GraphError(f"{self.describe()}: {mult.size} multipliers and {offset.size} "
                             f"offsets for {shape[-1]} channels, {shape} -> {y.name}{y.shape}")
        if self.shift < 0 or self.shift > 62:
            raise GraphError(f"{self.describe()}: shift {self.shift} outside 0..62")
        if y.dtype != self.out_type:
            raise GraphError(f"{self.describe()}: output tensor is {y.dtype}, node saturates "
                             f"to {self.out_type}")
        lo, hi = self.bounds
        if not (self.out_type.min <= lo <= hi <= self.out_type.max):
            raise GraphError(f"{self.describe()}: saturation {lo}..{hi} is not within "
                             f"{self.out_type}")

    def execute(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        return self.apply(inputs[0])


AccumulatorMode = Literal["dot", "xnor_popcount"]
Epilogue = MultiThreshold | Requantize


@dataclass(eq=False)
class AccumulatorNode(Node):
    """A node that computes an exact integer accumulator and may end in a fused epilogue.

    The accumulator's bounds follow from the input types alone (:meth:`accumulator_range`),
    so streamlining can fold the float map after it into thresholds over that range, and
    :func:`codesign.passes.lower.fuse_epilogues` can fuse the thresholds (or a
    requantization) into the node as ``post``: one hardware stage computes both, and the
    node's output is then the epilogue's.
    """

    post: Epilogue | None = None

    def accumulator_range(self, graph: Graph) -> tuple[int, int]:
        """Exact bounds of the accumulator (before any fused epilogue)."""
        raise NotImplementedError

    def accumulate_inputs(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        """The accumulator for the input batches."""
        raise NotImplementedError

    def execute(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        acc = self.accumulate_inputs(inputs, graph)
        return acc if self.post is None else self.post.apply(acc)

    def post_detail(self) -> str:
        return "" if self.post is None else f" -> {self.post.op_type} {self.post.detail()}"

    def check_output(self, graph: Graph, acc_shape: tuple[int, ...]) -> None:
        """The output tensor holds the epilogue's codes, or the whole accumulator range."""
        y = graph.tensor(self.output)
        if self.post is not None:
            self.post.check_shapes(acc_shape, y)
            return
        if y.shape != acc_shape:
            raise GraphError(f"{self.describe()}: output must have shape {acc_shape}, "
                             f"{y.name} has {y.shape}")
        lo, hi = self.accumulator_range(graph)
        if not (y.dtype.min <= lo and hi <= y.dtype.max):
            raise GraphError(f"{self.describe()}: output type {y.dtype} cannot hold the "
                             f"accumulator range [{lo}, {hi}]")


@dataclass(eq=False)
class MatVec(AccumulatorNode):
    """y = W x for each frame (for every pixel: W acts on the last axis); W is [MH, MW].

    ``acc="dot"`` outputs the true integer dot product. ``acc="xnor_popcount"`` (bipolar x
    bipolar only) outputs P = popcount(XNOR(w, x)) = (dot + MW) / 2, the quantity the XNOR
    engine accumulates; the streamline pass rewrites thresholds into that domain so the
    back-transform 2P - K costs no hardware. ``post`` is the epilogue fused into the node
    by :func:`codesign.passes.lower.fuse_epilogues` (thresholds or a requantization applied to
    the accumulator); the node's output is then the epilogue's.
    """

    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    weight_type: IntType = field(default_factory=IntType.bipolar)
    acc: AccumulatorMode = "dot"
    codebook: Codebook | None = None
    """Shared weights: stored as indices into this table (``None``: stored as values)."""

    op_type = "MatVec"

    @property
    def mh(self) -> int:
        return int(self.weight.shape[0])

    @property
    def mw(self) -> int:
        return int(self.weight.shape[1])

    def output_range(self, input_type: IntType) -> tuple[int, int]:
        """Exact bounds of the accumulator (before any fused epilogue)."""
        if self.acc == "xnor_popcount":
            return 0, self.mw
        return dot_range(self.weight_type, input_type, self.mw)

    def accumulator_type(self, input_type: IntType) -> IntType:
        return IntType.for_range(*self.output_range(input_type))

    def accumulator_range(self, graph: Graph) -> tuple[int, int]:
        return self.output_range(graph.tensor(self.inputs[0]).dtype)

    def detail(self) -> str:
        shared = "" if self.codebook is None else f" {self.codebook.describe()}"
        return (f"[{self.mh}x{self.mw} {self.weight_type}{shared}, acc={self.acc}"
                f"{self.post_detail()}]")

    def accumulate(self, x: Batch) -> Batch:
        dot = x @ self.weight.T.astype(np.int64)
        if self.acc == "xnor_popcount":
            return (dot + self.mw) // 2
        return dot

    def accumulate_inputs(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        return self.accumulate(inputs[0])

    def check(self, graph: Graph) -> None:
        x, y = self._io(graph)
        acc_shape = x.shape[:-1] + (self.mh,)
        if self.weight.ndim != 2 or x.shape[-1:] != (self.mw,) or y.shape != acc_shape:
            raise GraphError(f"{self.describe()}: weight {self.weight.shape} does not map "
                             f"{x.name}{x.shape} to {y.name}{y.shape}")
        if not self.weight_type.contains(self.weight):
            raise GraphError(f"{self.describe()}: weights are not all {self.weight_type}")
        check_codebook(self, self.weight)
        if self.acc == "xnor_popcount" and not (
                self.weight_type.kind == "bipolar" and x.dtype.kind == "bipolar"):
            raise GraphError(f"{self.describe()}: xnor_popcount needs bipolar weights and "
                             f"inputs, got {self.weight_type} x {x.dtype}")
        lo, hi = self.output_range(x.dtype)
        if self.post is not None:
            self.post.check_shapes(acc_shape, y)
            return
        if not (y.dtype.min <= lo and hi <= y.dtype.max):
            raise GraphError(f"{self.describe()}: output type {y.dtype} cannot hold the "
                             f"accumulator range [{lo}, {hi}]")


def check_codebook(node: MatVec | Conv, weight: np.ndarray) -> None:
    """A node's codebook must hold every weight value and fit the weight type."""
    codebook = node.codebook
    if codebook is None:
        return
    if not node.weight_type.contains(np.asarray(codebook.values)):
        raise GraphError(f"{node.describe()}: codebook values {list(codebook.values)} are not "
                         f"all {node.weight_type}")
    try:
        codebook.indices(weight)
    except GraphError as exc:
        raise GraphError(f"{node.describe()}: {exc}") from None


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
    requantize: bool = False
    """The source computes a fixed-point requantization (round(acc * m + b) + z, as torch's
    int8 kernels): streamlining states it as a ``Requantize`` when one reproduces every
    threshold of the map, and keeps the thresholds otherwise."""

    op_type = "FloatMap"
    integer = False

    def describe(self) -> str:
        return f"{self.op_type} {self.name!r} ({self.description})"


def window_output_hw(height: int, width: int, kernel: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int, int, int]) -> tuple[int, int]:
    """Output rows and columns of a window sweep (floor mode, as torch)."""
    top, left, bottom, right = padding
    (kh, kw), (sh, sw) = kernel, stride
    return (height + top + bottom - kh) // sh + 1, (width + left + right - kw) // sw + 1


def sliding_window(x: Batch, kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int, int, int], pad_value: int) -> Batch:
    """[N, H, W, C] -> [N, OH, OW, KH*KW*C] with window order (ky, kx, c)."""
    top, left, bottom, right = padding
    (kh, kw), (sh, sw) = kernel, stride
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)),
                    constant_values=pad_value)
    n, _, _, c = x.shape
    oh, ow = window_output_hw(x.shape[1], x.shape[2], kernel, stride, padding)
    out = np.empty((n, oh, ow, kh, kw, c), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            out[:, :, :, ky, kx, :] = padded[:, ky:ky + sh * (oh - 1) + 1:sh,
                                             kx:kx + sw * (ow - 1) + 1:sw, :]
    return out.reshape(n, oh, ow, kh * kw * c)


def _check_window(node: Node, x: TensorInfo, kernel: tuple[int, int], stride: tuple[int, int],
                  padding: tuple[int, int, int, int], pad_value: int) -> tuple[int, int]:
    """Shared geometry checks of a window sweep; returns (OH, OW)."""
    if len(x.shape) != 3:
        raise GraphError(f"{node.describe()}: input {x.name}{x.shape} is not (H, W, C)")
    h, w, _ = x.shape
    kh, kw = kernel
    if max(padding[0], padding[2]) >= kh or max(padding[1], padding[3]) >= kw \
            or min(padding) < 0:
        raise GraphError(f"{node.describe()}: padding {padding} must be 0..kernel-1 "
                         f"for kernel {kernel}")
    if h + padding[0] + padding[2] < kh or w + padding[1] + padding[3] < kw:
        raise GraphError(f"{node.describe()}: feature map {h}x{w} (padded "
                         f"{h + padding[0] + padding[2]}x{w + padding[1] + padding[3]}) is "
                         f"smaller than the {kh}x{kw} kernel")
    if not x.dtype.contains(np.array([pad_value])):
        raise GraphError(f"{node.describe()}: pad value {pad_value} is not a {x.dtype} value")
    return window_output_hw(h, w, kernel, stride, padding)


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
        return window_output_hw(height, width, self.kernel, self.stride, self.padding)

    def detail(self) -> str:
        return f"[{self.kernel[0]}x{self.kernel[1]} /{self.stride} pad {self.padding}]"

    def check(self, graph: Graph) -> None:
        x, y = self._io(graph)
        oh, ow = _check_window(self, x, self.kernel, self.stride, self.padding, self.pad_value)
        kh, kw = self.kernel
        expected = (oh, ow, kh * kw * x.shape[2])
        if y.shape != expected or y.dtype != x.dtype:
            raise GraphError(f"{self.describe()}: output must be {x.dtype}{expected}, is "
                             f"{y.dtype}{y.shape}")

    def execute(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        return sliding_window(inputs[0], self.kernel, self.stride, self.padding,
                              self.pad_value)


def conv_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """Conv weights [Cout, Cin/groups, kh, kw] -> [Cout, kh*kw*Cin], window order (ky, kx, c);
    a grouped (e.g. depthwise) convolution becomes a block matrix whose zeros a sparse
    engine skips."""
    cout, cin_g, kh, kw = weight.shape
    cin = cin_g * groups
    matrix = np.zeros((cout, kh, kw, cin), dtype=np.int64)
    per_group = cout // groups
    for o in range(cout):
        g = o // per_group
        matrix[o, :, :, g * cin_g:(g + 1) * cin_g] = weight[o].transpose(1, 2, 0)
    return matrix.reshape(cout, kh * kw * cin)


@dataclass(eq=False)
class Conv(Node):
    """An integer 2-D convolution on an (H, W, C) map: torch's ``conv2d`` semantics on codes.

    ``weight`` is [Cout, Cin/groups, KH, KW] as torch stores it; out-of-image positions read
    ``pad_value`` (see :class:`SlidingWindow`). The lowering pass turns it into a
    ``SlidingWindow`` feeding a ``MatVec`` of [Cout, KH*KW*Cin] (a block matrix when grouped),
    which is what the hardware runs; the accumulator type is that ``MatVec``'s.
    """

    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 1, 1), dtype=np.int64))
    weight_type: IntType = field(default_factory=IntType.bipolar)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    pad_value: int = 0
    groups: int = 1
    codebook: Codebook | None = None
    """Shared weights (see :class:`MatVec`)."""

    op_type = "Conv"

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    def matrix(self) -> np.ndarray:
        return conv_matrix(np.asarray(self.weight, dtype=np.int64), self.groups)

    def output_range(self, input_type: IntType) -> tuple[int, int]:
        kh, kw = self.kernel
        cin = int(self.weight.shape[1]) * self.groups
        return dot_range(self.weight_type, input_type, kh * kw * cin)

    def detail(self) -> str:
        kh, kw = self.kernel
        return (f"[{self.out_channels} x {kh}x{kw}, groups {self.groups} {self.weight_type}, "
                f"/{self.stride} pad {self.padding}]")

    def check(self, graph: Graph) -> None:
        x, y = self._io(graph)
        if self.weight.ndim != 4 or self.out_channels % self.groups:
            raise GraphError(f"{self.describe()}: weight {self.weight.shape} is not "
                             f"[Cout, Cin/groups, KH, KW] with groups={self.groups}")
        oh, ow = _check_window(self, x, self.kernel, self.stride, self.padding, self.pad_value)
        if x.shape[2] != self.weight.shape[1] * self.groups:
            raise GraphError(f"{self.describe()}: expects {self.weight.shape[1] * self.groups} "
                             f"input channels, {x.name} has {x.shape[2]}")
        if y.shape != (oh, ow, self.out_channels):
            raise GraphError(f"{self.describe()}: output must be {(oh, ow, self.out_channels)},"
                             f" is {y.shape}")
        if not self.weight_type.contains(self.weight):
            raise GraphError(f"{self.describe()}: weights are not all {self.weight_type}")
        check_codebook(self, self.weight)
        lo, hi = self.output_range(x.dtype)
        if not (y.dtype.min <= lo and hi <= y.dtype.max):
            raise GraphError(f"{self.describe()}: output type {y.dtype} cannot hold the "
                             f"accumulator range [{lo}, {hi}]")

    def execute(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        windows = sliding_window(inputs[0], self.kernel, self.stride, self.padding,
                                 self.pad_value)
        return windows @ self.matrix().T


def max_pool(x: Batch, kernel: int, stride: int) -> Batch:
    """[N, H, W, C] -> [N, OH, OW, C], floor mode."""
    k, s = kernel, stride
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    out = np.full((x.shape[0], oh, ow, x.shape[3]), np.iinfo(np.int64).min, dtype=np.int64)
    for ky in range(k):
        for kx in range(k):
            out = np.maximum(out, x[:, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s])
    return out


@dataclass(eq=False)
class MaxPool(Node):
    """Max over k x k windows of an (H, W, C) map, no padding, floor mode (as torch)."""

    kernel: int = 2
    stride: int = 2

    op_type = "MaxPool"

    def detail(self) -> str:
        return f"[{self.kernel}x{self.kernel} /{self.stride}]"

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        return ((height - self.kernel) // self.stride + 1,
                (width - self.kernel) // self.stride + 1)

    def check(self, graph: Graph) -> None:
        x, y = self._io(graph)
        if len(x.shape) != 3 or x.shape[0] < self.kernel or x.shape[1] < self.kernel:
            raise GraphError(f"{self.describe()}: input {x.name}{x.shape} must be (H, W, C) "
                             f"with H, W >= {self.kernel}")
        expected = (*self.output_hw(x.shape[0], x.shape[1]), x.shape[2])
        if y.shape != expected or y.dtype != x.dtype:
            raise GraphError(f"{self.describe()}: output must be {x.dtype}{expected}, is "
                             f"{y.dtype}{y.shape}")

    def execute(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        return max_pool(inputs[0], self.kernel, self.stride)


@dataclass(eq=False)
class Reshape(Node):
    """Same elements in the same (row-major) order, another shape (e.g. flatten HWC)."""

    op_type = "Reshape"

    def check(self, graph: Graph) -> None:
        x, y = self._io(graph)
        if x.size != y.size or x.dtype != y.dtype:
            raise GraphError(f"{self.describe()}: {x.name}{x.shape} cannot become "
                             f"{y.name}{y.shape}")

    def execute(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        x = inputs[0]
        return x.reshape((x.shape[0], *graph.tensor(self.output).shape))


@dataclass(eq=False)
class Flatten(Node):
    """An (H, W, C) map flattened in torch's (C, H, W) order, as ``nn.Flatten`` does.

    The stream carries maps in (H, W, C) order, so this is a permutation; the lowering pass
    :func:`codesign.passes.lower.absorb_flatten` moves it into the consuming layer's weight
    columns, leaving a free :class:`Reshape`.
    """

    op_type = "Flatten"

    def check(self, graph: Graph) -> None:
        x, y = self._io(graph)
        if len(x.shape) != 3 or y.shape != (x.size,) or x.dtype != y.dtype:
            raise GraphError(f"{self.describe()}: flattens an (H, W, C) map to one axis, got "
                             f"{x.name}{x.shape} -> {y.name}{y.shape}")

    def execute(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        x = inputs[0]
        return x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)

    @staticmethod
    def column_order(shape: tuple[int, int, int]) -> np.ndarray:
        """For each (C, H, W)-order position, the (H, W, C)-order element it holds."""
        h, w, c = shape
        return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)


def _value_corners(dtype: IntType, factor: int) -> tuple[int, int]:
    """Bounds of ``factor * v`` for every value ``v`` of ``dtype``."""
    ends = (factor * dtype.min, factor * dtype.max)
    return min(ends), max(ends)


@dataclass(eq=False)
class Add(AccumulatorNode):
    """Elementwise ``out = weights[0] * a + weights[1] * b + bias`` (a residual join), exact.

    Scale alignment is stated here, in integers: a source model adding two quantized tensors
    must put them on one scale ``s`` with integer multipliers (``a`` stands for
    ``weights[0] * s * a``, ``b`` for ``weights[1] * s * b``), so the sum stands for
    ``s * out`` and the float map after it (folded into thresholds by streamlining) is a
    function of the integer ``out`` alone. ``bias`` absorbs constant offsets such as the
    ``2P - K`` of a popcount accumulator. The accumulator type is derived from the input
    types and the multipliers (:meth:`output_range`), never guessed; a fused ``post``
    epilogue (thresholds or a requantization) turns it into the output codes.
    """

    weights: tuple[int, int] = (1, 1)
    bias: int = 0

    op_type = "Add"

    def output_range(self, a: IntType, b: IntType) -> tuple[int, int]:
        """Exact bounds of the sum for any inputs of these types."""
        (alo, ahi), (blo, bhi) = (_value_corners(t, w)
                                  for t, w in zip((a, b), self.weights, strict=True))
        return alo + blo + self.bias, ahi + bhi + self.bias

    def accumulator_range(self, graph: Graph) -> tuple[int, int]:
        a, b = (graph.tensor(name).dtype for name in self.inputs)
        return self.output_range(a, b)

    def detail(self) -> str:
        wa, wb = self.weights
        bias = f" {'+' if self.bias >= 0 else '-'} {abs(self.bias)}" if self.bias else ""
        return f"[{wa}*a + {wb}*b{bias}{self.post_detail()}]"

    def accumulate_inputs(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        wa, wb = self.weights
        return wa * inputs[0] + wb * inputs[1] + self.bias

    def check(self, graph: Graph) -> None:
        if len(self.inputs) != 2 or len(self.outputs) != 1:
            raise GraphError(f"{self.describe()} adds two inputs into one output, has inputs "
                             f"{self.inputs}")
        if len(self.weights) != 2 or not all(isinstance(w, (int, np.integer)) and w != 0
                                             for w in self.weights) \
                or not isinstance(self.bias, (int, np.integer)):
            raise GraphError(f"{self.describe()}: weights {self.weights} must be two non-zero "
                             f"integers and bias {self.bias!r} an integer")
        a, b = (graph.tensor(name) for name in self.inputs)
        y = graph.tensor(self.output)
        if a.shape != b.shape or y.shape != a.shape:
            raise GraphError(f"{self.describe()}: shapes {a.shape} + {b.shape} -> {y.shape} "
                             "must all be equal")
        if self.post is None:
            lo, hi = self.accumulator_range(graph)
            if not (y.dtype.min <= lo and hi <= y.dtype.max):
                raise GraphError(f"{self.describe()}: output type {y.dtype} cannot hold the "
                                 f"sums [{lo}, {hi}] of {a.dtype} + {b.dtype}")
        self.check_output(graph, a.shape)


@dataclass(eq=False)
class Concat(Node):
    """Channel concatenation: the inputs' channels (last axis) one after the other.

    Every input has the same type (their codes travel side by side on one stream) and the
    same shape but for the channel count.
    """

    op_type = "Concat"

    def check(self, graph: Graph) -> None:
        if len(self.inputs) < 2 or len(self.outputs) != 1:
            raise GraphError(f"{self.describe()} joins at least two inputs into one output, "
                             f"has inputs {self.inputs}")
        parts = [graph.tensor(name) for name in self.inputs]
        y = graph.tensor(self.output)
        types = sorted({str(t.dtype) for t in parts})
        if len(types) > 1:
            raise GraphError(f"{self.describe()}: inputs have types {', '.join(types)}; "
                             "concatenated channels must share one type (requantize them to "
                             "one first)")
        heads = {t.shape[:-1] for t in parts}
        if len(heads) > 1 or any(len(t.shape) == 0 for t in parts):
            raise GraphError(f"{self.describe()}: input shapes "
                             f"{', '.join(str(t.shape) for t in parts)} differ in more than "
                             "the channels (last axis)")
        expected = (*parts[0].shape[:-1], sum(t.shape[-1] for t in parts))
        if y.shape != expected or y.dtype != parts[0].dtype:
            raise GraphError(f"{self.describe()}: output must be {parts[0].dtype}{expected}, is "
                             f"{y.dtype}{y.shape}")

    def execute(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        return np.concatenate(list(inputs), axis=-1)


def sum_pool(x: Batch, kernel: int, stride: int) -> Batch:
    """[N, H, W, C] -> [N, OH, OW, C]: window sums, floor mode."""
    k, s = kernel, stride
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]), dtype=np.int64)
    for ky in range(k):
        for kx in range(k):
            out += x[:, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s]
    return out


@dataclass(eq=False)
class SumPool(AccumulatorNode):
    """Average pooling in integers: the sum over k x k windows (no padding, floor mode).

    The division by k^2 is not computed: the source model carries it as a positive scale
    (the next layer's input scale, or the float map after the pool, which streamlining folds
    into the thresholds of a fused epilogue), so the node stays exact. The sums' type is
    derived from the input type (k^2 times its range).
    """

    kernel: int = 2
    stride: int = 2

    op_type = "SumPool"

    @property
    def area(self) -> int:
        return self.kernel * self.kernel

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        return ((height - self.kernel) // self.stride + 1,
                (width - self.kernel) // self.stride + 1)

    def output_range(self, input_type: IntType) -> tuple[int, int]:
        return _value_corners(input_type, self.area)

    def accumulator_range(self, graph: Graph) -> tuple[int, int]:
        return self.output_range(graph.tensor(self.inputs[0]).dtype)

    def detail(self) -> str:
        return f"[{self.kernel}x{self.kernel} /{self.stride}{self.post_detail()}]"

    def check(self, graph: Graph) -> None:
        x, _ = self._io(graph)
        if len(x.shape) != 3 or x.shape[0] < self.kernel or x.shape[1] < self.kernel \
                or self.kernel < 1 or self.stride < 1:
            raise GraphError(f"{self.describe()}: input {x.name}{x.shape} must be (H, W, C) "
                             f"with H, W >= {self.kernel}, kernel and stride >= 1")
        self.check_output(graph, (*self.output_hw(x.shape[0], x.shape[1]), x.shape[2]))

    def accumulate_inputs(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        return sum_pool(inputs[0], self.kernel, self.stride)


@dataclass(eq=False)
class GlobalSumPool(AccumulatorNode):
    """Global average pooling in integers: each channel's sum over the whole (H, W) map.

    As for :class:`SumPool`, the division by H*W is a positive scale the source model carries
    downstream (into the next thresholds, the next layer's input scale or the output scale).
    """

    op_type = "GlobalSumPool"

    def output_range(self, input_type: IntType, area: int) -> tuple[int, int]:
        return _value_corners(input_type, area)

    def accumulator_range(self, graph: Graph) -> tuple[int, int]:
        x = graph.tensor(self.inputs[0])
        return self.output_range(x.dtype, int(math.prod(x.shape[:-1])))

    def detail(self) -> str:
        return f"[sum over H, W{self.post_detail()}]"

    def check(self, graph: Graph) -> None:
        x, _ = self._io(graph)
        if len(x.shape) != 3:
            raise GraphError(f"{self.describe()}: input {x.name}{x.shape} must be (H, W, C)")
        self.check_output(graph, (x.shape[2],))

    def accumulate_inputs(self, inputs: Sequence[Batch], graph: Graph) -> Batch:
        return inputs[0].sum(axis=(1, 2))


@dataclass(eq=False)
class Graph:
    """A dataflow graph (a DAG) over per-frame tensors.

    ``tensors`` holds every tensor's shape and type; ``nodes`` may be listed in any order
    (:meth:`ordered_nodes` gives a topological order). ``output_scale``/``output_offset`` map
    the integer output to the real scores of the source model (reporting only: argmax and
    every comparison stay in integers). ``origins`` names, for the tensors a frontend
    created, the source model's module that computes them (for messages and for comparing
    hidden activations with the source model).
    """

    name: str
    input: str
    output: str
    tensors: dict[str, TensorInfo]
    nodes: list[Node]
    output_scale: float = 1.0
    output_offset: float = 0.0
    origins: dict[str, str] = field(default_factory=dict)

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

    def producers(self) -> dict[str, Node]:
        """Tensor name -> the node that writes it."""
        return {name: node for node in self.nodes for name in node.outputs}

    def producer(self, tensor: str) -> Node | None:
        return self.producers().get(tensor)

    def consumers(self, tensor: str) -> list[Node]:
        return [node for node in self.nodes if tensor in node.inputs]

    def ordered_nodes(self) -> list[Node]:
        """Nodes in a topological order (stable: listed order among ready nodes)."""
        producers: dict[str, Node] = {}
        for node in self.nodes:
            for name in node.outputs:
                if name in producers or name == self.input:
                    raise GraphError(f"{node.describe()} writes {name!r}, already produced")
                producers[name] = node
        done = {self.input}
        ordered: list[Node] = []
        pending = list(self.nodes)
        while pending:
            ready = [n for n in pending if all(name in done for name in n.inputs)]
            if not ready:
                node = pending[0]
                missing = [name for name in node.inputs if name not in done]
                if all(name in producers for name in missing):
                    raise GraphError(f"graph {self.name!r} has a cycle through "
                                     f"{node.describe()}")
                raise GraphError(f"{node.describe()} reads {missing[0]!r}, which no node "
                                 "produces")
            for node in ready:
                ordered.append(node)
                done.update(node.outputs)
                pending.remove(node)
        return ordered

    def compute_nodes(self) -> list[MatVec]:
        return [node for node in self.ordered_nodes() if isinstance(node, MatVec)]

    def is_integer(self) -> bool:
        return all(node.integer for node in self.nodes)

    def validate(self) -> None:
        """Check every tensor is produced once, the graph is acyclic and every node fits."""
        for node in self.ordered_nodes():
            for name in node.outputs:
                self.tensor(name)
            node.check(self)
        if self.output != self.input and self.producer(self.output) is None:
            raise GraphError(f"graph output {self.output!r} is never produced")

    def summary(self) -> str:
        """One line per node: what it computes and on which types."""
        lines = [f"graph {self.name}: input {self.input} {self.input_info.shape} "
                 f"{self.input_info.dtype}"]
        for node in self.ordered_nodes():
            ins = ", ".join(f"{n}:{self.tensor(n).dtype}" for n in node.inputs)
            outs = ", ".join(f"{n}:{self.tensor(n).dtype}{list(self.tensor(n).shape)}"
                             for n in node.outputs)
            extra = node.detail()
            lines.append(f"  {node.op_type} {node.name}: {ins} -> {outs}"
                         f"{' ' + extra if extra else ''}")
        return "\n".join(lines)
