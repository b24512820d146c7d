"""Weight sharing (Han et al.'s Deep Compression, stage 2): k-means codebooks on a fixed grid.

A shared layer keeps, per layer, one codebook of ``2^b`` values: entry 0 is the zero weight
(pruned weights, and the code a zero-skipping engine pads with), entries ``1..2^b - 1`` are
centroids learned by k-means on the layer's non-zero weights. Every weight is stored as a
``b``-bit index into that table, so the hardware holds indices and one small table per layer
(:mod:`codesign.arch.families.codebook`).

Two modes, one module (so a model's state dict has one layout from the first epoch on):

- *float* (before :func:`share_weights_`): the layer multiplies by its masked float weights,
  as a pruned float layer does (the paper prunes float weights);
- *shared*: the forward pass is exactly ``(x @ W_int^T) * step [* input_scale]`` with
  ``W_int = table[assignments]`` and ``table = [0, round(c_1 / step), ..., round(c_k / step)]``
  clamped to the grid ``[-(2^(g-1) - 1), 2^(g-1) - 1]``: the centroids live on a fixed-point
  grid of one ``step`` per layer, so the hardware's table values are exact integers.

Fine-tuning trains the centroids ``c``: the rounding passes the gradient straight through
and indexing the table sums the gradients of every weight that shares an entry, so
``dL/dc_k`` is the sum of the gradients of the effective weights in cluster ``k`` (the
paper's centroid update). Assignments never change after clustering and pruned weights stay
exactly zero.

Clustering is one-dimensional k-means with linear initialisation (centroids evenly spaced
between the smallest and largest non-zero weight, which the paper found best because it
keeps the rare large weights). A cluster that ends empty is handled by leaving its entry
unused and reported; two centroids that round to the same grid value are merged when the
codebook is read (:meth:`SharedWeights.weight_codebook`), and reported too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from codesign.errors import CodesignError
from quant_models.conv import IntegerConv2d, IntPair
from quant_models.fixed_point import IntegerLinear, IntegerWeights, integer_range
from quant_models.layers import _RoundClampSTE

__all__ = [
    "DEFAULT_GRID_BITS",
    "MAX_INDEX_BITS",
    "MIN_INDEX_BITS",
    "LayerSharing",
    "SharedConv2d",
    "SharedLinear",
    "SharedWeights",
    "WeightSharingError",
    "kmeans_1d",
    "share_weights_",
    "shared_layers",
]

MIN_INDEX_BITS = 2
MAX_INDEX_BITS = 8
DEFAULT_GRID_BITS = 8
"""Table values are ``grid_bits``-bit signed integers (narrow range) times the layer's step."""

KMEANS_MAX_ITERATIONS = 300


class WeightSharingError(CodesignError):
    """A codebook or a sharing request that does not fit a layer (named in the message)."""


def kmeans_1d(values: np.ndarray, clusters: int, max_iterations: int = KMEANS_MAX_ITERATIONS
              ) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars with linear initialisation: ``(centroids, labels)``.

    Centroids start evenly spaced over ``[min, max]``; each value joins its nearest centroid
    (a tie goes to the lower one), each centroid moves to its members' mean, until no label
    changes. An empty cluster keeps its centroid (and no member); the caller reports it.
    Deterministic: float64 throughout, no random start.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if clusters < 1:
        raise ValueError(f"need at least one cluster, got {clusters}")
    if x.size == 0:
        return np.zeros(clusters), np.zeros(0, dtype=np.int64)
    centroids = np.linspace(x.min(), x.max(), clusters)
    labels = np.full(x.size, -1, dtype=np.int64)
    for _ in range(max_iterations):
        # centroids stay sorted (1-D Lloyd keeps their order), so nearest = between midpoints
        bounds = (centroids[1:] + centroids[:-1]) / 2
        new = np.searchsorted(bounds, x, side="left").astype(np.int64)
        if np.array_equal(new, labels):
            break
        labels = new
        sums = np.bincount(labels, weights=x, minlength=clusters)
        counts = np.bincount(labels, minlength=clusters)
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
    return centroids, labels


