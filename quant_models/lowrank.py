"""Low-rank factorization: one weight layer becomes a chain of thinner integer layers.

- A linear layer ``W [out, in]`` (truncated SVD, ``W ~ U_r S_r V_r^T``) becomes two layers:
  ``B = sqrt(S_r) V_r^T`` (``in -> r``) and ``A = U_r sqrt(S_r)`` (``r -> out``).
- A convolution ``W [out, in, k, k]`` becomes three: Tucker-2 (HOSVD of the two channel
  modes, Kim et al. 2016) gives a 1x1 projection ``in -> r_in``, a k x k core
  ``r_in -> r_out`` and a 1x1 expansion ``r_out -> out``; CP (Lebedev et al. 2015, by
  alternating least squares) gives a 1x1 projection ``in -> R``, a depthwise k x k core
  whose R kernels are rank-one (outer products of the two spatial factors) and a 1x1
  expansion ``R -> out``.

Ranks are given, or chosen as the smallest keeping a fraction of the energy (the sum of the
squared singular values of the matrix, or of each channel mode's unfolding).

On hardware every factor is its own engine. The inner factors are
:class:`~quant_models.fixed_point.FactorLinear` / :class:`~quant_models.conv.FactorConv2d`
layers with integer weights whose raw accumulator a fixed-point
:class:`~quant_models.fixed_point.Requant` (``acc * M / 2^s``, rounded half to even,
saturated) turns into ``intermediate_bits``-bit signed codes for the next factor: the
chain stays integer end to end, with no float scale and no threshold table between the
engines. ``M / 2^s`` is calibrated on sample data so the largest accumulator seen fills the
code range; the outer factor (the original layer's class, batch norm and activation after
it unchanged) absorbs the scales, so the factorized network starts out computing what the
original did, up to the ranks dropped and the roundings, and fine-tuning does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from codesign.errors import CodesignError
from quant_models.architecture import SequentialNet, describe, describe_module
from quant_models.conv import QuantConv2d
from quant_models.fixed_point import QuantLinear, Requant, requant_params
from quant_models.structure import LayerSite, find_site

__all__ = [
    "METHODS",
    "LowRankError",
    "Method",
    "cp_als",
    "check_factorization",
    "cp_reconstruct",
    "factorize",
    "rank_for_energy",
    "svd_factors",
    "tucker2",
]

Method = Literal["svd", "tucker", "cp"]
METHODS: tuple[str, ...] = ("svd", "tucker", "cp")

MULTIPLIER_BITS = 16
"""Bits of a requantization multiplier (relative error at most 2^-16)."""


class LowRankError(CodesignError):
    """A factorization that does not fit the layer (method, rank, energy)."""


def rank_for_energy(singular_values: Tensor, energy: float) -> int:
    """The smallest ``r`` whose leading singular values keep ``energy`` of ``sum s^2``."""
    if not 0.0 < energy <= 1.0:
        raise LowRankError(f"an energy fraction must be in (0, 1], got {energy}")
    power = singular_values.to(torch.float64).square()
    total = float(power.sum())
    if total == 0.0:
        return 1
    kept = torch.cumsum(power, 0) / total
    return int(torch.searchsorted(kept, torch.tensor(energy - 1e-12, dtype=torch.float64))) + 1


def _check_rank(rank: int, limit: int, where: str) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= limit:
        raise LowRankError(f"{where}: rank {rank!r} must be a whole number in 1..{limit}")
    return rank


def svd_factors(w: Tensor, rank: int | None = None, energy: float | None = None
                ) -> tuple[Tensor, Tensor]:
    """``(A [out, r], B [r, in])`` in float64 with ``A @ B`` the best rank-``r``
    approximation of ``w`` (Eckart-Young); ``r`` given, or chosen for ``energy``."""
    u, s, vh = torch.linalg.svd(w.detach().to(torch.float64), full_matrices=False)
    if rank is None:
        rank = rank_for_energy(s, 1.0 if energy is None else energy)
    _check_rank(rank, s.numel(), "svd")
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]


def _mode_basis(unfolding: Tensor, rank: int | None, energy: float | None, where: str
                ) -> Tensor:
    u, s, _ = torch.linalg.svd(unfolding, full_matrices=False)
    if rank is None:
        rank = rank_for_energy(s, 1.0 if energy is None else energy)
    _check_rank(rank, s.numel(), where)
    return u[:, :rank]


def tucker2(w: Tensor, ranks: Sequence[int] | None = None, energy: float | None = None
            ) -> tuple[Tensor, Tensor, Tensor]:
    """Tucker-2 of a convolution ``w [out, in, kh, kw]`` by HOSVD of its channel modes:
    ``(U_in [in, r_in], core [r_out, r_in, kh, kw], U_out [out, r_out])`` in float64, with
    ``w ~ core x_0 U_out x_1 U_in``; ``ranks = (r_in, r_out)`` given, or chosen for
    ``energy`` per mode."""
    x = w.detach().to(torch.float64)
    r_in, r_out = (None, None) if ranks is None else ranks
    u_out = _mode_basis(x.flatten(1), r_out, energy, "tucker (output channels)")
    u_in = _mode_basis(x.transpose(0, 1).flatten(1), r_in, energy, "tucker (input channels)")
    core = torch.einsum("oihw,oa,ib->abhw", x, u_out, u_in)
    return u_in, core, u_out


def cp_reconstruct(factors: Sequence[Tensor]) -> Tensor:
    """``sum_r a_r o b_r o c_r o d_r`` of the CP factors ``(A [o, R], B [i, R], C [h, R],
    D [w, R])``."""
    a, b, c, d = factors
    return torch.einsum("or,ir,hr,wr->oihw", a, b, c, d)


def cp_als(w: Tensor, rank: int, *, iterations: int = 100, seed: int = 0
           ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """CP decomposition of ``w [out, in, kh, kw]`` into ``rank`` rank-one terms by
    alternating least squares (float64, seeded), scale kept in the first factor."""
    x = w.detach().to(torch.float64)
    _check_rank(rank, max(1, min(x.shape[0] * x.shape[1], x[0].numel() * x.shape[0])), "cp")
    generator = torch.Generator().manual_seed(seed)
    factors = [torch.randn(n, rank, generator=generator, dtype=torch.float64)
               for n in x.shape]
    specs = ["oihw,ir,hr,wr->or", "oihw,or,hr,wr->ir", "oihw,or,ir,wr->hr",
             "oihw,or,ir,hr->wr"]
    for _ in range(iterations):
        for mode, spec in enumerate(specs):
            others = [f for k, f in enumerate(factors) if k != mode]
            gram = torch.ones(rank, rank, dtype=torch.float64)
            for f in others:
                gram = gram * (f.T @ f)
            factors[mode] = torch.einsum(spec, x, *others) @ torch.linalg.pinv(gram)
            if mode != 0:
                norm = factors[mode].norm(dim=0).clamp(min=1e-300)
                factors[mode] = factors[mode] / norm
                factors[0] = factors[0] * norm
    return factors[0], factors[1], factors[2], factors[3]


# -- the factorized layer chain ------------------------------------------------------------


def _effective_weight(module: nn.Module) -> Tensor:
    """The weights the forward multiplies by: integer weights times their scale."""
    w_int, scale = module.integer_weight()
    scale_t = torch.as_tensor(scale, dtype=torch.float64)
    w = w_int.to(torch.float64)
    if scale_t.dim():
        scale_t = scale_t.view(-1, *([1] * (w.dim() - 1)))
    return w * scale_t


def _requant(bits: int) -> dict[str, Any]:
    return {"type": "Requant", "args": {"multiplier": 1, "shift": 0, "bits": bits,
                                        "signed": True, "narrow_range": False}}


def _args(module: nn.Module, **changes: Any) -> dict[str, Any]:
    """The module's constructor arguments, some changed."""
    return {**describe_module(module)["args"], **changes}


