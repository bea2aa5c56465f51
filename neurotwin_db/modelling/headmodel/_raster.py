"""Voxel maps of a head mesh: a grid around the mesh and element values on it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurotwin_db.modelling._kernels.raster import rasterize_numba
from neurotwin_db.modelling.headmodel._mesh import HeadMesh


@dataclass(frozen=True, eq=False)
class VoxelGrid:
    """An axis-aligned grid in mesh coordinates (mm) and the element under each voxel."""

    affine: np.ndarray
    element: np.ndarray  # element index per voxel, -1 outside the mesh

    @classmethod
    def around(cls, mesh: HeadMesh, voxel_mm: float = 1.0, margin_mm: float = 2.0
               ) -> VoxelGrid:
        """A grid covering ``mesh`` with ``voxel_mm`` voxels on whole-millimetre corners."""
        low = np.floor(mesh.nodes.min(axis=0) - margin_mm)
        high = np.ceil(mesh.nodes.max(axis=0) + margin_mm)
        shape = tuple(int(s) for s in np.ceil((high - low) / voxel_mm) + 1)
        affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
        affine[:3, 3] = low
        element = rasterize_numba((mesh.nodes - low) / voxel_mm, mesh.tets, shape)
        return cls(affine, element)

    def values(self, per_element: np.ndarray, outside: float = 0.0) -> np.ndarray:
        """A volume of ``per_element`` values (``outside`` where no element is)."""
        per_element = np.asarray(per_element)
        volume = np.full(self.element.shape, outside, dtype=per_element.dtype)
        inside = self.element >= 0
        volume[inside] = per_element[self.element[inside]]
        return volume
