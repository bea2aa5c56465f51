import json
import shutil
import subprocess
from pathlib import Path

import nibabel
import pydicom
import pytest

from neurotwin_db.catalog import add_dataset
from neurotwin_db.curation.ingest import ingest_dicom, load_rules
from neurotwin_db.curation.ingest._heuristic import classify
from neurotwin_db.errors import EntityError, InputError, OutputExistsError

pytestmark = pytest.mark.datalad

NIBABEL_DICOM = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.fixture
def siemens_dwi(tmp_path):
    """nibabel's two Siemens DWI slices (b=0 and b=1000), copied so they can be checked."""
    src = tmp_path / "dicom"
    src.mkdir()
    for name in ("0.dcm", "1.dcm"):
        shutil.copy(NIBABEL_DICOM / name, src / name)
    return src


@pytest.fixture
def mri(db):
    add_dataset(db, "mri", modality="mri")
    return db.root / "mri"


def _log(root):
    return subprocess.check_output(["git", "-C", str(root), "log", "--format=%s"],
                                   text=True).splitlines()


def test_siemens_dicom_becomes_a_bids_dwi(siemens_dwi, mri):
    before = {p.name: p.read_bytes() for p in siemens_dwi.iterdir()}
    plan, result = ingest_dicom(siemens_dwi, mri, subject="01", session="pre")
    stem = "sub-01/ses-pre/dwi/sub-01_ses-pre_dwi"
    assert sorted(result.written) == sorted(
        [f"{stem}{e}" for e in (".nii.gz", ".json", ".bval", ".bvec")]
        + ["participants.tsv", "sub-01/ses-pre/sub-01_ses-pre_scans.tsv"])
    image = nibabel.load(mri / f"{stem}.nii.gz")
    assert image.shape == (36, 36, 48, 2)
    assert len((mri / f"{stem}.bval").read_text().split()) == 2  # one b-value per volume
    bvec = [line.split() for line in (mri / f"{stem}.bvec").read_text().splitlines()]
    assert len(bvec) == 3 and all(len(row) == 2 for row in bvec)
    sidecar = json.loads((mri / f"{stem}.json").read_text())
    assert "PatientName" not in sidecar and "PatientBirthDate" not in sidecar  # -ba y
    scans = (mri / "sub-01/ses-pre/sub-01_ses-pre_scans.tsv").read_text().splitlines()
    assert scans[0] == "filename\tacq_time"
    assert scans[1].startswith("dwi/sub-01_ses-pre_dwi.nii.gz\t2010-01-14T20:29:59")
    assert "sub-01\thomo sapiens" in (mri / "participants.tsv").read_text()
    assert _log(mri)[0] == "[ntdb] ingest mri sub-01 ses-pre"  # one save for the whole ingest
    assert {p.name: p.read_bytes() for p in siemens_dwi.iterdir()} == before
    assert not list(mri.rglob("*.dcm"))


def test_running_again_is_a_no_op_and_different_content_needs_overwrite(siemens_dwi, mri):
    ingest_dicom(siemens_dwi, mri, subject="01")
    commits = _log(mri)
    _, again = ingest_dicom(siemens_dwi, mri, subject="01")
    assert again.written == [] and not again.saved and _log(mri) == commits
    sidecar = mri / "sub-01/dwi/sub-01_dwi.json"
    sidecar.write_text("{}")  # someone changed it
    subprocess.run(["git", "-C", str(mri), "commit", "-qam", "edit"], check=True)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        ingest_dicom(siemens_dwi, mri, subject="01")
    assert sidecar.read_text() == "{}"
    _, forced = ingest_dicom(siemens_dwi, mri, subject="01", overwrite=True)
    assert forced.written == ["sub-01/dwi/sub-01_dwi.json"]  # tables already up to date


def test_dry_run_writes_nothing(siemens_dwi, mri):
    commits = _log(mri)
    plan, result = ingest_dicom(siemens_dwi, mri, subject="01", dry_run=True)
    assert result is None and len(plan.files) == 4
    assert not (mri / "sub-01").exists() and _log(mri) == commits


def test_localizers_derived_and_ct_series_are_not_named(mri):
    """pydicom's DICOMDIR tree: localizers, angio projections, CT and CR; no MR to name."""
    with pytest.raises(InputError) as caught:
        ingest_dicom(PYDICOM_FILES / "dicomdirtests", mri, subject="02", dry_run=True)
    message = str(caught.value)
    assert "rule 'localizer' skips it" in message and "rule 'derived' skips it" in message
    assert "Routine Brain): no heuristic rule matched" in message  # a CT is not a T1w
    assert not (mri / "sub-02").exists()


def test_gzipped_nibabel_dicoms_give_t1w_and_dwi(mri, tmp_path):
    from neurotwin_db.demo_datasets.mri_dicom import write_sources

    _, result = ingest_dicom(write_sources(tmp_path / "src"), mri, subject="03")
    assert "sub-03/anat/sub-03_T1w.nii.gz" in result.written
    assert sorted(nibabel.load(mri / "sub-03/anat/sub-03_T1w.nii.gz").shape) == [176, 256, 256]
    bvals = (mri / "sub-03/dwi/sub-03_dwi.bval").read_text().split()
    assert [float(b) for b in bvals] == [0.0, 1000.0]


