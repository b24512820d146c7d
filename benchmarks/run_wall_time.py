"""Wall time of `codesign run` on the built-in example: cold (empty cache) and warm.

Cold: a fresh cache directory, so the models are trained and the Verilator model is built
from scratch (the compiler cache, if any, is left as it is: the figure is "after install").
Warm: the same command again, everything cached. Goals: cold <= 60 s, warm <= 10 s.

    python benchmarks/run_wall_time.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_run(cache: Path, out: Path) -> float:
    env = dict(os.environ, CODESIGN_CACHE=str(cache))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "codesign.cli", "run", "--out", str(out)], env=env,
                   check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cold = timed_run(cache, Path(tmp) / "cold")
        warm = [timed_run(cache, Path(tmp) / f"warm{i}") for i in range(args.repeats)]
        summary = json.loads((Path(tmp) / "cold" / "summary.json").read_text())
    print(f"codesign run (built-in example, {summary['frames']} frames, "
          f"bit_exact={summary['bit_exact']}) on {os.cpu_count()} cores")
    print(f"  cold (empty cache: train + build + simulate): {cold:6.1f} s   goal <= 60 s")
    print(f"  warm (best of {args.repeats}):                     {min(warm):6.1f} s   "
          f"goal <= 10 s")


if __name__ == "__main__":
    main()
