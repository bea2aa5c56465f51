"""Surface checks and the five-compartment fsaverage template head."""

from __future__ import annotations

import importlib.resources
import time

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial import ConvexHull

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.headmodel._mesh import MeshError, oriented, quality
from neurotwin_db.modelling.headmodel._surfaces import (
    Surface,
    check_surfaces,
    contains,
    distance_to,
    enclosed_volume,
    intersecting_faces,
    intersects,
    is_closed,
    is_nested,
    offset_surface,
    repair,
    self_intersections,
    subdivide,
)
from neurotwin_db.modelling.headmodel._template import (
    SURFACE_TAGS,
    TEMPLATE_SPACE,
    read_fsaverage_surfaces,
    template_head,
    template_surfaces,
)


def _hull(name: str, points: np.ndarray) -> Surface:
    """The convex hull of points as an outward-oriented closed surface."""
    faces = ConvexHull(points).simplices
    t = points[faces]
    normal = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    outward = np.einsum("ij,ij->i", normal, t.mean(axis=1) - points.mean(axis=0)) > 0
    return Surface(name, points, np.where(outward[:, None], faces, faces[:, ::-1]))


def sphere(name: str, radius: float = 10.0, center=(0.0, 0.0, 0.0), n: int = 400) -> Surface:
    i = np.arange(n) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / n), np.pi * (1 + 5 ** 0.5) * i
    unit = np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar),
                     np.cos(polar)], axis=1)
    surface = _hull(name, unit)
    return Surface(name, np.asarray(center) + radius * unit, surface.faces)


def cube(name: str = "cube", size: float = 10.0) -> Surface:
    corners = np.array([[(i >> k) & 1 for k in range(3)] for i in range(8)], float) * size
    return _hull(name, corners)


def _fsaverage5(kind: str, side: str) -> Surface:
    path = importlib.resources.files("nilearn").joinpath(
        "datasets", "data", "fsaverage5", f"{kind}_{side}.gii.gz")
    vertices, faces = nib.load(str(path)).agg_data()
    return Surface(f"{kind}_{side}", vertices, faces)


# --- hand-made surfaces ---------------------------------------------------------------

def test_cube_with_a_missing_face_is_not_closed():
    closed = cube()
    assert is_closed(closed) and enclosed_volume(closed) == pytest.approx(1000.0)
    open_cube = Surface("cube", closed.vertices, closed.faces[2:])
    assert not is_closed(open_cube)
    with pytest.raises(MeshError, match="'cube' is not closed"):
        check_surfaces([open_cube])
    fixed = repair(open_cube)  # pymeshfix fills the hole
    assert is_closed(fixed) and enclosed_volume(fixed) == pytest.approx(1000.0)


def test_flipped_face_breaks_orientation_and_inward_surface_is_rejected():
    faces = cube().faces.copy()
    faces[0] = faces[0, ::-1]
    assert not is_closed(Surface("cube", cube().vertices, faces))
    inward = Surface("inward", cube().vertices, cube().faces[:, ::-1])
    assert is_closed(inward)
    with pytest.raises(MeshError, match="'inward' has inward-facing faces"):
        check_surfaces([inward])


def test_overlapping_spheres_intersect():
    a, b = sphere("a"), sphere("b", center=(12.0, 0.0, 0.0))
    assert intersects(a, b) and intersects(b, a)
    assert len(intersecting_faces(a, b)) > 10
    assert not intersects(a, sphere("far", center=(25.0, 0.0, 0.0)))
    with pytest.raises(MeshError, match="'a' and 'b' intersect"):
        check_surfaces([a, b])


def test_sphere_outside_another_is_not_nested():
    inner, outside = sphere("inner", 5.0), sphere("outside", 8.0, center=(30.0, 0.0, 0.0))
    assert not is_nested(inner, outside) and not is_nested(outside, inner)
    with pytest.raises(MeshError, match="'inner' is not inside 'outside'"):
        check_surfaces([inner, outside])


def test_concentric_and_disjoint_spheres_pass():
    left, right = sphere("left", 4.0, (-5.0, 0, 0)), sphere("right", 4.0, (5.0, 0, 0))
    head = sphere("head", 15.0)
    assert is_nested(left, head) and not is_nested(head, left)
    assert not intersects(left, right)
    check_surfaces([left, right, head])
    inside = contains(head, np.array([[0.0, 0, 0], [14.0, 0, 0], [16.0, 0, 0], [0, 0, -20.0]]))
    assert inside.tolist() == [True, True, False, False]


