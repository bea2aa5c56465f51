"""EEG header anonymization on one recording written by MNE in every supported format.

What each writer keeps of the planted identity (format limits, found by reading the files):

- EDF/BDF (edfio via mne.export): patient code (his_id), sex, birth date, name and
  ``hand=`` in the EDF+ patient field; start date/time. The experimenter is not written,
  so the EDF fixture patches admin code, technician and equipment into the recording
  field as a clinical EDF would hold them. The BDF file is left as MNE wrote it.
- BrainVision (pybv): only the measurement date (vmrk New Segment). The fixture adds a
  ``[Comment]`` section and a ``;`` note with the identity, as BrainVision Recorder does.
- FIF (raw.save): everything (names, birthday, his_id, sex, hand, experimenter,
  description, device_info, helium_info, meas_id, proj_name, utc_offset).
- EEGLAB (eeglabio): no subject fields and no date; only the set name, the events and
  the MAT header's creation time. A second EEGLAB file (``EEG`` struct + ``.fdt``, as
  EEGLAB writes it) carries subject, comments, history, paths and ``etc.T0``.
"""

from __future__ import annotations

import datetime
import hashlib
from datetime import timedelta
from pathlib import Path

import mne
import numpy as np
import pytest
from scipy.io import loadmat, savemat

from neurotwin_db.curation.anonymize.eeg import (
    KINDS,
    REMOVED_KINDS,
    _check_copy,
    eeg_header_fields,
    is_event_field,
    rewrite_eeg_header,
)
from neurotwin_db.errors import InputError

MEAS_DATE = datetime.datetime(2024, 5, 6, 10, 11, 12, tzinfo=datetime.UTC)
SHIFT = timedelta(days=-3653)
SUBJECT = "sub-p1a2b3c4d5"
PLANTED = ["Testperson", "TESTPERSON", "testperson", "Johanna", "JOHANNA", "1948",
           "15-MAR-1948", "MRN0012345", "Dr Smith", "Dr_Smith", "SN-998877", "Clinic A"]
MAIN = {"edf": "rec.edf", "bdf": "rec.bdf", "brainvision": "rec.vhdr", "fif": "rec_raw.fif",
        "eeglab": "rec.set", "eeglab_fdt": "rec.set"}
# (kind, value) each format must report for the planted identity.
EXPECTED = {
    "edf": [("id", "MRN0012345"), ("sex", "F"), ("birthdate", "1948-03-15"),
            ("name", "Johanna Testperson"), ("text", "hand=1"), ("person", "Dr Smith"),
            ("device", "SN-998877"), ("id", "ADM-77"), ("date", "2024-05-06T10:11:12"),
            ("date", "2024-05-06")],
    "bdf": [("id", "MRN0012345"), ("sex", "F"), ("birthdate", "1948-03-15"),
            ("name", "Johanna Testperson"), ("date", "2024-05-06T10:11:12")],
    "brainvision": [("date", "2024-05-06T10:11:12"),
                    ("text", "Patient: Johanna Testperson, born 15-MAR-1948"),
                    ("text", "Amplifier serial: SN-998877"),
                    ("text", "; recorded for MRN0012345")],
    "fif": [("name", "Johanna"), ("name", "Testperson"), ("birthdate", "1948-03-15"),
            ("id", "MRN0012345"), ("sex", "female"), ("person", "Dr Smith"),
            ("device", "SN-998877"), ("device", "Clinic A"), ("text", "Johanna Testperson rest"),
            ("date", "2024-05-06T10:11:12+00:00"), ("date", "2024-05-06T10:11:12.000005+00:00")],
    "eeglab": [("text", "rec")],
    "eeglab_fdt": [("id", "MRN0012345"), ("text", "Johanna Testperson\nborn 15-MAR-1948"),
                   ("text", "pop_loadset('/data/Testperson/rec.set')"),
                   ("text", "/data/Testperson"), ("text", "recorded by Dr Smith"),
                   ("date", "2024-05-06T10:11:12")],
}


