"""A PNG of |E| on the cortex: the grey-matter surface seen from the left, top and right."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from neurotwin_db._io import write_bytes
from neurotwin_db.modelling.headmodel import HeadMesh, boundary_triangles

# (title, (axis, sign) across, (axis, sign) up, (axis, sign) toward the viewer)
_VIEWS = (("left", (1, -1), (2, 1), (0, -1)), ("top", (0, 1), (1, 1), (2, 1)),
          ("right", (1, 1), (2, 1), (0, 1)))


def cortex_surface(mesh: HeadMesh, per_element: np.ndarray, gm_tag: int = 2
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Grey matter's outer triangles (as point arrays) and the value of the element inside."""
    tris, tags = boundary_triangles(mesh)
    outer = tris[tags == 1000 + gm_tag]
    if not len(outer):
        outer = tris
    from scipy.spatial import cKDTree

    gm = np.flatnonzero(mesh.tags == gm_tag)
    gm = gm if len(gm) else np.arange(mesh.n_tets)
    points = mesh.nodes[outer]
    _, nearest = cKDTree(mesh.centroids()[gm]).query(points.mean(axis=1))
    return points, per_element[gm][nearest]


def write_field_figure(path: Path, mesh: HeadMesh, magnitude: np.ndarray, *, title: str,
                       peak: float | None = None) -> Path:
    """Draw |E| on the cortex from three sides and write the PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    points, values = cortex_surface(mesh, magnitude)
    vmax = peak if peak and peak > 0 else float(np.percentile(values, 99.9))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), dpi=110)
    collection = None
    for ax, (name, (h, hs), (v, vs), (d, ds)) in zip(axes, _VIEWS, strict=True):
        order = np.argsort(ds * points[:, :, d].mean(axis=1))  # far to near (painter's)
        polys = np.stack([hs * points[order][:, :, h], vs * points[order][:, :, v]], axis=2)
        collection = PolyCollection(polys, array=values[order], cmap="viridis",
                                    clim=(0, vmax), edgecolors="none")
        ax.add_collection(collection)
        ax.autoscale_view()
        ax.set_aspect("equal")
        ax.set_title(name)
        ax.axis("off")
    fig.colorbar(collection, ax=axes, shrink=0.8, label="|E| (V/m)")
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return write_bytes(path, buffer.getvalue(), overwrite=True)
