"""Design-space exploration: sweeps of design points on Dask, their Pareto front, proof in RTL.

| module | what |
|---|---|
| ``spec`` | the sweep file: axes, options, validation |
| ``points`` | design points (the cartesian product of the axes) and their keys |
| ``evaluation`` | one point analytically (accuracy, cycles, energy, resources) or in RTL |
| ``pareto`` | the Pareto front |
| ``store`` | the results tables, appended one whole row at a time |
| ``cluster`` | the Dask client: a local cluster of processes or a scheduler address |
| ``runner`` | ``run_sweep``: points on Dask, front, RTL, report |
| ``report`` | the sweep's README.md and Pareto plots |
"""

from codesign.dse.pareto import pareto_front
from codesign.dse.points import Point, expand
from codesign.dse.runner import SweepResult, run_sweep
from codesign.dse.spec import SweepSpec, load_sweep

__all__ = ["Point", "SweepResult", "SweepSpec", "expand", "load_sweep", "pareto_front",
           "run_sweep"]
