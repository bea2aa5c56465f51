"""The five-compartment template head, meshed from real fsaverage anatomy.

Data (all shipped inside installed packages, nothing is downloaded): the scalp and
inner skull of MNE-Python's fsaverage BEM (``mne/data/fsaverage``), and the fsaverage5
white and pial surfaces of both hemispheres shipped by nilearn. fsaverage is
FreeSurfer's average subject (Fischl 2012, doi:10.1016/j.neuroimage.2012.01.021;
Fischl et al. 1999, doi:10.1002/(SICI)1097-0193(1999)8:4<272::AID-HBM10>3.0.CO;2-4);
the BEM surfaces are MNE's (Gramfort et al. 2014, doi:10.1016/j.neuroimage.2013.10.027).
fsaverage surface coordinates are MNI305 coordinates (its talairach transform is the
identity), so MNI-space outputs of the template are the mesh coordinates themselves.

Geometry (innermost first, SimNIBS tags): WM (1) inside the white surfaces, GM (2)
between white and pial, CSF (3) between pial and inner skull, bone (4) between the inner
skull and an outer skull built here, scalp (5) between outer skull and scalp. Cortex and
skull are taken at icosahedron order 4 (2562 vertices per surface; fsaverage5 and MNE's
ico-5 numbering keep the ico-4 vertices), so the default head has ~0.12 million
tetrahedra. Repairs, in this order (see :data:`HEMISPHERE_GAP_MM` and the other limits):

1. local Laplacian smoothing where a surface crosses itself (the inner skull's base);
2. the hemispheres, which overlap by ~1 mm at the medial wall, are squeezed apart by a
   monotone piecewise-linear map of x within 8 mm of the midline, leaving a 1 mm gap;
3. pial vertices closer than 1.5 mm to the inner skull are moved inward;
4. white vertices closer than 1 mm to their pial surface are moved inward (FreeSurfer
   pins white to pial on the medial wall, where the cortex has zero thickness);
5. the outer skull is the inner skull offset by ``skull_thickness_mm`` along smoothed
   normals, thinned to keep 2 mm of scalp and pushed out to keep 2.5 mm of bone.

:func:`~neurotwin_db.modelling.headmodel._surfaces.check_surfaces` then proves the set
closed, free of crossings and nested before TetGen (Si 2015, doi:10.1145/2629697) meshes
it without splitting the input faces (``-Y``; for a ``max_volume_mm3`` the surfaces are
subdivided beforehand, new vertices bulging at most 0.2 mm towards the smooth surface),
so every tissue interface of the mesh lies exactly on the (refined) surfaces and the
compartment volumes equal their enclosed volumes. Tets take TetGen's region
numbers, named by the surfaces containing sample centroids; tets beside an interface
that is not on a surface are relabelled by their own centroids.

Limitations: the cerebellum and brain stem are not in the cortical surfaces and so are
CSF; the hemispheres are separated by a 1 mm CSF sheet (no corpus callosum); the scalp
compartment includes the face and neck of MNE's head surface; fsaverage is an average,
smooth brain (GM ~0.3 l, WM ~0.66 l) in the large MNI305 space (inner skull ~2.2 l).
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.headmodel._mesh import (
    HeadMesh,
    MeshError,
    oriented,
    with_boundaries,
)
from neurotwin_db.modelling.headmodel._surfaces import (
    Surface,
    check_surfaces,
    contains,
    distance_to,
    intersecting_faces,
    mean_operator,
    offset_surface,
    repair,
    subdivide,
    vertex_normals,
)

LOG = logging.getLogger(__name__)

TEMPLATE_SPACE = "fsaverage"
HEMISPHERE_GAP_MM = 1.0
MIN_CSF_MM = 1.5
MIN_GM_MM = 1.0
MIN_SCALP_MM = 2.0
MIN_BONE_MM = 2.5
_MIDLINE_BAND_MM = 8.0
# Surfaces handed to TetGen, innermost first, with the tissue each one encloses.
SURFACE_TAGS = {"white_lh": 1, "white_rh": 1, "pial_lh": 2, "pial_rh": 2,
                "inner_skull": 3, "outer_skull": 4, "scalp": 5}


def _data_file(package: str, *parts: str) -> str:
    """Path of a data file inside an installed package (never downloaded)."""
    path = importlib.resources.files(package).joinpath(*parts)
    if not path.is_file():
        raise MeshError(f"the template head needs {'/'.join(parts)} from the installed "
                        f"{package} package, which is missing; reinstall {package}")
    return str(path)


def _ico4_faces(sphere: np.ndarray) -> np.ndarray:
    """Faces of the first 2562 (ico-4) vertices of an ico-5 sphere, pointing outward."""
    from scipy.spatial import ConvexHull

    faces = ConvexHull(sphere[:2562]).simplices.astype(np.int64)
    t = sphere[faces]
    outward = np.einsum("ij,ij->i", np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]),
                        t.mean(axis=1)) > 0
    return np.where(outward[:, None], faces, faces[:, ::-1])


def read_fsaverage_surfaces() -> dict[str, Surface]:
    """The raw template surfaces (mm, ico-4) by name, before any repair."""
    import mne
    import nibabel as nib
    from scipy.spatial import cKDTree

    def bem(name: str) -> dict:
        return mne.read_bem_surfaces(_data_file("mne", "data", "fsaverage", name),
                                     verbose=False)[0]

    surfaces = {}
    head = bem("fsaverage-head.fif")
    surfaces["scalp"] = Surface("scalp", head["rr"] * 1000.0, head["tris"])
    skull = bem("fsaverage-inner_skull-bem.fif")
    icos = {n: mne.read_bem_surfaces(_data_file("mne", "data", "icos.fif.gz"), s_id=9000 + grade,
                                     verbose=False) for n, grade in ((2562, 4), (10242, 5))}
    if len(skull["rr"]) != 10242 or not np.array_equal(skull["tris"], icos[10242]["tris"]):
        raise MeshError("MNE's fsaverage inner skull is no longer an ico-5 surface; the "
                        "template head needs updating for this MNE version")
    _, ico4_in_ico5 = cKDTree(icos[10242]["rr"]).query(icos[2562]["rr"])
    surfaces["inner_skull"] = Surface("inner_skull", skull["rr"][ico4_in_ico5] * 1000.0,
                                      icos[2562]["tris"])
    for hemi, side in (("lh", "left"), ("rh", "right")):
        folder = ("datasets", "data", "fsaverage5")
        sphere = nib.load(_data_file("nilearn", *folder, f"sphere_{side}.gii.gz")).agg_data()
        faces = _ico4_faces(np.asarray(sphere[0], dtype=np.float64))
        for kind in ("white", "pial"):
            path = _data_file("nilearn", *folder, f"{kind}_{side}.gii.gz")
            vertices = np.asarray(nib.load(path).agg_data()[0], dtype=np.float64)
            surfaces[f"{kind}_{hemi}"] = Surface(f"{kind}_{hemi}", vertices[:2562], faces)
    inside = contains(surfaces["inner_skull"], np.concatenate(
        [surfaces["pial_lh"].vertices, surfaces["pial_rh"].vertices]))
    if inside.mean() < 0.99:
        raise MeshError("nilearn's fsaverage5 pial surfaces do not lie inside MNE's fsaverage "
                        "inner skull; the two packages' fsaverage data no longer line up")
    return surfaces


def _separate_hemispheres(surfaces: dict[str, Surface]) -> None:
    """Squeeze each hemisphere's medial band so the hemispheres lie ``gap`` apart."""
    for hemi, side in (("lh", -1.0), ("rh", 1.0)):
        lateral = [side * surfaces[f"{k}_{hemi}"].vertices[:, 0] for k in ("white", "pial")]
        low, edge, goal = min(x.min() for x in lateral), _MIDLINE_BAND_MM, HEMISPHERE_GAP_MM / 2
        if low >= goal:
            continue
        for kind, x in zip(("white", "pial"), lateral, strict=True):
            squeezed = np.where(x < edge, edge - (edge - x) * (edge - goal) / (edge - low), x)
            s = surfaces[f"{kind}_{hemi}"]
            vertices = s.vertices.copy()
            vertices[:, 0] = side * squeezed
            surfaces[s.name] = Surface(s.name, vertices, s.faces)


