"""Closed triangle surfaces for head meshing: checks, intersection tests and offsets.

A mesher such as TetGen needs every input surface closed, free of self-intersections
and nested inside (or disjoint from) every other surface. The tests here are vectorised
with numpy: candidate face pairs are faces whose bounding boxes share a cell of a grid
about one face wide, then checked exactly with orientation (signed volume) predicates,
so two 20 000-face surfaces take about half a second. Inside/outside is ray casting
along the three axes (majority vote) over a 2-D grid of faces. Coordinates are mm.

>>> import numpy as np
>>> corners = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
>>> tetra = Surface("tetra", corners, [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
>>> is_closed(tetra), round(enclosed_volume(tetra), 4)
(True, 0.1667)
>>> contains(tetra, [[0.1, 0.1, 0.1], [1.0, 1.0, 1.0]]).tolist()
[True, False]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial import cKDTree

from neurotwin_db.modelling.headmodel._mesh import MeshError

_CHUNK = 400_000


@dataclass(frozen=True, eq=False)
class Surface:
    """A named triangle surface: vertices (mm) and 0-based faces, outward when closed."""

    name: str
    vertices: np.ndarray
    faces: np.ndarray

    def __post_init__(self) -> None:
        vertices = np.ascontiguousarray(self.vertices, dtype=np.float64)
        faces = np.ascontiguousarray(self.faces, dtype=np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 \
                or faces.shape[1] != 3 or not len(faces):
            raise MeshError(f"surface {self.name!r} needs (n, 3) vertices and (k, 3) faces, "
                            f"got {vertices.shape} and {faces.shape}")
        if faces.min() < 0 or faces.max() >= len(vertices):
            raise MeshError(f"surface {self.name!r} has faces referring to vertices that do "
                            f"not exist (indices must lie in 0..{len(vertices) - 1})")
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "faces", faces)

    @property
    def triangles(self) -> np.ndarray:
        """Corner coordinates of every face, shape (k, 3, 3)."""
        return self.vertices[self.faces]


def vertex_normals(surface: Surface) -> np.ndarray:
    """Unit normal at every vertex: the area-weighted mean of its faces' normals."""
    t = surface.triangles
    face_n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    normals = np.zeros_like(surface.vertices)
    for corner in range(3):
        np.add.at(normals, surface.faces[:, corner], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def enclosed_volume(surface: Surface) -> float:
    """Signed volume (mm³) enclosed by a closed surface; positive when faces point out."""
    t = surface.triangles
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def is_closed(surface: Surface) -> bool:
    """True when every edge is shared by exactly two faces that run it in opposite ways."""
    return _open_edge_count(surface) == 0


def _open_edge_count(surface: Surface) -> int:
    """Directed edges that are repeated or have no reverse (0 for a closed, oriented surface)."""
    f, n = surface.faces, len(surface.vertices)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    keys = edges[:, 0] * n + edges[:, 1]
    unique, counts = np.unique(keys, return_counts=True)
    reverse = np.isin(edges[:, 1] * n + edges[:, 0], unique)
    degenerate = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])
    return int((counts > 1).sum() + (~reverse).sum() + degenerate.sum())


