"""`ntdb anonymize-dicom` on real DICOM files shipped with pydicom and nibabel."""

from __future__ import annotations

import datetime
import io
import json
import re
import shutil
import warnings
from pathlib import Path

import deid
import nibabel
import pydicom
import pytest
from click.testing import CliRunner

from neurotwin_db.cli.cmd_anonymize_dicom import anonymize_dicom as command
from neurotwin_db.curation.anonymize import PseudonymKey, load_key
from neurotwin_db.curation.anonymize._key import mapping_path
from neurotwin_db.curation.anonymize.dicom import (
    PROJECT_RECIPE,
    DicomAnonymization,
    _encode,
    _quiet_deid,
    _Recipe,
    _uid_hook,
    anonymize_dicom,
    load_recipe,
)
from neurotwin_db.errors import InputError

TESTS = Path(pydicom.__file__).parent / "data" / "test_files"
NICOM = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
ULTRASOUND = ("examples_rgb_color.dcm", "examples_ybr_color.dcm", "examples_palette.dcm")
SINGLE = ("examples_overlay.dcm", "waveform_ecg.dcm", "CT_small.dcm", "MR_small.dcm",
          *ULTRASOUND)
DEID_DEFAULT = Path(deid.__file__).parent / "data" / "deid.dicom"
# Identifying values the leak test collects from the sources (besides PN, DA, DT and UIDs).
IDENTIFYING = {"PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientAddress",
               "PatientBirthName", "PatientMotherBirthName", "InstitutionName",
               "InstitutionAddress", "StationName", "DeviceSerialNumber", "AccessionNumber",
               "AdmissionID", "PerformedProcedureStepID", "RequestedProcedureID",
               "ScheduledProcedureStepID", "CurrentPatientLocation", "RequestingService",
               "StudyComments", "ImageComments"}


def read(path: Path, **kwargs: object) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom notes odd values in the test files
        return pydicom.dcmread(path, **kwargs)


