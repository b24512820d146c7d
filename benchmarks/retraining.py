"""Re-trained networks on the simulation build of the network before them.

For each example, the shipped network and a re-training of it (the example's own training
run from scratch with another seed, its pruning schedule or Deep Compression pipeline
included: other weights, scales, thresholds, TTQ levels, codebook values, zeros; an example
made by a recipe is fine-tuned one more epoch instead) are compiled with the example's
options. Printed per example: whether the two give the same
Verilog once the memory images are taken out (the text a Verilator build is keyed on), with
weights typed by their declared ranges (the default) and by their trained values; the
first design's build time; the re-trained design's build time and simulation (it should
find the first build), and whether both are bit-exact against the integer reference.
Builds go to a temporary cache, so the first build of each example is cold.

    python benchmarks/retraining.py [--frames 64] [--seed 1] [--examples binarized-mlp,...]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time

import numpy as np
import torch

EXAMPLES = ("binarized-mlp", "ternary-mlp-ttq", "fixed-point-mlp-w4a4", "pruned-mlp-0.9",
            "deep-compression-mlp", "svd-mlp")


def retrained(name: str, model, seed: int):
    """``name``'s network trained again with another seed (one made by a recipe: ``model``
    fine-tuned one more epoch)."""
    from dataclasses import replace

    from quant_models import catalog
    from quant_models.catalog import SPLIT_PARAMS
    from quant_models.data import load_digits_split
    from quant_models.train import train_classifier
    from quant_models.zoo import load

    entry = catalog.example(name)
    if entry.recipe is None:
        return load(replace(entry, training={**entry.training, "seed": seed}), retrain=True)[0]
    model = copy.deepcopy(model)
    train_classifier(model, load_digits_split(**SPLIT_PARAMS), epochs=1, lr=1e-3,
                     batch_size=64, seed=seed)
    return model


def architecture(model, options, name: str, weight_types: str):
    """The design of ``model`` and its Verilog split into build text and memory images."""
    from codesign.flow import compile_model
    from codesign.generate import generate_verilog
    from sim.memory_images import split_memory_images

    design = compile_model(model, options, name=name, weight_types=weight_types)
    return design, split_memory_images(generate_verilog(design).text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--examples", default=",".join(EXAMPLES))
    args = parser.parse_args()
    os.environ["CODESIGN_CACHE"] = tempfile.mkdtemp(prefix="codesign-retraining-")
    torch.set_num_threads(1)

    from codesign.examples import load_example
    from codesign.flow import example_options
    from codesign.reference import check_inputs, execute
    from codesign.simulate import simulate

    print(f"{'example':24} {'same build':>10} {'by values':>10} {'1st build s':>11} "
          f"{'2nd build s':>11} {'2nd sim s':>9} {'bit-exact':>9}")
    for name in args.examples.split(","):
        example = load_example(name)
        options = example_options(example)
        models = (example.model, retrained(name, example.model, args.seed))
        declared = [architecture(model, options, name, "declared") for model in models]
        values = [architecture(model, options, name, "values")[1] for model in models]
        same = declared[0][1].verilog == declared[1][1].verilog
        same_values = values[0].verilog == values[1].verilog
        timings, exact = [], []
        for design, _ in declared:
            x = check_inputs(design.graph, example.x_test[:args.frames])
            start = time.perf_counter()
            result = simulate(design, x)
            timings.append((result.timing.build_seconds, time.perf_counter() - start))
            exact.append(bool(np.array_equal(result.outputs, execute(design.graph, x))))
        print(f"{name:24} {'yes' if same else 'no':>10} {'yes' if same_values else 'no':>10} "
              f"{timings[0][0]:11.1f} {timings[1][0]:11.2f} {timings[1][1]:9.2f} "
              f"{'yes' if all(exact) else 'NO':>9}", flush=True)


if __name__ == "__main__":
    main()
