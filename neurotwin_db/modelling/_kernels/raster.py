"""Rasterise tetrahedra onto a voxel grid: which element holds each voxel centre.

Node coordinates come in voxel units (voxel ``(i, j, k)`` has its centre at ``(i, j, k)``);
the result holds the element index per voxel, −1 outside the mesh. A voxel centre on
a shared face goes to the element visited last (elements are visited in order).
"""

from __future__ import annotations

import numba
import numpy as np

_EPS = 1e-9


def rasterize_numpy(nodes: np.ndarray, tets: np.ndarray, shape: tuple[int, int, int]
                    ) -> np.ndarray:
    """Element index per voxel (NumPy twin: vectorised over elements, looped over offsets)."""
    out = np.full(shape, -1, dtype=np.int64)
    p = nodes[tets]
    low = np.maximum(np.ceil(p.min(axis=1) - _EPS).astype(np.int64), 0)
    high = np.minimum(np.floor(p.max(axis=1) + _EPS).astype(np.int64),
                      np.array(shape) - 1)
    inv = np.linalg.inv(p[:, 1:] - p[:, :1])  # barycentric coordinates λ1..λ3 = (x − p0)·inv
    span = int(max((high - low).max(initial=0), 0)) + 1
    element = np.arange(len(tets))
    for dx in range(span):
        for dy in range(span):
            for dz in range(span):
                voxel = low + np.array([dx, dy, dz])
                ok = np.all(voxel <= high, axis=1)
                lam = np.einsum("ej,ejk->ek", voxel[ok] - p[ok, 0], inv[ok])
                inside = np.all(lam >= -_EPS, axis=1) & (lam.sum(axis=1) <= 1 + _EPS)
                v, e = voxel[ok][inside], element[ok][inside]
                order = np.argsort(e, kind="stable")  # the last element wins, as in the loop
                out[v[order, 0], v[order, 1], v[order, 2]] = e[order]
    return out


@numba.njit(cache=True)
def rasterize_numba(nodes: np.ndarray, tets: np.ndarray, shape: tuple[int, int, int]
                    ) -> np.ndarray:
    """Numba twin of :func:`rasterize_numpy` (loops over elements and their voxel boxes)."""
    out = np.full(shape, -1, dtype=np.int64)
    a = np.empty((3, 3))
    for e in range(tets.shape[0]):
        p0 = nodes[tets[e, 0]]
        lo = np.empty(3, dtype=np.int64)
        hi = np.empty(3, dtype=np.int64)
        for k in range(3):
            mn = min(nodes[tets[e, 0], k], nodes[tets[e, 1], k], nodes[tets[e, 2], k],
                     nodes[tets[e, 3], k])
            mx = max(nodes[tets[e, 0], k], nodes[tets[e, 1], k], nodes[tets[e, 2], k],
                     nodes[tets[e, 3], k])
            lo[k] = max(int(np.ceil(mn - _EPS)), 0)
            hi[k] = min(int(np.floor(mx + _EPS)), shape[k] - 1)
        for r in range(3):
            for c in range(3):
                a[r, c] = nodes[tets[e, r + 1], c] - p0[c]
        inv = np.linalg.inv(a)
        for i in range(lo[0], hi[0] + 1):
            for j in range(lo[1], hi[1] + 1):
                for k in range(lo[2], hi[2] + 1):
                    d0, d1, d2 = i - p0[0], j - p0[1], k - p0[2]
                    total = 0.0
                    inside = True
                    for c in range(3):
                        lam = d0 * inv[0, c] + d1 * inv[1, c] + d2 * inv[2, c]
                        total += lam
                        if lam < -_EPS:
                            inside = False
                    if inside and total <= 1 + _EPS:
                        out[i, j, k] = e
    return out