def _push_clear(moving: Surface, fixed: Surface, margin_mm: float, *,
                inside: bool = True) -> Surface:
    """``moving`` with every vertex ``margin_mm`` (less 0.1 mm) inside (or outside) ``fixed``.

    Offending vertices (and, by half, their neighbours) move along the inward (outward)
    normal of the nearest vertex of ``fixed``; faces still crossing it move further.
    """
    from scipy.spatial import cKDTree

    sign = 1.0 if inside else -1.0
    direction, tree = -sign * vertex_normals(fixed), cKDTree(fixed.vertices)
    mean, vertices = mean_operator(moving), moving.vertices.copy()
    for rounds in range(30):
        current = Surface(moving.name, vertices, moving.faces)
        depth = distance_to(fixed, vertices) * np.where(contains(fixed, vertices), sign, -sign)
        need = np.maximum(margin_mm - depth, 0.0)
        crossing = intersecting_faces(current, fixed)
        if need.max() < 0.1 and not len(crossing):
            LOG.debug("moved %s clear of %s in %d rounds", moving.name, fixed.name, rounds)
            return current
        need[np.unique(moving.faces[crossing[:, 0]])] += 0.1
        need = np.maximum(need, 0.5 * (mean @ need))
        step = 1.25 * need + 0.05 * (need > 0)
        vertices = vertices + direction[tree.query(vertices)[1]] * step[:, None]
    raise MeshError(f"cannot move surface {moving.name!r} {margin_mm} mm "
                    f"{'inside' if inside else 'outside'} {fixed.name!r}; the template data "
                    f"may have changed")


