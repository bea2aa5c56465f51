"""A tetrahedral head mesh in SimNIBS's conventions, its checks and its gmsh files.

Nodes are in millimetres, tetrahedra are 0-based node indices with one SimNIBS tissue
tag each, and boundary triangles (optional) carry tissue tag + 1000. Files are gmsh
2.2 ``.msh`` written through meshio, which SimNIBS, gmsh and meshio all read; element
numbers in messages are 1-based like gmsh's, tetrahedra numbered after triangles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurotwin_db._io import atomic_target
from neurotwin_db.errors import InputError
from neurotwin_db.modelling.headmodel._tissues import SURFACE_OFFSET

_EMPTY_TRIANGLES = np.zeros((0, 3), dtype=np.int64)


class MeshError(InputError):
    """A mesh cannot be used: degenerate, unclosed or intersecting geometry."""


@dataclass(frozen=True, eq=False)
class HeadMesh:
    """Nodes (mm), tetrahedra with tissue tags, and optional tagged boundary triangles."""

    nodes: np.ndarray
    tets: np.ndarray
    tags: np.ndarray
    triangles: np.ndarray = field(default_factory=lambda: _EMPTY_TRIANGLES)
    triangle_tags: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", np.ascontiguousarray(self.nodes, dtype=np.float64))
        object.__setattr__(self, "tets", np.ascontiguousarray(self.tets, dtype=np.int64))
        object.__setattr__(self, "tags", np.ascontiguousarray(self.tags, dtype=np.int32))
        object.__setattr__(self, "triangles",
                           np.ascontiguousarray(self.triangles, dtype=np.int64).reshape(-1, 3))
        object.__setattr__(self, "triangle_tags",
                           np.ascontiguousarray(self.triangle_tags, dtype=np.int32))
        if self.nodes.ndim != 2 or self.nodes.shape[1] != 3:
            raise MeshError(f"mesh nodes must be an (n, 3) array, got shape {self.nodes.shape}")
        if self.tets.ndim != 2 or self.tets.shape[1] != 4 or not len(self.tets):
            raise MeshError(f"mesh needs tetrahedra as an (m, 4) array, got {self.tets.shape}")
        if len(self.tags) != len(self.tets) or len(self.triangle_tags) != len(self.triangles):
            raise MeshError("mesh needs one tag per tetrahedron and per triangle")
        for name, cells in (("tetrahedron", self.tets), ("triangle", self.triangles)):
            if len(cells) and (cells.min() < 0 or cells.max() >= len(self.nodes)):
                raise MeshError(f"a {name} refers to a node that does not exist "
                                f"(indices must lie in 0..{len(self.nodes) - 1})")

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.nodes)

    @property
    def n_tets(self) -> int:
        """Number of tetrahedra."""
        return len(self.tets)

    def signed_volumes(self) -> np.ndarray:
        """Signed volume of every tetrahedron (mm³); positive for right-handed order."""
        p = self.nodes[self.tets]
        return np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]),
                         p[:, 3] - p[:, 0]) / 6.0

    def centroids(self) -> np.ndarray:
        """Centre of every tetrahedron (mm)."""
        return self.nodes[self.tets].mean(axis=1)

    def tissues(self) -> list[int]:
        """The tissue tags present, sorted."""
        return sorted(int(t) for t in np.unique(self.tags))


def oriented(mesh: HeadMesh, *, rel_tol: float = 1e-9) -> HeadMesh:
    """The mesh with every tetrahedron right-handed; a degenerate one is an error.

    A tetrahedron is degenerate when its volume is below ``rel_tol`` times the cube of
    its longest edge: such an element has no gradient and breaks the FEM.
    """
    volumes = mesh.signed_volumes()
    p = mesh.nodes[mesh.tets]
    edges = np.stack([p[:, a] - p[:, b] for a, b in ((0, 1), (0, 2), (0, 3), (1, 2),
                                                      (1, 3), (2, 3))], axis=1)
    longest = np.sqrt((edges ** 2).sum(axis=2).max(axis=1))
    flat = np.abs(volumes) <= rel_tol * longest ** 3
    if flat.any():
        first = int(np.flatnonzero(flat)[0])
        raise MeshError(
            f"{int(flat.sum())} degenerate (zero-volume) tetrahedra; the first is element "
            f"{first + 1 + len(mesh.triangles)} (tissue {int(mesh.tags[first])}, nodes "
            f"{(mesh.tets[first] + 1).tolist()}); remesh or remove it (e.g. gmsh "
            f"'Mesh.Optimize' or tetgen -q) before solving")
    tets = mesh.tets.copy()
    negative = volumes < 0
    tets[negative, 2], tets[negative, 3] = mesh.tets[negative, 3], mesh.tets[negative, 2]
    return HeadMesh(mesh.nodes, tets, mesh.tags, mesh.triangles, mesh.triangle_tags)


def quality(mesh: HeadMesh) -> dict[str, float]:
    """Element quality: minimum dihedral angle (degrees) and volume ratio.

    The volume ratio of a tetrahedron is ``6·√2·V / l_rms³`` (1 for a regular one,
    0 for a flat one); the summary gives its minimum and 1st percentile.
    """
    p = mesh.nodes[mesh.tets]
    volumes = np.abs(mesh.signed_volumes())
    pairs = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    l_rms = np.sqrt(np.mean([((p[:, a] - p[:, b]) ** 2).sum(axis=1) for a, b in pairs],
                            axis=0))
    ratio = 6 * np.sqrt(2) * volumes / np.maximum(l_rms, 1e-300) ** 3
    # Outward face normals; the dihedral angle on the edge of faces i, j is π − angle(n_i, n_j).
    faces = ((1, 2, 3), (0, 3, 2), (0, 1, 3), (0, 2, 1))
    normals = []
    sign = np.sign(mesh.signed_volumes())[:, None]
    for a, b, c in faces:
        n = np.cross(p[:, b] - p[:, a], p[:, c] - p[:, a]) * sign
        normals.append(n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300))
    smallest = np.full(len(p), np.pi)
    for i in range(4):
        for j in range(i + 1, 4):
            cos = np.clip(np.einsum("ij,ij->i", normals[i], normals[j]), -1.0, 1.0)
            smallest = np.minimum(smallest, np.pi - np.arccos(cos))
    return {
        "MinDihedralAngleDeg": round(float(np.degrees(smallest.min())), 3),
        "MinVolumeRatio": round(float(ratio.min()), 5),
        "VolumeRatioP01": round(float(np.percentile(ratio, 1)), 5),
        "MeanVolumeRatio": round(float(ratio.mean()), 5),
    }


def boundary_triangles(mesh: HeadMesh) -> tuple[np.ndarray, np.ndarray]:
    """Triangles between tissues and on the outside, tagged as SimNIBS does.

    A face shared by tetrahedra of two tissues, or on the outside, becomes a triangle;
    it takes the smaller tag of its two sides (SimNIBS numbers tissues inside out),
    plus 1000. Returns ``(triangles, tags)``.
    """
    faces, owner = _tet_faces(mesh)
    keys = _face_keys(faces, mesh.n_nodes)
    order = np.argsort(keys, kind="stable")
    keys, faces, owner = keys[order], faces[order], owner[order]
    same_as_next = keys[1:] == keys[:-1]
    first = np.r_[True, ~same_as_next]
    last = np.r_[~same_as_next, True]
    outer = first & last
    shared = first & ~last
    a, b = owner[shared], owner[np.flatnonzero(shared) + 1]
    between = mesh.tags[a] != mesh.tags[b]
    tri = np.concatenate([faces[outer], faces[shared][between]])
    tags = np.concatenate([mesh.tags[owner[outer]],
                           np.minimum(mesh.tags[a], mesh.tags[b])[between]])
    return tri, tags.astype(np.int32) + SURFACE_OFFSET


def outer_triangles(mesh: HeadMesh) -> np.ndarray:
    """The faces on the outside of the mesh (the scalp surface of a head), outward-facing.

    Faces of right-handed tetrahedra (see :func:`oriented`) are numbered outward.
    """
    faces, _ = _tet_faces(mesh)
    keys = _face_keys(faces, mesh.n_nodes)
    unique, index, counts = np.unique(keys, return_index=True, return_counts=True)
    return faces[index[counts == 1]]


def with_boundaries(mesh: HeadMesh) -> HeadMesh:
    """The mesh with its tissue boundary triangles, as SimNIBS stores head meshes."""
    tri, tags = boundary_triangles(mesh)
    return HeadMesh(mesh.nodes, mesh.tets, mesh.tags, tri, tags)


def write_msh(mesh: HeadMesh, path: Path, *,
              node_data: Mapping[str, np.ndarray] | None = None,
              element_data: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write ``mesh`` as binary gmsh 2.2 (atomically), with optional node and element data.

    ``element_data`` arrays have one row (scalar or 3-vector) per tetrahedron; boundary
    triangles get the value of the tetrahedron on their inner side, as in SimNIBS result
    meshes. Elements carry two tags (physical = elementary = tissue tag), as SimNIBS's do.
    """
    n_tri = len(mesh.triangles)
    tri_owner = _triangle_owners(mesh) if n_tri else np.zeros(0, dtype=np.int64)
    with atomic_target(Path(path)) as tmp, open(tmp, "wb") as out:
        out.write(b"$MeshFormat\n2.2 1 8\n")
        out.write(np.array([1], dtype=np.int32).tobytes() + b"\n$EndMeshFormat\n")
        out.write(f"$Nodes\n{mesh.n_nodes}\n".encode())
        nodes = np.empty(mesh.n_nodes, dtype=[("id", "<i4"), ("xyz", "<f8", 3)])
        nodes["id"], nodes["xyz"] = np.arange(1, mesh.n_nodes + 1), mesh.nodes
        out.write(nodes.tobytes() + b"\n$EndNodes\n")
        out.write(f"$Elements\n{n_tri + mesh.n_tets}\n".encode())
        first_id = 1
        for gmsh_type, cells, tags in ((2, mesh.triangles, mesh.triangle_tags),
                                       (4, mesh.tets, mesh.tags)):
            if not len(cells):
                continue
            width = cells.shape[1]
            out.write(np.array([gmsh_type, len(cells), 2], dtype="<i4").tobytes())
            block = np.empty((len(cells), 3 + width), dtype="<i4")
            block[:, 0] = np.arange(first_id, first_id + len(cells))
            block[:, 1] = block[:, 2] = tags
            block[:, 3:] = cells + 1
            out.write(block.tobytes())
            first_id += len(cells)
        out.write(b"\n$EndElements\n")
        for name, values in (node_data or {}).items():
            _write_data(out, "NodeData", name, np.arange(1, mesh.n_nodes + 1),
                        np.asarray(values, dtype=np.float64), mesh.n_nodes)
        for name, values in (element_data or {}).items():
            values = np.asarray(values, dtype=np.float64)
            if len(values) != mesh.n_tets:
                raise MeshError(f"element data {name!r} has {len(values)} rows; the mesh "
                                f"has {mesh.n_tets} tetrahedra")
            _write_data(out, "ElementData", name, np.arange(1, n_tri + mesh.n_tets + 1),
                        np.concatenate([values[tri_owner], values]), n_tri + mesh.n_tets)
    return Path(path)


