"""Post-training quantization of the float baselines into their dense k-bit twins.

The seeds' speedup delta compares a compressed design with the *uncompressed* network on
the same hardware budget. The uncompressed network is the float baseline; hardware runs it
as its dense fixed-point twin: the same topology as
:class:`~quant_models.models.FixedPointMLP` / :class:`~quant_models.cnn.FixedPointCNN`,
the float weights copied (the first layer's absorb the float model's pixel scale), each
hidden layer's bias folded into the batch norm after it (``BN(Wx + b)`` is a batch norm of
``Wx`` with its running mean moved by ``b``), and each ReLU becoming an unsigned activation
quantizer whose scale is the largest activation seen on calibration images over its top
code. The classifier's bias has no place in an integer datapath and is dropped (a constant
per class; the twin's accuracy is measured, not assumed).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codesign.errors import CodesignError
from quant_models.cnn import FixedPointCNN, FloatCNN
from quant_models.fixed_point import QuantAct
from quant_models.models import FixedPointMLP, FloatMLP
from quant_models.structure import is_weight_layer

__all__ = ["dense_twin"]


def _twin_of(model: nn.Module, weight_bits: int, act_bits: int) -> nn.Module:
    config = dict(model.config)
    config.pop("input_scale", None)
    if isinstance(model, FloatMLP):
        return FixedPointMLP(**config, weight_bits=weight_bits, act_bits=act_bits)
    if isinstance(model, FloatCNN):
        return FixedPointCNN(**config, weight_bits=weight_bits, act_bits=act_bits)
    raise CodesignError(f"{type(model).__name__} has no dense fixed-point twin (FloatMLP and "
                        "FloatCNN have)")


@torch.no_grad()
def dense_twin(model: nn.Module, calibration: Tensor, weight_bits: int = 8,
               act_bits: int = 8) -> nn.Module:
    """The dense ``weight_bits``/``act_bits`` twin of a float baseline (eval mode), its
    activation scales calibrated on ``calibration`` inputs (see the module docstring)."""
    twin = _twin_of(model, weight_bits, act_bits)
    source = list(model.layers)
    target = list(twin.layers)
    weights = [m for m in source if is_weight_layer(m)]
    twin_weights = [m for m in target if is_weight_layer(m)]
    norms = [m for m in source if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    twin_norms = [m for m in target if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    acts = [m for m in source if isinstance(m, nn.ReLU)]
    twin_acts = [m for m in target if isinstance(m, QuantAct)]
    if not (len(weights) == len(twin_weights) and len(norms) == len(twin_norms)
            and len(acts) == len(twin_acts)):
        raise CodesignError(f"{type(model).__name__}: layers do not pair with its twin's")
    input_scale = float(getattr(model, "input_scale", 1.0))
    for k, (w, t) in enumerate(zip(weights, twin_weights, strict=True)):
        t.weight.copy_(w.weight * (input_scale if k == 0 else 1.0))
    for k, (bn, t) in enumerate(zip(norms, twin_norms, strict=True)):
        t.load_state_dict(bn.state_dict())
        bias = getattr(weights[k], "bias", None)
        if bias is not None:
            t.running_mean.copy_(bn.running_mean - bias)
    peaks: list[float] = []
    hooks = [act.register_forward_hook(
        lambda _m, _i, out: peaks.append(float(out.detach().amax()))) for act in acts]
    model.eval()
    try:
        model(calibration)
    finally:
        for hook in hooks:
            hook.remove()
    for peak, quant in zip(peaks, twin_acts, strict=True):
        quant.scale.fill_(max(peak / quant.qmax, quant.min_scale))
        quant.initialized.fill_(True)
    return twin.eval()
