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
import scipy.linalg
import scipy.sparse as sp
from pyamg.aggregation.aggregate import standard_aggregation
from pyamg.aggregation.smooth import jacobi_prolongation_smoother
from pyamg.aggregation.tentative import fit_candidates
from pyamg.krylov import cg
from pyamg.relaxation.smoothing import change_smoothers
from pyamg.strength import symmetric_strength_of_connection
from scipy.sparse.linalg import LinearOperator

from neurotwin_db.errors import NeurotwinError

RTOL = 1e-10
# Smoothed aggregation, tuned on the 4-shell sphere head (σ 0.33 / 1.654 / 0.0066 / 0.33)
# with 4.87 M tetrahedra (817 k unknowns); benchmarks/bench_efield.py measures it all:
# - strength threshold θ = 0.02: a three-level hierarchy of operator complexity 1.22 and
#   14 CG iterations (θ = 0.05: 1.41 and 13; θ ≥ 0.1 made the coarse levels dense);
# - 'local' weighting of the Jacobi prolongation smoother skips pyamg's eigenvalue
#   estimate, halving the setup for two more iterations;
# - no improvement of the candidate (the constant is the operator's near-null space):
#   the same iterations, 0.5–1 s less setup;
# - the hierarchy in float32 (the outer CG stays float64 and reaches RTOL): setup and
#   V-cycles move half the bytes, setup + solve 10.8 → 8.0 s;
# - W-cycles: 13 CG iterations instead of 17, 12 % less time per solve (1.05 M tets);
# - pyamg's energy-minimising prolongation: 2.7x the setup for 9 % less per solve, which
#   does not pay even for a 20-electrode lead field.
THETA = 0.02
MAX_COARSE = 500
MAX_LEVELS = 10
CYCLE = "W"
SMOOTHER = ("block_gauss_seidel", {"sweep": "symmetric"})  # pyamg's default


def smoothed_aggregation(matrix: sp.csr_matrix, *, max_coarse: int = MAX_COARSE
                         ) -> pyamg.MultilevelSolver:
    """Smoothed aggregation (pyamg's) for a scalar SPD matrix, with every level in CSR.

    The same steps as ``pyamg.smoothed_aggregation_solver`` (symmetric strength,
    standard aggregation, tentative prolongator, smoothed prolongator, Galerkin product),
    taken one by one from pyamg so that every operator stays CSR. pyamg's driver keeps a
    scalar problem's prolongators and coarse operators as 1x1-block BSR matrices: its
    Galerkin product then spends half the setup in BSR ``sum_duplicates``, and
    Gauss-Seidel on BSR levels is ~2.5x slower. On the 4-shell head with 1.05 M
    tetrahedra this takes the setup from 1.87 to 0.80 s and the solve from 1.96 to
    1.22 s, with the same iterations and solutions equal to 1e-10. The hierarchy has the
    matrix's dtype.
    """
    top = pyamg.MultilevelSolver.Level()
    top.A, top.B = matrix.tocsr(), np.ones((matrix.shape[0], 1), dtype=matrix.dtype)
    levels = [top]
    while levels[-1].A.shape[0] > max_coarse and len(levels) < MAX_LEVELS:
        fine = levels[-1]
        strength = symmetric_strength_of_connection(fine.A, theta=THETA)
        aggregates, _ = standard_aggregation(strength)
        tentative, coarse_b = fit_candidates(aggregates, fine.B)
        smoothed = jacobi_prolongation_smoother(fine.A, tentative, strength, coarse_b,
                                                omega=4.0 / 3.0, weighting="local")
        fine.P = smoothed.tocsr()
        fine.R = fine.P.T.tocsr()
        coarse = pyamg.MultilevelSolver.Level()
        coarse.A, coarse.B = (fine.R @ (fine.A @ fine.P)).tocsr(), coarse_b
        coarse.A.sort_indices()
        levels.append(coarse)
    solver = pyamg.MultilevelSolver(levels, coarse_solver=CoarsestInFloat64(levels[-1].A))
    change_smoothers(solver, SMOOTHER, SMOOTHER)
    return solver


class CoarsestInFloat64:
    """The coarsest level's pseudo-inverse, in float64 whatever the hierarchy's dtype.

    With a single grounded node (a lead field) the coarsest operator is nearly singular:
    a float32 pseudo-inverse took CG from 18 to 31 iterations (1.05 M tetrahedra).
    """

    def __init__(self, matrix: sp.csr_matrix) -> None:
        self.inverse = scipy.linalg.pinv(matrix.toarray().astype(np.float64))

    def __call__(self, _matrix: object, rhs: np.ndarray) -> np.ndarray:
        """Solve ``A x = rhs`` on the coarsest level (the call pyamg makes), in rhs's dtype."""
        return (self.inverse @ rhs.astype(np.float64)).astype(rhs.dtype)


def float32_preconditioner(hierarchy: pyamg.MultilevelSolver) -> LinearOperator:
    """One W-cycle of a float32 hierarchy as a preconditioner for float64 vectors."""
    cycle = hierarchy.aspreconditioner(cycle=CYCLE)
    return LinearOperator(cycle.shape, dtype=np.float64,
                          matvec=lambda r: cycle @ r.astype(np.float32))


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
    _preconditioner: LinearOperator = field(repr=False)

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
        rows = matrix[free]
        reduced = rows[:, free].tocsr()
        coupling = rows[:, fixed].tocsr()
        amg = smoothed_aggregation(reduced.astype(np.float32))
        return cls(matrix, fixed, free, reduced, coupling, time.perf_counter() - start, amg,
                   float32_preconditioner(amg))

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
        x, _ = cg(self.reduced, rhs, tol=rtol, maxiter=maxiter, M=self._preconditioner,
                  residuals=residuals)
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