class SharedWeights(IntegerWeights):
    """What shared linear and convolutional layers add to :class:`IntegerWeights`.

    ``index_bits`` (b, 2..8) fixes the table size ``2^b``; ``grid_bits`` (g) the integer
    range of its values. Buffers: ``assignments`` (the table index of every weight, 0 for
    pruned ones) and ``step`` (the grid step; 0 until the layer is shared). Parameter:
    ``centroids`` (``2^b - 1`` real values, entry ``k`` is table entry ``k + 1``).
    """

    index_bits: int
    grid_bits: int
    centroids: nn.Parameter
    assignments: Tensor
    step: Tensor

    def _init_sharing(self, index_bits: int, grid_bits: int) -> None:
        if not MIN_INDEX_BITS <= int(index_bits) <= MAX_INDEX_BITS:
            raise WeightSharingError(
                f"index_bits={index_bits}: a codebook index has {MIN_INDEX_BITS}.."
                f"{MAX_INDEX_BITS} bits")
        if not 2 <= int(grid_bits) <= 16:
            raise WeightSharingError(f"grid_bits={grid_bits}: table values have 2..16 bits")
        self.index_bits = int(index_bits)
        self.grid_bits = int(grid_bits)
        self.register_buffer(  # type: ignore[attr-defined]
            "assignments", torch.zeros(self.weight.shape, dtype=torch.int64))
        self.register_buffer("step", torch.zeros((), dtype=torch.float32))  # type: ignore
        self.centroids = nn.Parameter(torch.zeros((1 << self.index_bits) - 1))

    @property
    def grid_max(self) -> int:
        """Largest table value (the grid is the narrow signed range of ``grid_bits``)."""
        return integer_range(self.grid_bits, True, narrow_range=True)[1]

    def weight_range(self) -> tuple[int, int]:
        """The grid every table value lies on, ``[-grid_max, grid_max]`` (whatever the
        clustering finds), which sizes the table and the lanes' multipliers."""
        return -self.grid_max, self.grid_max

    @property
    def is_shared(self) -> bool:
        return bool(self.step > 0)

    def _table(self) -> Tensor:
        """``[0, round(c / step)...]``: the integer table, gradient straight to ``c``."""
        q = _RoundClampSTE.apply(self.centroids / self.step, -self.grid_max, self.grid_max)
        return torch.cat([q.new_zeros(1), q])

    def _quantized_weight(self) -> tuple[Tensor, Tensor]:
        if not self.is_shared:      # float mode: the masked float weights, unit scale
            return self._masked_latent(), torch.ones((), dtype=self.weight.dtype)
        return self._table()[self.assignments], self.step.detach().clone()

    @torch.no_grad()
    def integer_weight(self) -> tuple[Tensor, Tensor]:
        self._require_shared()
        return super().integer_weight()  # type: ignore[misc]

    def _require_shared(self) -> None:
        if not self.is_shared:
            raise WeightSharingError(
                f"{type(self).__name__} has float weights: cluster it with "
                "quant_models.sharing.share_weights_ before reading integer weights")

    @torch.no_grad()
    def weight_codebook(self) -> tuple[tuple[int, ...], int]:
        """``(values, index_bits)``: the distinct table values the weights use, zero first,
        then ascending (duplicates after grid rounding merged, unused entries left out).

        The hardware stores each weight as the index of its value here (the
        :class:`codesign.ir.Codebook` the frontend builds from this)."""
        self._require_shared()
        used = torch.unique(self._table()[self.assignments]).to(torch.int64).tolist()
        values = (0, *sorted(v for v in used if v != 0))
        return values, self.index_bits

    @torch.no_grad()
    def codebook_indices(self) -> np.ndarray:
        """Every weight's index into :meth:`weight_codebook` (int64, the weight's shape)."""
        values, _ = self.weight_codebook()
        w_int = self._table()[self.assignments].to(torch.int64).numpy()
        lookup = {v: i for i, v in enumerate(values)}
        return np.vectorize(lookup.__getitem__, otypes=[np.int64])(w_int)

    @torch.no_grad()
    def set_codebook(self, centroids: Sequence[float] | Tensor, assignments: Tensor,
                     step: float, where: str = "") -> None:
        """Install a codebook: real ``centroids`` (table entries 1..k, each a multiple of
        ``step`` within the grid), and ``assignments`` (0 = zero weight, k = centroid k).

        A codebook with more entries than ``index_bits`` address, a centroid off the grid
        or an assignment outside the table raises :class:`WeightSharingError`.
        """
        name = where or type(self).__name__
        c = torch.as_tensor(centroids, dtype=torch.float64).reshape(-1)
        size = 1 << self.index_bits
        if c.numel() + 1 > size:
            raise WeightSharingError(
                f"layer {name}: a codebook of {c.numel() + 1} entries (zero and {c.numel()} "
                f"centroids) does not fit {self.index_bits}-bit indices (at most {size})")
        if not step > 0 or not np.isfinite(step):
            raise WeightSharingError(f"layer {name}: grid step {step} must be positive")
        units = c / float(step)
        off = (units - torch.round(units)).abs() > 1e-6 * torch.clamp(units.abs(), min=1.0)
        if bool(off.any()):
            k = int(torch.nonzero(off)[0])
            raise WeightSharingError(
                f"layer {name}: centroid {k + 1} = {float(c[k])!r} is not on the fixed-point "
                f"grid of step {float(step)!r} ({float(units[k]):.4f} steps); centroids must "
                "be whole multiples of the step")
        if bool((torch.round(units).abs() > self.grid_max).any()):
            raise WeightSharingError(
                f"layer {name}: a centroid lies beyond the {self.grid_bits}-bit grid "
                f"(+-{self.grid_max} steps of {float(step)!r})")
        a = torch.as_tensor(assignments, dtype=torch.int64)
        if a.shape != self.weight.shape or int(a.min()) < 0 or int(a.max()) > c.numel():
            raise WeightSharingError(
                f"layer {name}: assignments must have the weight's shape "
                f"{tuple(self.weight.shape)} and values 0..{c.numel()}")
        full = torch.zeros(size - 1, dtype=torch.float64)
        full[:c.numel()] = c
        self.step.fill_(float(step))
        self.centroids.copy_(full.to(self.centroids.dtype))
        self.assignments.copy_(a * self.weight_mask.to(torch.int64))