def _outer_skull(inner: Surface, scalp: Surface, thickness_mm: float) -> Surface:
    """Inner skull offset by ``thickness_mm``, thinner where the scalp is near."""
    room = distance_to(scalp, inner.vertices) - MIN_SCALP_MM - 0.3
    d = np.minimum(thickness_mm, room)
    mean = mean_operator(inner)
    for _ in range(5):
        d = np.minimum(d, mean @ d)
    floor = min(MIN_BONE_MM, thickness_mm)
    if d.min() < floor:
        raise MeshError(f"the template scalp is only {room.min() + MIN_SCALP_MM + 0.3:.1f} mm "
                        f"outside the inner skull in places; cannot fit a skull there")
    outer = offset_surface(inner, d, name="outer_skull")
    # Smoothed normals tilt in the creases of the skull base; restore the minimum there.
    outer = _push_clear(outer, inner, floor, inside=False)
    if (gap := distance_to(scalp, outer.vertices).min()) < MIN_SCALP_MM * 0.9:
        raise MeshError(f"the outer skull comes within {gap:.2f} mm of the scalp; use a "
                        f"thinner skull_thickness_mm")
    return outer


@lru_cache(maxsize=4)
def _template_surfaces(skull_thickness_mm: float) -> tuple[Surface, ...]:
    """Repaired, checked surfaces (cached; callers must not modify the arrays)."""
    raw = read_fsaverage_surfaces()
    s = {name: repair(surface) for name, surface in raw.items()}
    _separate_hemispheres(s)
    for hemi in ("lh", "rh"):
        s[f"pial_{hemi}"] = _push_clear(s[f"pial_{hemi}"], s["inner_skull"], MIN_CSF_MM)
        s[f"white_{hemi}"] = _push_clear(s[f"white_{hemi}"], s[f"pial_{hemi}"], MIN_GM_MM)
    s["outer_skull"] = _outer_skull(s["inner_skull"], s["scalp"], skull_thickness_mm)
    final = tuple(repair(s[name]) for name in SURFACE_TAGS)
    check_surfaces(final)
    return final