def test_self_intersection_is_found_and_repaired():
    s = sphere("spiky")
    vertices = s.vertices.copy()
    vertices[0] *= -1.6  # drag one vertex through the sphere and out the other side
    spiky = Surface("spiky", vertices, s.faces)
    assert len(self_intersections(spiky)) > 0 and not len(self_intersections(s))
    with pytest.raises(MeshError, match="'spiky' intersects itself"):
        check_surfaces([spiky])
    fixed = repair(spiky)
    assert is_closed(fixed) and not len(self_intersections(fixed))
    assert repair(s) is s


def test_offset_and_distance_on_a_sphere():
    s = sphere("ball", 10.0, n=800)
    grown = offset_surface(s, 2.0, name="grown")
    radius = np.linalg.norm(grown.vertices, axis=1)
    assert grown.name == "grown" and abs(radius.mean() - 12.0) < 0.1 and radius.std() < 0.1
    assert is_nested(s, grown)
    shrunk = offset_surface(s, -3.0)
    assert is_nested(shrunk, s)
    d = distance_to(s, np.array([[0.0, 0, 20], [0.0, 0, 0], [10.0, 0, 0]]))
    assert d[0] == pytest.approx(10.0, abs=0.2) and d[1] == pytest.approx(10.0, abs=0.2)
    assert d[2] < 0.2


def test_subdivide_keeps_the_geometry():
    s = sphere("ball")
    finer = subdivide(s)
    assert len(finer.faces) == 4 * len(s.faces) and is_closed(finer)
    assert enclosed_volume(finer) == pytest.approx(enclosed_volume(s), rel=1e-12)
    assert not len(self_intersections(finer))
    rounder = subdivide(s, bulge_mm=1.0)  # midpoints move out towards the sphere
    assert enclosed_volume(s) < enclosed_volume(rounder) < 4 / 3 * np.pi * 1000
    assert np.array_equal(rounder.faces, finer.faces)


def test_intersection_tests_are_fast_on_fsaverage5():
    pial, white = _fsaverage5("pial", "left"), _fsaverage5("white", "left")
    assert len(pial.faces) == 20480
    start = time.perf_counter()
    crossing = intersecting_faces(pial, white)  # FreeSurfer pins white to pial medially
    own = self_intersections(pial)
    assert time.perf_counter() - start < 10.0  # ~1 s unloaded
    assert len(crossing) > 0 and len(own) == 0


# --- the real fsaverage surfaces ------------------------------------------------------

@pytest.fixture(scope="module")
def raw():
    return read_fsaverage_surfaces()


def test_raw_fsaverage_surfaces_are_closed_and_line_up(raw):
    assert set(raw) == set(SURFACE_TAGS) - {"outer_skull"}
    for surface in raw.values():
        assert is_closed(surface) and enclosed_volume(surface) > 0
    # nilearn's fsaverage5 cortex sits inside MNE's fsaverage BEM: the same space
    assert is_nested(raw["pial_lh"], raw["inner_skull"])
    assert is_nested(raw["pial_rh"], raw["inner_skull"])
    assert is_nested(raw["inner_skull"], raw["scalp"])
    brain = np.concatenate([raw["pial_lh"].vertices, raw["pial_rh"].vertices])
    skull = raw["inner_skull"].vertices
    assert np.abs(brain.mean(axis=0)[0]) < 2.0
    assert np.all(brain.min(axis=0) > skull.min(axis=0)) and np.all(
        brain.max(axis=0) < skull.max(axis=0))


def test_raw_fsaverage_surfaces_fail_the_checks(raw):
    assert intersects(raw["white_lh"], raw["pial_lh"])  # zero thickness at the medial wall
    # the hemispheres overlap at the midline (and come closer than the 1 mm gap we keep)
    assert raw["pial_lh"].vertices[:, 0].max() > 0  # left cortex crosses x = 0
    assert distance_to(raw["pial_rh"], raw["pial_lh"].vertices).min() < 1.0
    with pytest.raises(MeshError, match="surfaces? '(white|pial|inner_skull)"):
        check_surfaces([raw[name] for name in SURFACE_TAGS if name in raw])


