"""Run a sweep: evaluate every point on Dask, find the Pareto front, verify it in RTL, report.

Points already in the output directory's results table are not evaluated again (nor front
points already verified), so a killed sweep resumes where it stopped. Rows are stored by
this process as the workers' results arrive; a worker never writes the table.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.dse.cluster import dask_client
from codesign.dse.evaluation import evaluate_point, verify_point
from codesign.dse.pareto import front_rows
from codesign.dse.points import Point, expand
from codesign.dse.report import write_sweep_report
from codesign.dse.spec import SweepSpec, load_sweep
from codesign.dse.store import POINT_COLUMNS, RTL_COLUMNS, ResultsStore
from codesign.paths import atomic_write_text, check_output_dir

Say = Callable[[str], None]
POINTS_FILE = "points.csv"
RTL_FILE = "rtl.csv"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class SweepResult:
    """What a sweep found: every point's row, the front and its RTL verification."""

    rows: list[dict[str, Any]]
    """One row per point of the spec, in the spec's order."""
    front: list[dict[str, Any]]
    """The rows on the Pareto front, each with its RTL row's fields merged in (if verified)."""
    evaluated: int
    """Points evaluated by this call (the rest came from the results table)."""
    verified: int
    """Front points simulated by this call."""
    out_dir: Path


class Progress:
    """One progress line per second at most: points done, running and failed."""

    def __init__(self, what: str, total: int, slots: int, say: Say) -> None:
        self.what, self.total, self.slots, self.say = what, total, slots, say
        self.counts = {"ok": 0, "skipped": 0, "failed": 0}
        self.done, self._last = 0, 0.0

    def update(self, status: str) -> None:
        self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        now = time.monotonic()
        if now - self._last >= 1.0 or self.done == self.total:
            self._last = now
            running = min(self.slots, self.total - self.done)
            detail = ", ".join(f"{n} {k}" for k, n in self.counts.items() if n)
            self.say(f"{self.what}: {self.done}/{self.total} done ({detail}), "
                     f"{running} running")


