"""Sweeps: spec validation, a tiny sweep on an in-process Dask cluster, resume after a
crash, per-point failures, an unreachable scheduler."""

from __future__ import annotations

import csv

import pytest

from codesign.cli import main
from codesign.dse import SweepSpec, expand, run_sweep
from codesign.dse.cluster import dask_client
from codesign.dse.evaluation import evaluate_point, forget_designs
from codesign.dse.store import POINT_COLUMNS, ResultsStore
from codesign.errors import SchedulerError, SweepError


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                           dashboard_address=None)
    with Client(cluster) as active:
        yield active
    cluster.close()


def quiet(message: str) -> None:
    pass


def spec(**axes) -> SweepSpec:
    return SweepSpec.from_mapping({"rtl_front": False, **axes})


@pytest.mark.parametrize(("data", "message"), [
    ({"examples": ["binarized-mlp"], "targets": [128]},
     "sweep: unknown key 'targets'; axes: examples, target_cycles, foldings, families, "
     "sparse, fifo_depth, memory_styles, folding_objective; options: name, notes, rtl_front, "
     "rtl_frames, rtl_limit, energy_table"),
    ({"examples": ["binarized-mlp"], "folding_objective": ["lanes", "area"]},
     "sweep: folding_objective='area': give lanes, luts or 'default'"),
    ({"examples": ["no-such-net"]}, "sweep: examples: unknown example 'no-such-net'; examples: "
                                    "binarized-mlp, "),
    ({"examples": ["binarized-mlp"], "families": ["simd"]},
     "sweep: families: unknown PE family 'simd'; families: xnor_popcount, binary_weight, "
     "ternary, codebook, mac"),
    ({"examples": ["binarized-mlp"], "rtl_frames": 0}, "sweep: rtl_frames=0: give a whole "
                                                      "number >= 1"),
    ({"examples": ["binarized-mlp"], "sparse": ["some"]}, "sweep: sparse='some': give"),
    ({"examples": ["binarized-mlp"], "memory_styles": ["ultra"]},
     "sweep: memory_styles: unknown memory style 'ultra'; styles: auto, block, distributed, "
     "registers"),
    ({"examples": ["binarized-mlp"], "target_cycles": [64], "foldings": [{"fc0": [8, 8]}]},
     "sweep: give target_cycles or foldings, not both"),
    ({"target_cycles": [64]}, "sweep: no 'examples' axis"),
])
def test_bad_sweep_files_are_named_errors(data, message):
    with pytest.raises(SweepError) as info:
        SweepSpec.from_mapping(data)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_cli_prints_one_line_for_a_bad_sweep_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("examples: [binarized-mlp]\ntarget_cycle: [64]\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: unknown key 'target_cycle'; axes: examples,")
    assert "\n" not in err


def test_axes_multiply_into_points():
    points = expand(spec(examples=["binarized-mlp", "ternary-mlp-twn"],
                         target_cycles=[64, 128, 256], families=["default", "mac"],
                         sparse=["default", "none"]))
    assert len(points) == 2 * 3 * 2 * 2
    assert len({p.key for p in points}) == len(points)
    assert points[0].example == "binarized-mlp" and points[-1].example == "ternary-mlp-twn"


def test_the_folding_objective_is_an_axis():
    """binarized-mlp at 128 cycles: the default folds for the fewest lanes (the same design
    as asking for them); the fewest LUTs is another design at the same cycles, cheaper by
    the model, its points keyed apart."""
    points = expand(spec(examples=["binarized-mlp"], target_cycles=[128],
                         folding_objective=["default", "lanes", "luts"]))
    assert [p.folding_objective for p in points] == [None, "lanes", "luts"]
    assert len({p.key for p in points}) == 3
    assert points[2].label() == "binarized-mlp, target 128, fifo 4, fewest luts"
    default, lanes, luts = (evaluate_point(p) for p in points)
    assert default["folding_objective"] is None and luts["folding_objective"] == "luts"
    assert default["design"] == lanes["design"] != luts["design"]
    assert default["lut"] == lanes["lut"] > luts["lut"]
    assert default["cycles_per_frame"] == lanes["cycles_per_frame"] == luts["cycles_per_frame"]