def _chain(site: LayerSite, method: str, shapes: dict[str, Any], factor_bits: int,
           intermediate_bits: int) -> list[dict[str, Any]]:
    """Architecture entries of the factor chain replacing ``site``."""
    module = site.module
    if method == "svd":
        r = shapes["rank"]
        outer = _args(module, in_features=r)
        return [{"type": "FactorLinear", "args": {"in_features": module.in_features,
                                                  "out_features": r,
                                                  "weight_bits": factor_bits,
                                                  "narrow_range": True}},
                _requant(intermediate_bits),
                {"type": "QuantLinear", "args": outer}]
    r_in, r_out = shapes["ranks"]
    kh, kw = module.kernel_size
    core_groups = r_in if method == "cp" else 1
    first = {"in_channels": module.in_channels, "out_channels": r_in, "kernel_size": [1, 1],
             "stride": [1, 1], "padding": [0, 0], "groups": 1, "weight_bits": factor_bits,
             "narrow_range": True, "pad_value": 0}
    core = {"in_channels": r_in, "out_channels": r_out, "kernel_size": [kh, kw],
            "stride": list(module.stride), "padding": list(module.padding),
            "groups": core_groups, "weight_bits": factor_bits, "narrow_range": True,
            "pad_value": 0}
    last = _args(module, in_channels=r_out, kernel_size=[1, 1], stride=[1, 1],
                      padding=[0, 0], pad_value=0)
    return [{"type": "FactorConv2d", "args": first}, _requant(intermediate_bits),
            {"type": "FactorConv2d", "args": core}, _requant(intermediate_bits),
            {"type": "QuantConv2d", "args": last}]


