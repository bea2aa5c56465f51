"""Import an existing SimNIBS head mesh (``m2m_*/*.msh``, gmsh 2.2) with its tissue tags."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from neurotwin_db.modelling.headmodel._mesh import (
    HeadMesh,
    MeshError,
    oriented,
    read_msh,
    with_boundaries,
)
from neurotwin_db.modelling.headmodel._tissues import SURFACE_OFFSET, TISSUE_NAMES

logger = logging.getLogger(__name__)


def simnibs_head(path: str | Path) -> HeadMesh:
    """The head tissues of a SimNIBS ``.msh`` file, as a right-handed :class:`HeadMesh`.

    Keeps tetrahedra with the SimNIBS tissue tags 1–10 and triangles 1001–1010; drops
    everything else (electrodes and gel, tags ≥ 100 in SimNIBS result meshes, and tags
    it does not know) and logs a warning naming the dropped tags and element counts.
    Nodes only dropped elements used are removed. Without tissue triangles in the file,
    the boundary triangles are computed.
    """
    path = Path(path)
    mesh, _, _ = read_msh(path)
    keep = np.isin(mesh.tags, list(TISSUE_NAMES))
    if not keep.any():
        raise MeshError(f"{path} has no tetrahedra with SimNIBS tissue tags 1-10 (found "
                        f"{_summary(mesh.tags)}); give a SimNIBS head mesh such as "
                        f"m2m_<subject>/<subject>.msh")
    surfaces = np.isin(mesh.triangle_tags, [tag + SURFACE_OFFSET for tag in TISSUE_NAMES])
    used = np.zeros(mesh.n_nodes, dtype=bool)
    used[mesh.tets[keep].ravel()] = True
    # A tissue triangle on a node only electrodes use cannot bound a kept tetrahedron.
    surfaces &= used[mesh.triangles].all(axis=1) if len(mesh.triangles) else surfaces
    dropped = [f"{_summary(mesh.tags[~keep])} tetrahedra"] if (~keep).any() else []
    if (~surfaces).any():
        dropped.append(f"{_summary(mesh.triangle_tags[~surfaces])} triangles")
    if dropped:
        logger.warning("%s: dropped elements that are not head tissues (tag: count): %s; "
                       "kept tissue tags %s", path, "; ".join(dropped),
                       sorted(int(t) for t in np.unique(mesh.tags[keep])))
    new_id = np.cumsum(used) - 1
    head = HeadMesh(mesh.nodes[used], new_id[mesh.tets[keep]], mesh.tags[keep],
                    new_id[mesh.triangles[surfaces]], mesh.triangle_tags[surfaces])
    try:
        head = oriented(head)
    except MeshError as exc:
        raise MeshError(f"{path}: {exc}") from None
    return head if len(head.triangles) else with_boundaries(head)


def _summary(tags: np.ndarray) -> str:
    """``"101: 20, 501: 7"``: each tag and how many elements carry it."""
    values, counts = np.unique(tags, return_counts=True)
    return ", ".join(f"{int(v)}: {int(n)}" for v, n in zip(values, counts, strict=True))