def run_sweep(spec: SweepSpec | str | Path, out_dir: str | Path, *,
              scheduler: str | None = None, workers: int = 2, client: Any = None,
              rtl_front: bool | None = None, say: Say = _stderr,
              on_point: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Evaluate every point of ``spec`` (a :class:`SweepSpec` or a sweep file) into
    ``out_dir``: ``points.csv``, ``rtl.csv``, ``README.md`` and the Pareto plots.

    The points run on ``client`` (a ``distributed.Client``) if given, else on the Dask
    scheduler at ``scheduler``, else on a local cluster of ``workers`` processes.
    ``rtl_front`` overrides the spec's choice of verifying the front in RTL. ``on_point`` is
    called with every row as it is stored.
    """
    if not isinstance(spec, SweepSpec):
        path = Path(spec)
        spec = load_sweep(path)
        text = path.read_text(encoding="utf-8")
    else:
        path, text = None, None
    out = check_output_dir(out_dir)
    if text is not None and (path is None or path.resolve() != (out / "sweep.yaml").resolve()):
        atomic_write_text(out / "sweep.yaml", text)
    verify = spec.rtl_front if rtl_front is None else rtl_front
    points = expand(spec)
    store = ResultsStore(out / POINTS_FILE, POINT_COLUMNS)
    rtl_store = ResultsStore(out / RTL_FILE, RTL_COLUMNS)
    done = store.keys()
    todo = list({p.key: p for p in points if p.key not in done}.values())
    say(f"sweep {spec.name!r}: {len(points)} points, {len(points) - len(todo)} already in "
        f"{out / POINTS_FILE}, {len(todo)} to evaluate")
    evaluated = verified = 0
    rows: list[dict[str, Any]] = []
    front: list[dict[str, Any]] = []

    def session(active: Any) -> None:
        nonlocal evaluated, verified, rows, front
        evaluated = _run_tasks(active, "points", todo, evaluate_point, (spec.energy_table,),
                               store, say, on_point)
        by_key = {row["key"]: row for row in store.rows()}
        rows = [by_key[p.key] for p in points if p.key in by_key]
        front = [rows[i] for i in front_rows(rows)]
        say(f"Pareto front: {len(front)} of {sum(r['status'] == 'ok' for r in rows)} "
            "evaluated points")
        if verify:
            wanted = _designs(front, spec)
            have = rtl_store.keys()
            point_of = {p.key: p for p in points}
            pending = [point_of[r["key"]] for r in wanted if r["design"] not in have]
            say(f"verifying {len(pending)} design(s) of the front in RTL on {spec.rtl_frames} "
                f"frames ({len(wanted) - len(pending)} verified before)")
            verified = _run_tasks(active, "RTL", pending, verify_point,
                                  (spec.rtl_frames, spec.energy_table), rtl_store, say, None,
                                  keys=[r["design"] for r in wanted if r["design"] not in have])

    if not todo and (not verify or _all_verified(store, rtl_store, points, spec)):
        session(None)
    elif client is not None:
        session(client)
    else:
        with dask_client(scheduler, workers, say=say) as active:
            session(active)
    checks = {row["key"]: row for row in rtl_store.rows()}
    front = [{**row, **{k: v for k, v in checks.get(row["design"], {}).items() if k != "key"}}
             for row in front]
    write_sweep_report(out, spec, rows, front)
    say(f"report -> {out / 'README.md'}")
    return SweepResult(rows, front, evaluated, verified, out)


def _designs(front: Sequence[dict[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """One front row per design, cheapest in LUTs first (rows without an estimate last),
    at most ``spec.rtl_limit`` of them."""
    unique = list({row["design"]: row for row in reversed(front)}.values())[::-1]
    unique.sort(key=lambda r: (r.get("lut") is None, r.get("lut") or 0))
    return unique if spec.rtl_limit is None else unique[:spec.rtl_limit]


def _all_verified(store: ResultsStore, rtl_store: ResultsStore, points: Sequence[Point],
                  spec: SweepSpec) -> bool:
    by_key = {row["key"]: row for row in store.rows()}
    rows = [by_key[p.key] for p in points if p.key in by_key]
    front = [rows[i] for i in front_rows(rows)]
    return {r["design"] for r in _designs(front, spec)} <= rtl_store.keys()


def _run_tasks(client: Any, what: str, points: Sequence[Point], task: Callable[..., Any],
               args: tuple[Any, ...], store: ResultsStore, say: Say,
               on_point: Callable[[dict[str, Any]], None] | None,
               keys: Sequence[str] | None = None) -> int:
    """Run ``task(point, *args)`` for every point on the cluster; store each row as it
    comes (a task lost with its worker is stored as failed, under its entry of ``keys``,
    by default the point's key)."""
    if not points:
        return 0
    from distributed import as_completed

    slots = sum(client.nthreads().values()) or 1
    progress = Progress(what, len(points), slots, say)
    futures = client.map(task, points, *[[a] * len(points) for a in args], pure=False,
                         key=[f"{what}-{p.key}" for p in points])
    point_of = {f.key: p for f, p in zip(futures, points, strict=True)}
    key_of = {f.key: k for f, k in zip(futures, keys or [p.key for p in points], strict=True)}
    for future in as_completed(futures):
        try:
            row = future.result()
        except Exception as exc:  # the worker died or the task could not run
            row = {"key": key_of[future.key],
                   **({"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                      if what == "points" else
                      {"rtl_status": "failed", "rtl_error": f"{type(exc).__name__}: {exc}"})}
            if what == "points":
                row.update(point_of[future.key].axes())
        store.append(row)
        progress.update(str(row.get("status", row.get("rtl_status"))))
        if on_point is not None:
            on_point(row)
        future.release()
    return len(points)
