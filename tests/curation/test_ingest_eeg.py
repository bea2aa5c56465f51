import datetime
import json
import subprocess

import mne
import numpy as np
import pytest
from mne_bids import BIDSPath, read_raw_bids
from neurotwin_db.demo_datasets.eeg_rest import simulate_raw

from neurotwin_db.catalog import add_dataset
from neurotwin_db.curation.ingest import ingest_eeg
from neurotwin_db.errors import InputError

pytestmark = pytest.mark.datalad

FORMATS = {"edf": ".edf", "bdf": ".bdf", "brainvision": ".eeg", "eeglab": ".set",
           "fif": ".eeg"}  # fif is not a BIDS EEG format: it becomes BrainVision


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """The same simulated recording, written by MNE in every input format."""
    folder = tmp_path_factory.mktemp("recordings")
    raw = simulate_raw(seed=7)
    raw.set_meas_date(datetime.datetime(2024, 3, 5, 9, 30, tzinfo=datetime.UTC))
    paths = {}
    for fmt, name in (("edf", "rec.edf"), ("bdf", "rec.bdf"), ("brainvision", "rec.vhdr"),
                      ("eeglab", "rec.set")):
        mne.export.export_raw(folder / name, raw, fmt=fmt, verbose="error")
        paths[fmt] = folder / name
    raw.save(folder / "rec_raw.fif", verbose="error")
    paths["fif"] = folder / "rec_raw.fif"
    return raw, paths


@pytest.fixture
def eeg_ds(db):
    add_dataset(db, "eeg", modality="eeg")
    return db.root / "eeg"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_round_trip_every_input_format(recordings, eeg_ds, fmt):
    raw, paths = recordings
    before = paths[fmt].read_bytes()
    _, result = ingest_eeg(paths[fmt], eeg_ds, subject="01", task="rest",
                           montage="standard_1020", line_freq=50)
    bids = BIDSPath(subject="01", task="rest", datatype="eeg", root=eeg_ds)
    back = read_raw_bids(bids, verbose="error")
    assert back.filenames[0].name.endswith(FORMATS[fmt]) or fmt in ("fif", "brainvision")
    assert back.ch_names == raw.ch_names and back.info["sfreq"] == raw.info["sfreq"]
    assert np.allclose(back.get_data(), raw.get_data(), atol=1e-8)  # within format precision
    # MNE reads BrainVision markers back as "Comment/<label>"
    labels = [d.removeprefix("Comment/") for d in back.annotations.description]
    assert labels == ["eyes_closed", "eyes_open"]
    sidecar = json.loads((eeg_ds / "sub-01/eeg/sub-01_task-rest_eeg.json").read_text())
    for key in ("TaskName", "EEGReference", "SamplingFrequency", "PowerLineFrequency",
                "SoftwareFilters"):
        assert key in sidecar
    assert sidecar["PowerLineFrequency"] == 50
    assert (eeg_ds / "sub-01/eeg/sub-01_space-CapTrak_electrodes.tsv").is_file()
    events = (eeg_ds / "sub-01/eeg/sub-01_task-rest_events.tsv").read_text().splitlines()
    assert events[0].startswith("onset\tduration") and len(events) == 3
    assert "sub-01/sub-01_scans.tsv" in result.written  # mne-bids' own scans.tsv is merged
    scans = (eeg_ds / "sub-01/sub-01_scans.tsv").read_text()
    expected = "n/a" if fmt == "eeglab" else "2024-03-05T09:30:00"  # EEGLAB keeps no date
    assert scans.count(expected) == 1
    assert paths[fmt].read_bytes() == before


def test_second_run_is_a_no_op(recordings, eeg_ds):
    _, paths = recordings
    ingest_eeg(paths["edf"], eeg_ds, subject="02", task="rest", line_freq=50)
    head = subprocess.check_output(["git", "-C", str(eeg_ds), "rev-parse", "HEAD"])
    _, again = ingest_eeg(paths["edf"], eeg_ds, subject="02", task="rest", line_freq=50)
    assert again.written == [] and not again.saved
    assert subprocess.check_output(["git", "-C", str(eeg_ds), "rev-parse", "HEAD"]) == head


def test_unreadable_recording_names_the_file(tmp_path, eeg_ds):
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"0       this is not an EDF header")
    with pytest.raises(InputError, match="MNE cannot read .*broken.edf"):
        ingest_eeg(bad, eeg_ds, subject="01", task="rest", line_freq=50)
    assert not (eeg_ds / "sub-01").exists()


def test_missing_line_frequency_and_bad_montage(recordings, eeg_ds):
    _, paths = recordings
    with pytest.raises(InputError, match="--line-freq"):
        ingest_eeg(paths["edf"], eeg_ds, subject="01", task="rest")
    with pytest.raises(InputError, match="montage 'nope'"):
        ingest_eeg(paths["edf"], eeg_ds, subject="01", task="rest", line_freq=50,
                   montage="nope")
    assert not (eeg_ds / "sub-01").exists()


def test_unrelated_changes_are_not_committed_with_the_ingest(recordings, eeg_ds):
    _, paths = recordings
    (eeg_ds / "stray.txt").write_text("mine")
    ingest_eeg(paths["edf"], eeg_ds, subject="05", task="rest", line_freq=50)
    committed = subprocess.check_output(["git", "-C", str(eeg_ds), "show", "--name-only",
                                         "--format=", "HEAD"], text=True).split()
    assert "stray.txt" not in committed and "participants.tsv" in committed
    status = subprocess.check_output(["git", "-C", str(eeg_ds), "status", "--porcelain"],
                                     text=True)
    assert status.strip() == "?? stray.txt"
    message = subprocess.check_output(["git", "-C", str(eeg_ds), "log", "-1", "--format=%B"],
                                      text=True)
    assert str(paths["edf"].parent) not in message  # a fingerprint, not the source path


def test_truncated_edf_is_refused(recordings, eeg_ds, tmp_path):
    _, paths = recordings
    cut = tmp_path / "cut.edf"
    data = paths["edf"].read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.8)])
    with pytest.raises(InputError, match="looks truncated"):
        ingest_eeg(cut, eeg_ds, subject="06", task="rest", line_freq=50)
    assert not (eeg_ds / "sub-06").exists()


def test_ingest_respects_the_registered_modality(recordings, db):
    _, paths = recordings
    add_dataset(db, "mri", modality="mri")
    with pytest.raises(InputError, match="registered as a mri dataset"):
        ingest_eeg(paths["edf"], db.root / "mri", subject="01", task="rest", line_freq=50)


def test_template_positions_are_labelled_as_such(recordings, eeg_ds):
    _, paths = recordings
    ingest_eeg(paths["edf"], eeg_ds, subject="07", task="rest", line_freq=50,
               montage="standard_1020")
    coords = json.loads(next((eeg_ds / "sub-07/eeg").glob("*_coordsystem.json")).read_text())
    assert "not digitized" in coords["EEGCoordinateSystemDescription"]
