"""Lead fields on a coarse three-shell sphere: superposition, reciprocity, one AMG, files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import neurotwin_db
from neurotwin_db.errors import InputError, OutputExistsError
from neurotwin_db.modelling.efield import _solve
from neurotwin_db.modelling.efield._analytic import mag, rdm, sphere_field
from neurotwin_db.modelling.efield._electrodes import Scalp, Shape, place_montage
from neurotwin_db.modelling.efield._fem import (
    P1Geometry,
    assemble_stiffness,
    element_conductivity,
)
from neurotwin_db.modelling.efield._leadfield import LeadField, compute_leadfield
from neurotwin_db.modelling.efield._montage import solve_montage
from neurotwin_db.modelling.efield._solve import ReducedSystem
from neurotwin_db.modelling.headmodel import HeadMesh
from neurotwin_db.modelling.headmodel._sphere import sphere_head

RADII = (85.0, 90.0, 95.0)
SIGMA = {2: 0.33, 4: 0.0066, 5: 0.33}
FEW = ["F3", "Fp2", "C4", "Pz", "O1"]


def make_sphere(size: float = 12.0) -> HeadMesh:
    """The project's concentric sphere head (tags 2, 4, 5 from the inside out)."""
    return sphere_head(RADII, element_size_mm=size)


@pytest.fixture(scope="module")
def mesh() -> HeadMesh:
    return make_sphere()


@pytest.fixture(scope="module")
def leadfield(mesh: HeadMesh) -> LeadField:
    return compute_leadfield(mesh, SIGMA, "standard_1010", "Cz")


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_leadfield_covers_the_cap_in_grey_matter(mesh: HeadMesh, leadfield: LeadField) -> None:
    assert leadfield.reference == "Cz" and "Cz" not in leadfield.electrodes
    assert len(leadfield.electrodes) > 60 and leadfield.cap == "standard_1010"
    np.testing.assert_array_equal(leadfield.elements, np.flatnonzero(mesh.tags == 2))
    assert leadfield.field.shape == (len(leadfield.electrodes), len(leadfield.elements), 3)
    assert leadfield.field.dtype == np.float32 and np.isfinite(leadfield.field).all()
    assert len(leadfield.stats) == len(leadfield.electrodes)
    assert all(s.relative_residual <= 1e-7 for s in leadfield.stats)
    assert {"Assembly", "Setup", "Solve", "Total"} <= set(leadfield.timings)
    assert np.allclose(np.linalg.norm(leadfield.normals, axis=1), 1.0)


def test_superposition_equals_a_neumann_montage(mesh: HeadMesh, leadfield: LeadField) -> None:
    electrodes = place_montage(mesh, [("F3", 1.0), ("Fp2", -1.0)], Shape("point"),
                               cap="standard_1010")
    for e in electrodes:
        np.testing.assert_allclose(e.centre_mm, leadfield.centres_mm[leadfield.index_of(e.name)])
    direct = solve_montage(mesh, SIGMA, electrodes, model="neumann").field[leadfield.elements]
    combined = leadfield.field_of({"F3": 1.0, "Fp2": -1.0})
    assert _relative(combined, direct) < 1e-6
    assert _relative(leadfield.field_of({"F3": 2.0, "Fp2": -2.0}), 2 * direct) < 1e-6


def test_field_is_close_to_the_analytic_sphere(leadfield: LeadField) -> None:
    f3 = leadfield.centres_mm[leadfield.index_of("F3")]
    cz = leadfield.centres_mm[-1]
    exact = sphere_field(leadfield.centroids_mm, RADII, [SIGMA[t] for t in (2, 4, 5)], f3, cz)
    numeric = leadfield.field_of({"F3": 1.0})
    assert rdm(numeric, exact) < 0.25 and abs(mag(numeric, exact)) < 0.1  # 0.17, 0.007


def test_transfer_resistances_are_reciprocal(leadfield: LeadField) -> None:
    transfer = leadfield.transfer
    assert np.abs(transfer - transfer.T).max() < 1e-6 * np.abs(transfer).max()
    assert np.all(np.diag(transfer) > 0)


