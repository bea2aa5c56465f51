"""P1 finite elements on a head mesh: geometry, the stiffness matrix and the field.

Coordinates come in millimetres; everything here works in SI (metres, S/m, V, A),
so the field comes out in V/m. The stiffness matrix is ``K_ij = Σ_e σ_e V_e ∇λ_i·∇λ_j``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from neurotwin_db.modelling._kernels.p1 import (
    element_field_numba,
    p1_gradients_numba,
    stiffness_values_numba,
)
from neurotwin_db.modelling.headmodel import TISSUE_NAMES, HeadMesh, MeshError

MM = 1e-3  # metres per millimetre


@dataclass(frozen=True, eq=False)
class P1Geometry:
    """Basis gradients (1/m) and volumes (m³) of every tetrahedron of a mesh."""

    grads: np.ndarray
    volumes: np.ndarray

    @classmethod
    def of(cls, mesh: HeadMesh) -> P1Geometry:
        """Compute the geometry; a zero or inverted volume is an error naming the element."""
        grads, volumes = p1_gradients_numba(mesh.nodes * MM, mesh.tets)
        bad = ~(volumes > 0)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise MeshError(f"element {first + 1 + len(mesh.triangles)} (tissue "
                            f"{int(mesh.tags[first])}) has volume {volumes[first]:.3g} m³; "
                            f"the FEM needs positive volumes: run the mesh through "
                            f"`oriented()` or remesh it")
        return cls(grads, volumes)


def element_conductivity(mesh: HeadMesh, sigma: Mapping[int, float]) -> np.ndarray:
    """Conductivity (S/m) of every element from a tag → S/m table; unknown tags are errors."""
    table = np.full(int(mesh.tags.max()) + 1, np.nan)
    for tag, value in sigma.items():
        if 0 <= int(tag) < len(table):
            table[int(tag)] = float(value)
    values = table[mesh.tags]
    if np.isnan(values).any():
        missing = sorted({int(t) for t in mesh.tags[np.isnan(values)]})
        raise MeshError(f"no conductivity for tissue tag(s) {missing}; give them in the "
                        f"head model sidecar or with --conductivity TAG=S/m (known tissues: "
                        f"{dict(TISSUE_NAMES)})")
    return values


def assemble_stiffness(mesh: HeadMesh, geometry: P1Geometry, sigma: np.ndarray
                       ) -> sp.csr_matrix:
    """The global stiffness matrix (S·m ... i.e. A/V), symmetric positive semi-definite."""
    values = stiffness_values_numba(geometry.grads, geometry.volumes, sigma)
    n = mesh.n_nodes
    index = mesh.tets.astype(np.int32 if n < 2 ** 31 else np.int64)
    rows = np.repeat(index, 4, axis=1).ravel()
    cols = np.tile(index, (1, 4)).ravel()
    matrix = sp.csr_matrix((values.ravel(), (rows, cols)), shape=(n, n))
    matrix.sum_duplicates()
    return matrix


def element_field(mesh: HeadMesh, geometry: P1Geometry, potential: np.ndarray) -> np.ndarray:
    """Field ``E = −∇v`` (V/m) in every element from nodal potentials (V)."""
    return element_field_numba(geometry.grads, mesh.tets, np.ascontiguousarray(potential))