def _write_data(out: object, section: str, name: str, ids: np.ndarray, values: np.ndarray,
                count: int) -> None:
    """One ``$NodeData``/``$ElementData`` section (binary gmsh 2.2)."""
    values = values.reshape(count, -1)
    if values.shape[1] not in (1, 3, 9) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise MeshError(f"mesh data {name!r} must be scalar, vector or tensor with a plain "
                        f"name, got {values.shape[1]} components")
    header = f'${section}\n1\n"{name}"\n1\n0.0\n3\n0\n{values.shape[1]}\n{count}\n'
    rows = np.empty(count, dtype=[("id", "<i4"), ("v", "<f8", values.shape[1])])
    rows["id"], rows["v"] = ids, values
    out.write(header.encode() + rows.tobytes() + f"\n$End{section}\n".encode())  # type: ignore[attr-defined]


def read_msh(path: Path) -> tuple[HeadMesh, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read a gmsh 2.2 mesh (binary or ASCII, as SimNIBS writes them).

    Returns ``(mesh, node_data, element_data)``; element data keep the tetrahedra's rows.
    Elements other than triangles and tetrahedra (points, lines) are skipped.
    """
    try:
        data = Path(path).read_bytes()
        return _parse_msh(data)
    except MeshError as exc:
        raise MeshError(f"{path}: {exc}") from None
    except (OSError, ValueError, IndexError) as exc:
        raise MeshError(f"cannot read {path} as a gmsh 2.2 mesh ({exc}); give a gmsh "
                        f"2.2 .msh file such as a SimNIBS head mesh, or convert it with "
                        f"`gmsh FILE -save -format msh22`") from None


def _parse_msh(data: bytes) -> tuple[HeadMesh, dict[str, np.ndarray], dict[str, np.ndarray]]:
    head = data.find(b"$MeshFormat\n")
    if head < 0:
        raise MeshError("not a gmsh mesh (no $MeshFormat section); give a gmsh 2.2 .msh "
                        "file such as a SimNIBS head mesh")
    version, file_type, _ = data[head:].split(b"\n", 2)[1].split()
    if not version.startswith(b"2."):
        raise MeshError(f"gmsh format {version.decode()} is not supported; save the mesh "
                        f"as gmsh 2.2 (`gmsh FILE -save -format msh22`)")
    binary = file_type == b"1"
    pos = data.index(b"$Nodes\n") + len(b"$Nodes\n")
    line_end = data.index(b"\n", pos)
    n_nodes = int(data[pos:line_end])
    pos = line_end + 1
    if binary:
        nodes = np.frombuffer(data, dtype=[("id", "<i4"), ("xyz", "<f8", 3)], count=n_nodes,
                              offset=pos)
        ids, xyz = nodes["id"].astype(np.int64), nodes["xyz"]
    else:
        table = np.loadtxt(data[pos:data.index(b"$EndNodes", pos)].splitlines(), ndmin=2)
        ids, xyz = table[:, 0].astype(np.int64), table[:, 1:4]
    node_index = np.full(ids.max() + 1, -1, dtype=np.int64)
    node_index[ids] = np.arange(n_nodes)
    blocks = _read_elements(data, binary)
    tets = [b for b in blocks if b[0] == 4]
    tris = [b for b in blocks if b[0] == 2]
    if not tets:
        raise MeshError("no tetrahedra; a head model needs a volume mesh")
    tet_ids = np.concatenate([b[1] for b in tets])
    mesh = HeadMesh(xyz, node_index[np.concatenate([b[3] for b in tets])],
                    np.concatenate([b[2] for b in tets]),
                    node_index[np.concatenate([b[3] for b in tris])] if tris
                    else _EMPTY_TRIANGLES,
                    np.concatenate([b[2] for b in tris]) if tris
                    else np.zeros(0, dtype=np.int32))
    node_data = {name: _by_id(rows, values, ids)
                 for name, rows, values in _read_data(data, "NodeData", binary)}
    element_data = {name: _by_id(rows, values, tet_ids)
                    for name, rows, values in _read_data(data, "ElementData", binary)}
    return mesh, node_data, element_data


def _read_elements(data: bytes, binary: bool) -> list[tuple[int, np.ndarray, np.ndarray,
                                                             np.ndarray]]:
    """``(gmsh type, ids, physical tags, 0-based-later node ids)`` blocks of 2.2 elements."""
    nodes_per_type = {1: 2, 2: 3, 3: 4, 4: 4, 5: 8, 6: 6, 7: 5, 15: 1}
    pos = data.index(b"$Elements\n") + len(b"$Elements\n")
    line_end = data.index(b"\n", pos)
    total = int(data[pos:line_end])
    pos = line_end + 1
    blocks = []
    if binary:
        done = 0
        while done < total:
            kind, count, n_tags = np.frombuffer(data, dtype="<i4", count=3, offset=pos)
            pos += 12
            width = 1 + int(n_tags) + nodes_per_type[int(kind)]
            rows = np.frombuffer(data, dtype="<i4", count=int(count) * width,
                                 offset=pos).reshape(int(count), width)
            pos += rows.nbytes
            done += int(count)
            blocks.append((int(kind), rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int32),
                           rows[:, 1 + int(n_tags):].astype(np.int64)))
    else:
        lines = data[pos:data.index(b"$EndElements", pos)].splitlines()
        by_kind: dict[int, list[list[int]]] = {}
        for line in lines[:total]:
            values = [int(v) for v in line.split()]
            by_kind.setdefault(values[1], []).append(values)
        for kind, rows_list in by_kind.items():
            n_tags = rows_list[0][2]
            rows = np.array([r for r in rows_list if r[2] == n_tags], dtype=np.int64)
            blocks.append((kind, rows[:, 0], rows[:, 3].astype(np.int32), rows[:, 3 + n_tags:]))
    return blocks


def _read_data(data: bytes, section: str, binary: bool
               ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Every ``$NodeData``/``$ElementData`` section: ``(name, ids, values)``."""
    found = []
    marker = f"${section}\n".encode()
    pos = data.find(marker)
    while pos >= 0:
        pos += len(marker)
        lines = data[pos:].split(b"\n", 12)
        n_str = int(lines[0])
        name = lines[1].strip().strip(b'"').decode()
        n_real = int(lines[1 + n_str])
        n_int = int(lines[2 + n_str + n_real])
        ints = [int(v) for v in lines[3 + n_str + n_real:3 + n_str + n_real + n_int]]
        components, count = ints[1], ints[2]
        header = b"\n".join(lines[:3 + n_str + n_real + n_int]) + b"\n"
        pos += len(header)
        if binary:
            rows = np.frombuffer(data, dtype=[("id", "<i4"), ("v", "<f8", components)],
                                 count=count, offset=pos)
            values = np.array(rows["v"])
            found.append((name, rows["id"].astype(np.int64),
                          values.ravel() if components == 1 else values))
        else:
            table = np.loadtxt(data[pos:data.index(f"$End{section}".encode(), pos)]
                               .splitlines(), ndmin=2)
            found.append((name, table[:, 0].astype(np.int64), table[:, 1:] if components > 1
                          else table[:, 1]))
        pos = data.find(marker, pos)
    return found


def _by_id(rows: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Values reordered to follow ``wanted`` ids (NaN where a row is missing)."""
    lookup = np.full(max(int(rows.max()), int(wanted.max())) + 1, -1, dtype=np.int64)
    lookup[rows] = np.arange(len(rows))
    index = lookup[wanted]
    out = np.full((len(wanted),) + values.shape[1:], np.nan)
    out[index >= 0] = values[index[index >= 0]]
    return out


def _tet_faces(mesh: HeadMesh) -> tuple[np.ndarray, np.ndarray]:
    """The four faces of every tetrahedron (outward for right-handed ones) and their owner."""
    faces = np.concatenate([mesh.tets[:, [1, 2, 3]], mesh.tets[:, [0, 3, 2]],
                            mesh.tets[:, [0, 1, 3]], mesh.tets[:, [0, 2, 1]]])
    return faces, np.tile(np.arange(mesh.n_tets), 4)


def _face_keys(faces: np.ndarray, n_nodes: int) -> np.ndarray:
    """One integer per face, equal for faces with the same three nodes."""
    s = np.sort(faces, axis=1).astype(np.int64)
    if n_nodes < 2 ** 21:
        return (s[:, 0] << 42) | (s[:, 1] << 21) | s[:, 2]
    return np.unique(s, axis=0, return_inverse=True)[1].ravel()


def _triangle_owners(mesh: HeadMesh) -> np.ndarray:
    """For each boundary triangle, a tetrahedron on its inner side (tag = triangle tag - 1000)."""
    faces, owner = _tet_faces(mesh)
    keys = _face_keys(np.concatenate([faces, mesh.triangles]), mesh.n_nodes)
    face_keys, tri_keys = keys[:len(faces)], keys[len(faces):]
    # Sort faces by (key, whether the owner's tissue differs from the wanted tissue) is not
    # possible without the triangle, so try both faces of a key: the first, then the second.
    order = np.argsort(face_keys, kind="stable")
    sorted_keys = face_keys[order]
    pos = np.searchsorted(sorted_keys, tri_keys)
    found = (pos < len(sorted_keys)) & (sorted_keys[np.minimum(pos, len(sorted_keys) - 1)]
                                        == tri_keys)
    if not found.all():
        raise MeshError(f"{int((~found).sum())} boundary triangles are not faces of any "
                        f"tetrahedron; the mesh is not conforming")
    result = owner[order[pos]]
    nxt = np.minimum(pos + 1, len(sorted_keys) - 1)
    has_second = sorted_keys[nxt] == tri_keys
    want = mesh.triangle_tags.astype(np.int64) - SURFACE_OFFSET
    use_second = has_second & (mesh.tags[result] != want) & (mesh.tags[owner[order[nxt]]]
                                                             == want)
    result[use_second] = owner[order[nxt]][use_second]
    return result