def template_surfaces(*, skull_thickness_mm: float = 6.5) -> list[Surface]:
    """The seven closed, nested surfaces the template head is meshed from (mm).

    Innermost first: ``white_lh``, ``white_rh``, ``pial_lh``, ``pial_rh``,
    ``inner_skull``, ``outer_skull``, ``scalp`` (see :data:`SURFACE_TAGS`).
    """
    return [Surface(s.name, s.vertices.copy(), s.faces.copy())
            for s in _template_surfaces(float(skull_thickness_mm))]


def _label_points(surfaces: list[Surface] | tuple[Surface, ...],
                 points: np.ndarray) -> np.ndarray:
    """SimNIBS tag of the compartment holding each point (0 outside the head)."""
    tags = np.zeros(len(points), dtype=np.int32)
    for surface in reversed(surfaces):
        tags[contains(surface, points)] = SURFACE_TAGS[surface.name]
    return tags


def _union(surfaces: tuple[Surface, ...]) -> Surface:
    """All surfaces as one (unclosed) triangle set, vertices numbered in order."""
    offsets = np.cumsum([0] + [len(s.vertices) for s in surfaces])
    return Surface("surfaces", np.concatenate([s.vertices for s in surfaces]),
                   np.concatenate([s.faces + o for s, o in zip(surfaces, offsets, strict=False)]))


@contextmanager
def _stdout_silenced() -> Iterator[None]:
    """Send file descriptor 1 (C-level stdout) to /dev/null for the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _refined(surfaces: tuple[Surface, ...], max_volume_mm3: float | None
             ) -> tuple[Surface, ...]:
    """The surfaces subdivided until their edges fit tetrahedra of ``max_volume_mm3``.

    Edges end no longer on average than those of a regular tetrahedron of that volume,
    so that the elements on the (unsplit, see ``Y``) boundary can be well shaped and
    TetGen can meet the cap near the surfaces. New vertices bulge towards the smooth
    surface by at most 0.2 mm (exactly coplanar faces make TetGen leave flat tets); rare
    new self-crossings at sharp folds are smoothed, and the refined set is checked again.
    """
    if max_volume_mm3 is None:
        return surfaces
    edge = (6 * 2 ** 0.5 * max_volume_mm3) ** (1 / 3)
    refined = []
    for surface in surfaces:
        while np.linalg.norm(np.diff(surface.triangles[:, :2], axis=1), axis=2).mean() > edge:
            surface = repair(subdivide(surface, bulge_mm=0.2))  # smooths rare new folds
        refined.append(surface)
    if any(len(r.faces) > len(s.faces) for r, s in zip(refined, surfaces, strict=True)):
        check_surfaces(refined)
    return tuple(refined)


def _tetrahedralize(surfaces: tuple[Surface, ...], max_volume_mm3: float | None,
                    quality: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TetGen on the union of the surfaces: nodes, tets and a region number per tet."""
    import tetgen

    union = _union(surfaces)
    # p: PLC; Y: keep the input faces as they are (letting TetGen split them merges nearly
    # coplanar faces, bending the surfaces and leaving flat tets and misnumbered regions);
    # q: radius-edge bound / min dihedral; o/150: flip towards a max dihedral of 150; A: a
    # region number per compartment; a: the volume cap; Q: quiet. (tetgen 0.8's keyword
    # interface ignores the volume cap, hence switches.)
    switches = f"pYq{quality:.3f}/10o/150A" + (
        "" if max_volume_mm3 is None else f"a{max_volume_mm3:.4f}") + "Q"
    try:
        with _stdout_silenced():  # the wrapper prints "parsing switches" and "success"
            nodes, tets, regions, _ = tetgen.TetGen(
                union.vertices, union.faces.astype(np.int32)).tetrahedralize(switches=switches)
    except RuntimeError as exc:
        raise MeshError(f"TetGen failed on the template surfaces ({exc})") from None
    return np.asarray(nodes), np.asarray(tets, dtype=np.int64), np.asarray(regions).ravel()


