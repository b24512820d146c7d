"""Read-only memory images loaded at run time: one Verilator build per architecture.

The Verilog-text tests need no build; the RTL tests take one small build per architecture:
a binary chain (two weight sets, then the loader's error paths on the same executable), a
shared-weight layer (two codebook tables) and a pair of sparse engines (two weight sets of
one sparse structure).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import sim.stream_sim as stream_sim
from codesign.analytical import compare_counters
from codesign.arch import build_design
from codesign.arch.dataflow.folding import divisors
from codesign.generate import generate_verilog
from codesign.ir import IntType
from codesign.paths import cache_root
from codesign.reference import execute
from codesign.simulate import simulate
from netgen import folds, random_chain, random_inputs, random_layer_stack, share_weights
from sim.build import model_key
from sim.errors import MemoryImageError
from sim.memory_images import LOADER_TAG, MemoryImage, split_memory_images

WIDTHS = [12, 8, 4]
FOLDING = [(4, 3), (2, 4)]


def chain_design(seed: int):
    graph = random_chain(WIDTHS, IntType.uint(3), seed=seed, last_thresholds=True)
    return graph, build_design(graph, folding=folds(graph, FOLDING))


def codebook_design(seed: int):
    """A shared layer whose table is drawn per seed (2..8 of its 8 entries used), its values
    typed by the declared int6, then thresholds: one architecture for every seed."""
    graph = random_layer_stack(12, IntType.uint(3), [(6, "int4", ("threshold", "uint2"))],
                               seed, sparsity=0.3)
    share_weights(graph, 3, seed, "int6", declared=True)
    return graph, build_design(graph, folding=folds(graph, [(3, 4)]))


def read_hex(text: str) -> dict[int, int]:
    """A plain reading of a ``$readmemh`` file: ``@address`` lines and one word a line."""
    words, address = {}, 0
    for line in text.split():
        if line.startswith("@"):
            address = int(line[1:], 16)
        else:
            words[address] = int(line, 16)
            address += 1
    return words


# ---- the Verilog text ---------------------------------------------------------------------


def test_images_are_the_stages_read_only_memories():
    _, design = chain_design(3)
    split = split_memory_images(generate_verilog(design).text)
    found = {(image.label, image.width, image.words) for image in split.images}
    expected = {(f"codesign_top.stage_{k}_{stage.name}.{spec.name}", spec.width,
                 tuple(enumerate(spec.init)))
                for k, stage in enumerate(design.stages)
                for spec in stage.hdl_config.memories if spec.rom and spec.init}
    assert found == expected
    assert [image.plusarg for image in split.images] == [
        f"codesign_mem_{k}" for k in range(len(expected))]
    # written memories (the input buffers, the FIFOs) keep their inline initial image
    kept = re.findall(r"reg \[\d+:0\] (\w+) \[\d+:0\];\n  initial begin\n    \1\[0\]",
                      split.verilog)
    assert sorted(set(kept)) == ["ibuf", "storage"]


def test_weight_sets_of_one_architecture_share_the_build_key():
    artefacts = [generate_verilog(chain_design(seed)[1]) for seed in (3, 4)]
    assert artefacts[0].text != artefacts[1].text
    splits = [split_memory_images(artefact.text) for artefact in artefacts]
    assert splits[0].verilog == splits[1].verilog
    assert splits[0].images != splits[1].images
    keys = {model_key(a.text, a.top, in_width=a.in_width, out_width=a.out_width,
                      n_counters=len(a.counters)) for a in artefacts}
    assert len(keys) == 1


def test_a_codebook_table_is_an_image_not_logic():
    (graph, design), (_, other) = codebook_design(5), codebook_design(6)
    (node,) = graph.compute_nodes()
    split = split_memory_images(generate_verilog(design).text)
    tables = [image for image in split.images if image.memory == "codebook"]
    values = [*node.codebook.values, *[0] * (8 - len(node.codebook.values))]
    assert [(t.width, t.words) for t in tables] == [(6, tuple(enumerate(v & 63 for v in values)))]
    assert split.verilog == split_memory_images(generate_verilog(other).text).verilog


def sparse_weights(rng: np.random.Generator, mw: int, pe: int, simd: int,
                   steps: list[int], weight_type: str, busiest: str) -> np.ndarray:
    """A weight matrix whose fold ``f`` takes ``steps[f]`` steps at (PE, SIMD), values drawn
    by ``rng``: each fold's first row holds the most non-zeros of its fold (``busiest``
    "most": as many as a row of that many steps can hold, "fewest": as few), the other rows
    any number up to it. The structure (steps, so the memory's depth and word layout) is
    fixed; the values and nnz are not."""
    t = IntType.parse(weight_type)
    nonzero = [v for v in range(t.min, t.max + 1) if v]
    w = np.zeros((len(steps) * pe, mw), dtype=np.int64)
    for f, n in enumerate(steps):
        most = min(n * simd, mw)
        first = most if busiest == "most" else (0 if n == 1 else (n - 1) * simd + 1)
        for p in range(pe):
            count = first if p == 0 else int(rng.integers(0, first + 1))
            cols = rng.choice(mw, count, replace=False)
            w[f * pe + p, cols] = rng.choice(nonzero, count)
    return w


def sparse_design(mw: int, layers, seed: int, busiest: str):
    """A chain of sparse engines of a fixed structure, one (PE, SIMD, steps of each fold,
    weight type, post) a layer; the weights and thresholds follow ``seed``."""
    graph = random_layer_stack(mw, IntType.uint(3), [(len(steps) * pe, wname, post)
                                                     for pe, _, steps, wname, post in layers],
                               seed)
    rng = np.random.default_rng(seed)
    nodes = graph.compute_nodes()
    for node, (pe, simd, steps, wname, _) in zip(nodes, layers, strict=True):
        node.weight = sparse_weights(rng, node.mw, pe, simd, steps, wname, busiest)
    graph.validate()
    design = build_design(graph, folding=folds(graph, [(pe, simd) for pe, simd, *_ in layers]),
                          sparse=[node.name for node in nodes])
    assert all(stage.kind == "sparse_mvu" for stage in design.stages)
    return graph, design


@settings(max_examples=15, deadline=None)
@given(st.data(), st.integers(1, 12), st.integers(1, 4),
       st.sampled_from(["ternary", "int4", "uint3"]),
       st.sampled_from([("threshold", "uint2"), None]), st.integers(0, 10**6))
def test_sparse_weight_sets_of_one_structure_share_the_build_key(data, mw, pe, wname, post,
                                                                 seed):
    """Shape, folding, the weight memory's depth and word layout fix the sparse engine's
    logic: two weight sets of that structure, with other values and another nnz, differ in
    the memory images alone (one-beat vectors, SIMD = MW, included)."""
    simd = data.draw(st.sampled_from(divisors(mw)), label="simd")
    nf = data.draw(st.integers(1, 3), label="folds")
    steps = data.draw(st.lists(st.integers(1, -(-mw // simd)), min_size=nf, max_size=nf),
                      label="steps")
    designs = [sparse_design(mw, [(pe, simd, steps, wname, post)], seed + k, busiest)[1]
               for k, busiest in enumerate(["most", "fewest"])]
    configs = [design.stages[0].hdl_config for design in designs]
    nnz = [config.nnz for config in configs]
    assume(nnz[0] != nnz[1])
    for config in configs:
        assert config.steps == steps
        assert (config.compute_steps, config.slots_width) == (sum(steps),
                                                              configs[0].slots_width)
    artefacts = [generate_verilog(design) for design in designs]
    assert artefacts[0].text != artefacts[1].text
    splits = [split_memory_images(artefact.text) for artefact in artefacts]
    assert splits[0].verilog == splits[1].verilog
    weights = [next(image for image in split.images if image.memory == "weights")
               for split in splits]
    assert weights[0].words != weights[1].words
    keys = {model_key(a.text, a.top, in_width=a.in_width, out_width=a.out_width,
                      n_counters=len(a.counters)) for a in artefacts}
    assert len(keys) == 1


def yosys_memory(name: str, width: int, words: dict[int, int], depth: int, *,
                 written: bool = False, radix: str = "h") -> str:
    """A module holding one memory, written the way Yosys's write_verilog does."""
    fmt = {"h": "x", "d": "d", "b": "b"}[radix]
    inits = "".join(f"    {name}[{a}] = {width}'{radix}{v:{fmt}};\n" for a, v in words.items())
    write = f"    if (we)\n      {name}[wa] <= wd;\n" if written else ""
    target = name + (" " if name.startswith("\\") else "")
    return (f"module top(clk, ra, rd);\n  input clk;\n  (* ram_style = \"block\" *)\n"
            f"  reg [{width - 1}:0] {name} [{depth - 1}:0];\n"
            f"  initial begin\n{inits}  end\n"
            f"  always @(posedge clk) begin\n{write}    rd <= {target}[ra];\n  end\n"
            "endmodule\n")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(1, 40), st.data(),
       st.sampled_from(["h", "d", "b"]), st.sampled_from(["rom", "\\rom$3.x"]))