def test_dipole_potentials_follow_from_the_leadfield(mesh: HeadMesh,
                                                     leadfield: LeadField) -> None:
    """Helmholtz reciprocity: a dipole p in element e gives V_i = −1000 · L_i(e)·p (V)."""
    geometry = P1Geometry.of(mesh)
    matrix = assemble_stiffness(mesh, geometry, element_conductivity(mesh, SIGMA))
    scalp = Scalp.of(mesh)
    nodes = [scalp.nearest(c)[0] for c in leadfield.centres_mm]
    system = ReducedSystem.build(matrix, np.array([nodes[-1]]))
    moment = np.array([1e-8, -2e-8, 3e-8])  # A·m
    for k in (0, len(leadfield.elements) // 2, len(leadfield.elements) - 1):
        element = leadfield.elements[k]
        source = np.zeros(mesh.n_nodes)
        np.add.at(source, mesh.tets[element], geometry.grads[element] @ moment)
        potential, _ = system.solve(source)
        expected = -1000 * leadfield.field[:, k].astype(float) @ moment
        assert _relative(potential[nodes[:-1]], expected) < 1e-5


def test_the_reference_does_not_change_montage_fields(mesh: HeadMesh,
                                                      leadfield: LeadField) -> None:
    other = compute_leadfield(mesh, SIGMA, "standard_1010", "Pz", names=["F3", "Fp2", "Cz"])
    assert other.electrodes == ("F3", "Fp2", "Cz")
    for currents in ({"F3": 1.0, "Fp2": -1.0}, {"F3": 1.0, "Cz": -0.25, "Pz": -0.75}):
        assert _relative(other.field_of(currents), leadfield.field_of(currents)) < 1e-6


def test_only_one_amg_hierarchy_is_built(mesh: HeadMesh, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    builds: list[int] = []
    hierarchies: list[int] = []
    original_build = ReducedSystem.build.__func__
    original_amg = _solve.smoothed_aggregation

    def build(cls: type, matrix: object, fixed: np.ndarray, **kwargs: object
              ) -> ReducedSystem:
        builds.append(len(fixed))
        return original_build(cls, matrix, fixed, **kwargs)

    def amg(*args: object, **kwargs: object) -> object:
        hierarchies.append(1)
        return original_amg(*args, **kwargs)

    monkeypatch.setattr(ReducedSystem, "build", classmethod(build))
    monkeypatch.setattr(_solve, "smoothed_aggregation", amg)
    field = compute_leadfield(mesh, SIGMA, names=FEW)
    assert len(field.electrodes) == len(FEW) and builds == [1] and len(hierarchies) == 1


def test_field_of_balances_with_the_reference(leadfield: LeadField) -> None:
    alone = leadfield.field_of({"F3": 1.0})
    np.testing.assert_array_equal(alone, leadfield.field[leadfield.index_of("F3")])
    np.testing.assert_allclose(leadfield.field_of({"f3": 1.0, "CZ": -1.0}), alone)
    with pytest.raises(InputError, match="sum to zero"):
        leadfield.field_of({"F3": 1.0, "Cz": 0.0})
    with pytest.raises(InputError, match="did you mean"):
        leadfield.field_of({"F33": 1.0})


def test_save_and_load_round_trip(tmp_path, leadfield: LeadField) -> None:
    path = leadfield.save(tmp_path / "lf.h5")
    loaded = LeadField.load(path)
    for key in ("elements", "field", "centroids_mm", "volumes_m3", "tags", "normals",
                "centres_mm", "transfer"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(leadfield, key))
    assert loaded.electrodes == leadfield.electrodes and loaded.shape == leadfield.shape
    assert [s.iterations for s in loaded.stats] == [s.iterations for s in leadfield.stats]
    with h5py.File(path) as f:
        assert f.attrs["units"] == "V/m per mA" and f.attrs["cap"] == "standard_1010"
        assert f.attrs["neurotwin_db_version"] == neurotwin_db.__version__
    with pytest.raises(OutputExistsError):
        leadfield.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lf.h5"]
    (tmp_path / "other.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="cannot read the lead field"):
        LeadField.load(tmp_path / "other.h5")


def test_disc_electrodes_and_explicit_positions(mesh: HeadMesh) -> None:
    positions = {"A": np.array([0.0, 0.0, 95.0]), "B": np.array([95.0, 0.0, 0.0]),
                 "C": np.array([0.0, 95.0, 0.0]), "R": np.array([-95.0, 0.0, 0.0])}
    mask = mesh.tags == 5
    field = compute_leadfield(mesh, SIGMA, reference="R", positions=positions,
                              shape=Shape.parse("disc:15mm"), elements=mask)
    assert field.cap == "custom" and field.electrodes == ("A", "B", "C")
    assert len(field.elements) == mask.sum() and not field.normals.any()
    assert np.abs(field.transfer - field.transfer.T).max() < 1e-6 * np.abs(field.transfer).max()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"reference": "Cq"}, "not in cap standard_1010"),
    ({"names": ["Cz"]}, "at least one electrode besides"),
    ({"names": ["C1"], "shape": Shape.parse("disc:40mm")}, "overlaps the reference"),
    ({"elements": np.array([-1])}, "0-based tetrahedra"),
    ({"elements": np.ones(3, dtype=bool)}, "one entry per tetrahedron"),
])
def test_bad_requests_are_explained(mesh: HeadMesh, kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        compute_leadfield(mesh, SIGMA, **kwargs)
