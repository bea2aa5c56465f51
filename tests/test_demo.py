"""The demo database: every dataset passes the official BIDS validator with zero errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

VALIDATOR = Path(sys.executable).parent / "bids-validator-deno"


@pytest.mark.parametrize("dataset", ["mri-template", "mri-dicom", "eeg-rest", "tms-eeg",
                                     "tacs-home", "mouse-ephys"])
def test_demo_datasets_pass_the_official_validator(demo_db, dataset):
    proc = subprocess.run([str(VALIDATOR), "--json", str(demo_db / dataset)],
                          capture_output=True, text=True)
    issues = json.loads(proc.stdout)["issues"]["issues"]
    errors = [i for i in issues if i["severity"] == "error"]
    assert errors == [], errors[:3]


def test_demo_eeg_headers_carry_identifiers_like_real_recordings(demo_db):
    """The raw EEG dataset is private: its EDF headers hold the (made-up) patient name."""
    import mne

    edf = next((demo_db / "eeg-rest" / "sub-01" / "eeg").glob("*.edf"))
    raw = mne.io.read_raw_edf(edf, verbose="error")
    assert raw.info["subject_info"]["last_name"] == "Quill"
