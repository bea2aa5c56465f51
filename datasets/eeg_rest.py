"""EEG demo dataset: resting-state recordings simulated with MNE, written with mne-bids.

Why: no Python package ships real EEG recordings, so these are generated (and say so in
their sidecars): 19 channels of the standard 10-20 montage, 250 Hz, 60 s, with a
posterior 10 Hz alpha rhythm over 1/f background, eyes-closed/eyes-open annotations,
written as BrainVision files by mne-bids.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from neurotwin_db._io import write_json, write_text, write_tsv
from neurotwin_db.curation import participants_columns

NOTE = ("\nThe recordings are simulated with MNE-Python (1/f background plus a posterior\n"
        "alpha rhythm) and written as BrainVision files by mne-bids: no package ships real\n"
        "EEG, and no person was recorded.\n")

CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
            "P7", "P3", "Pz", "P4", "P8", "O1", "O2"]
SUBJECTS = {"01": ("71", "F", "AD"), "02": ("68", "M", "MCI"), "03": ("70", "F", "control")}
SFREQ = 250.0
DURATION = 60.0


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


def build(root: Path) -> list[Path]:
    """Write the simulated recordings of every subject into the BIDS dataset ``root``."""
    from mne_bids import BIDSPath, write_raw_bids

    written = []
    for index, subject in enumerate(SUBJECTS):
        raw = simulate_raw(seed=index, alpha_hz=9.0 + index)
        path = BIDSPath(subject=subject, task="rest", datatype="eeg", root=root)
        with warnings.catch_warnings():
            # mne-bids keeps our newer BIDSVersion and says so; that is what we want.
            warnings.filterwarnings("ignore", "Conflicting BIDSVersion", UserWarning)
            warnings.filterwarnings("ignore", "TSV file is empty", RuntimeWarning)
            write_raw_bids(raw, path, format="BrainVision", allow_preload=True,
                           overwrite=True, verbose=False)
        written.append(path.fpath)
    if (root / "README").exists() and (root / "README.md").exists():
        (root / "README").unlink()  # mne-bids adds a README when it sees none named so
    rows = [[f"sub-{s}", "homo sapiens", age, sex, group]
            for s, (age, sex, group) in SUBJECTS.items()]
    columns = participants_columns("homo sapiens")
    header = ["participant_id", "species", "age", "sex", "group"]
    written.append(write_tsv(root / "participants.tsv", header, rows, overwrite=True))
    written.append(write_json(root / "participants.json", {k: columns[k] for k in header},
                              overwrite=True))
    readme = root / "README.md"
    written.append(write_text(readme, readme.read_text(encoding="utf-8") + NOTE,
                              overwrite=True))
    return written