class SharedLinear(SharedWeights, IntegerLinear):
    """A linear layer with weights shared through a per-layer codebook (see the module)."""

    def __init__(self, in_features: int, out_features: int, index_bits: int = 5,
                 grid_bits: int = DEFAULT_GRID_BITS) -> None:
        super().__init__(in_features, out_features)
        self._init_sharing(index_bits, grid_bits)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"index_bits={self.index_bits}, grid=int{self.grid_bits}, "
                f"{'shared' if self.is_shared else 'float'}")


class SharedConv2d(SharedWeights, IntegerConv2d):
    """A convolution with weights shared through a per-layer codebook (see the module)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, groups: int = 1,
                 index_bits: int = 5, grid_bits: int = DEFAULT_GRID_BITS,
                 pad_value: int = 0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups,
                         pad_value)
        self._init_sharing(index_bits, grid_bits)

    def extra_repr(self) -> str:
        return (f"{self._geometry_repr()}, index_bits={self.index_bits}, "
                f"grid=int{self.grid_bits}, {'shared' if self.is_shared else 'float'}")


def shared_layers(model: nn.Module) -> Iterator[tuple[str, SharedWeights]]:
    """``(name, layer)`` of every shared layer, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, SharedWeights):
            yield name, module


@dataclass(frozen=True)
class LayerSharing:
    """What clustering did to one layer."""

    name: str
    weights: int
    nonzero: int
    index_bits: int
    clusters: int
    """Centroids asked for: ``2^b - 1`` (fewer when the layer has fewer non-zero weights)."""
    empty: int
    """Clusters that ended with no member (their table entries stay unused)."""
    step: float


@torch.no_grad()
def share_weights_(model: nn.Module) -> list[LayerSharing]:
    """Cluster every shared layer's non-zero (unpruned) weights into its codebook.

    The grid step is ``max|w| / (2^(g-1) - 1)`` over the layer's kept weights, so the extreme
    centroids stay on the grid. Returns one :class:`LayerSharing` per layer (empty clusters
    are handled by leaving their entries unused, and counted there).
    """
    reports = []
    for name, layer in shared_layers(model):
        keep = layer.weight_mask.detach().flatten() > 0
        w = layer.weight.detach().flatten().to(torch.float64)
        members = w[keep].numpy()
        clusters = min((1 << layer.index_bits) - 1, max(1, members.size))
        centroids, labels = kmeans_1d(members, clusters)
        peak = float(np.abs(members).max()) if members.size else 0.0
        step = peak / layer.grid_max if peak > 0 else 1.0
        snapped = np.round(centroids / step) * step
        assign = torch.zeros(w.numel(), dtype=torch.int64)
        assign[keep] = torch.as_tensor(labels + 1)
        layer.set_codebook(torch.as_tensor(snapped), assign.view_as(layer.weight), step,
                           where=name)
        empty = int(clusters - np.unique(labels).size) if members.size else clusters
        reports.append(LayerSharing(name, int(w.numel()), int(members.size), layer.index_bits,
                                    int(clusters), empty, float(step)))
    if not reports:
        raise WeightSharingError(f"{type(model).__name__} has no shared layer "
                                 "(SharedLinear, SharedConv2d) to cluster")
    return reports
