"""TMS-EEG and tACS demo datasets, through `ntdb ingest tms-eeg` and `ntdb ingest tacs`.

Why: the stimulation metadata paths end to end. The EEG is simulated with MNE (no
package ships real TMS-EEG) and written as EDF with a made-up name in the header; the
pulse log (CSV) and the session logs (YAML) are written here as a neuronavigation system
and a home tACS device would export them.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

from . import eeg_rest

SESSIONS = {  # session: (condition, with EEG during stimulation)
    "01": ("active", True),
    "02": ("sham", False),
}
SESSION_LOG = """device: Starstim 8 (home tACS)
setting: {setting}
electrodes:
  - {{position: F3, size: 50x50}}
  - {{position: Fp2, size: 50x50}}
current_mA: 2.0
frequency_Hz: 40
waveform: sine
ramp_up_s: 30
ramp_down_s: 30
duration_s: 1200
condition: {condition}
impedance_kOhm: [4.8, 5.3]
adherence: 1.0
"""


def _edf(folder: Path, name: str, seed: int) -> Path:
    import mne

    raw = eeg_rest.simulate_raw(seed=seed)
    raw.set_meas_date(datetime.datetime(2025, 6, 2, 10, 0, tzinfo=datetime.UTC))
    raw.info["subject_info"] = {"first_name": "Dana", "last_name": "Hollis",
                                "birthday": datetime.date(1952, 7, 8), "sex": 2}
    path = folder / f"{name}.edf"
    mne.export.export_raw(path, raw, fmt="edf", verbose="error")
    return path


def build_tms(root: Path) -> None:
    """One TMS-EEG session: 15 single pulses over left M1 (C3), 3 s apart."""
    from neurotwin_db.curation.ingest import ingest_tms_eeg

    with tempfile.TemporaryDirectory(prefix="ntdb-demo-tms-") as tmp:
        folder = Path(tmp)
        log = folder / "pulses.csv"
        log.write_text("time,intensity,coil,target,pulse_shape\n" + "".join(
            f"{5 + 3 * i},{62},MagVenture C-B60,C3,biphasic\n" for i in range(15)))
        ingest_tms_eeg(_edf(folder, "tep", seed=11), root, subject="01", task="tep",
                       stim_log=log, montage="standard_1020", line_freq=50)


def build_tacs(root: Path, key: Path) -> None:
    """Two 40 Hz tACS sessions of one subject, blinded; the first with EEG."""
    from neurotwin_db.curation.ingest import ingest_tacs

    with tempfile.TemporaryDirectory(prefix="ntdb-demo-tacs-") as tmp:
        folder = Path(tmp)
        for session, (condition, with_eeg) in SESSIONS.items():
            log = folder / f"session-{session}.yaml"
            log.write_text(SESSION_LOG.format(condition=condition,
                                              setting="lab" if with_eeg else "home"))
            eeg = _edf(folder, f"tacs-{session}", seed=20 + int(session)) if with_eeg else None
            ingest_tacs(log, root, subject="01", session=session, unblinding_key=key,
                        new_key=True, eeg=eeg, montage="standard_1020", line_freq=50)
