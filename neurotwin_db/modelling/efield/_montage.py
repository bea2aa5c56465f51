"""The field of a tES montage: assemble, fix the electrodes, solve, take the gradient.

Two electrode models:

- ``dirichlet`` (SimNIBS's model for patch electrodes): every electrode is an
  equipotential. With N electrodes, N−1 solves (one electrode at 1 V, the others at
  0 V) give the conductance matrix from the current through each electrode (the
  reaction ``K v`` summed over its nodes); the potentials that drive the requested
  currents then combine those solutions. All solves share one AMG hierarchy.
- ``neumann``: the current enters through the electrode's nodes in proportion to their
  scalp area (point electrodes: one node). One solve, with one node grounded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.efield._electrodes import Electrode
from neurotwin_db.modelling.efield._fem import (
    P1Geometry,
    assemble_stiffness,
    element_conductivity,
    element_field,
)
from neurotwin_db.modelling.efield._solve import ReducedSystem, SolveStats
from neurotwin_db.modelling.headmodel import HeadMesh

MODELS = ("dirichlet", "neumann")


@dataclass(frozen=True, eq=False)
class FieldSolution:
    """Nodal potential (V), element field (V/m) and how the solve went."""

    potential: np.ndarray
    field: np.ndarray
    geometry: P1Geometry
    conductivity: np.ndarray
    stats: list[SolveStats]
    electrode_currents_ma: dict[str, float]
    timings: dict[str, float]
    model: str

    @property
    def magnitude(self) -> np.ndarray:
        """|E| per element (V/m)."""
        return np.linalg.norm(self.field, axis=1)

    def solver_json(self) -> dict[str, object]:
        """Solver statistics for the JSON summary."""
        return {"Method": "CG (float64) preconditioned by a W-cycle of pyamg smoothed "
                          "aggregation (float32 levels, float64 coarsest solve)",
                "RelativeTolerance": 1e-10, "ElectrodeModel": self.model,
                "Solves": [s.as_json() for s in self.stats],
                "Iterations": int(sum(s.iterations for s in self.stats)),
                "MaxRelativeResidual": max((s.relative_residual for s in self.stats),
                                           default=0.0),
                **{f"{k}Seconds": round(v, 3) for k, v in self.timings.items()}}


def solve_montage(mesh: HeadMesh, sigma: Mapping[int, float], electrodes: Sequence[Electrode],
                  *, model: str = "dirichlet") -> FieldSolution:
    """Solve the quasi-static field of ``electrodes`` (currents in mA, summing to zero)."""
    if model not in MODELS:
        raise InputError(f"electrode model {model!r} is not known; use one of {MODELS}")
    start = time.perf_counter()
    geometry = P1Geometry.of(mesh)
    conductivity = element_conductivity(mesh, sigma)
    matrix = assemble_stiffness(mesh, geometry, conductivity)
    timings = {"Assembly": time.perf_counter() - start}
    point = any(len(e.nodes) == 1 for e in electrodes)
    if model == "neumann" or point:
        potential, stats, setup = _neumann(matrix, electrodes)
        model = "neumann"
    else:
        potential, stats, setup = _dirichlet(matrix, electrodes)
    timings["Setup"] = setup
    timings["Solve"] = sum(s.seconds for s in stats)
    reaction = matrix @ potential
    measured = {e.name: float(reaction[e.nodes].sum() * 1e3) for e in electrodes}
    if model == "neumann":
        measured = {e.name: e.current_ma for e in electrodes}
    field = element_field(mesh, geometry, potential)
    return FieldSolution(potential, field, geometry, conductivity, stats, measured, timings,
                         model)


def _neumann(matrix: object, electrodes: Sequence[Electrode]
             ) -> tuple[np.ndarray, list[SolveStats], float]:
    n = matrix.shape[0]  # type: ignore[attr-defined]
    source = np.zeros(n)
    for e in electrodes:
        np.add.at(source, e.nodes, e.weights * e.current_ma * 1e-3)
    ground = electrodes[-1].nodes[np.argmax(electrodes[-1].weights)]
    system = ReducedSystem.build(matrix, np.array([ground]))  # type: ignore[arg-type]
    potential, stats = system.solve(source, what="the montage (current injection)")
    return potential - potential.mean(), [stats], system.setup_seconds


def _dirichlet(matrix: object, electrodes: Sequence[Electrode]
               ) -> tuple[np.ndarray, list[SolveStats], float]:
    n = matrix.shape[0]  # type: ignore[attr-defined]
    fixed = np.concatenate([e.nodes for e in electrodes])
    system = ReducedSystem.build(matrix, fixed)  # type: ignore[arg-type]
    basis, stats = [], []
    for e in electrodes[:-1]:
        boundary = np.zeros(n)
        boundary[e.nodes] = 1.0
        v, s = system.solve(boundary=boundary, what=f"electrode {e.name} at 1 V")
        basis.append(v)
        stats.append(s)
    reactions = [matrix @ v for v in basis]  # type: ignore[operator]
    conductance = np.array([[r[e.nodes].sum() for r in reactions] for e in electrodes[:-1]])
    wanted = np.array([e.current_ma * 1e-3 for e in electrodes[:-1]])
    volts = np.linalg.solve(conductance, wanted)
    potential = np.sum([u * v for u, v in zip(volts, basis, strict=True)], axis=0)
    return potential, stats, system.setup_seconds