def _tags_of_regions(surfaces: tuple[Surface, ...], nodes: np.ndarray, tets: np.ndarray,
                     regions: np.ndarray) -> np.ndarray:
    """A SimNIBS tag per tet: TetGen's regions, each named by labelling sample centroids."""
    rng = np.random.default_rng(0)
    names, inverse = np.unique(regions, return_inverse=True)
    samples = [rng.choice(np.flatnonzero(inverse == r), size=min(25, int((inverse == r).sum())),
                          replace=False) for r in range(len(names))]
    found = _label_points(surfaces, nodes[tets[np.concatenate(samples)]].mean(axis=1))
    tag_of_region = np.zeros(len(names), dtype=np.int32)
    for r, labels in enumerate(np.split(found, np.cumsum([len(x) for x in samples])[:-1])):
        values, counts = np.unique(labels, return_counts=True)
        if values[counts.argmax()] == 0 or counts.max() < 0.8 * len(labels):
            raise MeshError(f"TetGen region {names[r]:g} ({int((inverse == r).sum())} "
                            f"tetrahedra) lies in no single compartment (sampled labels "
                            f"{labels.tolist()}); check the surfaces with check_surfaces")
        tag_of_region[r] = values[counts.argmax()]
    return tag_of_region[inverse]


def _stray_tets(surfaces: tuple[Surface, ...], nodes: np.ndarray, tets: np.ndarray,
                tags: np.ndarray) -> np.ndarray:
    """Tets beside a face between two tissues that lies on none of the surfaces."""
    faces = np.sort(np.concatenate([tets[:, [1, 2, 3]], tets[:, [0, 2, 3]], tets[:, [0, 1, 3]],
                                    tets[:, [0, 1, 2]]]), axis=1)
    owner = np.tile(np.arange(len(tets)), 4)
    if len(nodes) < 2 ** 21:
        order = np.argsort((faces[:, 0] << 42) | (faces[:, 1] << 21) | faces[:, 2])
    else:
        order = np.lexsort(faces.T[::-1])
    faces, owner = faces[order], owner[order]
    first = np.flatnonzero((faces[1:] == faces[:-1]).all(axis=1))
    a, b = owner[first], owner[first + 1]
    between = tags[a] != tags[b]
    off = distance_to(_union(surfaces), nodes[faces[first[between]]].mean(axis=1)) > 1e-3
    return np.unique(np.concatenate([a[between][off], b[between][off]]))


def _tag_tets(surfaces: tuple[Surface, ...], nodes: np.ndarray, tets: np.ndarray,
              regions: np.ndarray) -> np.ndarray:
    """SimNIBS tags whose tissue interfaces all lie on the input surfaces.

    TetGen's region numbers name most tets; where an interface between two tags does not
    lie on an input surface (TetGen can misnumber a few tets beside Steiner points), the
    tets on both sides are labelled by the surfaces containing their centroids, until
    labels stop changing.
    """
    tags = _tags_of_regions(surfaces, nodes, tets, regions)
    for _ in range(10):
        stray = _stray_tets(surfaces, nodes, tets, tags)
        labels = _label_points(surfaces, nodes[tets[stray]].mean(axis=1))
        if (labels == 0).any():
            raise MeshError(f"{int((labels == 0).sum())} tetrahedra lie outside the scalp; "
                            f"the mesh does not match the surfaces")
        if np.array_equal(labels, tags[stray]):
            break
        LOG.debug("relabelled %d of %d tets beside stray interfaces",
                  int((labels != tags[stray]).sum()), len(stray))
        tags[stray] = labels
    return tags


