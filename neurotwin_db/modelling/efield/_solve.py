"""Solve ``K v = b`` with Dirichlet nodes by CG preconditioned with pyamg.

One :class:`ReducedSystem` (the matrix on the free nodes and its smoothed-aggregation
hierarchy) serves any number of right-hand sides: an electric field montage, or every
electrode of a lead field.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyamg
import scipy.sparse as sp

from neurotwin_db.errors import NeurotwinError

RTOL = 1e-10
# Smoothed aggregation tuned on a 4-shell head (σ 0.33 / 1.654 / 0.0066 / 0.33, 182 k
# unknowns): a strength threshold θ = 0.05 cut CG from 52 to 14 iterations (θ ≥ 0.1 made
# the coarse levels dense and slow); 'local' weighting of the prolongation smoother skips
# pyamg's eigenvalue estimate, halving the setup for two more iterations.
# benchmarks/bench_efield.py measures the whole solve.
AMG_OPTIONS: dict[str, object] = {
    "strength": ("symmetric", {"theta": 0.05}),
    "smooth": ("jacobi", {"omega": 4.0 / 3.0, "weighting": "local"}),
    "max_coarse": 500,
}


class SolverError(NeurotwinError, RuntimeError):
    """The linear solver did not reach its tolerance."""


@dataclass(frozen=True, slots=True)
class SolveStats:
    """What one solve took: iterations, final relative residual and wall time."""

    iterations: int
    relative_residual: float
    seconds: float

    def as_json(self) -> dict[str, float | int]:
        """The statistics as a JSON object."""
        return {"Iterations": self.iterations,
                "RelativeResidual": float(f"{self.relative_residual:.3e}"),
                "SolveSeconds": round(self.seconds, 3)}


@dataclass(eq=False)
class ReducedSystem:
    """``K`` restricted to the nodes that are not fixed, with one AMG hierarchy."""

    matrix: sp.csr_matrix
    fixed: np.ndarray
    free: np.ndarray
    reduced: sp.csr_matrix
    coupling: sp.csr_matrix
    setup_seconds: float
    _amg: pyamg.MultilevelSolver = field(repr=False)

    @classmethod
    def build(cls, matrix: sp.csr_matrix, fixed: np.ndarray) -> ReducedSystem:
        """Fix the nodes in ``fixed`` (Dirichlet) and build the AMG hierarchy once."""
        fixed = np.unique(np.asarray(fixed, dtype=np.int64))
        if not len(fixed):
            raise SolverError("no Dirichlet node: the potential is defined only up to a "
                              "constant; fix a reference electrode")
        keep = np.ones(matrix.shape[0], dtype=bool)
        keep[fixed] = False
        free = np.flatnonzero(keep)
        start = time.perf_counter()
        reduced = matrix[free][:, free].tocsr()
        coupling = matrix[free][:, fixed].tocsr()
        amg = pyamg.smoothed_aggregation_solver(reduced, symmetry="hermitian", **AMG_OPTIONS)
        return cls(matrix, fixed, free, reduced, coupling, time.perf_counter() - start, amg)

    @property
    def levels(self) -> int:
        """Number of levels of the AMG hierarchy."""
        return len(self._amg.levels)

    def solve(self, source: np.ndarray | None = None, boundary: np.ndarray | None = None, *,
              rtol: float = RTOL, maxiter: int = 500, what: str = "the potential"
              ) -> tuple[np.ndarray, SolveStats]:
        """Nodal potential (V) for nodal currents ``source`` (A) and Dirichlet values.

        ``boundary`` is a nodal array whose entries at the fixed nodes are their
        potentials (V); zero when omitted. Raises :class:`SolverError` when CG does not
        reach ``rtol`` in ``maxiter`` iterations.
        """
        n = self.matrix.shape[0]
        rhs = (np.zeros(len(self.free)) if source is None
               else np.asarray(source, dtype=np.float64)[self.free].copy())
        values = (np.zeros(len(self.fixed)) if boundary is None
                  else np.asarray(boundary, dtype=np.float64)[self.fixed])
        if np.any(values):
            rhs -= self.coupling @ values
        solution = np.zeros(n)
        solution[self.fixed] = values
        norm = np.linalg.norm(rhs)
        if norm == 0:
            return solution, SolveStats(0, 0.0, 0.0)
        residuals: list[float] = []
        start = time.perf_counter()
        x = self._amg.solve(rhs, tol=rtol, maxiter=maxiter, accel="cg", residuals=residuals)
        seconds = time.perf_counter() - start
        relative = float(np.linalg.norm(rhs - self.reduced @ x) / norm)
        stats = SolveStats(max(len(residuals) - 1, 0), relative, seconds)
        if not np.isfinite(relative) or relative > 10 * rtol:
            raise SolverError(
                f"CG with AMG did not converge for {what}: relative residual {relative:.2e} "
                f"after {stats.iterations} iterations (goal {rtol:g}); check the mesh for "
                f"badly shaped elements (see the head model's quality figures) and the "
                f"conductivities for extreme contrasts")
        solution[self.free] = x
        return solution, stats
