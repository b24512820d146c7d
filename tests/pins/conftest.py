"""Shared runs for the pin tests: each run directory is produced once per session.

Trained models and Verilator builds go to ``$CODESIGN_CACHE`` when it is set (a developer's
private cache keeps later sessions warm), else to a directory of this session: never to the
user's ``~/.cache``. Run directories are temporary.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pin_runs import (
    ENERGY_TABLE_YAML,
    FAULT_FIFO_DEPTH,
    FAULT_LAYER,
    PIN_FRAMES,
    Run,
    cli_run,
    first_visible_fault,
)

from codesign.paths import CACHE_ENV


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """$CODESIGN_CACHE if set, else a directory of this session (never ~/.cache)."""
    if os.environ.get(CACHE_ENV):
        yield Path(os.environ[CACHE_ENV])
        return
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("codesign-cache")
        patch.setenv(CACHE_ENV, str(root))
        yield root


@pytest.fixture(scope="session")
def energy_table_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("table") / "pin_table.yaml"
    path.write_text(ENERGY_TABLE_YAML)
    return path


@pytest.fixture(scope="session")
def mlp_custom_table_run(tmp_path_factory, energy_table_file) -> Run:
    """binarized-mlp through the CLI with the custom energy table."""
    return cli_run(["binarized-mlp", "--energy-table", str(energy_table_file)],
                   tmp_path_factory.mktemp("runs") / "mlp-custom-table")


@pytest.fixture(scope="session")
def example_runs(tmp_path_factory) -> dict[str, Run]:
    """binarized-mlp and binary-cnn through codesign.flow.run_example, default table."""
    from codesign.flow import run_example

    runs = {}
    for name in ("binarized-mlp", "binary-cnn"):
        out = tmp_path_factory.mktemp("runs") / name
        summary = run_example(name, out_dir=out, frames=PIN_FRAMES, baseline=False,
                              say=lambda _: None)
        runs[name] = Run(out, 0, "", summary)
    return runs


@pytest.fixture(scope="session")
def faulty_run(tmp_path_factory) -> Run:
    """binarized-mlp through the CLI with one weight code of fc1's engine flipped.

    The fault is injected where the stage builds its engine configuration, so every design
    built from it (the run's, and the prefixes that localise the mismatch)
    carries it. notes: ``fault`` (row, column) and ``simulated``, the (stage names,
    fifo_depth) of every design simulated, in order.
    """
    import codesign.evaluate as evaluate_module
    from codesign.arch.stages import DenseEngine
    from codesign.examples import load_example
    from codesign.flow import compile_model

    example = load_example("binarized-mlp")
    graph = compile_model(example.model, name=example.name).graph
    row, col = first_visible_fault(graph, example.x_test[:PIN_FRAMES])
    true_config = DenseEngine.make_hdl_config
    true_run = evaluate_module.run_rtl
    simulated: list[tuple[list[str], int]] = []

    def faulty_config(stage):
        config = true_config(stage)
        if stage.name == FAULT_LAYER:
            config.weight_codes = config.weight_codes.copy()
            config.weight_codes[row, col] ^= 1          # bipolar code: +1 <-> -1
        return config

    def recording_run(design, *args, **kwargs):
        simulated.append(([stage.name for stage in design.stages],
                          design.options.fifo_depth))
        return true_run(design, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DenseEngine, "make_hdl_config", faulty_config)
        patch.setattr(evaluate_module, "run_rtl", recording_run)
        run = cli_run(["binarized-mlp", "--fifo-depth", str(FAULT_FIFO_DEPTH)],
                      tmp_path_factory.mktemp("runs") / "mlp-faulty")
    run.notes = {"fault": (row, col), "simulated": simulated}
    return run
