"""EEG demo dataset: resting recordings simulated with MNE, ingested with `ntdb ingest eeg`.

Why: no Python package ships real EEG recordings, so these are generated (and the
dataset README says so): 19 channels of the 10-20 montage, 250 Hz, 60 s, a posterior
alpha rhythm over 1/f background, eyes-closed/eyes-open annotations. Like real
recordings, they are written as EDF files whose headers carry a (made-up) patient name
and birth date, then ingested: the raw dataset is private until anonymized.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

import numpy as np

from neurotwin_db import datalad as dl
from neurotwin_db._io import write_text
from neurotwin_db.curation.ingest._tables import merge_participant

CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
            "P7", "P3", "Pz", "P4", "P8", "O1", "O2"]
# made-up people: (first, last, birthday, sex code, group)
SUBJECTS = {
    "01": ("Ada", "Quill", datetime.date(1953, 4, 2), 2, "AD"),
    "02": ("Bert", "Morrow", datetime.date(1956, 9, 17), 1, "MCI"),
    "03": ("Cleo", "Vance", datetime.date(1954, 1, 30), 2, "control"),
}
SFREQ = 250.0
DURATION = 60.0
NOTE = ("\nThe recordings are simulated with MNE-Python (1/f background plus a posterior\n"
        "alpha rhythm) and written as EDF; no package ships real EEG, and no person was\n"
        "recorded. Their headers carry made-up names and birth dates, as real ones do.\n")


def montage_name() -> str:
    """The 10-20 template montage (MNE 1.13 renamed standard_1020 to colin27_1020)."""
    import mne

    names = mne.channels.get_builtin_montages()
    return "colin27_1020" if "colin27_1020" in names else "standard_1020"


def simulate_raw(seed: int, *, alpha_hz: float = 10.0):  # noqa: ANN201 (mne.io.RawArray)
    """Simulate one resting recording: 1/f noise plus posterior alpha, in volts."""
    import mne

    rng = np.random.default_rng(seed)
    n = int(SFREQ * DURATION)
    freqs = np.fft.rfftfreq(n, 1 / SFREQ)
    spectrum = rng.normal(size=(len(CHANNELS), len(freqs))) + 1j * rng.normal(
        size=(len(CHANNELS), len(freqs)))
    spectrum[:, 1:] /= np.sqrt(freqs[1:])
    spectrum[:, 0] = 0
    background = np.fft.irfft(spectrum, n)
    background *= 5e-6 / background.std(axis=1, keepdims=True)
    t = np.arange(n) / SFREQ
    weight = np.array([1.0 if ch[0] in "OP" else 0.3 for ch in CHANNELS])[:, None]
    alpha = 10e-6 * weight * np.sin(2 * np.pi * alpha_hz * t + rng.uniform(0, 2 * np.pi))
    info = mne.create_info(CHANNELS, SFREQ, ch_types="eeg")
    raw = mne.io.RawArray(background + alpha, info, verbose=False)
    raw.set_montage(montage_name(), verbose=False)
    raw.info["line_freq"] = 50.0
    raw.set_annotations(mne.Annotations([0.0, 30.0], [30.0, 30.0],
                                        ["eyes_closed", "eyes_open"]))
    return raw


def write_recordings(folder: Path) -> dict[str, Path]:
    """Write one EDF per subject, with name and birth date in the header, as a device does."""
    import mne

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for index, (subject, (first, last, birthday, sex, _)) in enumerate(SUBJECTS.items()):
        raw = simulate_raw(seed=index, alpha_hz=9.0 + index)
        raw.set_meas_date(datetime.datetime(2025, 5, 12 + index, 9, 30, tzinfo=datetime.UTC))
        raw.info["subject_info"] = {"his_id": f"H{index + 1:04d}", "first_name": first,
                                    "last_name": last, "birthday": birthday, "sex": sex}
        paths[subject] = folder / f"{last}_{first}_rest.edf"
        mne.export.export_raw(paths[subject], raw, fmt="edf", verbose="error")
    return paths


def build(root: Path) -> list[Path]:
    """Ingest every subject's EDF into the dataset at ``root`` and record the groups."""
    from neurotwin_db.curation.ingest import ingest_eeg

    with tempfile.TemporaryDirectory(prefix="ntdb-demo-eeg-") as tmp:
        for subject, path in write_recordings(Path(tmp)).items():
            ingest_eeg(path, root, subject=subject, task="rest", montage="standard_1020",
                       line_freq=50)
    table = root / "participants.tsv"
    text = table.read_text(encoding="utf-8")
    for subject, (*_, group) in SUBJECTS.items():
        text = merge_participant(text, {"participant_id": f"sub-{subject}", "group": group},
                                 source=str(table))
    readme = root / "README.md"
    written = [write_text(table, text, overwrite=True),
               write_text(readme, readme.read_text(encoding="utf-8") + NOTE, overwrite=True)]
    dl.save(root, "record study groups and the simulation note",
            record={"action": "demo", "source": "MNE simulation"})
    return written