@pytest.mark.parametrize(("sidecar", "suffix"), [
    ({"SeriesDescription": "t1_mprage_sag"}, "T1w"),
    ({"SeriesDescription": "t2_tse_tra"}, "T2w"),
    ({"SeriesDescription": "t2_FLAIR"}, "FLAIR"),
    ({"SeriesDescription": "ep2d_bold_task-nback"}, "bold"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "DIFFUSION"]}, "dwi"),
    ({"SeriesDescription": "gre_field_mapping"}, "fieldmap"),
    ({"SeriesDescription": "AAHead_Scout"}, None),
    ({"SeriesDescription": "Routine Brain", "Modality": "CT"}, None),
])
def test_builtin_heuristic(sidecar, suffix):
    sidecar = {"Modality": "MR", **sidecar}
    rule = classify(sidecar, load_rules())
    assert (None if rule is None or rule.skip else rule.suffix) == suffix


def test_user_heuristic_overrides(siemens_dwi, mri, tmp_path):
    rules = tmp_path / "h.yaml"
    rules.write_text("rules:\n  - name: all-t2\n    datatype: anat\n    suffix: T2w\n"
                     "    any: {Modality: MR}\n")
    plan, _ = ingest_dicom(siemens_dwi, mri, subject="01", heuristic=rules, dry_run=True)
    assert "sub-01/anat/sub-01_T2w.nii.gz" in [f.target for f in plan.files]
    rules.write_text("rules:\n  - name: broken\n")
    with pytest.raises(InputError, match="datatype and suffix"):
        ingest_dicom(siemens_dwi, mri, subject="01", heuristic=rules, dry_run=True)


def test_keep_source_goes_to_a_separate_private_dataset(siemens_dwi, mri, tmp_path):
    private = tmp_path / "private"
    ingest_dicom(siemens_dwi, mri, subject="01", private=private)
    kept = sorted(p.name for p in (private / "sourcedata/sub-01/dicom").iterdir())
    assert kept == ["0.dcm", "1.dcm"]
    assert not (mri / "sourcedata").exists()
    assert not list(mri.rglob("*.dcm"))
    with pytest.raises(InputError, match="inside the shareable dataset"):
        ingest_dicom(siemens_dwi, mri, subject="01", private=mri / "private")


def test_folder_without_images_is_a_clear_error(tmp_path, mri):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="no DICOM images found"):
        ingest_dicom(tmp_path / "empty", mri, subject="01")
    assert not (mri / "sub-01").exists()


def test_truncated_dicom_names_the_file(tmp_path, mri):
    src = tmp_path / "trunc"
    src.mkdir()
    shutil.copy(PYDICOM_FILES / "MR_truncated.dcm", src)
    with pytest.raises(InputError, match="MR_truncated.dcm is truncated"):
        ingest_dicom(src, mri, subject="01")
    assert not (mri / "sub-01").exists()


def test_bad_labels_and_targets(siemens_dwi, mri, tmp_path):
    with pytest.raises(EntityError, match="escape"):
        ingest_dicom(siemens_dwi, mri, subject="../x")
    (tmp_path / "notbids").mkdir()
    with pytest.raises(InputError, match="not a BIDS dataset"):
        ingest_dicom(siemens_dwi, tmp_path / "notbids", subject="01")


def test_a_failure_while_writing_leaves_the_dataset_as_it_was(siemens_dwi, mri, monkeypatch):
    from neurotwin_db.curation.ingest import _plan

    ingest_dicom(siemens_dwi, mri, subject="01")
    image = mri / "sub-01/dwi/sub-01_dwi.nii.gz"
    before = image.read_bytes()
    (mri / "sub-01/dwi/sub-01_dwi.json").write_text("{}")  # make the re-ingest write again
    subprocess.run(["git", "-C", str(mri), "commit", "-qam", "edit"], check=True)
    real_put = _plan._put
    calls = []

    def failing_put(root, item):
        calls.append(item.target)
        if len(calls) == 1:
            return real_put(root, item)
        raise OSError("disk full")

    monkeypatch.setattr(_plan, "_put", failing_put)
    (mri / "sub-01/dwi/sub-01_dwi.bval").write_text("9 9\n")  # a second file to rewrite
    subprocess.run(["git", "-C", str(mri), "commit", "-qam", "edit bval"], check=True)
    with pytest.raises(OSError, match="disk full"):
        ingest_dicom(siemens_dwi, mri, subject="01", overwrite=True)
    status = subprocess.check_output(["git", "-C", str(mri), "status", "--porcelain"],
                                     text=True)
    assert status == "" and image.read_bytes() == before
    assert (mri / "sub-01/dwi/sub-01_dwi.json").read_text() == "{}"