def test_any_image_round_trips_through_its_hex_file(width, depth, data, radix, name):
    addresses = data.draw(st.lists(st.integers(0, depth - 1), min_size=1, unique=True))
    words = {a: data.draw(st.integers(0, 2**width - 1)) for a in addresses}
    split = split_memory_images(yosys_memory(name, width, words, depth, radix=radix))
    (image,) = split.images
    assert (image.memory, image.width) == (name, width)
    assert read_hex(image.hex_text()) == words
    # the image is gone from the text: only the loader and the architecture are left
    assert "initial begin\n    if (!$value$plusargs(\"codesign_mem_0=%s\"" in split.verilog
    assert f"{width}'{radix}" not in split.verilog
    other = {a: (v + 1) % 2**width for a, v in words.items()}
    assert split_memory_images(yosys_memory(name, width, other, depth,
                                            radix=radix)).verilog == split.verilog


@pytest.mark.parametrize("text", [
    yosys_memory("ram", 8, {0: 1, 1: 2}, 2, written=True),          # written: not read-only
    yosys_memory("rom", 8, {0: 1, 1: 2}, 2).replace("8'h2", "8'hx"),  # an x bit
    yosys_memory("rom", 8, {0: 1, 1: 2}, 2).replace("8'h2", "4'h2"),  # not the word's width
    yosys_memory("rom", 8, {0: 1, 1: 2}, 2).replace("rom[1] =", "other[1] ="),
])
def test_forms_not_handled_keep_their_inline_image(text):
    split = split_memory_images(text)
    assert split.images == ()
    assert split.verilog == text