def _raw() -> mne.io.RawArray:
    info = mne.create_info([f"EEG{i}" for i in range(8)], 256.0, "eeg")
    data = np.random.default_rng(0).normal(0, 20e-6, (8, 512))
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_meas_date(MEAS_DATE)
    raw.info["subject_info"] = {"first_name": "Johanna", "last_name": "Testperson",
                                "birthday": datetime.date(1948, 3, 15), "his_id": "MRN0012345",
                                "sex": 2, "hand": 1}
    raw.info["experimenter"] = "Dr Smith"
    raw.set_annotations(mne.Annotations([0.5], [0.1], ["eyes closed"]))
    return raw


def _write_edf(raw: mne.io.RawArray, path: Path, *, clinical: bool) -> None:
    mne.export.export_raw(path, raw, fmt=path.suffix[1:], verbose="error")
    if clinical:  # what a clinical EDF holds; MNE's export leaves these as X
        data = bytearray(path.read_bytes())
        data[88:168] = b"Startdate 06-MAY-2024 ADM-77 Dr_Smith SN-998877".ljust(80)
        path.write_bytes(bytes(data))


def _write_brainvision(raw: mne.io.RawArray, path: Path) -> None:
    mne.export.export_raw(path, raw, fmt="brainvision", verbose="error")
    text = path.read_text(encoding="utf-8").replace("[Comment]\n", (
        "[Comment]\nPatient: Johanna Testperson, born 15-MAR-1948\n"
        "Amplifier serial: SN-998877\n"))
    note = "[Common Infos]\n; recorded for MRN0012345\n"
    path.write_text(text.replace("[Common Infos]\n", note), encoding="utf-8")


def _write_fif(raw: mne.io.RawArray, path: Path) -> None:
    raw = raw.copy()
    with raw.info._unlock():
        raw.info["description"] = "Johanna Testperson rest"
        raw.info["device_info"] = {"type": "EEG", "model": "NT-64", "serial": "SN-998877",
                                   "site": "Clinic A"}
        raw.info["helium_info"] = {"he_level_raw": 1.0, "helium_level": 1.0,
                                   "orig_file_guid": "guid-42",
                                   "meas_date": MEAS_DATE - timedelta(hours=1)}
        raw.info["meas_id"] = {"version": 65540, "machid": np.array([12345, 678], ">i4"),
                               "secs": int(MEAS_DATE.timestamp()), "usecs": 5}
    raw.save(path, verbose="error")