@lru_cache(maxsize=2)
def _template_head(max_volume_mm3: float | None, skull_thickness_mm: float,
                   quality: float) -> HeadMesh:
    """The meshed template (cached; callers get copies)."""
    started = time.perf_counter()
    surfaces = _refined(_template_surfaces(skull_thickness_mm), max_volume_mm3)
    prepared = time.perf_counter()
    nodes, tets, regions = _tetrahedralize(surfaces, max_volume_mm3, quality)
    meshed = time.perf_counter()
    mesh = HeadMesh(nodes, tets, _tag_tets(surfaces, nodes, tets, regions))
    mesh = with_boundaries(oriented(mesh))
    LOG.info("template head: %d nodes, %d tetrahedra; surfaces %.1f s, TetGen %.1f s, "
             "tagging %.1f s", mesh.n_nodes, mesh.n_tets, prepared - started,
             meshed - prepared, time.perf_counter() - meshed)
    return mesh


def template_head(*, max_volume_mm3: float | None = None, skull_thickness_mm: float = 6.5,
                  quality: float = 1.5) -> HeadMesh:
    """The five-compartment fsaverage template head as a tagged tetrahedral mesh (mm).

    ``max_volume_mm3`` caps the volume of the tetrahedra (None: only the surfaces and
    ``quality`` set the size). For a cap the surfaces are subdivided to match, which moves
    them by at most 0.2 mm; as TetGen may not split the input faces, some tets beside the
    surfaces exceed the cap (3% at 30 mm³, 0.4% at 12 mm³; by up to ~3.5x).
    ``skull_thickness_mm`` is the bone thickness, reduced where needed to keep 2 mm of
    scalp. ``quality`` is TetGen's radius-edge ratio bound (``-q``, at least 1.1; smaller
    gives better shaped and more elements). The result is oriented, with SimNIBS boundary
    triangles. The same arguments give the same mesh, cached in memory for the process.
    Coordinates are MNI305 (:data:`TEMPLATE_SPACE`).

    Measured on a shared 2-core machine (load 1-3; building the surfaces takes ~6 s once
    per process; "refine" is subdividing and re-checking them, "tag" includes orienting
    and boundary triangles; RSS is the process peak; quality from :func:`quality`):

    ======  =====  =====  ======  ======  =====  ========  =====================
    cap     nodes  tets   refine  TetGen  tag    peak RSS  min dihedral / ratio
    ======  =====  =====  ======  ======  =====  ========  =====================
    None    20 k   0.12M  0 s     1 s     1 s    0.36 GB   0.49° / 0.0069
    30      61 k   0.35M  2 s     7 s     3 s    0.48 GB   1.48° / 0.0093
    12      189 k  1.07M  6 s     22 s    8 s    1.0 GB    0.65° / 0.0018
    2.3     873 k  5.31M  57 s    227 s   47 s   3.7 GB    0.40° / 0.00033
    2       954 k  5.81M  22 s    214 s   55 s   4.0 GB    0.40° / 0.00018
    ======  =====  =====  ======  ======  =====  ========  =====================
    """
    if max_volume_mm3 is not None and not max_volume_mm3 >= 0.01:
        raise InputError(f"max_volume_mm3 must be a volume of at least 0.01 mm³ (or None), "
                         f"got {max_volume_mm3!r}")
    if not 2.0 <= skull_thickness_mm <= 12.0:
        raise InputError(f"skull_thickness_mm must lie between 2 and 12 mm, got "
                         f"{skull_thickness_mm!r}")
    if not quality >= 1.1:
        raise InputError(f"quality (TetGen's radius-edge bound) must be at least 1.1, got "
                         f"{quality!r}; smaller values make TetGen run without end")
    mesh = _template_head(None if max_volume_mm3 is None else float(max_volume_mm3),
                          float(skull_thickness_mm), float(quality))
    return HeadMesh(mesh.nodes.copy(), mesh.tets.copy(), mesh.tags.copy(),
                    mesh.triangles.copy(), mesh.triangle_tags.copy())