def _decompose(site: LayerSite, method: str, rank: int | Sequence[int] | None,
               energy: float | None) -> tuple[dict[str, Any], list[Tensor]]:
    """Chain shapes and the float64 factor weights (in chain order, torch layouts)."""
    module = site.module
    w = _effective_weight(module)
    where = f"layer {site.name!r}"
    try:
        if method == "svd":
            if rank is not None and not isinstance(rank, int):
                raise LowRankError(f"{where}: svd takes one rank, got {rank!r}")
            a, b = svd_factors(w, rank, energy)
            return {"rank": a.shape[1]}, [b, a]
        if method == "tucker":
            if rank is not None and (isinstance(rank, int) or len(rank) != 2):
                raise LowRankError(f"{where}: tucker takes two ranks [in, out], got {rank!r}")
            u_in, core, u_out = tucker2(w, rank, energy)
            return ({"ranks": (u_in.shape[1], u_out.shape[1])},
                    [u_in.T[:, :, None, None], core, u_out[:, :, None, None]])
        if not isinstance(rank, int):
            raise LowRankError(f"{where}: cp takes one rank, got {rank!r}")
        a, b, c, d = cp_als(w, rank)
        kernels = torch.einsum("hr,wr->rhw", c, d)[:, None]
        return ({"ranks": (rank, rank)}, [b.T[:, :, None, None], kernels,
                                          a[:, :, None, None]])
    except LowRankError as exc:
        message = str(exc)
        raise LowRankError(message if message.startswith(where)
                           else f"{where}: {message}") from None


def check_factorization(site: LayerSite, method: str) -> None:
    """Named errors for a method the layer does not take."""
    if method not in METHODS:
        raise LowRankError(f"layer {site.name!r}: unknown method {method!r}; methods: "
                           + ", ".join(METHODS))
    module = site.module
    if method == "svd" and type(module) is not QuantLinear:
        raise LowRankError(f"layer {site.name!r}: svd factorizes a QuantLinear layer, not "
                           f"{type(module).__name__} (tucker or cp take a QuantConv2d)")
    if method in ("tucker", "cp"):
        if type(module) is not QuantConv2d:
            raise LowRankError(f"layer {site.name!r}: {method} factorizes a QuantConv2d "
                               f"layer, not {type(module).__name__} (svd takes a QuantLinear)")
        if module.groups != 1:
            raise LowRankError(f"layer {site.name!r}: a grouped convolution is not "
                               "factorized")


