"""The layer protocol a compiler lowers: what every quantised linear or convolution layer states
about its integer semantics.

A frontend (``codesign.frontends.torch``) must not know layer classes one by one: it asks a
layer for its integer weights, what kind of values they are, and the float operations the
forward pass applies to the integer accumulator. Every weight layer of this package
(binary, ternary TWN/TTQ, k-bit fixed point, shared; linear and convolution) implements it,
and so can a user's own layer. A layer whose weights are shared through a codebook also
states the table (:class:`SharedWeightLayer`), so the hardware stores indices; a layer that
states its quantizer's range (:class:`DeclaredWeightRange`) gets hardware sized by that range,
which re-training keeps.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from torch import Tensor

WeightKind = Literal["bipolar", "ternary", "int"]


@runtime_checkable
class IntegerLayer(Protocol):
    """A layer whose forward is ``scale_accumulator(integer accumulation with integer_weight)``.

    For integer-valued inputs ``x`` the forward pass equals, bit for bit, the integer
    accumulation of ``x`` with ``integer_weight()[0]`` passed through ``scale_accumulator``.
    """

    def integer_weight(self) -> tuple[Tensor, Any]:
        """``(W_int, scale)``: int64 weights as the layer stores them (``[out, in]`` or
        ``[out, in/groups, kh, kw]``) and the per-tensor (float) or per-channel (tensor)
        weight scale."""
        ...

    def weight_kind(self) -> WeightKind:
        """What the integer weights are: bipolar ±1, ternary (TWN codes or TTQ levels, which
        the compiler types by their actual values) or k-bit integers."""
        ...

    def scale_accumulator(self, acc: Tensor) -> Tensor:
        """The forward pass's float operations on the integer accumulator (identity for a
        layer without scales)."""
        ...

    def input_scale(self) -> Tensor | None:
        """The scale of the integer inputs this layer reads, or ``None`` for unscaled ones."""
        ...


@runtime_checkable
class DeclaredWeightRange(Protocol):
    """A layer that states the integer range its weight quantizer can produce.

    A compiler sizes weight memories, multipliers and accumulators by this range rather than
    by the trained values, so re-training or re-compressing the layer keeps its hardware
    (and one simulation build serves every weight set). Every weight layer of this package
    states one; a user's layer may, or leave the compiler to type its weights by their
    values.
    """

    def weight_range(self) -> tuple[int, int] | None:
        """``(lo, hi)``: bounds every integer weight (every codebook value, for a shared
        layer) lies in, whatever the training; ``None`` when the layer declares none."""
        ...


@runtime_checkable
class SharedWeightLayer(IntegerLayer, Protocol):
    """An :class:`IntegerLayer` whose weights are indices into a per-layer table of values."""

    def weight_codebook(self) -> tuple[tuple[int, ...], int]:
        """``(values, index_bits)``: the integer values the weights take, the zero weight
        first (entry 0), and the index width the hardware stores each weight in."""
        ...


@runtime_checkable
class ScaledCodes(Protocol):
    """A module whose output is integer codes standing for ``codes * scale``.

    A quantizer (:class:`quant_models.fixed_point.QuantAct`) learns its scale; a module
    that shares one (:class:`quant_models.residual.SharedQuantAct`) or derives one (an
    average pool's sums stand for ``sums * scale / area``) states it here, so the layer
    consuming the codes can multiply its integer accumulator by it.
    """

    @property
    def scale(self) -> Tensor:
        """The live (trainable) scale of one code step."""
        ...