def _figures(row: dict) -> dict:
    """A row without its timings."""
    return {name: value for name, value in row.items()
            if name not in ("seconds", "finished_at")}


def test_points_sharing_stages_give_the_figures_of_points_alone():
    """Points evaluated in a row share their networks' stages and stage figures; every
    figure equals the one of the same point evaluated with nothing shared."""
    points = expand(spec(examples=["binarized-mlp", "ternary-mlp-twn", "deep-compression-mlp"],
                         target_cycles=[128, 512], families=["default", "mac"],
                         sparse=["default", 0.5], fifo_depth=[4, 8],
                         memory_styles=["auto", "block"]))
    points += expand(spec(examples=["binarized-mlp"],
                          foldings=[{"fc0": [8, 8]}, {"fc0": [16, 3]}],
                          families=["default", {"fc1": "mac"}], fifo_depth=[2, 8]))
    points += expand(spec(examples=["ternary-mlp-twn"], families=["ternary"]))
    forget_designs()
    shared = [_figures(evaluate_point(point)) for point in points]
    alone = []
    for point in points:
        forget_designs()
        alone.append(_figures(evaluate_point(point)))
    assert shared == alone
    statuses = {row["status"] for row in shared}
    assert statuses == {"ok", "skipped", "failed"}
    assert len({row["design"] for row in shared if row["status"] == "ok"}) > 20


def test_tiny_sweep_on_an_in_process_cluster(client, tmp_path):
    result = run_sweep(spec(examples=["binarized-mlp"], target_cycles=[128, 512],
                            families=["default", "mac", "xnor_popcount"],
                            sparse=["default", "none"]),
                       tmp_path, client=client, say=quiet)
    by = {(r["target_cycles"], r["family_label"]): r for r in result.rows
          if r["sparse"] is None}
    assert len(result.rows) == 12 and result.evaluated == 12
    # no layer of this network is sparse: "none" builds the default's design
    none = [r for r in result.rows if r["sparse"] == "none"]
    assert [r["design"] for r in none] == [r["design"] for r in by.values()]
    assert len({r["design"] for r in by.values() if r["status"] == "ok"}) == 4
    # xnor_popcount already runs every layer it can: nothing new to evaluate
    assert by[(128, "xnor_popcount")]["status"] == "skipped"
    assert by[(128, "xnor_popcount")]["error"].startswith(
        "family 'xnor_popcount' computes no layer of binarized-mlp")
    default, mac = by[(128, "default")], by[(128, "mac")]
    assert default["engines"] == "binary_weight,xnor_popcount,xnor_popcount"
    assert mac["engines"] == "mac,mac,mac"
    # the analytical cycles are the bottleneck's: 128 and 512 targets are met exactly
    assert default["cycles_per_frame"] == 128.0
    assert by[(512, "default")]["cycles_per_frame"] == 512.0
    # same network, same predictions, whatever the family: equal accuracy
    assert default["accuracy"] == mac["accuracy"]
    assert mac["energy_pj_per_frame"] > default["energy_pj_per_frame"]
    assert isinstance(default["lut"], int) and default["lut"] > 0
    assert {r["key"] for r in result.front} <= {r["key"] for r in result.rows
                                                 if r["status"] == "ok"}
    assert default["key"] in {r["key"] for r in result.front}
    report = (tmp_path / "README.md").read_text()
    assert "| binarized-mlp | default | binary_weight,xnor_popcount,xnor_popcount |" in report
    assert (tmp_path / "pareto_energy.png").stat().st_size > 0
    assert (tmp_path / "pareto_luts.png").stat().st_size > 0


