"""Head mesh sources: gmsh spheres, voxel label volumes, SimNIBS .msh files; memory checks."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.headmodel import HeadMesh, MeshError, _memory, oriented, write_msh
from neurotwin_db.modelling.headmodel._labels import labels_head, read_label_mapping
from neurotwin_db.modelling.headmodel._memory import (
    available_memory_bytes,
    check_fits,
    estimate_memory_bytes,
)
from neurotwin_db.modelling.headmodel._simnibs import simnibs_head
from neurotwin_db.modelling.headmodel._sphere import SPHERE_TAGS, sphere_head

RADII = (60.0, 66.0, 72.0)


@pytest.fixture(scope="module")
def coarse_sphere() -> HeadMesh:
    return sphere_head(RADII, element_size_mm=8)


# --- spheres -----------------------------------------------------------------------------


def test_sphere_shells_have_their_tags_and_volumes(coarse_sphere: HeadMesh) -> None:
    mesh = coarse_sphere
    assert mesh.tissues() == [2, 4, 5] == sorted(SPHERE_TAGS[3])
    volumes = mesh.signed_volumes()
    assert volumes.min() > 0
    inner = 0.0
    for radius, tag in zip(RADII, SPHERE_TAGS[3], strict=True):
        expected = 4 / 3 * math.pi * (radius ** 3 - inner ** 3)
        assert volumes[mesh.tags == tag].sum() == pytest.approx(expected, rel=0.03)
        inner = radius
    # each shell lies between its radii (centroids, with a margin for the chords)
    r = np.linalg.norm(mesh.centroids(), axis=1)
    assert r[mesh.tags == 2].max() < RADII[0]
    assert r[mesh.tags == 5].min() > RADII[1] - 1


def test_sphere_has_boundary_triangles_at_every_interface(coarse_sphere: HeadMesh) -> None:
    mesh = coarse_sphere
    assert sorted(set(mesh.triangle_tags.tolist())) == [1002, 1004, 1005]
    for tag, radius in ((1002, RADII[0]), (1004, RADII[1]), (1005, RADII[2])):
        on = mesh.nodes[np.unique(mesh.triangles[mesh.triangle_tags == tag])]
        assert np.linalg.norm(on, axis=1) == pytest.approx(radius, abs=1e-6)


def test_sphere_interfaces_conform(coarse_sphere: HeadMesh) -> None:
    # every triangle at an inner interface is a face of tets on both sides
    mesh = coarse_sphere
    faces = np.sort(np.concatenate([mesh.tets[:, [1, 2, 3]], mesh.tets[:, [0, 2, 3]],
                                    mesh.tets[:, [0, 1, 3]], mesh.tets[:, [0, 1, 2]]]), axis=1)
    keys, counts = np.unique(faces, axis=0, return_counts=True)
    inner = np.sort(mesh.triangles[mesh.triangle_tags == 1002], axis=1)
    found = {tuple(k): c for k, c in zip(keys.tolist(), counts.tolist(), strict=True)}
    assert all(found[tuple(t)] == 2 for t in inner.tolist())


def test_sphere_refines_and_is_deterministic(coarse_sphere: HeadMesh) -> None:
    finer = sphere_head(RADII, element_size_mm=5)
    assert finer.n_tets > 2 * coarse_sphere.n_tets
    again = sphere_head(RADII, element_size_mm=8)
    assert np.array_equal(again.tets, coarse_sphere.tets)
    assert np.array_equal(again.nodes, coarse_sphere.nodes)


def test_sphere_target_count_is_roughly_met() -> None:
    mesh = sphere_head([50, 55], n_tets_target=20_000)
    assert 10_000 < mesh.n_tets < 30_000
    assert mesh.tissues() == [2, 5]


@pytest.mark.slow
def test_sphere_million_tets_within_its_memory_estimate() -> None:
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    mesh = sphere_head([80, 86, 92], n_tets_target=1_000_000)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert 700_000 < mesh.n_tets < 1_300_000
    assert grown < estimate_memory_bytes(mesh.n_tets)


@pytest.mark.parametrize(("radii", "message"), [
    ([80, 70, 90], "increase strictly"),
    ([80, 80], "increase strictly"),
    ([-1, 5], "positive"),
    ([10, 20, 30, 40, 50, 60], "1 to 5 shells"),
    ([], "1 to 5 shells"),
    (["a"], "numbers in mm"),
])
def test_sphere_rejects_bad_radii(radii: list, message: str) -> None:
    with pytest.raises(InputError, match=message):
        sphere_head(radii, element_size_mm=10)


def test_sphere_rejects_conflicting_or_bad_sizes() -> None:
    with pytest.raises(InputError, match="not both"):
        sphere_head([50], element_size_mm=5, n_tets_target=1000)
    with pytest.raises(InputError, match="element_size_mm"):
        sphere_head([50], element_size_mm=0)


def test_sphere_refuses_a_mesh_too_big_for_memory() -> None:
    with pytest.raises(MeshError, match=r"needs ~.* GiB but only .* GiB is available"):
        sphere_head([80, 86, 92], element_size_mm=0.005)


# --- label volumes -----------------------------------------------------------------------


def _nested(shape: tuple[int, int, int] = (14, 12, 10)) -> np.ndarray:
    """Scalp box around a GM box around a WM box, plus a background margin."""
    data = np.zeros(shape, dtype=np.int16)
    data[1:-1, 1:-1, 1:-1] = 5
    data[3:-3, 3:-3, 3:-3] = 2
    data[5:-5, 5:-5, 4:-4] = 1
    return data


def _save(tmp_path: Path, data: np.ndarray, affine: np.ndarray, name: str = "seg") -> Path:
    path = tmp_path / f"{name}.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _tissue_volumes(mesh: HeadMesh) -> dict[int, float]:
    volumes = mesh.signed_volumes()
    return {tag: float(volumes[mesh.tags == tag].sum()) for tag in mesh.tissues()}


@pytest.mark.parametrize("flip", [False, True])
def test_labels_mesh_has_exact_tissue_volumes(tmp_path: Path, flip: bool) -> None:
    data = _nested()
    affine = np.diag([1.5, 2.0, 1.25, 1.0])
    affine[:3, 3] = [-10, 20, 5]
    if flip:  # radiological (LAS) storage: negative determinant
        affine[0, 0] = -1.5
    mesh = labels_head(_save(tmp_path, data, affine))
    assert mesh.signed_volumes().min() > 0
    voxel = 1.5 * 2.0 * 1.25
    expected = {tag: int((data == tag).sum()) * voxel for tag in (1, 2, 5)}
    assert _tissue_volumes(mesh) == pytest.approx(expected, rel=1e-12)
    assert np.array_equal(oriented(mesh).tets, mesh.tets)  # already right-handed
    assert sorted(set(mesh.triangle_tags.tolist())) == [1001, 1002, 1005]
    assert mesh.n_tets == 6 * int((data > 0).sum())
    used = np.zeros(mesh.n_nodes, dtype=bool)
    used[mesh.tets.ravel()] = True
    assert used.all()


def test_labels_nodes_are_voxel_corners_in_world_mm(tmp_path: Path) -> None:
    data = np.zeros((5, 5, 5), dtype=np.uint8)
    data[2, 3, 1] = 1
    affine = np.array([[0, -2.0, 0, 7], [1.0, 0, 0, -3], [0, 0, 3.0, 1], [0, 0, 0, 1]])
    mesh = labels_head(nib.Nifti1Image(data, affine))
    corners = np.array([[i, j, k] for i in (1.5, 2.5) for j in (2.5, 3.5) for k in (0.5, 1.5)])
    expected = corners @ affine[:3, :3].T + affine[:3, 3]
    assert mesh.n_tets == 6 and mesh.n_nodes == 8
    assert sorted(map(tuple, mesh.nodes.round(9))) == sorted(map(tuple, expected))
    assert mesh.signed_volumes() == pytest.approx(np.full(6, 6.0 / 6))


def test_labels_mesh_conforms_across_voxels(tmp_path: Path) -> None:
    mesh = labels_head(nib.Nifti1Image(_nested(), np.eye(4)))
    faces = np.sort(np.concatenate([mesh.tets[:, [1, 2, 3]], mesh.tets[:, [0, 2, 3]],
                                    mesh.tets[:, [0, 1, 3]], mesh.tets[:, [0, 1, 2]]]), axis=1)
    _, counts = np.unique(faces, axis=0, return_counts=True)
    assert counts.max() == 2
    # the outside is a closed surface of box faces: 2 triangles per outer voxel face
    n, m, k = 12, 10, 8
    assert (counts == 1).sum() == 4 * (n * m + m * k + n * k)


def test_labels_unknown_label_is_named(tmp_path: Path) -> None:
    data = _nested()
    data[7, 6, 5] = 42
    path = _save(tmp_path, data, np.eye(4))
    with pytest.raises(MeshError, match=r"labels not in the mapping: 42 \(1 voxels\).*"
                                        r"'42: GM'.*background"):
        labels_head(path)


def test_labels_background_mapping_leaves_labels_out(tmp_path: Path) -> None:
    data = _nested()
    mesh = labels_head(_save(tmp_path, data, np.eye(4)),
                       {5: "background", 2: "GM", 1: "WM"})
    assert mesh.tissues() == [1, 2]
    assert mesh.n_tets == 6 * int(((data == 1) | (data == 2)).sum())


@pytest.mark.parametrize("kind", ["yaml", "json", "tsv"])
def test_labels_mapping_files(tmp_path: Path, kind: str) -> None:
    data = _nested() * 10  # custom labels 10, 20, 50
    texts = {
        "yaml": "# custom segmentation\n10: WM\n20: gm\n50: 5\n",
        "json": json.dumps({"10": "WM", "20": 2, "50": "scalp"}),
        "tsv": "label\ttissue\n10\tWM\n# comment\n20\tGM\n50\tscalp\n",
    }
    mapping = tmp_path / f"labels.{kind}"
    mapping.write_text(texts[kind])
    assert read_label_mapping(mapping) == {10: 1, 20: 2, 50: 5}
    mesh = labels_head(_save(tmp_path, data, np.eye(4)), mapping)
    assert _tissue_volumes(mesh) == pytest.approx(
        {tag: float((data == 10 * tag).sum()) for tag in (1, 2, 5)})


def test_labels_bad_mapping_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("3: liver\n")
    with pytest.raises(InputError, match=r"bad.yaml: label 3: unknown tissue 'liver'"):
        read_label_mapping(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="must map label values to tissues"):
        read_label_mapping(bad)
    with pytest.raises(InputError, match=r"must be \.yaml, \.yml, \.json or \.tsv"):
        read_label_mapping(tmp_path / "labels.csv")
    broken = tmp_path / "broken.json"
    broken.write_text("{1: WM")
    with pytest.raises(InputError, match="cannot parse label mapping"):
        read_label_mapping(broken)


def test_labels_rejects_non_integer_and_non_3d_images(tmp_path: Path) -> None:
    t1 = np.random.default_rng(0).random((6, 6, 6)).astype(np.float32)
    with pytest.raises(InputError, match="not whole numbers.*not an intensity image"):
        labels_head(_save(tmp_path, t1, np.eye(4), "t1"))
    with pytest.raises(InputError, match="3-D label volume"):
        labels_head(nib.Nifti1Image(np.ones((4, 4, 4, 2), dtype=np.int16), np.eye(4)))
    with pytest.raises(InputError, match="cannot read label mapping"):
        read_label_mapping(tmp_path / "missing.tsv")
    with pytest.raises(InputError, match="cannot read label image"):
        labels_head(tmp_path / "missing.nii.gz")
    # whole-valued floats are fine (label maps are often stored as float32)
    mesh = labels_head(nib.Nifti1Image(_nested().astype(np.float32), np.eye(4)))
    assert mesh.tissues() == [1, 2, 5]


def test_labels_resampling_bounds_the_size(tmp_path: Path) -> None:
    grid = np.indices((40, 40, 40)) - 19.5
    ball = np.where((grid ** 2).sum(axis=0) < 18 ** 2, 2, 0).astype(np.uint8)
    path = _save(tmp_path, ball, np.diag([0.5, 0.5, 0.5, 1.0]))
    fine, coarse = labels_head(path), labels_head(path, voxel_size_mm=1.0)
    assert coarse.n_tets < fine.n_tets / 6
    v_fine, v_coarse = (m.signed_volumes().sum() for m in (fine, coarse))
    assert v_coarse == pytest.approx(v_fine, rel=0.05)
    # the resampled grid keeps the field of view: same bounding box within a voxel
    assert np.abs(coarse.nodes.min(0) - fine.nodes.min(0)).max() <= 1.0
    with pytest.raises(InputError, match="voxel_size_mm"):
        labels_head(path, voxel_size_mm=-1)


def test_labels_refuse_too_big_before_meshing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memory, "available_memory_bytes", lambda: 2 ** 20)
    with pytest.raises(MeshError, match=r"~5,760 tets needs .* voxel size"):
        labels_head(nib.Nifti1Image(_nested(), np.eye(4)))


def test_labels_all_background_is_an_error() -> None:
    with pytest.raises(MeshError, match="no voxels of a mapped tissue"):
        labels_head(nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.uint8), np.eye(4)))


# --- SimNIBS meshes ----------------------------------------------------------------------


def _with_electrode(mesh: HeadMesh) -> HeadMesh:
    """The mesh plus one electrode tetrahedron (tag 101) and its surface (1101) outside it."""
    n = mesh.n_nodes
    extra = np.array([[0, 0, 75.0], [8, 0, 75], [0, 8, 75], [0, 0, 80]])
    return HeadMesh(np.vstack([mesh.nodes, extra]), np.vstack([mesh.tets, [[n, n + 1, n + 2,
                                                                             n + 3]]]),
                    np.r_[mesh.tags, 101], np.vstack([mesh.triangles, [[n, n + 1, n + 2]]]),
                    np.r_[mesh.triangle_tags, 1101])


def test_simnibs_round_trip_drops_electrodes(coarse_sphere: HeadMesh, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    path = write_msh(_with_electrode(coarse_sphere), tmp_path / "ernie.msh")
    with caplog.at_level(logging.WARNING):
        head = simnibs_head(path)
    assert "101: 1 tetrahedra" in caplog.text and "1101: 1 triangles" in caplog.text
    assert head.n_nodes == coarse_sphere.n_nodes
    assert np.array_equal(head.tets, coarse_sphere.tets)
    assert np.array_equal(head.tags, coarse_sphere.tags)
    assert np.array_equal(head.triangle_tags, coarse_sphere.triangle_tags)
    assert np.allclose(head.nodes, coarse_sphere.nodes)


def test_simnibs_orients_and_adds_missing_boundaries(coarse_sphere: HeadMesh,
                                                     tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    flipped = HeadMesh(coarse_sphere.nodes, coarse_sphere.tets[:, [0, 1, 3, 2]],
                       coarse_sphere.tags)
    with caplog.at_level(logging.WARNING):
        head = simnibs_head(write_msh(flipped, tmp_path / "flipped.msh"))
    assert not caplog.text
    assert head.signed_volumes().min() > 0
    assert sorted(set(head.triangle_tags.tolist())) == [1002, 1004, 1005]


def test_simnibs_without_tissues_is_an_error(coarse_sphere: HeadMesh, tmp_path: Path) -> None:
    only_electrodes = HeadMesh(coarse_sphere.nodes, coarse_sphere.tets,
                               np.full(coarse_sphere.n_tets, 500))
    path = write_msh(only_electrodes, tmp_path / "electrodes.msh")
    with pytest.raises(MeshError, match=r"no tetrahedra with SimNIBS tissue tags.*500: "):
        simnibs_head(path)


# --- memory ------------------------------------------------------------------------------


def test_memory_estimate_grows_with_size() -> None:
    small, big = estimate_memory_bytes(100_000), estimate_memory_bytes(5_000_000)
    assert 0 < small < big
    # measured peak for 4.8 M tets (mesh + assembly + pyamg + CG) was 5.4 GiB
    assert big > 5.4 * 2 ** 30
    with pytest.raises(MeshError, match="negative"):
        estimate_memory_bytes(-1)


def test_memory_available_is_plausible() -> None:
    assert 2 ** 20 < available_memory_bytes() < 2 ** 60


def test_memory_check_refuses_absurd_sizes() -> None:
    check_fits(1000, "tiny mesh")
    with pytest.raises(MeshError, match=r"^huge mesh: a mesh of ~1,000,000,000,000 tets "
                                        r"needs ~\d.* GiB but only .* GiB is available; "
                                        r"raise --max-volume"):
        check_fits(10 ** 12, "huge mesh")
