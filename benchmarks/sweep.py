"""Sweep speed: analytical points per second, RTL-verified points per hour, and one sweep on a
2-worker LocalCluster against a 1-worker one.

- analytical: ``evaluate_point`` in this process on one core, after the network is lowered
  (the per-point cost of a long sweep; the lowering, once per network and worker, is printed
  apart);
- RTL: ``verify_point`` of new designs (fifo depths no other run used, so every point is a
  Verilator build: a fresh cache directory, its first build excluded as the warm-up of the
  compiler cache) on 16 frames;
- cluster: the same sweep (every point analytical, no RTL) on a ``LocalCluster`` of 1 and of 2
  worker processes, wall time from cluster start to the last stored row.

    python benchmarks/sweep.py [--points 200] [--rtl-points 3] [--frames 16]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from codesign.dse import SweepSpec, expand, run_sweep
from codesign.dse.evaluation import evaluate_point, lowered, verify_point


def analytical_rate(points: int) -> tuple[float, float]:
    spec = SweepSpec.from_mapping({
        "examples": ["binarized-mlp"], "target_cycles": [64, 128, 256, 512, 1024],
        "families": ["default", "mac", "ternary", "binary_weight"],
        "fifo_depth": list(range(2, 2 + max(1, points // 20))), "rtl_front": False})
    todo = expand(spec)[:points]
    start = time.perf_counter()
    lowered(todo[0].example, ())
    lowered(todo[0].example, ("fc1", "fc2"))
    lowering = time.perf_counter() - start
    start = time.perf_counter()
    for point in todo:
        evaluate_point(point)
    return len(todo) / (time.perf_counter() - start), lowering


def rtl_rate(points: int, frames: int) -> tuple[float, list[str]]:
    spec = SweepSpec.from_mapping({
        "examples": ["binarized-mlp"], "target_cycles": [512],
        "fifo_depth": list(range(37, 38 + points)), "rtl_front": False})
    todo = expand(spec)[:points + 1]
    statuses, seconds = [], 0.0
    for i, point in enumerate(todo):
        start = time.perf_counter()
        row = verify_point(point, frames)
        if i > 0:
            seconds += time.perf_counter() - start
            statuses.append(row["rtl_status"])
    return 3600.0 * points / seconds, statuses


def cluster_seconds(workers: int, out: Path) -> float:
    from distributed import Client, LocalCluster

    spec = SweepSpec.from_mapping({
        "examples": ["binarized-mlp", "fixed-point-mlp-w4a4", "ternary-mlp-twn",
                     "binary-cnn"],
        "target_cycles": [128, 256, 512, 1024, 2048, 4096],
        "families": ["default", "mac"], "fifo_depth": [4, 8], "rtl_front": False})
    start = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        run_sweep(spec, out, client=client, say=lambda message: None)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--rtl-points", type=int, default=3)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rate, lowering = analytical_rate(args.points)
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        previous = os.environ.get("CODESIGN_CACHE")
        os.environ["CODESIGN_CACHE"] = cache
        try:
            per_hour, statuses = rtl_rate(args.rtl_points, args.frames)
        finally:
            if previous is None:
                os.environ.pop("CODESIGN_CACHE")
            else:
                os.environ["CODESIGN_CACHE"] = previous
        one = cluster_seconds(1, Path(out) / "one")
        two = cluster_seconds(2, Path(out) / "two")
    points = len(expand(SweepSpec.from_mapping({
        "examples": ["binarized-mlp", "fixed-point-mlp-w4a4", "ternary-mlp-twn", "binary-cnn"],
        "target_cycles": [128, 256, 512, 1024, 2048, 4096], "families": ["default", "mac"],
        "fifo_depth": [4, 8]})))
    rows = [
        ("analytical points/s, one core (lowered network)", f"{rate:.0f}"),
        ("lowering binarized-mlp twice (once per accumulation set), s", f"{lowering:.2f}"),
        (f"RTL-verified points/hour, one process ({args.frames} frames, new designs)",
         f"{per_hour:.0f} ({', '.join(statuses)})"),
        (f"sweep of {points} points, LocalCluster 1 worker, s", f"{one:.1f}"),
        ("same sweep, LocalCluster 2 workers, s", f"{two:.1f}"),
        ("speedup 2 workers / 1 worker", f"{one / two:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
