"""P1 tetrahedra: gradients of the barycentric basis and element stiffness values.

Each kernel has a NumPy twin with the same signature; the tests check they agree.
Inputs are node coordinates (any length unit) and 0-based tetrahedra; gradients come
out in 1/unit and volumes in unit³.
"""

from __future__ import annotations

import numba
import numpy as np


def p1_gradients_numpy(nodes: np.ndarray, tets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Basis gradients ``(m, 4, 3)`` and signed volumes ``(m,)`` of every tetrahedron."""
    p = nodes[tets]
    jac = p[:, 1:] - p[:, :1]  # rows: edges from node 0
    det = np.linalg.det(jac)
    grads = np.empty((len(tets), 4, 3))
    grads[:, 1:] = np.linalg.inv(jac).transpose(0, 2, 1)  # rows: ∇λ1, ∇λ2, ∇λ3
    grads[:, 0] = -grads[:, 1:].sum(axis=1)
    return grads, det / 6.0


@numba.njit(cache=True, parallel=True)
def p1_gradients_numba(nodes: np.ndarray, tets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numba twin of :func:`p1_gradients_numpy` (explicit 3x3 inverse per element)."""
    m = tets.shape[0]
    grads = np.empty((m, 4, 3))
    volumes = np.empty(m)
    for e in numba.prange(m):
        a = np.empty((3, 3))
        for r in range(3):
            for c in range(3):
                a[r, c] = nodes[tets[e, r + 1], c] - nodes[tets[e, 0], c]
        c00 = a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]
        c01 = a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2]
        c02 = a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]
        det = a[0, 0] * c00 + a[0, 1] * c01 + a[0, 2] * c02
        # Gradient of λ_{i+1} is row i of inv(a).T, i.e. column i of inv(a) = cofactors/det.
        cof = np.empty((3, 3))
        cof[0, 0], cof[0, 1], cof[0, 2] = c00, c01, c02
        cof[1, 0] = a[0, 2] * a[2, 1] - a[0, 1] * a[2, 2]
        cof[1, 1] = a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0]
        cof[1, 2] = a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1]
        cof[2, 0] = a[0, 1] * a[1, 2] - a[0, 2] * a[1, 1]
        cof[2, 1] = a[0, 2] * a[1, 0] - a[0, 0] * a[1, 2]
        cof[2, 2] = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
        for k in range(3):
            s = 0.0
            for i in range(3):
                grads[e, i + 1, k] = cof[i, k] / det
                s += grads[e, i + 1, k]
            grads[e, 0, k] = -s
        volumes[e] = det / 6.0
    return grads, volumes


def stiffness_values_numpy(grads: np.ndarray, volumes: np.ndarray,
                           sigma: np.ndarray) -> np.ndarray:
    """Element matrices ``σ·V·∇λ_i·∇λ_j`` flattened to ``(m, 16)`` (row-major i, j)."""
    local = np.einsum("eik,ejk->eij", grads, grads)
    return (local * (sigma * np.abs(volumes))[:, None, None]).reshape(len(volumes), 16)


@numba.njit(cache=True, parallel=True)
def stiffness_values_numba(grads: np.ndarray, volumes: np.ndarray,
                           sigma: np.ndarray) -> np.ndarray:
    """Numba twin of :func:`stiffness_values_numpy`."""
    m = grads.shape[0]
    out = np.empty((m, 16))
    for e in numba.prange(m):
        scale = sigma[e] * abs(volumes[e])
        for i in range(4):
            for j in range(4):
                out[e, 4 * i + j] = scale * (grads[e, i, 0] * grads[e, j, 0]
                                             + grads[e, i, 1] * grads[e, j, 1]
                                             + grads[e, i, 2] * grads[e, j, 2])
    return out


def element_field_numpy(grads: np.ndarray, tets: np.ndarray, potential: np.ndarray
                        ) -> np.ndarray:
    """Field ``E = −Σ v_i ∇λ_i`` per element, ``(m, 3)``."""
    return -np.einsum("eik,ei->ek", grads, potential[tets])


@numba.njit(cache=True, parallel=True)
def element_field_numba(grads: np.ndarray, tets: np.ndarray, potential: np.ndarray
                        ) -> np.ndarray:
    """Numba twin of :func:`element_field_numpy`."""
    m = tets.shape[0]
    out = np.empty((m, 3))
    for e in numba.prange(m):
        for k in range(3):
            s = 0.0
            for i in range(4):
                s += potential[tets[e, i]] * grads[e, i, k]
            out[e, k] = -s
    return out