# ---- on Verilator: one build, two weight sets, the loader's errors -------------------------


def build_entries() -> set[str]:
    root = cache_root() / "verilator"
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def first_run():
    graph, design = chain_design(3)
    x = random_inputs(graph, 30, 3)
    result = simulate(design, x)
    return graph, design, x, result


def test_second_weight_set_reuses_the_build_bit_exact(first_run):
    graph, _, x, result = first_run
    assert np.array_equal(result.outputs, execute(graph, x))
    before = build_entries()
    graph2, design2 = chain_design(4)
    second = simulate(design2, x)
    assert build_entries() == before              # no new build
    assert second.timing.build_seconds < 5
    expected = execute(graph2, x)
    assert np.array_equal(second.outputs, expected)
    assert not np.array_equal(expected, result.outputs)  # the images really were swapped


def test_a_second_codebook_reuses_the_build_bit_exact():
    graph, design = codebook_design(5)
    x = random_inputs(graph, 20, 5)
    first = simulate(design, x)
    assert np.array_equal(first.outputs, execute(graph, x))
    before = build_entries()
    graph2, design2 = codebook_design(6)
    assert graph2.compute_nodes()[0].codebook != graph.compute_nodes()[0].codebook
    second = simulate(design2, x)
    assert build_entries() == before
    assert np.array_equal(second.outputs, execute(graph2, x))
    stage = design2.stages[0]
    assert second.stage_counters[stage.name] == stage.predict_counters(20, x)


SPARSE_LAYERS = [(2, 3, [2, 1, 3], "int4", ("threshold", "uint2")),    # 4 beats a vector
                 (2, 6, [1, 1], "ternary", None)]                       # 1 beat a vector


def test_sparse_weight_set_of_one_structure_reuses_the_build_bit_exact():
    frames = 20
    runs = []
    for seed, busiest in ((5, "most"), (6, "fewest")):
        graph, design = sparse_design(12, SPARSE_LAYERS, seed, busiest)
        x = random_inputs(graph, frames, seed)
        before = build_entries() if runs else None
        result = simulate(design, x)
        if before is not None:
            assert build_entries() == before          # no new build
            assert result.timing.build_seconds < 5
        assert np.array_equal(result.outputs, execute(graph, x))
        for stage in design.stages:
            measured = result.stage_counters[stage.name]
            assert compare_counters(stage.predict_counters(frames), measured,
                                    in_network=True) == {}, stage.name
            weight = stage.node.weight
            assert measured["skipped_weights"] == frames * (weight.size
                                                            - np.count_nonzero(weight))
        runs.append([result.stage_counters[stage.name]["skipped_weights"]
                     for stage in design.stages])
    assert runs[0] != runs[1]                     # another nnz, counted by the hardware


def dropping(what: str):
    """A stand-in for the image writer that loses the file of memory 1 or its plusarg."""
    real = stream_sim.write_memory_images

    def write(images: tuple[MemoryImage, ...], directory: Path) -> list[str]:
        plusargs = real(images, directory)
        if what == "file":
            (directory / f"{images[1].plusarg}.hex").unlink()
            return plusargs
        return [arg for arg in plusargs if not arg.startswith(f"+{images[1].plusarg}=")]
    return write


@pytest.mark.parametrize("what, message", [
    ("file", r"cannot open /\S+/codesign_mem_1\.hex"),
    ("plusarg", r"no file given"),
], ids=["file", "plusarg"])
def test_a_missing_image_is_a_named_error(first_run, monkeypatch, what, message):
    graph, design, x, _ = first_run
    monkeypatch.setattr(stream_sim, "write_memory_images", dropping(what))
    with pytest.raises(MemoryImageError) as error:
        simulate(design, x)
    text = str(error.value)
    assert "\n" not in text and LOADER_TAG not in text
    assert re.fullmatch(r"simulation of 'codesign_top' could not load a memory image of "
                        r"codesign_top\.stage_0_fc0\.\w+ \(\+codesign_mem_1=FILE\): "
                        + message, text), text
