"""`ntdb model headmodel` and `ntdb model efield` end to end on a real DataLad dataset."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from neurotwin_db import datalad as dl
from neurotwin_db.cli.main import cli
from neurotwin_db.modelling.headmodel import read_msh

SPHERE = ["--from", "sphere", "--radii", "85,90,95", "--conductivities", "0.33,0.0066,0.33",
          "--element-size", "12"]


def _dataset(root: Path) -> Path:
    dl.create_dataset(root)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "sphere study", "BIDSVersion": "1.10.0", "DatasetDOI": "doi:10.5281/zenodo.7"}))
    dl.save(root, "description")
    return root


def _ntdb(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A dataset with a sphere head model and one solved 40 Hz montage."""
    root = _dataset(tmp_path_factory.mktemp("efield") / "ds")
    result = _ntdb("model", "headmodel", str(root), "--subject", "01", *SPHERE, "--json")
    assert result.exit_code == 0, result.output
    result = _ntdb("model", "efield", str(root), "--subject", "01", "--montage",
                   "Cz:1.0,Oz:-1.0", "--cap", "standard_1020", "--roi", "0,0,80:20", "--json")
    assert result.exit_code == 0, result.output
    return root, json.loads(result.output)


def test_headmodel_derivative(solved: tuple[Path, dict]) -> None:
    root, _ = solved
    anat = root / "derivatives/ntdb-headmodel/sub-01/anat"
    mesh, _, _ = read_msh(anat / "sub-01_desc-head_mesh.msh")
    sidecar = json.loads((anat / "sub-01_desc-head_mesh.json").read_text())
    assert sidecar["TetrahedronCount"] == mesh.n_tets and mesh.tissues() == [2, 4, 5]
    assert sidecar["Conductivities"] == {"GM": 0.33, "bone": 0.0066, "scalp": 0.33}
    assert sidecar["Quality"]["MinDihedralAngleDeg"] > 0
    labels = nib.load(anat / "sub-01_desc-head_dseg.nii.gz")
    assert set(np.unique(np.asarray(labels.dataobj))) == {0, 2, 4, 5}
    description = json.loads((root / "derivatives/ntdb-headmodel/dataset_description.json"
                               ).read_text())
    assert description["DatasetType"] == "derivative"
    assert description["SourceDatasets"][0]["DOI"] == "doi:10.5281/zenodo.7"


