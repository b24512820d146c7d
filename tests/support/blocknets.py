"""Random networks that are not chains: a stem, residual, fire or average-pooling blocks,
and a head, with random weights and calibrated, then perturbed, statistics; and the check
that a lowered one agrees with torch on every hidden activation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

from codesign.ir import Graph, IntType
from codesign.reference import execute_all
from quant_models.conv import BinaryConv2d, QuantConv2d
from quant_models.fire import FireModule
from quant_models.fixed_point import QuantAct, QuantLinear
from quant_models.layers import BinaryLinear, IntegerInput, LogitScale, SignActivation
from quant_models.pooling import QuantAvgPool2d, QuantGlobalAvgPool2d
from quant_models.residual import (
    BinaryResidualBlock,
    QuantResidualBlock,
    ResidualAdd,
    SharedQuantAct,
)


@dataclass(frozen=True)
class BlockSpec:
    """One block: ``residual`` (quantized or binary by the codes entering it), ``fire``
    (squeeze ``squeeze``, expands ``expand``), or ``avgpool`` (kernel ``kernel``, stride
    ``stride``, then a QuantAct when ``requant``)."""

    kind: str
    squeeze: int = 2
    expand: int = 2
    shortcut_weight: int = 1
    branch_bits: int = 3
    kernel: int = 2
    stride: int = 2
    requant: bool = True


@dataclass(frozen=True)
class BlockNetSpec:
    """``IntegerInput(input_type)`` on (C, H, W) images, a 3x3 stem of ``channels`` with
    sign (``binary``) or ``act_bits`` codes, ``blocks``, then global average pooling and a
    linear layer (``gap``) or flatten and a linear layer."""

    input_type: str
    image: tuple[int, int, int]
    channels: int
    binary: bool
    act_bits: int
    weight_bits: int
    blocks: tuple[BlockSpec, ...]
    gap: bool
    classes: int = 3

    @property
    def ir_shape(self) -> tuple[int, int, int]:
        c, h, w = self.image
        return h, w, c


def block_net_specs(max_blocks: int = 2):
    """Hypothesis strategy for a valid :class:`BlockNetSpec`."""
    @st.composite
    def specs(draw) -> BlockNetSpec:
        binary = draw(st.booleans(), label="binary")
        image = (draw(st.integers(1, 2), label="channels in"),
                 draw(st.integers(3, 7), label="height"), draw(st.integers(3, 7), label="width"))
        h, w = image[1:]
        blocks: list[BlockSpec] = []
        codes = True                 # the map is codes a residual or fire block can read
        for _ in range(draw(st.integers(1, max_blocks), label="blocks")):
            kind = draw(st.sampled_from(["residual", "fire", "avgpool"] if codes
                                        else ["avgpool"]), label="block")
            if kind == "avgpool":
                k = draw(st.integers(1, min(h, w, 3)), label="pool kernel")
                s = draw(st.integers(1, 2), label="pool stride")
                requant = not binary and draw(st.booleans(), label="requant")
                blocks.append(BlockSpec("avgpool", kernel=k, stride=s, requant=requant))
                h, w = (h - k) // s + 1, (w - k) // s + 1
                codes = requant
                continue
            blocks.append(BlockSpec(kind, squeeze=draw(st.integers(1, 3), label="squeeze"),
                                    expand=draw(st.integers(1, 3), label="expand"),
                                    shortcut_weight=draw(st.integers(1, 9), label="w"),
                                    branch_bits=draw(st.integers(2, 5), label="bits")))
            if kind == "fire":
                break               # a residual block needs its own width: keep fire last
        return BlockNetSpec(
            input_type=draw(st.sampled_from(["uint3", "uint5", "int4"]), label="input"),
            image=image, channels=draw(st.integers(1, 4), label="channels"), binary=binary,
            act_bits=draw(st.integers(2, 4), label="act bits"),
            weight_bits=draw(st.integers(2, 4), label="weight bits"),
            blocks=tuple(blocks), gap=draw(st.booleans(), label="gap"))

    return specs()


class BlockNet(nn.Module):
    """The network of a :class:`BlockNetSpec`; its forward has forks and joins (traced)."""

    def __init__(self, spec: BlockNetSpec) -> None:
        super().__init__()
        self.input_shape = spec.image
        t = IntType.parse(spec.input_type)
        c = spec.channels
        self.input_quant = IntegerInput(t.bits, t.signed)
        if spec.binary:
            self.stem = BinaryConv2d(spec.image[0], c, 3, padding=1, pad_value=0)
            source: nn.Module = SignActivation()
        else:
            self.stem = QuantConv2d(spec.image[0], c, 3, padding=1, weight_bits=spec.weight_bits)
            source = QuantAct(spec.act_bits)
        self.stem_bn = nn.BatchNorm2d(c)
        self.stem_act = source
        blocks: list[nn.Module] = []
        for block in spec.blocks:
            if block.kind == "residual" and spec.binary:
                module: nn.Module = BinaryResidualBlock(c, block.shortcut_weight)
                source = module.out_act
            elif block.kind == "residual":
                module = QuantResidualBlock(c, source, spec.weight_bits, spec.act_bits,
                                            block.branch_bits)
                source = module.out_act
            elif block.kind == "fire":
                module = FireModule(c, block.squeeze, block.expand,
                                    kind="binary" if spec.binary else "quant",
                                    source=None if spec.binary else source,
                                    weight_bits=spec.weight_bits, act_bits=spec.act_bits)
                source = module.out_act
                c = module.out_channels
            else:
                pool = QuantAvgPool2d(block.kernel, block.stride)
                if not spec.binary:
                    pool.link_input(source)
                module = nn.Sequential(pool, QuantAct(spec.act_bits)) if block.requant else pool
                source = module[1] if block.requant else pool
            blocks.append(module)
        self.blocks = nn.ModuleList(blocks)
        self.flatten = nn.Flatten()
        h, w = spec.image[1:]
        for block in spec.blocks:
            if block.kind == "avgpool":
                k, stride = block.kernel, block.stride
                h, w = (h - k) // stride + 1, (w - k) // stride + 1
        self.pool = QuantGlobalAvgPool2d(h * w) if spec.gap else None
        features = c if spec.gap else c * h * w
        if spec.binary:
            self.head: nn.Module = BinaryLinear(features, spec.classes)
        else:
            self.head = QuantLinear(features, spec.classes, weight_bits=spec.weight_bits,
                                    per_channel=False)
        self.logits = LogitScale(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_act(self.stem_bn(self.stem(self.input_quant(x))))
        for block in self.blocks:
            x = block(x)
        x = self.pool(x) if self.pool is not None else self.flatten(x)
        return self.logits(self.head(x))


def block_inputs(spec: BlockNetSpec, frames: int, seed: int) -> np.ndarray:
    """Integer frames [N, H, W, C]: the first at the type's minimum, the second at its
    maximum, the rest uniform."""
    t = IntType.parse(spec.input_type)
    x = np.random.default_rng(seed + 1).integers(t.min, t.max + 1, (frames, *spec.ir_shape))
    x[:1], x[1:2] = t.min, t.max
    return x


def torch_images(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(x.transpose(0, 3, 1, 2), dtype=torch.float32)


def random_block_net(spec: BlockNetSpec, seed: int) -> BlockNet:
    """The network in eval mode with random weights; batch norms and quantizer scales
    calibrated on random inputs (one training-mode pass), then perturbed: a batch norm
    after a join keeps a positive gamma (a join's channels cannot be negated), any other
    may turn negative or zero."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = BlockNet(spec)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                m.momentum = None            # one batch: running stats = batch stats
        model.train()
        model(torch_images(block_inputs(spec, 64, seed)))
    model.eval()
    after_join = {id(m.bn_out) for m in model.modules() if isinstance(m, BinaryResidualBlock)}
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_var.mul_(torch.as_tensor(np.exp(rng.normal(0, 0.3, c)),
                                                   dtype=torch.float32))
                m.bias.copy_(torch.as_tensor(rng.normal(0, 0.5, c)))
                gamma = rng.normal(1, 0.5, c)
                if id(m) in after_join:
                    gamma = np.abs(gamma)
                else:
                    gamma = np.where(rng.random(c) < 0.15, -gamma, gamma)
                m.weight.copy_(torch.as_tensor(gamma))
            if isinstance(m, QuantAct):
                m.scale.mul_(float(np.exp(rng.uniform(-0.5, 0.5))))
    return model


CODES = (SignActivation, QuantAct, SharedQuantAct, nn.MaxPool2d, QuantAvgPool2d,
         QuantGlobalAvgPool2d)
"""Modules whose torch outputs are integer codes (or exact integer sums)."""


def assert_block_net_matches_torch(model: nn.Module, graph: Graph, x: np.ndarray) -> int:
    """The integer graph's reference equals torch on every code tensor the network computes
    (by the module that computes it, ``graph.origins``) and on the scores; returns how many
    hidden activations were compared."""
    values = execute_all(graph, x)
    modules = dict(model.named_modules())
    seen: dict[str, np.ndarray] = {}
    hooks = [modules[path].register_forward_hook(
        lambda _m, _i, out, path=path: seen.__setitem__(path, out.detach().numpy()))
        for path in set(graph.origins.values())
        if path in modules and (isinstance(modules[path], CODES)
                                or (isinstance(modules[path], ResidualAdd)
                                    and modules[path].scale_source is None))]
    with torch.no_grad():
        out = model(torch_images(x)).numpy()
    for hook in hooks:
        hook.remove()
    compared = 0
    for tensor, path in graph.origins.items():
        if tensor not in values or path not in seen:
            continue
        want = seen[path]
        want = want.transpose(0, 2, 3, 1) if want.ndim == 4 else want
        if want.shape[1:] != values[tensor].shape[1:]:
            continue                    # the module's output is another tensor's (popcount)
        assert np.array_equal(values[tensor], want), f"{tensor} ({path})"
        compared += 1
    scores = values[graph.output]
    np.testing.assert_allclose(scores * graph.output_scale + graph.output_offset, out,
                               rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(out).max())))
    assert np.array_equal(np.argmax(scores, axis=1), np.argmax(out, axis=1))
    return compared