def factorize(model: nn.Module, name: str, method: str, *,
              rank: int | Sequence[int] | None = None, energy: float | None = None,
              factor_bits: int | None = None, intermediate_bits: int = 8,
              data: Tensor | None = None) -> SequentialNet:
    """A new :class:`SequentialNet` with weight layer ``name`` replaced by its factor chain
    (see the module docstring); ``model`` is left untouched.

    ``rank``: SVD and CP one rank, Tucker ``(r_in, r_out)``; or ``energy`` in (0, 1].
    ``factor_bits``: weight bits of the inner factors (default: the layer's).
    ``data``: sample inputs that calibrate each requantization; without them (planning a
    recipe) the multipliers stay 1.
    """
    site = find_site(model, name)
    check_factorization(site, method)
    if rank is None and energy is None:
        raise LowRankError(f"layer {name!r}: give a rank or an energy fraction")
    if not 2 <= intermediate_bits <= 16:
        raise LowRankError(f"intermediate_bits must be in 2..16, got {intermediate_bits}")
    module = site.module
    bits = int(module.weight_bits if factor_bits is None else factor_bits)
    shapes, weights = _decompose(site, method, rank, energy)
    entries = _chain(site, method, shapes, bits, intermediate_bits)
    architecture = describe(model)
    layers = architecture["layers"]
    architecture["layers"] = [*layers[:site.index], *entries, *layers[site.index + 1:]]
    shift = len(entries) - 1
    prefix = "" if hasattr(model, "layers") else "layers."
    state: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        _, index, rest = (prefix + key).split(".", 2)
        i = int(index)
        if i != site.index:
            state[f"layers.{i + shift if i > site.index else i}.{rest}"] = value.clone()
    net = SequentialNet(architecture)
    factors = [site.index + 2 * k for k in range(len(weights))]
    with torch.no_grad():
        for position, weight in zip(factors, weights, strict=True):
            state[f"layers.{position}.weight"] = weight.to(torch.float32)
            state[f"layers.{position}.weight_mask"] = torch.ones_like(weight,
                                                                      dtype=torch.float32)
    for position in factors[:-1]:
        state[f"layers.{position}.weight_step"] = torch.zeros(())
    net.load_state_dict(state, strict=True)
    layers = list(net.layers)
    for position in factors[:-1]:
        layers[position].fix_weight_step_()
    _calibrate(net, site, factors, weights, module, data)
    return net.train(model.training)


@torch.no_grad()
def _calibrate(net: SequentialNet, site: LayerSite, factors: list[int],
               weights: list[Tensor], original: nn.Module, data: Tensor | None) -> None:
    """Set each requantization so the largest calibration accumulator fills its codes, then
    give the outer factor the scale that makes the chain compute the original layer."""
    layers = list(net.layers)
    input_scale = original.input_scale()
    gain = 1.0 if input_scale is None else float(input_scale)
    was_training = net.training
    net.eval()
    try:
        for position in factors[:-1]:
            factor, requant = layers[position], layers[position + 1]
            assert isinstance(requant, Requant)
            if data is not None:
                value = data
                shape = getattr(net, "input_shape", None)
                if shape is not None and value.dim() == 2:
                    value = value.reshape(value.shape[0], *shape)
                for module in layers[:position + 1]:
                    value = module(value)
                peak = float(value.abs().max())
                if peak > 0:
                    requant.multiplier, requant.shift = requant_params(
                        requant.max_value / peak, MULTIPLIER_BITS)
            _, factor_scale = factor._quantized_weight()
            gain *= float(factor_scale) / requant.real_scale
        outer = layers[factors[-1]]
        outer.weight.copy_((weights[-1] * gain).to(outer.weight.dtype))
    finally:
        net.train(was_training)