def test_efield_outputs(solved: tuple[Path, dict]) -> None:
    root, document = solved
    files = {k: root / v for k, v in document["Files"].items()}
    mesh, node_data, element_data = read_msh(files["mesh"])
    assert set(node_data) == {"v"} and set(element_data) == {"E", "magnE"}
    assert np.allclose(np.linalg.norm(element_data["E"], axis=1), element_data["magnE"])
    magn = np.asarray(nib.load(files["magnE"]).dataobj)
    assert magn.max() > 0 and np.isfinite(magn).all()
    assert files["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(files["summary"].read_text())
    assert summary["Stimulation"]["Frequency"] == 40.0
    assert summary["Solver"]["MaxRelativeResidual"] <= 1e-9
    # Dirichlet electrodes rescaled to the requested currents through their flux.
    measured = {m["Name"]: m["MeasuredCurrentMilliampere"] for m in summary["Montage"]}
    assert measured == pytest.approx({"Cz": 1.0, "Oz": -1.0}, abs=1e-6)
    gm = summary["Summary"]
    assert 0 < gm["GM_magnE_median"] <= gm["GM_magnE_99.9"] <= gm["MaxMagnE"]
    assert gm["ROI"]["Elements"] > 0
    sources = [s["URL"] for s in summary["Sources"]]
    assert "bids::derivatives/ntdb-headmodel" in sources
    assert not dl.git(root, "status", "--porcelain").strip()  # all recorded by DataLad


def test_montage_not_summing_to_zero_writes_nothing(solved: tuple[Path, dict]) -> None:
    root, _ = solved
    result = CliRunner().invoke(cli, ["model", "efield", str(root), "--subject", "01",
                                      "--montage", "Cz:1.0,Oz:-0.5", "--desc", "bad"])
    assert result.exit_code == 2
    assert "sum to zero" in result.output
    assert not list((root / "derivatives/ntdb-efield").rglob("*desc-bad*"))


def test_unknown_electrode_and_missing_head_model(solved: tuple[Path, dict],
                                                  tmp_path: Path) -> None:
    root, _ = solved
    result = CliRunner().invoke(cli, ["model", "efield", str(root), "--subject", "01",
                                      "--montage", "Cz:1,Q9:-1", "--desc", "bad"])
    assert result.exit_code == 2 and "'Q9' is not in cap" in result.output
    empty = _dataset(tmp_path / "empty")
    result = CliRunner().invoke(cli, ["model", "efield", str(empty), "--subject", "01",
                                      "--montage", "Cz:1,Oz:-1"])
    assert result.exit_code == 2 and "ntdb model headmodel" in result.output


def test_existing_head_model_is_not_replaced(solved: tuple[Path, dict]) -> None:
    root, _ = solved
    result = CliRunner().invoke(cli, ["model", "headmodel", str(root), "--subject", "01",
                                      *SPHERE])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_leadfield_then_optimize(solved: tuple[Path, dict]) -> None:
    root, _ = solved
    result = _ntdb("model", "leadfield", str(root), "--subject", "01", "--cap",
                   "standard_1020", "--reference", "Cz", "--json")
    assert result.exit_code == 0, result.output
    lead = json.loads(result.output)
    assert lead["Electrodes"] == 20 and lead["MaxRelativeResidual"] <= 1e-9
    assert (root / lead["File"]).is_file()
    result = _ntdb("model", "optimize", str(root), "--subject", "01", "--cap", "standard_1020",
                   "--target", "-60,0,40:20", "--max-electrodes", "4", "--json")
    assert result.exit_code == 0, result.output
    best = json.loads(result.output)
    currents = [m["CurrentMilliampere"] for m in best["Montage"]]
    assert len(currents) <= 4 and abs(sum(currents)) < 1e-6
    assert sum(abs(c) for c in currents) / 2 <= 2.0 + 1e-6
    assert max(abs(c) for c in currents) <= 1.0 + 1e-6
    assert best["RoiMeanField"] > 0
    assert all((root / f).is_file() for f in best["Files"])
    assert not dl.git(root, "status", "--porcelain").strip()


def test_optimize_without_leadfield_or_with_an_empty_target(solved: tuple[Path, dict]) -> None:
    root, _ = solved
    result = CliRunner().invoke(cli, ["model", "optimize", str(root), "--subject", "01",
                                      "--cap", "standard_1005", "--target", "0,0,0"])
    assert result.exit_code == 2 and "ntdb model leadfield" in result.output


def test_cohort_runs_through_parallel_workers(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "cohort")
    result = _ntdb("model", "headmodel", str(root), "--subject", "01", "--subject", "02",
                   *SPHERE, "--jobs", "2", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(r["subject"] for r in json.loads(result.output)) == ["01", "02"]
    result = _ntdb("model", "efield", str(root), "--subject", "01", "--subject", "02",
                   "--montage", "Cz:1,Oz:-1", "--cap", "standard_1020", "--jobs", "2", "--json")
    assert result.exit_code == 0, result.output
    documents = json.loads(result.output)
    assert [d["Subject"] for d in documents] == ["01", "02"]
    assert all((root / d["Files"]["mesh"]).is_file() for d in documents)
    assert not dl.git(root, "status", "--porcelain").strip()
    log = dl.git(root / "derivatives/ntdb-efield", "log", "--format=%s").decode()
    assert "efield Cz:1,Oz:-1 for sub-01, sub-02" in log
    result = CliRunner().invoke(cli, ["model", "efield", str(root), "--subject", "01",
                                      "--subject", "03", "--montage", "Cz:1,Oz:-1"])
    assert result.exit_code == 2 and "no head model for sub-03" in result.output


def test_corrupt_head_mesh_is_named(solved: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = solved
    bad = tmp_path / "bad.msh"
    bad.write_text("not a mesh\n")
    result = CliRunner().invoke(cli, ["model", "efield", str(root), "--subject", "01",
                                      "--montage", "Cz:1,Oz:-1", "--head", str(bad),
                                      "--desc", "corrupt"])
    assert result.exit_code == 2 and "bad.msh: not a gmsh mesh" in result.output
    assert not list((root / "derivatives/ntdb-efield").rglob("*desc-corrupt*"))
