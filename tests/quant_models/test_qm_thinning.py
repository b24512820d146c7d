"""Channel masking and thinning: masked channels contribute nothing, and removing them keeps
every output bit for bit; removing nothing rebuilds the same network; the removed channels
are exactly the chosen ones, in torch, in the IR and in the Verilog."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.errors import CodesignError
from codesign.flow import compile_model
from codesign.generate import generate_verilog
from codesign.reference import execute
from netgen import LayerSpec, NetSpec, random_model_inputs, random_quant_model, torch_layout
from quant_models.architecture import as_sequential
from quant_models.channel_pruning import mask_channels_, masked_channels
from quant_models.structure import layer_sites
from quant_models.thinning import ThinningError, consumer_columns, thin


def _cnn(seed: int) -> torch.nn.Module:
    spec = NetSpec("uint4", (
        LayerSpec("int4", 6, kernel=3, padding=1, act="quant", act_type="uint3"),
        LayerSpec("int4", 8, kernel=3, padding=1, act="quant", act_type="uint3", pool=2,
                  pool_stride=2),
        LayerSpec("int3", 5, kernel=1, act="quant", act_type="uint2"),
        LayerSpec("int4", 7, flatten=True, act="quant", act_type="uint3"),
        LayerSpec("int4", 4, act=None, batch_norm=False, per_channel=False),
    ), image=(2, 6, 6))
    return random_quant_model(spec, seed), spec


def _outputs(model: torch.nn.Module, x: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return model(torch_layout(x))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), picks=st.lists(st.integers(0, 7), min_size=4, max_size=4),
       counts=st.lists(st.integers(0, 4), min_size=4, max_size=4))
def test_masked_channels_are_removed_without_changing_any_output(seed, picks, counts):
    model, spec = _cnn(seed)
    x = random_model_inputs(spec, 16, seed)
    sites = layer_sites(model)[:-1]                 # every layer but the classifier
    removed = {}
    for site, pick, count in zip(sites, picks, counts, strict=True):
        channels = int(site.module.weight.shape[0])
        chosen = sorted({(pick + 3 * k) % channels for k in range(min(count, channels - 1))})
        removed[site.name] = chosen
    mask_channels_(model, removed)
    for name, chosen in removed.items():
        assert masked_channels(model, name) == chosen
    thin_model = thin(model, removed)
    assert torch.equal(_outputs(model, x), _outputs(thin_model, x))
    old_sites = layer_sites(model)
    for old, new in zip(old_sites, layer_sites(thin_model), strict=True):
        assert new.name == old.name
        rows = [c for c in range(old.module.weight.shape[0])
                if c not in removed.get(old.name, [])]
        producer = next((s for s in old_sites if s.consumer == old.index), None)
        gone = [] if producer is None else consumer_columns(producer,
                                                            removed.get(producer.name, []))
        cols = [c for c in range(old.module.weight.shape[1]) if c not in gone]
        expected = old.module.weight.detach()[rows][:, cols]
        assert torch.equal(new.module.weight.detach(), expected)


def test_removing_nothing_rebuilds_the_same_network():
    model, spec = _cnn(3)
    x = random_model_inputs(spec, 32, 3)
    same = thin(model, {})
    assert same.architecture == as_sequential(model).architecture
    assert torch.equal(_outputs(model, x), _outputs(same, x))
    for key, value in model.state_dict().items():
        assert torch.equal(value, same.state_dict()[key])


def test_thinning_shrinks_the_ir_and_the_verilog_by_exactly_the_removed_channels():
    model, spec = _cnn(5)
    removed = {"conv0": [1, 4], "conv1": [0, 2, 7]}
    mask_channels_(model, removed)
    thin_model = thin(model, removed)
    full = compile_model(model, name="full")
    small = compile_model(thin_model, name="small")
    shapes = {e.name: (e.mh, e.mw) for e in full.engines}
    thin_shapes = {e.name: (e.mh, e.mw) for e in small.engines}
    # conv0 loses 2 outputs; conv1 loses 3 outputs and 2 input channels (x 9 window taps);
    # conv2 (1x1) loses 3 input channels
    assert thin_shapes["conv0"] == (shapes["conv0"][0] - 2, shapes["conv0"][1])
    assert thin_shapes["conv1"] == (shapes["conv1"][0] - 3, shapes["conv1"][1] - 2 * 9)
    assert thin_shapes["conv2"] == (shapes["conv2"][0], shapes["conv2"][1] - 3)
    assert thin_shapes["fc3"] == shapes["fc3"]
    x = random_model_inputs(spec, 8, 5)
    assert np.array_equal(execute(full.graph, x), execute(small.graph, x))
    big_text = generate_verilog(full, counters=False).text
    small_text = generate_verilog(small, counters=False).text
    assert len(small_text) < len(big_text)


def test_thinning_refuses_what_it_cannot_remove():
    model, _ = _cnn(1)
    cases = [
        ({"conv9": [0]}, "unknown layer 'conv9'; layers: conv0, conv1, conv2, fc3, fc4"),
        ({"conv0": [6]}, "layer 'conv0': channels [6] do not exist (it has 6)"),
        ({"conv0": list(range(6))}, "layer 'conv0': removing all 6 channels leaves nothing"),
        ({"fc4": [0]}, "layer 'fc4' is the output layer: its channels are the network's "
                       "outputs and cannot be removed"),
        ({"conv0": [1, 1]}, "layer 'conv0': a channel is listed twice"),
    ]
    for removed, message in cases:
        with pytest.raises(ThinningError) as info:
            thin(model, removed)
        assert isinstance(info.value, CodesignError)
        assert str(info.value) == message
