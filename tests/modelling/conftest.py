"""Small meshes built in code for the FEM tests."""

from __future__ import annotations

import numpy as np
import pytest

from neurotwin_db.modelling.headmodel import HeadMesh, oriented, with_boundaries


def make_box(n: int = 8, size_mm: float = 10.0, tag: int = 2) -> HeadMesh:
    """A cube of ``n``³ voxels, each split into six tetrahedra (Kuhn), one tissue."""
    g = np.linspace(0.0, size_mm, n + 1)
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    nodes = np.c_[x.ravel(), y.ravel(), z.ravel()]
    idx = np.arange((n + 1) ** 3).reshape(n + 1, n + 1, n + 1)
    corners = np.stack([idx[:-1, :-1, :-1], idx[1:, :-1, :-1], idx[:-1, 1:, :-1],
                        idx[1:, 1:, :-1], idx[:-1, :-1, 1:], idx[1:, :-1, 1:],
                        idx[:-1, 1:, 1:], idx[1:, 1:, 1:]], axis=-1).reshape(-1, 8)
    kuhn = [(0, 1, 3, 7), (0, 1, 5, 7), (0, 2, 3, 7), (0, 2, 6, 7), (0, 4, 5, 7), (0, 4, 6, 7)]
    tets = np.concatenate([corners[:, list(k)] for k in kuhn])
    return with_boundaries(oriented(HeadMesh(nodes, tets, np.full(len(tets), tag))))


@pytest.fixture
def box() -> HeadMesh:
    """A 10 mm cube of 8³ voxels (3072 tetrahedra), grey matter."""
    return make_box()
