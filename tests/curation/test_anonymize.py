"""ntdb anonymize on a raw DataLad dataset full of real identifiers: nothing leaks."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import mne
import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from neurotwin_db.demo_datasets.head_phantom import head_phantom
from phi_corpus import (
    KNOWN,
    MEAS_DATE,
    Corpus,
    add_dicoms,
    dcm2niix_sidecars,
    nifti_with_name,
    participants_tsv,
    write_eeg,
)

from neurotwin_db import datalad as dl
from neurotwin_db.cli.main import cli
from neurotwin_db.curation.anonymize import (
    apply_anonymization,
    load_key,
    plan_anonymization,
)
from neurotwin_db.curation.phi import Identifiers, scan_phi

VALIDATOR = Path(sys.executable).parent / "bids-validator-deno"
# Every planted identifier, in the spellings headers and sidecars use.
PLANTED = ["Testperson", "TESTPERSON", "Johanna", "JOHANNA", "MRN0012345", "1948-03-15",
           "19480315", "15-MAR-1948", "15.03.1948", "15.03.48", "Mustermann", "Beispiel",
           "Ottilie", "Hauptstrasse", "Musterweg", "Lindenallee", "1931-02-03", "1950-07-08",
           "1952-11-30", "Dr Smith", "Dr_Smith", "dft patient name", "MRC35119", "19800102",
           "AKH - WIEN", "SN-77881", "2024-05-06", "20240506", "06.05.24", "06-MAY-2024"]
SUBJECTS = {"01": "edf", "02": "bdf", "03": "brainvision", "04": "fif"}
EXTENSIONS = {"edf": ".edf", "bdf": ".bdf", "brainvision": ".vhdr", "fif": ".fif"}


def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def phantom():  # noqa: ANN201
    return head_phantom(3.0)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory, phantom) -> Path:  # noqa: ANN001
    """A raw (private) DataLad BIDS dataset holding the PHI corpus."""
    root = tmp_path_factory.mktemp("anon") / "raw"
    dl.create_dataset(root)
    _write(root, "dataset_description.json", json.dumps(
        {"Name": "raw", "BIDSVersion": "1.10.0", "License": "CC0-1.0",
         "Authors": ["A. Steward", "B. Steward"]}))
    _write(root, "README", "# Raw\n\nFour participants, EEG and MRI.\n")
    participants_tsv(root / "participants.tsv")
    _write(root, "participants.json", json.dumps(
        {"name": {"Description": "full name"}, "age": {"Description": "age", "Units": "year"},
         "sex": {"Description": "sex", "Levels": {"F": "female", "M": "male"}}}))
    nifti_with_name(root / "sub-01/anat/sub-01_T1w.nii.gz", phantom.image)
    _write(root, "sub-01/anat/sub-01_T1w.json", json.dumps(
        {"RepetitionTime": 2.3, "InstitutionName": "AKH - WIEN", "PatientName": "Testperson",
         "AcquisitionDateTime": "2024-05-06T10:11:12", "MyNotes": "Johanna Testperson"}))
    corpus = Corpus(root)
    for path in dcm2niix_sidecars(corpus, "sub-01/dwi"):
        path.rename(path.with_name(f"sub-01_{path.name}"))
    for label, fmt in SUBJECTS.items():
        eeg = root / f"sub-{label}/eeg/sub-{label}_task-rest_eeg{EXTENSIONS[fmt]}"
        write_eeg(eeg, fmt)
        _write(root, f"sub-{label}/eeg/sub-{label}_task-rest_eeg.json", json.dumps(
            {"TaskName": "rest", "SamplingFrequency": 256, "PowerLineFrequency": 50,
             "EEGReference": "Cz", "SoftwareFilters": "n/a", "DeviceSerialNumber": "SN-77881",
             "InstitutionName": "AKH - WIEN"}))
        _write(root, f"sub-{label}/sub-{label}_scans.tsv",
               f"filename\tacq_time\neeg/{eeg.name}\t{MEAS_DATE:%Y-%m-%dT%H:%M:%S}\n")
    add_dicoms(Corpus(root), "sourcedata/dicom")
    dl.save(root, "raw dataset with identifiers")
    return root


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "pseudonym.key"
    load_key(path, new=True)
    return path


@pytest.fixture(scope="module")
def shared(raw: Path, key_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("share") / "shareable"
    result = CliRunner().invoke(cli, ["anonymize", str(raw), "--out", str(out),
                                      "--key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    return out


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".git" not in p.parts and p.is_file()]


def _contents(path: Path) -> bytes:
    data = path.read_bytes()  # annexed files are symlinks: this reads their content
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def test_no_planted_identifier_survives_byte_for_byte(shared: Path) -> None:
    leaks = []
    for path in _files(shared):
        data = _contents(path)
        texts = [data.decode("latin-1"), data.decode("utf-16-le", "ignore")]
        for value in PLANTED:
            if any(value in text for text in texts) or value in path.name:
                leaks.append((path.relative_to(shared).as_posix(), value))
    assert not leaks, leaks
    assert len(_files(shared)) >= 25
    assert not list(shared.glob("sourcedata"))  # identifiable sources stay behind


def test_output_passes_phi_scan_and_is_recorded(shared: Path) -> None:
    report = scan_phi(shared, identifiers=Identifiers.from_lines(KNOWN))
    assert not report.failed(), [i.as_dict() for i in report.at_least(30)][:5]
    log = dl.git(shared, "log", "--format=%s").decode()
    assert "anonymize raw" in log
    assert dl.git(shared, "status", "--porcelain").strip() == b""


def test_source_is_untouched(raw: Path, key_file: Path, tmp_path: Path) -> None:
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in _files(raw)}
    head = dl.head_commit(raw)
    key = load_key(key_file)
    apply_anonymization(plan_anonymization(raw, key, out=tmp_path / "o2"), key)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in _files(raw)} == before
    assert dl.head_commit(raw) == head


def test_dates_are_shifted_by_the_subject_offset(shared: Path, key_file: Path) -> None:
    key = load_key(key_file)
    for label, fmt in SUBJECTS.items():
        pseudo, offset = key.pseudonym(label), key.date_offset(label)
        assert timedelta(days=-7300) <= offset <= timedelta(days=-3650)
        rows = list(csv.DictReader((shared / f"sub-{pseudo}/sub-{pseudo}_scans.tsv").open(),
                                   delimiter="\t"))
        expected = (MEAS_DATE + offset).replace(tzinfo=None)
        assert rows[0]["acq_time"] == f"{expected:%Y-%m-%dT%H:%M:%S}"
        eeg = shared / f"sub-{pseudo}/eeg/sub-{pseudo}_task-rest_eeg{EXTENSIONS[fmt]}"
        raw = mne.io.read_raw(eeg, verbose="error")
        assert raw.info["meas_date"] == MEAS_DATE + offset, fmt  # intervals kept


def test_participants_lose_identifiers_and_old_ages(shared: Path, key_file: Path) -> None:
    key = load_key(key_file)
    rows = list(csv.DictReader((shared / "participants.tsv").open(), delimiter="\t"))
    assert list(rows[0]) == ["participant_id", "age", "sex"]
    assert [r["participant_id"] for r in rows] == [f"sub-{key.pseudonym(x)}"
                                                   for x in ("01", "02", "03", "04")]
    assert [r["age"] for r in rows] == ["89", "74", "76", "71"]
    description = json.loads((shared / "participants.json").read_text())
    assert "name" not in description and description["age"]["Maximum"] == 89


def test_sidecars_keep_bids_fields_only(shared: Path, key_file: Path) -> None:
    pseudo = load_key(key_file).pseudonym("01")
    t1w = json.loads((shared / f"sub-{pseudo}/anat/sub-{pseudo}_T1w.json").read_text())
    assert t1w == {"RepetitionTime": 2.3}  # denied, unknown and date keys dropped
    dwi = json.loads((shared / f"sub-{pseudo}/dwi/sub-{pseudo}_dwi.json").read_text())
    assert "EchoTime" in dwi and "PatientName" not in dwi and "StationName" not in dwi


def test_nifti_headers_are_clean_and_face_removed(shared: Path, key_file: Path,
                                                  phantom) -> None:  # noqa: ANN001
    pseudo = load_key(key_file).pseudonym("01")
    image = nib.load(shared / f"sub-{pseudo}/anat/sub-{pseudo}_T1w.nii.gz")
    assert image.header["descrip"].item() == b"" and not image.header.extensions
    data = np.asanyarray(image.dataobj)
    original = np.asanyarray(phantom.image.dataobj)
    assert not data[phantom.face].any()  # the face is gone
    assert np.array_equal(data[phantom.brain], original[phantom.brain])  # the brain is not
    record = json.loads((shared / ".ntdb/anonymization.json").read_text())
    assert record["defaced"] == [f"sub-{pseudo}/anat/sub-{pseudo}_T1w.nii.gz"]
    assert record["dates_shifted"] and "key" not in json.dumps(record).lower().replace(
        '"pseudonymized"', "")


def test_key_and_mapping_stay_private(shared: Path, key_file: Path) -> None:
    mapping = key_file.with_name(key_file.name + ".mapping.tsv")
    for path in (key_file, mapping):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "sub-01" not in mapping.read_text() and "\n01\t" in mapping.read_text()
    secret = key_file.read_text().strip()
    assert all(secret not in _contents(p).decode("latin-1") for p in _files(shared))


def test_running_twice_is_idempotent(raw: Path, shared: Path, key_file: Path) -> None:
    head = dl.head_commit(shared)
    result = CliRunner().invoke(cli, ["anonymize", str(raw), "--out", str(shared),
                                      "--key-file", str(key_file), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["written"] == 0 and summary["removed"] == 0
    assert dl.head_commit(shared) == head


def test_same_key_same_pseudonyms_across_datasets(key_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    _write(other, "dataset_description.json", '{"Name": "o", "BIDSVersion": "1.10.0"}')
    _write(other, "sub-03/eeg/sub-03_task-x_eeg.json", '{"TaskName": "x"}')
    plan = plan_anonymization(other, load_key(key_file), out=tmp_path / "o")
    assert plan.subjects == {"03": load_key(key_file).pseudonym("03")}


def test_dry_run_prints_the_plan_and_writes_nothing(raw: Path, key_file: Path,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "dry"
    result = CliRunner().invoke(cli, ["anonymize", str(raw), "--out", str(out), "--dry-run",
                                      "--key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    assert "deface" in result.output and "sourcedata/dicom" in result.output
    assert not out.exists()


def test_a_leak_stops_the_run_and_writes_nothing(raw: Path, key_file: Path,
                                                 tmp_path: Path) -> None:
    source = tmp_path / "raw-copy"
    shutil.copytree(raw, source, symlinks=False, ignore=shutil.ignore_patterns(".git"))
    (source / "README").write_text("Session notes: Johanna Testperson was late.\n")
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(KNOWN))
    out = tmp_path / "leaky"
    result = CliRunner().invoke(cli, ["anonymize", str(source), "--out", str(out),
                                      "--key-file", str(key_file), "--identifiers", str(ids)])
    assert result.exit_code == 2
    assert "README" in result.output and "nothing was written" in result.output
    assert not out.exists() and not list(tmp_path.glob(".ntdb-anonymize-*"))


def test_an_interrupted_run_leaves_the_output_as_it_was(raw: Path, key_file: Path,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from neurotwin_db.curation.anonymize import _apply

    key = load_key(key_file)
    out = tmp_path / "out"
    apply_anonymization(plan_anonymization(raw, key, out=out), key)
    head, files = dl.head_commit(out), sorted(p.name for p in _files(out))

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    changed = tmp_path / "changed"
    shutil.copytree(raw, changed, symlinks=False, ignore=shutil.ignore_patterns(".git"))
    (changed / "README").write_text("# Raw, second release\n")
    monkeypatch.setattr(_apply.dl, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        apply_anonymization(plan_anonymization(changed, key, out=out), key)
    assert dl.head_commit(out) == head and sorted(p.name for p in _files(out)) == files
    assert dl.git(out, "status", "--porcelain").strip() == b""


def test_a_missing_key_is_an_error_and_never_created_silently(raw: Path,
                                                              tmp_path: Path) -> None:
    key = tmp_path / "keys" / "new.key"
    runner = CliRunner()
    result = runner.invoke(cli, ["anonymize", str(raw), "--out", str(tmp_path / "o"),
                                 "--key-file", str(key), "--dry-run"])
    assert result.exit_code == 2 and "--new-key" in result.output and not key.exists()
    load_key(key, new=True)  # what a real run with --new-key does
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.write_text("not hex\n")
    result = runner.invoke(cli, ["anonymize", str(raw), "--key-file", str(key), "--dry-run"])
    assert result.exit_code == 2 and "cannot read key file" in result.output
    inside = raw / "my.key"
    result = runner.invoke(cli, ["anonymize", str(raw), "--key-file", str(inside),
                                 "--new-key", "--dry-run"])
    assert result.exit_code == 2 and "outside every dataset" in result.output
    assert not inside.exists()


def test_corrupt_eeg_is_named_and_nothing_is_written(raw: Path, key_file: Path,
                                                     tmp_path: Path) -> None:
    source = tmp_path / "raw-bad"
    shutil.copytree(raw, source, symlinks=False, ignore=shutil.ignore_patterns(".git"))
    edf = next(source.glob("sub-01/eeg/*.edf"))
    edf.write_bytes(edf.read_bytes()[:200])
    result = CliRunner().invoke(cli, ["anonymize", str(source), "--out", str(tmp_path / "o"),
                                      "--key-file", str(key_file)])
    assert result.exit_code == 2 and edf.name in result.output
    assert not (tmp_path / "o").exists()


# mouse-ephys (NWB through pynwb export) failed once in a full run and in none of 7 later
# runs; it runs in `make test-all` until the cause is found
@pytest.mark.parametrize("name", ["eeg-rest", "mri-template",
                                  pytest.param("mouse-ephys", marks=pytest.mark.slow)])
def test_valid_datasets_stay_valid(demo_db: Path, key_file: Path, tmp_path: Path,
                                   name: str) -> None:
    out = tmp_path / name
    key = load_key(key_file)
    plan = plan_anonymization(demo_db / name, key, out=out)
    apply_anonymization(plan, key)
    proc = subprocess.run([str(VALIDATOR), "--json", str(out)], capture_output=True, text=True)
    issues = json.loads(proc.stdout)["issues"]["issues"]
    assert [i for i in issues if i["severity"] == "error"] == []
    assert not scan_phi(out).failed()
    assert plan.subjects and all(os.listdir(out / f"sub-{p}") for p in plan.subjects.values())
    assert not [f for f in os.listdir(out) if f.startswith("sub-") and
                f.removeprefix("sub-") in plan.subjects]


def test_what_a_steward_might_leave_behind_does_not_leak(raw: Path, key_file: Path,
                                                         tmp_path: Path) -> None:
    """Identifiers outside the places BIDS defines (found in a review as a new user)."""
    source = tmp_path / "messy"
    shutil.copytree(raw, source, symlinks=False, ignore=shutil.ignore_patterns(
        ".git", ".datalad", "sourcedata"))
    _write(source, ".notes", "Ilse Kowalczyk called\n")
    _write(source, "extra/consent.pdf", "%PDF Ilse Kowalczyk")
    # a name in free text needs --identifiers (see the leak test); the rest is found alone
    _write(source, "code/notes.txt", "Lives at 12 Elm Street, born 14.03.1948, "
                                     "ilse@example.org, +1 (617) 555-0199, seen 2025-05-12\n")
    _write(source, "sub-01/sub-01_Kowalczyk_notes.txt", "x\n")
    _write(source, "sub-02/ses-20250513/eeg/sub-02_ses-20250513_task-x_eeg.json",
           '{"TaskName": "x", "TaskDescription": "recorded 2025-05-13 by staff"}')
    _write(source, "sub-02/ses-20250513/sub-02_ses-20250513_scans.tsv",
           "filename\tacq_time\neeg/sub-02_ses-20250513_task-x_eeg.edf\t2025-05-13T09:00:00\n")
    table = (source / "participants.tsv").read_text().splitlines()
    table = [table[0] + "\tparticipant_name\tbirth_year\tcomments"] + [
        line + "\tIlse Kowalczyk\t1931\tlives with Kowalczyk" for line in table[1:]]
    (source / "participants.tsv").write_text("\n".join(table) + "\n")
    out = tmp_path / "out"
    key = load_key(key_file)
    plan = plan_anonymization(source, key, out=out)
    apply_anonymization(plan, key)
    planted = ["Kowalczyk", "Elm Street", "14.03.1948", "ilse@example.org", "555-0199",
               "2025-05-1", "20250513", "1931"]
    leaks = [(p.relative_to(out).as_posix(), v) for p in _files(out) for v in planted
             if v in _contents(p).decode("latin-1") or v in p.relative_to(out).as_posix()]
    assert not leaks, leaks
    dropped = {c.source for c in plan.changes if c.action == "drop"}
    assert {".notes", "extra/consent.pdf", "sub-01/sub-01_Kowalczyk_notes.txt"} <= dropped
    assert (out / "code" / "notes.txt").is_file()  # kept, with the contact details removed
    shifted = (key.date_offset("02") + MEAS_DATE.replace(2025, 5, 13)).strftime("%Y%m%d")
    assert (out / f"sub-{key.pseudonym('02')}" / f"ses-{shifted}").is_dir()


def test_an_unrelated_dataset_is_never_overwritten(raw: Path, key_file: Path, demo_db: Path,
                                                   tmp_path: Path) -> None:
    other = tmp_path / "other"
    dl.clone(str(demo_db / "mri-template"), other)
    head = dl.head_commit(other)
    result = CliRunner().invoke(cli, ["anonymize", str(raw), "--out", str(other),
                                      "--key-file", str(key_file)])
    assert result.exit_code == 2 and "did not create" in result.output
    assert dl.head_commit(other) == head


def test_a_dry_run_never_creates_a_key(raw: Path, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "new.key"
    result = CliRunner().invoke(cli, ["anonymize", str(raw), "--out", str(tmp_path / "o"),
                                      "--key-file", str(key), "--new-key", "--dry-run"])
    assert result.exit_code == 0 and "throw-away key" in result.output
    assert not key.exists() and not (tmp_path / "o").exists()