def make_key(folder: Path) -> PseudonymKey:
    """A fixed key, so every run (and the leak test) is reproducible."""
    path = folder / "keys" / "test.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("5e" * 32 + "\n", encoding="ascii")
    path.chmod(0o600)
    return load_key(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("corpus") / "src"
    src.mkdir()
    for name in SINGLE:
        shutil.copy(TESTS / name, src / name)
    shutil.copytree(TESTS / "dicomdirtests", src / "dicomdirtests")
    shutil.copy(NICOM / "0.dcm", src / "siemens-0.dcm")
    shutil.copy(NICOM / "1.dcm", src / "siemens-1.dcm")
    return src


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> PseudonymKey:
    return make_key(tmp_path_factory.mktemp("key"))


@pytest.fixture(scope="module")
def run(corpus: Path, key: PseudonymKey,
        tmp_path_factory: pytest.TempPathFactory) -> DicomAnonymization:
    """The corpus anonymized once, with two worker processes."""
    out = tmp_path_factory.mktemp("run") / "out"
    return anonymize_dicom(corpus, out, key=key, jobs=2)


def sources(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file())


def needles(corpus: Path) -> tuple[dict[str, str], set[str]]:
    """Identifying values of the sources (>= 4 characters) and the shorter ones skipped."""
    found: dict[str, str] = {}
    short: set[str] = set()
    kept: set[str] = set()  # make and model are kept on purpose; "TOSHIBA" is also a name
    for path in sources(corpus):
        if path.read_bytes()[128:132] != b"DICM":
            continue
        ds = read(path)
        kept |= {str(ds.get(k, "")) for k in ("Manufacturer", "ManufacturerModelName")}
        for element in ds.iterall():
            uid = element.VR == "UI" and not element.keyword.endswith(("ClassUID", "SyntaxUID"))
            if not (element.VR in ("PN", "DA", "DT") or element.keyword in IDENTIFYING or uid):
                continue
            for value in element.value if element.VM > 1 else [element.value]:
                text = str(value or "").strip()
                if uid and text.startswith("1.2.840.10008."):
                    continue  # UIDs the standard defines (classes, syntaxes) identify no one
                parts = [text, *re.split(r"[\^=]", text)] if element.VR == "PN" else [text]
                for part in (p.strip() for p in parts):
                    if len(part) >= 4:
                        found.setdefault(part, element.keyword)
                    elif part:
                        short.add(part)
    for value in kept:
        for needle in [n for n in found if n in value]:
            del found[needle]
    return found, short


def leaks(data: bytes, found: dict[str, str]) -> list[str]:
    """Which identifying values occur in the bytes of one output file."""
    ds = pydicom.dcmread(io.BytesIO(data))
    for element in ds.iterall():  # the new UIDs are long digit runs that hold any number
        if element.VR == "UI" and str(element.value).startswith("2.25."):
            data = data.replace(str(element.value).encode(), b"")
    hits = []
    for needle, keyword in found.items():
        raw = needle.encode("latin-1", "replace")
        if needle.isdigit() and len(needle) < 6:  # "2721" is inside "-8.827211e+01"
            hit = re.search(rb"(?<![0-9.])" + raw + rb"(?![0-9])", data)
        else:
            hit = raw in data
        if hit:
            hits.append(f"{keyword}={needle!r}")
    return hits


def test_encoding_writes_the_bytes_save_as_writes(corpus: Path) -> None:
    """The direct encoder gives byte for byte what dcmwrite gives, every syntax here
    (implicit, explicit, big endian, JPEG) and the deflated one it hands to save_as."""
    files = [p for p in sources(corpus) if p.read_bytes()[128:132] == b"DICM"]
    files += [TESTS / name for name in ("image_dfl.dcm", "MR_small_bigendian.dcm",
                                        "MR_small_implicit.dcm", "JPEG2000.dcm")]
    syntaxes = set()
    for path in files:
        ours, reference = read(path), read(path)
        if "SOPInstanceUID" not in ours or 0x00041220 in ours:
            continue  # a DICOMDIR: anonymize-dicom drops it
        syntax = ours.file_meta.TransferSyntaxUID
        syntaxes.add(syntax)
        meta = pydicom.dataset.FileMetaDataset()
        meta.MediaStorageSOPClassUID = reference.SOPClassUID
        meta.MediaStorageSOPInstanceUID = reference.SOPInstanceUID
        meta.TransferSyntaxUID = syntax
        reference.file_meta, reference.preamble = meta, b"\0" * 128
        expected = io.BytesIO()
        reference.save_as(expected, enforce_file_format=True)
        assert _encode(ours, syntax) == expected.getvalue(), path.name
    assert len(syntaxes) >= 6


def test_no_identifying_value_and_no_private_tag_remains(
        corpus: Path, run: DicomAnonymization) -> None:
    found, short = needles(corpus)
    # Values under 4 characters (e.g. 'Doe', 'Jan', 'MC', '52') are not searched: they
    # occur by chance in any file; the rules that remove them are tested by name below.
    assert {"Doe", "Jan"} <= short
    assert {"Doe^Peter", "Archibald", "19800102", "AKH - WIEN", "1234ABCD"} <= set(found)
    assert len(run.written) >= 70
    for _, output in run.written:
        data = (run.out / output).read_bytes()
        assert not leaks(data, found), output
        ds = read(run.out / output)
        assert not any(element.tag.is_private for element in ds.iterall())
        assert not any(element.tag.group in range(0x6000, 0x6100) for element in ds)
        assert data[:128] == b"\0" * 128


def test_pixel_risk_files_are_quarantined_not_written(
        corpus: Path, run: DicomAnonymization, key: PseudonymKey) -> None:
    reasons = dict(run.quarantined)
    assert set(ULTRASOUND) <= set(reasons)
    assert all("burned-in" in reasons[name] for name in ULTRASOUND)
    for name in ULTRASOUND:
        assert (run.quarantine / name).read_bytes() == (corpus / name).read_bytes()
        new_sop = key.uid(str(read(corpus / name).SOPInstanceUID))
        assert not list(run.out.rglob(f"{new_sop}.dcm"))
    assert run.quarantine == run.out.parent / "out-quarantine"
    assert {i.code for i in run.report()} == {"DICOM_PIXEL_RISK", "DICOM_SKIPPED"}


def test_dicomdir_and_other_files_are_skipped_and_listed(run: DicomAnonymization) -> None:
    skipped = dict(run.skipped)
    assert "DICOMDIR" in skipped["dicomdirtests/DICOMDIR"]
    assert "not a DICOM file" in skipped["dicomdirtests/README.txt"]
    assert run.ok and not run.failed


def test_outputs_read_back_with_pseudonym_keyed_uids_and_same_pixels(
        corpus: Path, run: DicomAnonymization, key: PseudonymKey) -> None:
    outputs = dict(run.written)
    for name in ("CT_small.dcm", "MR_small.dcm", "siemens-0.dcm", "examples_overlay.dcm",
                 "dicomdirtests/98892003/MR2/4950"):
        before, after = read(corpus / name), read(run.out / outputs[name])
        subject = str(before.PatientID)
        pseudonym = key.pseudonym(subject)
        assert after.PixelData == before.PixelData
        assert after.PatientID == pseudonym and str(after.PatientName) == pseudonym
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            assert after[keyword].value == key.uid(before[keyword].value)
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
        assert after.SOPClassUID == before.SOPClassUID
        shifted = before.StudyDate and (
            datetime.datetime.strptime(before.StudyDate, "%Y%m%d")
            + key.date_offset(subject)).strftime("%Y%m%d")
        assert after.StudyDate == shifted
        assert not after.get("PatientBirthDate") and after.PatientIdentityRemoved == "YES"
        assert outputs[name].split("/") == [pseudonym, after.StudyInstanceUID,
                                            after.SeriesInstanceUID,
                                            f"{after.SOPInstanceUID}.dcm"]
    ecg = read(run.out / outputs["waveform_ecg.dcm"])
    assert ecg.WaveformSequence[0].WaveformData == \
        read(corpus / "waveform_ecg.dcm").WaveformSequence[0].WaveformData


def test_nested_identifiers_go_and_nested_uids_follow_the_key(
        corpus: Path, run: DicomAnonymization, key: PseudonymKey) -> None:
    outputs = dict(run.written)
    before = read(corpus / "siemens-0.dcm")
    after = read(run.out / outputs["siemens-0.dcm"])
    old = before.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    assert after.ReferencedImageSequence[0].ReferencedSOPInstanceUID == key.uid(old)
    ct = read(run.out / outputs["CT_small.dcm"])
    assert "OtherPatientIDsSequence" in read(corpus / "CT_small.dcm")
    assert "OtherPatientIDsSequence" not in ct and "InstitutionName" not in ct
    # files of one source series land in one folder, whatever folders they came from
    by_series: dict[str, set[str]] = {}
    for source, output in outputs.items():
        by_series.setdefault(str(read(corpus / source).SeriesInstanceUID), set()).add(
            output.rsplit("/", 1)[0])
    assert all(len(folders) == 1 for folders in by_series.values())
    assert len({f for folders in by_series.values() for f in folders}) == len(by_series)
    names = "/".join(outputs.values())
    assert not re.search(r"dicomdirtests|TINY_ALPHA|CT2N|MR700|siemens|CT_small", names)


def test_same_key_same_bytes_on_a_rerun(corpus: Path, run: DicomAnonymization,
                                      key: PseudonymKey, tmp_path: Path) -> None:
    again = anonymize_dicom(corpus, tmp_path / "again", key=key, jobs=1)
    assert again.written == run.written
    for _, output in again.written:
        assert (tmp_path / "again" / output).read_bytes() == (run.out / output).read_bytes()
    table = mapping_path(key.path).read_text(encoding="utf-8")
    assert "98890234\t" + key.pseudonym("98890234") in table


def test_fast_engine_gives_the_same_datasets_as_deid(corpus: Path, key: PseudonymKey) -> None:
    """ntdb's one-pass application equals deid's DicomParser, file by file."""
    for recipe_path in (PROJECT_RECIPE, DEID_DEFAULT):
        fast = load_recipe(recipe_path)
        slow = _Recipe(fast.path, fast.recipe)
        slow.slow = True
        assert not fast.slow
        for path in sources(corpus):
            if path.read_bytes()[128:132] != b"DICM" or "DICOMDIR" in path.name:
                continue
            ours, theirs = read(path), read(path)
            subject = str(ours.PatientID)
            lookup = {"ntdb_pseudonym": key.pseudonym(subject), "ntdb_uid": _uid_hook(key),
                      "ntdb_date_shift": key.date_offset(subject).days}
            with warnings.catch_warnings(), _quiet_deid():
                warnings.simplefilter("ignore")
                fast.apply(ours, dict(lookup))
                slow.apply(theirs, dict(lookup))
            assert ours == theirs, (recipe_path.name, path.name)


def bad_input(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(TESTS / name, src / name)
    data = (TESTS / "CT_small.dcm").read_bytes()
    (src / "truncated.dcm").write_bytes(data[: len(data) // 2])
    (src / "garbage.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00" * 300)
    return src


def test_corrupt_files_fail_by_name_and_the_others_are_written(tmp_path: Path) -> None:
    src = bad_input(tmp_path)
    make_key(tmp_path)
    result = CliRunner().invoke(command, [str(src), str(tmp_path / "out"), "--key-file",
                                          str(tmp_path / "keys" / "test.key"), "--jobs", "1"])
    assert result.exit_code == 1, result.output
    assert "wrote 2 files" in result.output
    assert re.search(r"truncated\.dcm: is truncated: element \(7FE0,0010\)", result.output)
    assert re.search(r"garbage\.dcm: .*(corrupt|lacks)", result.output)
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 2
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_missing_key_without_new_key_is_a_clear_error(tmp_path: Path) -> None:
    src = bad_input(tmp_path)
    missing = tmp_path / "keys" / "none.key"
    result = CliRunner().invoke(command, [str(src), str(tmp_path / "out"),
                                          "--key-file", str(missing)])
    assert result.exit_code == 2
    assert f"key file {missing} does not exist; pass --new-key" in result.output
    assert not (tmp_path / "out").exists()


def test_bad_places_are_clear_errors(tmp_path: Path) -> None:
    src = bad_input(tmp_path)
    key = make_key(tmp_path)
    with pytest.raises(InputError, match="does not exist or is not a folder"):
        anonymize_dicom(tmp_path / "nope", tmp_path / "out", key=key)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InputError, match="is not empty; .*--overwrite"):
        anonymize_dicom(src, tmp_path / "full", key=key)
    with pytest.raises(InputError, match="quarantine folder .* is inside"):
        anonymize_dicom(src, tmp_path / "out", key=key, quarantine=tmp_path / "out" / "q")
    with pytest.raises(InputError, match="overlap"):
        anonymize_dicom(src, src / "out", key=key)
    bad = tmp_path / "bad.deid"
    bad.write_text("FORMAT dicom\n%header\nREMVOE PatientName\n", encoding="utf-8")
    with pytest.raises(InputError, match="REMVOE PatientName not recognized"):
        anonymize_dicom(src, tmp_path / "out", key=key, recipe=bad)
    result = anonymize_dicom(src, tmp_path / "full", key=key, overwrite=True, jobs=1)
    assert len(result.written) == 2


def test_dry_run_lists_everything_and_writes_nothing(corpus: Path, tmp_path: Path) -> None:
    make_key(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(command, [str(corpus), str(out), "--dry-run", "--json",
                                          "--jobs", "1", "--key-file",
                                          str(tmp_path / "keys" / "test.key")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["dry_run"] and len(summary["written"]) >= 70
    assert {q["path"] for q in summary["quarantined"]} >= set(ULTRASOUND)
    assert not out.exists() and not (tmp_path / "out-quarantine").exists()
    assert not mapping_path(tmp_path / "keys" / "test.key").exists()


def test_custom_recipes_stricter_or_unsafe(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ds = read(TESTS / "MR_small.dcm")
    ds.PatientAddress = "221B Baker Street"
    ds.save_as(src / "mr.dcm")
    key = make_key(tmp_path)
    stricter = tmp_path / "stricter.deid"
    stricter.write_text(PROJECT_RECIPE.read_text() + "REMOVE SeriesDescription\n"
                        "ADD 00091010 not allowed\n", encoding="utf-8")
    result = anonymize_dicom(src, tmp_path / "a", key=key, recipe=stricter, jobs=1)
    written = read(tmp_path / "a" / result.written[0][1])
    assert "SeriesDescription" not in written and "PatientAddress" not in written
    assert not any(element.tag.is_private for element in written)
    unsafe = tmp_path / "unsafe.deid"
    unsafe.write_text("FORMAT dicom\n%header\nREPLACE PatientID var:ntdb_pseudonym\n"
                      "REPLACE PatientName var:ntdb_pseudonym\n"
                      "REPLACE select:VR:UI func:ntdb_uid\n", encoding="utf-8")
    result = anonymize_dicom(src, tmp_path / "b", key=key, recipe=unsafe, jobs=1)
    # the phi-scan check on the result (dates, address) refuses the file before it is written
    [(failed, message)] = result.failed
    assert failed == "mr.dcm" and "add a rule that removes it to the recipe" in message
    lax = tmp_path / "lax.deid"
    lax.write_text("FORMAT dicom\n%header\nREMOVE PatientAddress\n", encoding="utf-8")
    result = anonymize_dicom(src, tmp_path / "c", key=key, recipe=lax, jobs=1)
    assert "REPLACE PatientID var:ntdb_pseudonym" in result.failed[0][1]
    assert not list((tmp_path / "c").rglob("*.dcm"))


def test_duplicate_copies_are_written_once_and_progress_counts_every_file(
        tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    shutil.copy(TESTS / "CT_small.dcm", src / "a" / "ct.dcm")
    shutil.copy(TESTS / "CT_small.dcm", src / "ct-copy.dcm")
    (src / "notes.txt").write_text("Doe^Peter", encoding="utf-8")
    events = []
    result = anonymize_dicom(src, tmp_path / "out", key=make_key(tmp_path), jobs=1,
                             progress=events.append)
    assert len(result.written) == 1 and len(result.failed) == 1
    assert "same SOPInstanceUID" in result.failed[0][1]
    assert [e.done for e in events] == [1, 2, 3] and {e.total for e in events} == {3}
    assert {i.code for i in result.report()} == {"DICOM_NOT_ANONYMIZED", "DICOM_SKIPPED"}


def test_the_result_must_pass_phi_scan_and_old_ages_are_capped(tmp_path: Path) -> None:
    from pydicom.uid import generate_uid

    from neurotwin_db.curation.phi import scan_phi

    src = tmp_path / "src"
    src.mkdir()
    ds = read(TESTS / "MR_small.dcm")
    ds.PatientAge = "095Y"
    ds.ProtocolName = "t1 for jane.doe@hospital.org"  # kept by the recipe, so refused
    ds.save_as(src / "leaky.dcm")
    ds.ProtocolName = "t1"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(src / "fine.dcm")
    result = anonymize_dicom(src, tmp_path / "out", key=make_key(tmp_path), jobs=1)
    assert [(source, "e-mail" in why) for source, why in result.failed] == [("leaky.dcm", True)]
    [(source, output)] = result.written
    assert source == "fine.dcm" and read(tmp_path / "out" / output).PatientAge == "089Y"
    assert not scan_phi(tmp_path / "out").failed()