def _write_eeglab_fdt(raw: mne.io.RawArray, path: Path) -> None:
    """An ``EEG`` struct with the samples in a .fdt file, as EEGLAB saves it."""
    mne.export.export_raw(path, raw, fmt="eeglab", verbose="error")
    fields = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    np.asarray(fields["data"], "<f4").T.tofile(path.with_suffix(".fdt"))
    fields.update(data="rec.fdt", datfile="rec.fdt", subject="MRN0012345",
                  comments=np.array(["Johanna Testperson", "born 15-MAR-1948 "]),
                  history="pop_loadset('/data/Testperson/rec.set')", filename="rec.set",
                  filepath="/data/Testperson",
                  etc={"T0": np.array([[2024.0, 5, 6, 10, 11, 12]]),
                       "note": "recorded by Dr Smith"})
    savemat(path, {"EEG": fields}, long_field_names=True, oned_as="row")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One planted recording per format, each in its own folder."""
    raw, paths = _raw(), {}
    for fmt, name in MAIN.items():
        path = tmp_path_factory.mktemp(fmt) / name
        if fmt in ("edf", "bdf"):
            _write_edf(raw, path, clinical=fmt == "edf")
        elif fmt == "brainvision":
            _write_brainvision(raw, path)
        elif fmt == "fif":
            _write_fif(raw, path)
        elif fmt == "eeglab":
            mne.export.export_raw(path, raw, fmt="eeglab", verbose="error")
        else:
            _write_eeglab_fdt(raw, path)
        paths[fmt] = path
    return paths


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _read(path: Path) -> mne.io.BaseRaw:
    return mne.io.read_raw(path, preload=True, verbose="error")


@pytest.mark.parametrize("fmt", list(MAIN))
def test_fields_report_planted_values(recordings: dict[str, Path], fmt: str) -> None:
    fields = eeg_header_fields(recordings[fmt])
    assert set(EXPECTED[fmt]) <= {(f.kind, f.value) for f in fields}
    assert all(f.value.strip() and f.value != "X" and f.kind in KINDS for f in fields)
    assert [f.value for f in fields if is_event_field(f)] == ["eyes closed"]


@pytest.mark.parametrize("fmt", list(MAIN))
def test_rewrite_removes_identity_and_shifts_dates(recordings: dict[str, Path], fmt: str,
                                                   tmp_path: Path) -> None:
    src = recordings[fmt]
    before = _hashes(src.parent)
    dst = tmp_path / "out" / f"{SUBJECT}_task-rest_eeg{src.suffix}"
    changes = rewrite_eeg_header(src, dst, subject=SUBJECT, shift=SHIFT)

    assert _hashes(src.parent) == before  # the input is never modified
    assert changes and not any(p.lower() in c.lower() for c in changes for p in PLANTED)
    outputs = sorted(dst.parent.iterdir())  # no staging leftovers, companions renamed
    assert all(p.name.startswith(f"{SUBJECT}_task-rest_eeg.") for p in outputs)
    for path in outputs:
        data = path.read_bytes()
        for planted in PLANTED:
            for encoded in (planted.encode(), planted.encode("utf-16-le")):
                assert encoded not in data, f"{planted!r} left in {path.name}"

    after = eeg_header_fields(dst)
    assert not [f for f in after if f.kind in REMOVED_KINDS and not is_event_field(f)]
    old_dates = {f.location: f.value for f in eeg_header_fields(src) if f.kind == "date"}
    for f in (f for f in after if f.kind == "date"):
        old = datetime.datetime.fromisoformat(old_dates[f.location])
        assert datetime.datetime.fromisoformat(f.value) == old + SHIFT
    assert any(f.kind == "date" for f in after) == (fmt != "eeglab")  # eeglabio: no date

    raw_src, raw_dst = _read(src), _read(dst)
    np.testing.assert_array_equal(raw_dst.get_data(), raw_src.get_data())
    assert list(raw_dst.annotations.description) == list(raw_src.annotations.description)
    if raw_src.info["meas_date"] is None:
        assert raw_dst.info["meas_date"] is None
    else:
        assert raw_dst.info["meas_date"] == raw_src.info["meas_date"] + SHIFT


@pytest.mark.parametrize("fmt", ["edf", "bdf"])
def test_edf_rewrite_keeps_data_records_byte_identical(recordings: dict[str, Path], fmt: str,
                                                       tmp_path: Path) -> None:
    src = recordings[fmt]
    dst = tmp_path / f"{SUBJECT}_eeg{src.suffix}"
    rewrite_eeg_header(src, dst, subject=SUBJECT, shift=SHIFT)
    old, new = src.read_bytes(), dst.read_bytes()
    assert new[256:] == old[256:]
    assert new[8:88].decode().rstrip() == f"{SUBJECT} X X X"
    assert new[88:168].decode().rstrip() == "Startdate 06-MAY-2014 X X X"
    assert new[168:184] == b"06.05.1410.11.12"


def test_brainvision_companions_follow_the_new_name(recordings: dict[str, Path],
                                                    tmp_path: Path) -> None:
    dst = tmp_path / f"{SUBJECT}_task-rest_eeg.vhdr"
    rewrite_eeg_header(recordings["brainvision"], dst, subject=SUBJECT, shift=SHIFT)
    vhdr = dst.read_text(encoding="utf-8")
    assert f"DataFile={SUBJECT}_task-rest_eeg.eeg" in vhdr
    assert f"MarkerFile={SUBJECT}_task-rest_eeg.vmrk" in vhdr
    assert "20140506101112000000" in dst.with_suffix(".vmrk").read_text(encoding="utf-8")
    old = recordings["brainvision"].with_suffix(".eeg").read_bytes()
    assert dst.with_suffix(".eeg").read_bytes() == old


def test_no_shift_keeps_dates_and_empty_subject(recordings: dict[str, Path],
                                                tmp_path: Path) -> None:
    dst = tmp_path / "anon.edf"
    rewrite_eeg_header(recordings["edf"], dst, subject="", shift=None)
    assert dst.read_bytes()[8:184].decode().split() == [
        "X", "X", "X", "X", "Startdate", "06-MAY-2024", "X", "X", "X", "06.05.2410.11.12"]
    dates = {f.value for f in eeg_header_fields(dst) if f.kind == "date"}
    assert dates == {"2024-05-06", "2024-05-06T10:11:12"}


def test_edf_shift_before_1985_is_refused(recordings: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "anon.edf"
    with pytest.raises(InputError, match="1985"):
        rewrite_eeg_header(recordings["edf"], dst, subject=SUBJECT, shift=timedelta(days=-15000))
    assert list(tmp_path.iterdir()) == []


def test_truncated_edf_names_the_file(recordings: dict[str, Path], tmp_path: Path) -> None:
    cut = tmp_path / "cut.edf"
    cut.write_bytes(recordings["edf"].read_bytes()[:-100])
    with pytest.raises(InputError, match="cut.edf.*truncated"):
        eeg_header_fields(cut)
    with pytest.raises(InputError, match="cut.edf"):
        rewrite_eeg_header(cut, tmp_path / "out.edf", subject=SUBJECT, shift=SHIFT)
    short = tmp_path / "short.bdf"
    short.write_bytes(recordings["bdf"].read_bytes()[:200])
    with pytest.raises(InputError, match="short.bdf"):
        eeg_header_fields(short)


@pytest.mark.parametrize(("fmt", "name"), [("fif", "cut_raw.fif"), ("eeglab", "cut.set")])
def test_truncated_fif_and_set_name_the_file(recordings: dict[str, Path], tmp_path: Path,
                                             fmt: str, name: str) -> None:
    cut = tmp_path / name
    data = recordings[fmt].read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError, match=name):
        eeg_header_fields(cut)


def test_matlab_73_set_is_refused_clearly(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "rec.set"
    with h5py.File(path, "w", userblock_size=512) as handle:
        handle["subject"] = np.frombuffer(b"M\0R\0N\0", "<u2")
    with path.open("r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116))
    with pytest.raises(InputError, match="v7.3"):
        eeg_header_fields(path)


def test_bad_arguments(recordings: dict[str, Path], tmp_path: Path) -> None:
    src = recordings["edf"]
    with pytest.raises(InputError, match=r"\.edf.*\.vhdr"):
        eeg_header_fields(tmp_path / "rec.cnt")
    with pytest.raises(InputError, match="extension"):
        rewrite_eeg_header(src, tmp_path / "x.bdf", subject=SUBJECT, shift=SHIFT)
    with pytest.raises(InputError, match="subject"):
        rewrite_eeg_header(src, tmp_path / "x.edf", subject="Johanna", shift=SHIFT)
    with pytest.raises(InputError, match="whole number of days"):
        rewrite_eeg_header(src, tmp_path / "x.edf", subject=SUBJECT, shift=timedelta(hours=-5))
    before = _hashes(src.parent)
    with pytest.raises(InputError, match="overwrite the input"):
        rewrite_eeg_header(src, src, subject=SUBJECT, shift=SHIFT)
    assert _hashes(src.parent) == before


def test_read_back_check_refuses_a_copy_that_kept_the_identity(recordings: dict[str, Path],
                                                               tmp_path: Path) -> None:
    src = recordings["edf"]
    copy = tmp_path / "copy.edf"
    copy.write_bytes(src.read_bytes())
    with pytest.raises(InputError, match="read-back check.*name still set.*not the original"):
        _check_copy(src, copy, eeg_header_fields(src), SUBJECT, SHIFT)
