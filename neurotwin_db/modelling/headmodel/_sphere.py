"""Concentric-sphere heads meshed with gmsh: the geometry with an analytic solution.

Shells are OpenCASCADE spheres fragmented into conforming volumes, so the interfaces
share their nodes and triangles. Tags go innermost first by :data:`SPHERE_TAGS`; the
innermost shell of a 2- to 4-shell head is "GM" (brain), the compartment FEM
validations read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.headmodel._memory import check_fits
from neurotwin_db.modelling.headmodel._mesh import HeadMesh, MeshError, oriented, with_boundaries

#: Tissue tags of an n-shell head, innermost shell first.
SPHERE_TAGS: dict[int, tuple[int, ...]] = {
    1: (5,), 2: (2, 5), 3: (2, 4, 5), 4: (2, 3, 4, 5), 5: (1, 2, 3, 4, 5),
}
#: Mean tetrahedron volume over element size cubed for gmsh HXT with a uniform size
#: (measured 0.237–0.250 from 215 k to 4.7 M tets on 80/86/92 mm shells).
TET_VOLUME_FACTOR = 0.24
_DEFAULT_SIZE_FRACTION = 20  # outer radius / element size without a size or target
_HXT, _DELAUNAY = 10, 1


def sphere_head(radii_mm: Sequence[float], *, element_size_mm: float | None = None,
                n_tets_target: int | None = None, threads: int = 1) -> HeadMesh:
    """A head of concentric spherical shells centred on the origin, meshed with gmsh.

    ``radii_mm`` are the outer radii of 1 to 5 shells, innermost first (e.g.
    ``(80, 86, 92)`` for brain, skull, scalp). Tags follow :data:`SPHERE_TAGS`: 3 shells
    are GM 2, bone 4, scalp 5. Elements have one uniform size: ``element_size_mm``, or
    the size that gives about ``n_tets_target`` tetrahedra, or, with neither, the outer
    radius / 20 (≈ 140 k tets for 92 mm). Shells thinner than the element size still
    mesh, with flat elements; use a size below the thinnest shell for accurate fields.

    Meshing is gmsh's HXT (``Mesh.Algorithm3D`` 10; 2–4× faster than Delaunay, which
    it falls back to if HXT fails). With the default ``threads=1`` the mesh is the same
    on every run; more threads change the mesh from run to run and, measured on 2
    cores, gained only 0–20 %. A mesh that would not fit in memory is refused before
    meshing (:func:`check_fits`). Measured (1 thread, 80/86/92 mm, whole call incl.
    orientation and boundaries): 114 k tets 2.4 s / 0.19 GiB peak RSS, 986 k tets
    17 s / 0.65 GiB, 4.79 M tets 84 s / 2.6 GiB.

    Returns right-handed tetrahedra with the boundary triangles (tag 1000 + inner tag).

    >>> mesh = sphere_head([60, 70], element_size_mm=12)
    >>> mesh.tissues(), sorted(set(mesh.triangle_tags.tolist()))
    ([2, 5], [1002, 1005])
    """
    radii = _checked_radii(radii_mm)
    size = _element_size(radii, element_size_mm, n_tets_target)
    volume = 4 / 3 * math.pi * radii[-1] ** 3
    predicted = int(volume / (TET_VOLUME_FACTOR * size ** 3))
    check_fits(predicted, f"sphere head with {size:.3g} mm elements")
    if int(threads) < 1:
        raise InputError(f"threads must be a positive number of CPU threads, got {threads!r}")
    try:
        nodes, tets, tags = _mesh_with_gmsh(radii, size, int(threads), _HXT)
    except MeshError:
        nodes, tets, tags = _mesh_with_gmsh(radii, size, int(threads), _DELAUNAY)
    return with_boundaries(oriented(HeadMesh(nodes, tets, tags)))


def _checked_radii(radii_mm: Sequence[float]) -> list[float]:
    """The radii as floats, or an InputError saying what is wrong with them."""
    try:
        radii = [float(r) for r in radii_mm]
    except (TypeError, ValueError):
        raise InputError(f"sphere radii must be numbers in mm, innermost first, e.g. "
                         f"[80, 86, 92]; got {radii_mm!r}") from None
    if not 1 <= len(radii) <= len(SPHERE_TAGS):
        raise InputError(f"a sphere head has 1 to {len(SPHERE_TAGS)} shells; got "
                         f"{len(radii)} radii {radii}")
    if not all(math.isfinite(r) and r > 0 for r in radii):
        raise InputError(f"sphere radii must be positive finite mm, got {radii}")
    if any(b <= a for a, b in zip(radii, radii[1:], strict=False)):
        raise InputError(f"sphere radii must increase strictly from the innermost shell "
                         f"outwards, got {radii}; e.g. [80, 86, 92]")
    return radii


def _element_size(radii: list[float], element_size_mm: float | None,
                  n_tets_target: int | None) -> float:
    """The uniform element size (mm) from an explicit size, a target count or the default."""
    if element_size_mm is not None and n_tets_target is not None:
        raise InputError("give element_size_mm or n_tets_target, not both")
    if n_tets_target is not None:
        if int(n_tets_target) < 100:
            raise InputError(f"n_tets_target must be at least 100 tetrahedra, got "
                             f"{n_tets_target!r}")
        volume = 4 / 3 * math.pi * radii[-1] ** 3
        return (volume / (TET_VOLUME_FACTOR * int(n_tets_target))) ** (1 / 3)
    if element_size_mm is None:
        return radii[-1] / _DEFAULT_SIZE_FRACTION
    size = float(element_size_mm)
    if not (math.isfinite(size) and 0 < size <= radii[-1]):
        raise InputError(f"element_size_mm must be positive and at most the outer radius "
                         f"{radii[-1]:g} mm, got {element_size_mm!r}")
    return size


def _mesh_with_gmsh(radii: list[float], size: float, threads: int, algorithm: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes, 0-based tets and tags of the shells meshed with one gmsh 3-D algorithm.

    Opens and closes its own gmsh session; inside a caller's session it meshes in a
    model of its own, removes it and leaves the session open (with its mesh options set).
    """
    import gmsh

    owns_session = not gmsh.isInitialized()
    if owns_session:
        # interruptible=False: gmsh would otherwise replace Python's Ctrl-C handler for
        # good; readConfigFiles=False: a user's gmshrc must not change the mesh.
        gmsh.initialize(readConfigFiles=False, interruptible=False)
    gmsh.model.add("neurotwin_sphere_head")
    try:
        for name, value in (("General.Terminal", 0), ("General.NumThreads", threads),
                            ("Mesh.MeshSizeMin", size), ("Mesh.MeshSizeMax", size),
                            ("Mesh.MeshSizeFromCurvature", 0), ("Mesh.MeshSizeFromPoints", 0),
                            ("Mesh.MeshSizeExtendFromBoundary", 0),
                            ("Mesh.Algorithm3D", algorithm), ("Mesh.RandomSeed", 1)):
            gmsh.option.setNumber(name, value)
        balls = [gmsh.model.occ.addSphere(0, 0, 0, r) for r in radii]
        gmsh.model.occ.fragment([(3, balls[-1])], [(3, b) for b in balls[:-1]])
        gmsh.model.occ.synchronize()
        gmsh.model.mesh.generate(3)
        node_ids, coords, _ = gmsh.model.mesh.getNodes()
        lookup = np.full(int(node_ids.max()) + 1, -1, dtype=np.int64)
        lookup[node_ids.astype(np.int64)] = np.arange(len(node_ids))
        tets, tags = [], []
        shell_tags = SPHERE_TAGS[len(radii)]
        for _, entity in gmsh.model.getEntities(3):
            shell = _shell_of(gmsh.model.getBoundingBox(3, entity), radii)
            types, _, conn = gmsh.model.mesh.getElements(3, entity)
            for kind, cells in zip(types, conn, strict=True):
                if kind == 4:  # 4-node tetrahedron
                    tets.append(lookup[cells.astype(np.int64).reshape(-1, 4)])
                    tags.append(np.full(len(tets[-1]), shell_tags[shell], dtype=np.int32))
    except Exception as exc:  # gmsh reports every failure as a bare Exception
        raise MeshError(f"gmsh could not mesh spheres {radii} mm with {size:.3g} mm "
                        f"elements (algorithm {algorithm}): {exc}") from None
    finally:
        gmsh.model.remove()
        if owns_session:
            gmsh.finalize()
    if not tets or sum(map(len, tets)) == 0:
        raise MeshError(f"gmsh made no tetrahedra for spheres {radii} mm with {size:.3g} mm "
                        f"elements; use a smaller element size")
    return coords.reshape(-1, 3), np.concatenate(tets), np.concatenate(tags)


def _shell_of(box: Sequence[float], radii: list[float]) -> int:
    """Index of the shell whose outer sphere has this bounding box."""
    half = (box[3] - box[0]) / 2
    return int(np.argmin([abs(half - r) for r in radii]))