def test_a_point_the_generator_cannot_build_fails_alone(client, tmp_path):
    result = run_sweep(spec(examples=["binarized-mlp"],
                            foldings=[{"fc0": [8, 8]}, {"fc0": [3, 8]}]),
                       tmp_path, client=client, say=quiet)
    ok, failed = result.rows
    assert ok["status"] == "ok" and ok["folding"] == {"fc0": [8, 8]}
    assert failed["status"] == "failed"
    assert failed["error"].startswith("FoldingError: layer 'fc0': PE=3 does not divide MH=128")
    assert "Failed points" in (tmp_path / "README.md").read_text()


def test_a_memory_style_for_the_whole_network(client, tmp_path):
    result = run_sweep(spec(examples=["binarized-mlp"], target_cycles=[512],
                            memory_styles=["auto", "distributed", {"fc0": "registers"}]),
                       tmp_path, client=client, say=quiet)
    auto, distributed, registers = result.rows
    assert [r["memory_style"] for r in result.rows] == [None, "distributed",
                                                         {"fc0": "registers"}]
    assert all(r["status"] == "ok" for r in result.rows)
    assert auto["bram18"] > 0 and distributed["bram18"] == 0
    assert len({r["design"] for r in result.rows}) == 3


class Crash(Exception):
    pass


def test_resume_after_a_crash_recomputes_no_point(client, tmp_path):
    sweep = spec(examples=["binarized-mlp"], target_cycles=[64, 128, 256, 512],
                 fifo_depth=[4, 8])
    stored = []

    def crash_after_three(row):
        stored.append(row["key"])
        if len(stored) == 3:
            raise Crash

    with pytest.raises(Crash):
        run_sweep(sweep, tmp_path, client=client, say=quiet, on_point=crash_after_three)
    with open(tmp_path / "points.csv", newline="") as handle:
        first = {row["key"]: row["finished_at"] for row in csv.DictReader(handle)}
    assert set(first) == set(stored)
    # a torn last line, as a writer killed mid-row leaves it, is dropped on reopening
    with open(tmp_path / "points.csv", "a") as handle:
        handle.write("deadbeef,binarized-mlp,12")
    result = run_sweep(sweep, tmp_path, client=client, say=quiet)
    assert result.evaluated == 8 - 3
    with open(tmp_path / "points.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and len({row["key"] for row in rows}) == 8
    for row in rows:   # the rows stored before the crash were not written again
        if row["key"] in first:
            assert row["finished_at"] == first[row["key"]]
    again = run_sweep(sweep, tmp_path, client=client, say=quiet)
    assert again.evaluated == 0 and len(again.rows) == 8


def test_results_table_refuses_another_tables_file(tmp_path):
    (tmp_path / "points.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SweepError, match="holds another table"):
        ResultsStore(tmp_path / "points.csv", POINT_COLUMNS)


def test_unreachable_scheduler_is_a_named_error():
    with pytest.raises(SchedulerError) as info:
        with dask_client("tcp://127.0.0.1:9", connect_timeout=1):
            pass
    message = str(info.value)
    assert message.startswith("scheduler 'tcp://127.0.0.1:9' cannot be reached (")
    assert "leave --scheduler unset for a local cluster" in message and "\n" not in message


@pytest.mark.slow
def test_front_verified_bit_exact_in_rtl(client, tmp_path):
    sweep = SweepSpec.from_mapping({"examples": ["binarized-mlp"], "target_cycles": [512],
                                    "rtl_frames": 4})
    result = run_sweep(sweep, tmp_path, client=client, say=quiet)
    (front,) = result.front
    assert front["rtl_status"] == "bit-exact" and front["rtl_frames"] == 4
    assert front["analytical_match"] is True
    # 4 frames through a 512-cycle bottleneck: at least 4 * 512 cycles, first in to last out
    assert front["rtl_total_cycles"] >= 4 * 512
