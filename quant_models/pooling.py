"""Average pooling on integer codes, and the view of flat rows as images.

A quantized tensor is integer codes standing for ``codes * scale``. The average of a
window of codes is ``sum / area`` codes, i.e. ``sum`` codes at ``scale / area``: so these
modules output the exact integer *sums* (float tensors on integer values) and state the
scale those sums stand for (:attr:`QuantAvgPool2d.scale`), which a consuming layer links as
its input scale (:meth:`quant_models.fixed_point.IntegerWeights.link_input`), exactly as
it would link a :class:`~quant_models.fixed_point.QuantAct`. The division is never computed,
so the integer hardware and torch agree on every sum; a quantizer after the pool (which
requantizes the average) sees the sums and learns its scale for them.

The sums are exact in float32 while they stay below 2^24 (checked).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from quant_models.fixed_point import EXACT_LIMIT
from quant_models.protocol import ScaledCodes

__all__ = ["Images", "QuantAvgPool2d", "QuantGlobalAvgPool2d"]


def _check_sums(x: Tensor, area: int, where: str) -> None:
    if x.numel() and float(x.detach().abs().amax()) * area >= EXACT_LIMIT:
        raise ValueError(f"{where}: sums may reach 2^24, where float32 integer arithmetic "
                         "stops being exact")


class _SumPool(nn.Module):
    """What both pools share: the linked input scale and the derived output scale."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "_input_source", None)

    def link_input(self, source: ScaledCodes | None) -> None:
        """The module whose codes this pool reads (``None``: unscaled integers, scale 1)."""
        if source is not None and not isinstance(source, ScaledCodes):
            raise TypeError(f"an input scale comes from a module with a scale, got "
                            f"{type(source).__name__}")
        object.__setattr__(self, "_input_source", source)

    def area_of(self, x: Tensor) -> int:
        raise NotImplementedError

    def output_scale(self, area: int) -> Tensor:
        """``input scale / area``: the real value one step of the output sums stands for."""
        source = self._input_source
        base = torch.tensor(1.0) if source is None else source.scale
        return base / area


class QuantAvgPool2d(_SumPool):
    """k x k average pooling (stride, no padding, floor mode) as exact integer window sums.

    ``forward`` returns the sums; :attr:`scale` (the input scale over k^2) is what they
    stand for. Without a linked input the scale is ``1 / k^2``.
    """

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        super().__init__()
        if int(kernel_size) < 1 or (stride is not None and int(stride) < 1):
            raise ValueError(f"need kernel_size >= 1 and stride >= 1, got {kernel_size}, "
                             f"{stride}")
        self.kernel_size = int(kernel_size)
        self.stride = int(stride) if stride is not None else self.kernel_size

    @property
    def area(self) -> int:
        return self.kernel_size * self.kernel_size

    @property
    def scale(self) -> Tensor:
        return self.output_scale(self.area)

    def forward(self, x: Tensor) -> Tensor:
        _check_sums(x, self.area, type(self).__name__)
        # divisor 1: the window sum itself, an exact float32 sum of integers
        return F.avg_pool2d(x, self.kernel_size, self.stride, divisor_override=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, outputs window sums"


class QuantGlobalAvgPool2d(_SumPool):
    """Global average pooling as exact integer sums: [N, C, H, W] -> [N, C].

    ``forward`` returns each channel's sum over the map; :attr:`scale` (the input scale over
    H * W of the last input seen) is what the sums stand for. The area is known once the
    pool has seen an input of its map size, or from ``area`` given at construction.
    """

    def __init__(self, area: int | None = None) -> None:
        super().__init__()
        if area is not None and int(area) < 1:
            raise ValueError(f"area must be >= 1, got {area}")
        self.area = None if area is None else int(area)

    @property
    def scale(self) -> Tensor:
        if self.area is None:
            raise RuntimeError("QuantGlobalAvgPool2d: the map size is unknown until the pool "
                               "has seen an input (or pass area=H*W)")
        return self.output_scale(self.area)

    def forward(self, x: Tensor) -> Tensor:
        area = int(x.shape[2] * x.shape[3])
        if self.area is not None and area != self.area:
            raise ValueError(f"QuantGlobalAvgPool2d built for maps of {self.area} pixels got "
                             f"{x.shape[2]}x{x.shape[3]}")
        _check_sums(x, area, type(self).__name__)
        return x.sum(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"area={self.area}, outputs channel sums"


class Images(nn.Module):
    """Flat rows [N, C*H*W] (the data loader's digits) -> images [N, C, H, W]; images pass.

    Row-major flattening is undone by ``reshape``; an input that already has the image's
    shape is returned unchanged.
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = tuple(int(v) for v in shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