def _orient(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Six times the signed volume of tetrahedra (a, b, c, d), row-wise."""
    return np.einsum("ij,ij->i", b - a, np.cross(c - a, d - a))


def _edges_cross(t: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise whether an edge of triangle ``t`` passes through the interior of ``u``."""
    hit = np.zeros(len(t), dtype=bool)
    a, b, c = u[:, 0], u[:, 1], u[:, 2]
    for i in range(3):
        p, q = t[:, i], t[:, (i + 1) % 3]
        side = np.sign(_orient(a, b, c, p)) * np.sign(_orient(a, b, c, q)) < 0
        s1, s2, s3 = (np.sign(_orient(p, q, x, y)) for x, y in ((a, b), (b, c), (c, a)))
        hit |= side & (s1 != 0) & (s1 == s2) & (s2 == s3)
    return hit


def _cells(lo: np.ndarray, hi: np.ndarray, origin: np.ndarray, size: float,
           shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cell key, box index)`` for every grid cell each bounding box overlaps."""
    first = ((lo - origin) // size).astype(np.int64)
    span = ((hi - origin) // size).astype(np.int64) - first + 1
    count = span.prod(axis=1)
    owner = np.repeat(np.arange(len(lo)), count)
    local = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    s = span[owner]
    index = first[owner] + np.stack([local // (s[:, 1] * s[:, 2]), (local // s[:, 2]) % s[:, 1],
                                     local % s[:, 2]], axis=1)
    return (index[:, 0] * shape[1] + index[:, 1]) * shape[2] + index[:, 2], owner


def _candidate_pairs(ta: np.ndarray, tb: np.ndarray | None) -> np.ndarray:
    """Face pairs whose bounding boxes overlap (``tb=None``: pairs within ``ta``).

    Boxes are hashed into a grid of cells about one face wide; faces sharing a cell
    are candidates, then filtered by an exact box-overlap test.
    """
    same = tb is None
    tb = ta if tb is None else tb
    lo_a, hi_a, lo_b, hi_b = ta.min(axis=1), ta.max(axis=1), tb.min(axis=1), tb.max(axis=1)
    size = max(float(np.median(np.concatenate([hi_a - lo_a, hi_b - lo_b]).max(axis=1))), 1e-9)
    origin = np.minimum(lo_a.min(axis=0), lo_b.min(axis=0))
    shape = ((np.maximum(hi_a.max(axis=0), hi_b.max(axis=0)) - origin) // size).astype(
        np.int64) + 1
    key_a, own_a = _cells(lo_a, hi_a, origin, size, shape)
    key_b, own_b = (key_a, own_a) if same else _cells(lo_b, hi_b, origin, size, shape)
    order = np.argsort(key_b, kind="stable")
    key_b, own_b = key_b[order], own_b[order]
    first = np.searchsorted(key_b, key_a)
    count = np.searchsorted(key_b, key_a, side="right") - first
    i = np.repeat(own_a, count)
    j = own_b[np.repeat(first, count) + np.arange(count.sum())
              - np.repeat(np.cumsum(count) - count, count)]
    keep = i < j if same else np.ones(len(i), dtype=bool)
    pair_keys = np.sort(i[keep] * len(tb) + j[keep])
    pair_keys = pair_keys[np.r_[True, pair_keys[1:] != pair_keys[:-1]][:len(pair_keys)]]
    i, j = pair_keys // len(tb), pair_keys % len(tb)
    overlap = ((lo_a[i] <= hi_b[j]) & (lo_b[j] <= hi_a[i])).all(axis=1)
    return np.stack([i[overlap], j[overlap]], axis=1)


def _crossing_pairs(ta: np.ndarray, tb: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The candidate pairs whose triangles really cross (exact orientation tests)."""
    keep = np.zeros(len(pairs), dtype=bool)
    for start in range(0, len(pairs), _CHUNK):
        i, j = pairs[start:start + _CHUNK, 0], pairs[start:start + _CHUNK, 1]
        keep[start:start + _CHUNK] = _edges_cross(ta[i], tb[j]) | _edges_cross(tb[j], ta[i])
    return pairs[keep]


def self_intersections(surface: Surface) -> np.ndarray:
    """Pairs of faces (k, 2) of one surface that cross each other.

    Faces that share a vertex meet there by construction and are not tested, and
    coplanar overlaps are not detected (neither arises from a smooth brain surface).
    """
    t = surface.triangles
    pairs = _candidate_pairs(t, None)
    f = surface.faces
    shares = (f[pairs[:, 0], :, None] == f[pairs[:, 1], None, :]).any(axis=(1, 2))
    return _crossing_pairs(t, t, pairs[~shares])


def intersecting_faces(a: Surface, b: Surface) -> np.ndarray:
    """Pairs ``(face of a, face of b)`` (k, 2) that cross each other."""
    ta, tb = a.triangles, b.triangles
    return _crossing_pairs(ta, tb, _candidate_pairs(ta, tb))


def intersects(a: Surface, b: Surface) -> bool:
    """True when a face of ``a`` crosses a face of ``b``."""
    return len(intersecting_faces(a, b)) > 0


def _crossings_along(t: np.ndarray, points: np.ndarray, axis: int) -> np.ndarray:
    """Parity of the crossings of the ray from every point towards +``axis`` with the faces."""
    u, v = [k for k in range(3) if k != axis]
    lo, hi = t.min(axis=1), t.max(axis=1)
    size = max(float(np.median((hi - lo)[:, [u, v]].max(axis=1))), 1e-9)
    origin = lo.min(axis=0)
    i0, j0 = ((lo[:, [u, v]] - origin[[u, v]]) // size).astype(np.int64).T
    i1, j1 = ((hi[:, [u, v]] - origin[[u, v]]) // size).astype(np.int64).T
    n_j = int(j1.max()) + 2
    per_face = (i1 - i0 + 1) * (j1 - j0 + 1)
    face = np.repeat(np.arange(len(t)), per_face)
    local = np.arange(len(face)) - np.repeat(np.cumsum(per_face) - per_face, per_face)
    width = (j1 - j0 + 1)[face]
    cell = (i0[face] + local // width) * n_j + j0[face] + local % width
    order = np.argsort(cell, kind="stable")
    cell, face = cell[order], face[order]
    parity = np.zeros(len(points), dtype=np.int64)
    for start in range(0, len(points), _CHUNK // 8):
        p = points[start:start + _CHUNK // 8]
        pi, pj = ((p[:, [u, v]] - origin[[u, v]]) // size).astype(np.int64).T
        key = np.where((pi >= 0) & (pj >= 0) & (pj < n_j), pi * n_j + pj, -1)
        first, last = np.searchsorted(cell, key), np.searchsorted(cell, key, side="right")
        count = np.where(key >= 0, last - first, 0)
        which = np.repeat(np.arange(len(p)), count)
        cand = face[np.repeat(first, count) + np.arange(count.sum())
                    - np.repeat(np.cumsum(count) - count, count)]
        a, b, c, q = t[cand, 0], t[cand, 1], t[cand, 2], p[which]

        def edge(x: np.ndarray, y: np.ndarray, q: np.ndarray = q) -> np.ndarray:
            return (y[:, u] - x[:, u]) * (q[:, v] - x[:, v]) - (y[:, v] - x[:, v]) * (
                q[:, u] - x[:, u])

        d_ab, d_bc, d_ca = edge(a, b), edge(b, c), edge(c, a)
        inside = ((d_ab > 0) & (d_bc > 0) & (d_ca > 0)) | ((d_ab < 0) & (d_bc < 0)
                                                           & (d_ca < 0))
        area = np.where(inside, d_ab + d_bc + d_ca, 1.0)
        level = (d_bc * a[:, axis] + d_ca * b[:, axis] + d_ab * c[:, axis]) / area
        hit = inside & (level > q[:, axis])
        parity[start:start + len(p)] = np.bincount(which[hit], minlength=len(p)) % 2
    return parity


def contains(surface: Surface, points: np.ndarray) -> np.ndarray:
    """Which ``points`` (n, 3) lie inside the closed ``surface`` (ray casting, 3-axis vote)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    t = surface.triangles
    votes = sum(_crossings_along(t, points, axis) for axis in range(3))
    return votes >= 2


def is_nested(inner: Surface, outer: Surface) -> bool:
    """True when every vertex of ``inner`` lies inside ``outer`` and no faces cross."""
    return bool(contains(outer, inner.vertices).all()) and not intersects(inner, outer)


def distance_to(surface: Surface, points: np.ndarray, *, k: int = 12) -> np.ndarray:
    """Distance (mm) from every point to the surface (its ``k`` nearest faces are searched)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    t = surface.triangles
    k = min(k, len(t))
    _, cand = cKDTree(t.mean(axis=1)).query(points, k=k)
    cand = cand.reshape(len(points), k)
    p = np.repeat(points, k, axis=0)
    a, b, c = (t[cand.ravel(), i] for i in range(3))
    n = np.cross(b - a, c - a)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
    height = np.einsum("ij,ij->i", p - a, n)
    foot = p - height[:, None] * n
    inside = np.ones(len(p), dtype=bool)
    best = np.full(len(p), np.inf)
    for x, y in ((a, b), (b, c), (c, a)):
        inside &= np.einsum("ij,ij->i", np.cross(y - x, foot - x), n) >= 0
        step = np.clip(np.einsum("ij,ij->i", p - x, y - x)
                       / np.maximum(np.einsum("ij,ij->i", y - x, y - x), 1e-300), 0, 1)
        best = np.minimum(best, np.linalg.norm(p - x - step[:, None] * (y - x), axis=1))
    return np.where(inside, np.abs(height), best).reshape(len(points), k).min(axis=1)


def subdivide(surface: Surface, *, bulge_mm: float = 0.0) -> Surface:
    """The surface with every face split in four at its edge midpoints.

    With ``bulge_mm`` > 0 each midpoint moves towards the smooth surface through the
    vertex normals (the midpoint of the cubic Hermite curve along the edge, i.e. the
    sagitta of the arc), by at most ``bulge_mm``; this keeps the four new faces of a face
    from being exactly coplanar, which TetGen handles badly. With 0 the geometry is kept.
    """
    f, n = surface.faces, len(surface.vertices)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    unique, index = np.unique(edges[:, 0] * n + edges[:, 1], return_inverse=True)
    a, b = unique // n, unique % n
    mid = 0.5 * (surface.vertices[a] + surface.vertices[b])
    if bulge_mm > 0:
        normals, d = vertex_normals(surface), surface.vertices[b] - surface.vertices[a]
        bulge = (np.einsum("ij,ij->i", d, normals[b])[:, None] * normals[b]
                 - np.einsum("ij,ij->i", d, normals[a])[:, None] * normals[a]) / 8.0
        size = np.linalg.norm(bulge, axis=1, keepdims=True)
        mid += bulge * np.minimum(1.0, bulge_mm / np.maximum(size, 1e-12))
    new = n + index.reshape(3, -1).T  # midpoints of edges (0,1), (1,2), (2,0)
    faces = np.concatenate([np.stack([f[:, 0], new[:, 0], new[:, 2]], axis=1),
                            np.stack([f[:, 1], new[:, 1], new[:, 0]], axis=1),
                            np.stack([f[:, 2], new[:, 2], new[:, 1]], axis=1), new])
    return Surface(surface.name, np.concatenate([surface.vertices, mid]), faces)


def mean_operator(surface: Surface) -> csr_matrix:
    """Sparse matrix averaging a per-vertex quantity over each vertex's edge neighbours."""
    f, n = surface.faces, len(surface.vertices)
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    adjacency = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    adjacency.data[:] = 1.0
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return csr_matrix(adjacency.multiply(1.0 / np.maximum(degree, 1)[:, None]))


def neighbour_mean(surface: Surface, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (one row per vertex) over each vertex's edge neighbours."""
    return mean_operator(surface) @ values


def offset_surface(surface: Surface, distance_mm: float | np.ndarray, *,
                   name: str | None = None, step_mm: float = 1.0,
                   normal_smoothing: int = 30) -> Surface:
    """The surface moved ``distance_mm`` along its vertex normals (negative: inward).

    ``distance_mm`` may vary per vertex. The move is made in steps of at most
    ``step_mm``; before each step the normals are recomputed and averaged over
    ``normal_smoothing`` rounds of neighbours, so that they fan out slowly and
    neighbouring vertices do not cross in concave creases, and after it moving vertices
    are relaxed tangentially. Raises MeshError if the result still intersects itself.
    """
    d = np.broadcast_to(np.asarray(distance_mm, dtype=np.float64), (len(surface.vertices),))
    steps = max(1, int(np.ceil(np.abs(d).max() / step_mm)))
    moving = (np.abs(d) > 0)[:, None]
    mean = mean_operator(surface)
    moved = surface
    for _ in range(steps):
        normals = vertex_normals(moved)
        for _ in range(normal_smoothing):
            normals = mean @ normals
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        shifted = moved.vertices + normals * (d / steps)[:, None]
        pull = mean @ shifted - shifted
        pull -= np.einsum("ij,ij->i", pull, normals)[:, None] * normals
        moved = Surface(surface.name, shifted + 0.5 * pull * moving, surface.faces)
    result = Surface(name or surface.name, moved.vertices, surface.faces)
    if len(crossing := self_intersections(result)):
        raise MeshError(f"offsetting surface {surface.name!r} by up to {np.abs(d).max():g} mm "
                        f"makes it intersect itself at {len(crossing)} face pairs, first near "
                        f"{_where(result, crossing[0, 0])}; use a smaller offset or more "
                        f"normal_smoothing")
    return result


def smooth_crossings(surface: Surface, *, max_rounds: int = 50) -> Surface:
    """The surface with its self-intersections smoothed away, vertex for vertex.

    Each round moves the vertices of crossing faces and their neighbours halfway to
    their neighbours' mean (Laplacian smoothing), leaving the rest of the surface and the
    vertex numbering untouched. Raises MeshError if crossings remain after ``max_rounds``.
    """
    vertices = surface.vertices.copy()
    mean = mean_operator(surface)
    for _ in range(max_rounds):
        current = Surface(surface.name, vertices, surface.faces)
        crossing = self_intersections(current)
        if not len(crossing):
            return current
        near = np.zeros(len(vertices))
        near[np.unique(surface.faces[crossing])] = 1.0
        near = (near + mean @ near) > 0
        vertices[near] = 0.5 * (vertices[near] + (mean @ vertices)[near])
    raise MeshError(f"surface {surface.name!r} still intersects itself after {max_rounds} "
                    f"rounds of local smoothing; repair it with pymeshfix (repair(surface))")


def repair(surface: Surface) -> Surface:
    """The surface made closed and free of self-intersections, only where needed.

    A surface that passes both checks is returned unchanged. A closed one that crosses
    itself is smoothed locally (:func:`smooth_crossings`, which keeps vertex numbers);
    anything else, or a surface that smoothing cannot fix, goes through pymeshfix, which
    removes and refills the offending faces (vertex numbers change).
    """
    closed = is_closed(surface)
    if closed and not len(self_intersections(surface)):
        return surface
    if closed:
        try:
            return smooth_crossings(surface, max_rounds=20)
        except MeshError:
            pass
    import pymeshfix

    fixer = pymeshfix.MeshFix(surface.vertices, surface.faces.astype(np.int32))
    fixer.repair()
    fixed = Surface(surface.name, np.asarray(fixer.points), np.asarray(fixer.faces))
    if not is_closed(fixed) or len(self_intersections(fixed)):
        raise MeshError(f"pymeshfix could not repair surface {surface.name!r}; fix it in a "
                        f"mesh editor (e.g. MeshLab) before meshing")
    return fixed


def _where(surface: Surface, face: int) -> str:
    """Human-readable location of a face centre."""
    x, y, z = surface.triangles[face].mean(axis=0)
    return f"({x:.1f}, {y:.1f}, {z:.1f}) mm"


def check_surfaces(surfaces: Sequence[Surface]) -> None:
    """Raise MeshError unless the surfaces can be meshed together.

    Each surface must be closed, outward-oriented and free of self-intersections; no two
    may cross; each pair must be nested (one inside the other) or disjoint (like the two
    hemispheres); and the last surface, the outer boundary of the mesh, must contain all
    the others. Give the surfaces innermost first.
    """
    for s in surfaces:
        if (bad := _open_edge_count(s)) > 0:
            raise MeshError(f"surface {s.name!r} is not closed: {bad} edges are not shared by "
                            f"exactly two consistently oriented faces; repair it first "
                            f"(repair(surface) runs pymeshfix)")
        if enclosed_volume(s) <= 0:
            raise MeshError(f"surface {s.name!r} has inward-facing faces (negative volume); "
                            f"reverse its face order (faces[:, ::-1])")
        if len(crossing := self_intersections(s)):
            raise MeshError(f"surface {s.name!r} intersects itself at {len(crossing)} face "
                            f"pairs, first near {_where(s, crossing[0, 0])}; smooth it or "
                            f"repair it (repair(surface))")
    for (_, a), (m, b) in itertools.combinations(enumerate(surfaces), 2):
        if len(crossing := intersecting_faces(a, b)):
            raise MeshError(f"surfaces {a.name!r} and {b.name!r} intersect at {len(crossing)} "
                            f"face pairs, first near {_where(a, crossing[0, 0])}; move the "
                            f"inner surface inward there (or the outer one outward)")
        # Closed surfaces that do not cross are wholly inside or outside each other, so a
        # spread sample of vertices decides (a mixed answer still means trouble).
        a_in_b = contains(b, a.vertices[::max(1, len(a.vertices) // 200)])
        b_in_a = contains(a, b.vertices[::max(1, len(b.vertices) // 200)])
        inside = bool(a_in_b.all() and not b_in_a.any())
        if m == len(surfaces) - 1 and not inside:
            raise MeshError(f"surface {a.name!r} is not inside {b.name!r}, the last and so "
                            f"outermost surface: {int(a_in_b.sum())} of {len(a_in_b)} sampled "
                            f"vertices are; move it inside or list the surfaces innermost "
                            f"first")
        if not (inside or (b_in_a.all() and not a_in_b.any())
                or not (a_in_b.any() or b_in_a.any())):
            raise MeshError(f"surfaces {a.name!r} and {b.name!r} are neither nested nor "
                            f"disjoint: {int(a_in_b.sum())} of {len(a_in_b)} sampled vertices "
                            f"of {a.name!r} lie inside {b.name!r} and {int(b_in_a.sum())} of "
                            f"{len(b_in_a)} of {b.name!r} inside {a.name!r}; each surface "
                            f"must lie wholly inside or wholly outside the other")
