"""Zero-skipping sparse engine vs the dense engine of the same folding, measured in RTL.

For a 128x128 layer of 8-bit weights x 8-bit activations at 50 %, 75 % and 90 % random
unstructured weight sparsity, both engines run the same frames on Verilator; outputs are
checked against the integer reference, and cycles are the wrapper's first-input-to-last-
output count. Ideal speedup = dense MACs / non-zero MACs; efficiency = measured / ideal;
the load-imbalance loss is the share of issued lane slots that were padding (a fold waits
for its busiest PE). Goal: efficiency >= 0.85.

    python benchmarks/sparse_speedup.py [--frames 16] [--folding 2,1 --folding 4,1]
"""

from __future__ import annotations

import argparse

import numpy as np

from codesign.arch import build_design
from codesign.ir import Graph, IntType, MatVec, TensorInfo
from codesign.reference import execute
from codesign.simulate import simulate


def layer_graph(weight: np.ndarray) -> Graph:
    mh, mw = weight.shape
    x_type, w_type = IntType.uint(8), IntType.int_(8)
    node = MatVec("fc", ["x"], ["acc"], weight=weight, weight_type=w_type)
    lo, hi = node.output_range(x_type)
    tensors = {"x": TensorInfo("x", (mw,), x_type),
               "acc": TensorInfo("acc", (mh,), IntType.for_range(lo, hi))}
    return Graph("layer", "x", "acc", tensors, [node])


def measure(weight: np.ndarray, folding: tuple[int, int], x: np.ndarray) -> dict[str, float]:
    graph = layer_graph(weight)
    expected = execute(graph, x)
    cycles = {}
    for sparse in (False, True):
        design = build_design(graph, folding={"fc": folding}, sparse=["fc"] if sparse else None)
        result = simulate(design, x)
        if not np.array_equal(result.outputs, expected):
            raise AssertionError(f"{'sparse' if sparse else 'dense'} engine differs from the "
                                 "reference")
        cycles[sparse] = result.total_cycles
        counters = result.stage_counters["fc"]
    nnz = int(np.count_nonzero(weight))
    ideal = weight.size / nnz
    speedup = cycles[False] / cycles[True]
    return {"dense_cycles": cycles[False], "sparse_cycles": cycles[True], "ideal": ideal,
            "speedup": speedup, "efficiency": speedup / ideal,
            "imbalance_loss": counters["zero_weight_lanes"] / counters["lane_ops"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--folding", action="append", default=None,
                        help="PE,SIMD (repeatable; default 1,1 2,1 4,1)")
    args = parser.parse_args()
    foldings = [tuple(int(v) for v in f.split(",")) for f in (args.folding or
                                                                ["1,1", "2,1", "4,1"])]
    rng = np.random.default_rng(0)
    n = args.size
    x = rng.integers(0, 256, (args.frames, n))
    print(f"{n}x{n} int8 weights x uint8 activations, {args.frames} frames, random "
          "unstructured sparsity; cycles from RTL (outputs bit-exact)")
    print(f"{'sparsity':>8} {'PE,SIMD':>8} {'dense':>8} {'sparse':>8} {'ideal':>7} "
          f"{'speedup':>8} {'eff.':>6} {'imbalance':>9}")
    for sparsity in (0.5, 0.75, 0.9):
        weight = rng.integers(-127, 128, (n, n))
        weight[rng.random((n, n)) < sparsity] = 0
        for folding in foldings:
            r = measure(weight, folding, x)
            print(f"{sparsity:>8.0%} {folding[0]:>4},{folding[1]:<3} {r['dense_cycles']:>8} "
                  f"{r['sparse_cycles']:>8} {r['ideal']:>7.2f} {r['speedup']:>8.2f} "
                  f"{r['efficiency']:>6.2f} {r['imbalance_loss']:>9.1%}")


if __name__ == "__main__":
    main()
