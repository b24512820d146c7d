"""Sweep speed: analytical points per second, RTL-verified points per hour, and one sweep on a
2-worker LocalCluster against a 1-worker one.

- analytical: ``evaluate_point`` in this process on one core, after the network is lowered
  (the per-point cost of a long sweep; the lowering, once per network and worker, and the
  loading of the energy table and the resource model's calibration, once per worker, are
  printed apart), the points sharing their network's stages as a sweep's worker does, and then the
  same points each alone (every stage of every point made, predicted, priced and counted
  anew; only the small remembered functions, such as the folding search, stay warm);
  every figure of every row must be the same both ways. Rates are given per second of wall
  time and of the process's CPU time, which the machine's other jobs do not inflate;
- RTL: ``verify_point`` of new designs (fifo depths no other run used, so every point is a
  Verilator build: a fresh cache directory, its first build excluded as the warm-up of the
  compiler cache) on 16 frames;
- cluster: the same sweep (every point analytical, no RTL) on a ``LocalCluster`` of 1 and of 2
  worker processes, wall time from cluster start to the last stored row.

    python benchmarks/sweep.py [--points 200] [--repeats 5] [--rtl-points 3] [--frames 16]
                               [--analytical-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from codesign.arch.resource_model import load_calibration
from codesign.dse import SweepSpec, expand, run_sweep
from codesign.dse.evaluation import (
    RESOURCE_TARGET,
    energy_table,
    evaluate_point,
    forget_designs,
    lowered,
    verify_point,
)

Rate = tuple[float, float]
"""Points per second of wall time and of this process's CPU time (the machine's other jobs
slow the first, not the second)."""


def analytical_rates(points: int, repeats: int) -> tuple[Rate, Rate, float, int]:
    """Points per second sharing stages (median of ``repeats`` runs, each from nothing
    made) and each alone, the lowering's seconds, and the
    number of rows compared (a row that differs is an error)."""
    spec = SweepSpec.from_mapping({
        "examples": ["binarized-mlp"], "target_cycles": [64, 128, 256, 512, 1024],
        "families": ["default", "mac", "ternary", "binary_weight"],
        "fifo_depth": list(range(2, 2 + max(1, points // 20))), "rtl_front": False})
    todo = expand(spec)[:points]
    start = time.perf_counter()
    lowered(todo[0].example, ())
    lowered(todo[0].example, ("fc1", "fc2"))
    energy_table(None)
    load_calibration(RESOURCE_TARGET)
    lowering = time.perf_counter() - start
    runs = []
    for _ in range(repeats):    # the median of several runs: one run is a fraction of a second
        forget_designs()
        wall, cpu = time.perf_counter(), time.process_time()
        shared = [evaluate_point(point) for point in todo]
        runs.append((len(todo) / (time.perf_counter() - wall),
                     len(todo) / (time.process_time() - cpu)))
    shared_rate = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
    alone, wall, cpu = [], 0.0, 0.0
    for point in todo:
        forget_designs()
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        alone.append(evaluate_point(point))
        wall += time.perf_counter() - wall_start
        cpu += time.process_time() - cpu_start
    timings = ("seconds", "finished_at")
    for one, other in zip(shared, alone, strict=True):
        if {k: v for k, v in one.items() if k not in timings} != \
                {k: v for k, v in other.items() if k not in timings}:
            raise SystemExit(f"point {one['key']}: shared {one} differs from alone {other}")
    return shared_rate, (len(todo) / wall, len(todo) / cpu), lowering, len(todo)


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


def rtl_and_cluster_rows(rtl_points: int, frames: int) -> list[tuple[str, str]]:
    """The RTL rate (in a cache of its own) and the sweep on 1 and 2 cluster workers."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        previous = os.environ.get("CODESIGN_CACHE")
        os.environ["CODESIGN_CACHE"] = cache
        try:
            per_hour, statuses = rtl_rate(rtl_points, frames)
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
    return [
        (f"RTL-verified points/hour, one process ({frames} frames, new designs)",
         f"{per_hour:.0f} ({', '.join(statuses)})"),
        (f"sweep of {points} points, LocalCluster 1 worker, s", f"{one:.1f}"),
        ("same sweep, LocalCluster 2 workers, s", f"{two:.1f}"),
        ("speedup 2 workers / 1 worker", f"{one / two:.2f}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of the shared analytical points (the median is printed)")
    parser.add_argument("--rtl-points", type=int, default=3)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--analytical-only", action="store_true",
                        help="measure the analytical points only (no RTL, no cluster)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rate, alone, lowering, compared = analytical_rates(args.points, args.repeats)
    rows = [
        ("analytical points/s, one core (lowered network, stages shared), wall / CPU time, "
         f"median of {args.repeats} runs",
         f"{rate[0]:.0f} / {rate[1]:.0f}"),
        ("same points each alone (nothing shared), points/s, wall / CPU time",
         f"{alone[0]:.0f} / {alone[1]:.0f}"),
        ("rows compared, every figure equal shared and alone", f"{compared}"),
        ("lowering binarized-mlp twice, loading energy table and calibration, s",
         f"{lowering:.2f}"),
    ]
    if not args.analytical_only:
        rows += rtl_and_cluster_rows(args.rtl_points, args.frames)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