def test_template_surfaces_are_nested_with_real_thicknesses():
    s = {surface.name: surface for surface in template_surfaces()}
    assert list(s) == list(SURFACE_TAGS)
    check_surfaces(list(s.values()))
    for hemi in ("lh", "rh"):
        assert is_nested(s[f"white_{hemi}"], s[f"pial_{hemi}"])
        assert distance_to(s[f"pial_{hemi}"], s[f"white_{hemi}"].vertices).min() > 0.85
        assert distance_to(s["inner_skull"], s[f"pial_{hemi}"].vertices).min() > 1.35
    assert not intersects(s["pial_lh"], s["pial_rh"])
    assert not contains(s["pial_rh"], s["pial_lh"].vertices).any()
    assert s["pial_lh"].vertices[:, 0].max() < 0 < s["pial_rh"].vertices[:, 0].min()
    bone = distance_to(s["outer_skull"], s["inner_skull"].vertices)
    assert bone.min() > 2.0 and 5.5 < np.median(bone) < 7.0
    assert distance_to(s["scalp"], s["outer_skull"].vertices).min() > 1.8


# --- the template head ----------------------------------------------------------------

@pytest.fixture(scope="module")
def head():
    return template_head()


def test_template_head_has_five_tissues_and_sound_elements(head):
    assert TEMPLATE_SPACE == "fsaverage"
    assert head.tissues() == [1, 2, 3, 4, 5]
    assert 50_000 < head.n_tets < 400_000
    assert (head.signed_volumes() > 0).all()
    oriented(head)  # raises on degenerate elements
    q = quality(head)
    assert q["MinVolumeRatio"] > 1e-3 and q["MinDihedralAngleDeg"] > 0.1
    assert q["MeanVolumeRatio"] > 0.5


def test_template_head_volumes_match_the_surfaces(head):
    s = {surface.name: surface for surface in template_surfaces()}
    volume = np.bincount(head.tags, weights=head.signed_volumes(), minlength=6)
    enclosed = {name: enclosed_volume(surface) for name, surface in s.items()}
    expected = {1: enclosed["white_lh"] + enclosed["white_rh"],
                2: enclosed["pial_lh"] + enclosed["pial_rh"],
                3: enclosed["inner_skull"], 4: enclosed["outer_skull"], 5: enclosed["scalp"]}
    inside = np.cumsum(volume)
    for tag, litres in expected.items():
        assert inside[tag] == pytest.approx(litres, rel=1e-6)
    brain = (volume[1] + volume[2]) / 1e6
    assert 0.85 < brain < 1.6  # fsaverage cerebrum (no cerebellum), ~0.96 l
    assert volume[2] > 0.2e6 and volume[4] > 0.3e6
    assert inside[3] / 1e6 == pytest.approx(2.2, abs=0.3)  # MNI305 is large


def test_template_head_has_tagged_boundaries(head):
    tags, counts = np.unique(head.triangle_tags, return_counts=True)
    assert tags.tolist() == [1001, 1002, 1003, 1004, 1005] and (counts > 1000).all()
    outer = head.triangles[head.triangle_tags == 1005]
    assert np.linalg.norm(head.nodes[outer], axis=2).max() > 150  # the scalp down to the neck


def test_template_head_returns_copies(head):
    mine = template_head()
    mine.nodes[:] = 0.0
    assert np.array_equal(template_head().nodes, head.nodes) and head.nodes.any()


@pytest.mark.parametrize("kwargs", [{"max_volume_mm3": 0.0}, {"skull_thickness_mm": 0.5},
                                    {"quality": 1.0}])
def test_template_head_rejects_bad_settings(kwargs):
    with pytest.raises(InputError):
        template_head(**kwargs)


@pytest.mark.slow
def test_skull_thickness_is_followed():
    thin = {surface.name: surface for surface in template_surfaces(skull_thickness_mm=4.0)}
    bone = distance_to(thin["outer_skull"], thin["inner_skull"].vertices)
    assert bone.min() > 2.0 and 3.5 < np.median(bone) < 4.2


@pytest.mark.slow
def test_template_head_is_deterministic_and_refines():
    from neurotwin_db.modelling.headmodel._template import _template_head

    first = _template_head.__wrapped__(60.0, 6.5, 1.5)
    again = _template_head.__wrapped__(60.0, 6.5, 1.5)
    assert np.array_equal(first.nodes, again.nodes) and np.array_equal(first.tets, again.tets)
    assert np.array_equal(first.tags, again.tags)
    assert first.n_tets > template_head().n_tets
    volumes = first.signed_volumes()  # TetGen cannot always meet the cap beside a surface
    assert (volumes > 60.0 * (1 + 1e-6)).mean() < 0.02 and volumes.max() < 5 * 60.0
