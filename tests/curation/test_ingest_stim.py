import json
import os
import subprocess
import sys
from pathlib import Path

import mne
import pytest
from neurotwin_db.demo_datasets.eeg_rest import simulate_raw

from neurotwin_db.catalog import add_dataset
from neurotwin_db.curation.ingest import ingest_tacs, ingest_tms_eeg
from neurotwin_db.errors import InputError
from neurotwin_db.schemas import validate_instance

pytestmark = pytest.mark.datalad

SESSION = """device: Starstim 8
setting: home
electrodes:
  - {position: F3, size: 50x50}
  - {position: Fp2, size: disc:25}
current_mA: 2.0
frequency_Hz: 40
waveform: sine
ramp_up_s: 30
ramp_down_s: 30
duration_s: 1200
condition: sham
impedance_kOhm: [4.2, 5.1]
adherence: 0.95
"""


@pytest.fixture(scope="module")
def edf(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "tep.edf"
    mne.export.export_raw(path, simulate_raw(seed=3), verbose="error")
    return path


@pytest.fixture
def stim_ds(db):
    add_dataset(db, "stim", modality="tms-eeg")
    return db.root / "stim"


@pytest.fixture
def tacs_ds(db):
    add_dataset(db, "tacs", modality="tacs")
    return db.root / "tacs"


def _pulses(tmp_path, rows, header="time,intensity,coil,target,pulse_shape"):
    path = tmp_path / "pulses.csv"
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def _validator_errors(root):
    proc = subprocess.run([str(Path(sys.executable).parent / "bids-validator-deno"), "--json",
                           str(root)], capture_output=True, text=True)
    return [i for i in json.loads(proc.stdout)["issues"]["issues"] if i["severity"] == "error"]


def test_tms_pulses_become_described_events_and_a_valid_sidecar(edf, stim_ds, tmp_path):
    log = _pulses(tmp_path, [f"{2 + 3 * i},{60 + i},C-B60,C3,biphasic" for i in range(5)])
    _, result = ingest_tms_eeg(edf, stim_ds, subject="01", task="tep", stim_log=log,
                               line_freq=50, montage="standard_1020")
    events = (stim_ds / "sub-01/eeg/sub-01_task-tep_events.tsv").read_text().splitlines()
    header = events[0].split("\t")
    pulses = [dict(zip(header, line.split("\t"), strict=True)) for line in events[1:]
              if "tms_pulse" in line]
    assert [float(p["onset"]) for p in pulses] == [2, 5, 8, 11, 14]
    assert [float(p["intensity"]) for p in pulses] == [60, 61, 62, 63, 64]
    described = json.loads((stim_ds / "sub-01/eeg/sub-01_task-tep_events.json").read_text())
    assert set(header) <= set(described) | {"onset", "duration", "sample", "value"}
    sidecar = json.loads((stim_ds / "sub-01/nibs/sub-01_task-tep_nibs.json").read_text())
    validate_instance(sidecar, "nibs_tms", source="test")
    assert sidecar["PulseCount"] == 5 and sidecar["CoilSet"] == [{"CoilID": "C-B60"}]
    assert "**/nibs" in (stim_ds / ".bidsignore").read_text()
    assert _validator_errors(stim_ds) == []
    assert "sub-01/nibs/sub-01_task-tep_nibs.json" in result.written


@pytest.mark.parametrize(("rows", "header", "message"), [
    (["2,60,C-B60,C3"], "time,intensity,target,pulse_shape", r"lacks column\(s\) \['coil'\]"),
    (["-1,60,C-B60,C3,biphasic"], None, "negative"),
    (["2,160,C-B60,C3,biphasic"], None, r"outside \(0, 100\]"),
    (["2,60,C-B60,,biphasic"], None, "give a target"),
    (["999,60,C-B60,C3,biphasic"], None, "after the end of the recording"),
])
def test_bad_tms_logs_name_the_file_and_write_nothing(edf, stim_ds, tmp_path, rows, header,
                                                        message):
    log = _pulses(tmp_path, rows, header) if header else _pulses(tmp_path, rows)
    with pytest.raises(InputError, match=message) as caught:
        ingest_tms_eeg(edf, stim_ds, subject="01", task="tep", stim_log=log, line_freq=50)
    assert "pulses.csv" in str(caught.value)
    assert not (stim_ds / "sub-01").exists()


def test_tacs_session_is_blinded_and_valid(edf, tacs_ds, tmp_path):
    log = tmp_path / "session.yaml"
    log.write_text(SESSION)
    key = tmp_path / "keys" / "unblinding.json"
    _, result = ingest_tacs(log, tacs_ds, subject="01", session="01", unblinding_key=key,
                            new_key=True, eeg=edf, line_freq=50)
    nibs = json.loads((tacs_ds / "sub-01/ses-01/nibs/sub-01_ses-01_task-tacs_nibs.json")
                      .read_text())
    validate_instance(nibs, "nibs_tes", source="test")
    assert nibs["Condition"] == "blinded" and "sham" not in json.dumps(nibs)
    assert nibs["ElectrodeSet"][1] == {"Position": "Fp2", "Shape": "disc", "Size": [25.0],
                                       "SizeUnits": "mm"}
    eeg_json = json.loads((tacs_ds / "sub-01/ses-01/eeg/sub-01_ses-01_task-tacs_eeg.json")
                          .read_text())
    assert eeg_json["ElectricalStimulation"] is True
    assert "40 Hz" in eeg_json["ElectricalStimulationParameters"]
    codes = json.loads(key.read_text())["codes"]
    assert codes[nibs["BlindingCode"]]["condition"] == "sham"
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert _validator_errors(tacs_ds) == []
    _, again = ingest_tacs(log, tacs_ds, subject="01", session="01", unblinding_key=key, eeg=edf,
                           line_freq=50)
    assert again.written == []  # same code, same files


def test_tacs_without_eeg_and_the_key_rules(tacs_ds, tmp_path):
    log = tmp_path / "session.yaml"
    log.write_text(SESSION)
    with pytest.raises(InputError, match="--new-key"):
        ingest_tacs(log, tacs_ds, subject="02", unblinding_key=tmp_path / "missing.json")
    with pytest.raises(InputError, match="inside a dataset"):
        ingest_tacs(log, tacs_ds, subject="02", unblinding_key=tacs_ds / "key.json",
                    new_key=True)
    _, result = ingest_tacs(log, tacs_ds, subject="02", unblinding_key=tmp_path / "k.json",
                            new_key=True)
    assert "sub-02/nibs/sub-02_task-tacs_nibs.json" in result.written


@pytest.mark.parametrize(("change", "message"), [
    (("current_mA: 2.0", "current_mA: -1"), "must be positive"),
    (("current_mA: 2.0", "current_mA: 5"), "--allow-high-current"),
    (("frequency_Hz: 40\n", ""), r"lacks \['frequency_Hz'\]"),
    (("condition: sham", "condition: maybe"), "active or sham"),
    (("size: 50x50", "size: big"), "electrode size"),
])
def test_bad_tacs_logs(tacs_ds, tmp_path, change, message):
    log = tmp_path / "session.yaml"
    log.write_text(SESSION.replace(*change))
    with pytest.raises(InputError, match=message):
        ingest_tacs(log, tacs_ds, subject="03", unblinding_key=tmp_path / "k.json",
                    new_key=True)
    assert not (tacs_ds / "sub-03").exists() and not (tmp_path / "k.json").exists()


def test_high_current_passes_when_allowed(tacs_ds, tmp_path):
    log = tmp_path / "session.yaml"
    log.write_text(SESSION.replace("current_mA: 2.0", "current_mA: 4.5"))
    _, result = ingest_tacs(log, tacs_ds, subject="04", unblinding_key=tmp_path / "k.json",
                            new_key=True, allow_high_current=True)
    assert result.saved


def test_failed_tacs_ingest_leaves_no_code_in_the_key(tacs_ds, tmp_path):
    log = tmp_path / "session.yaml"
    log.write_text(SESSION)
    fake = tmp_path / "fake.edf"
    fake.write_text("not an EDF")
    with pytest.raises(InputError, match="MNE cannot read"):
        ingest_tacs(log, tacs_ds, subject="05", unblinding_key=tmp_path / "k.json",
                    new_key=True, eeg=fake, line_freq=50)
    assert not (tmp_path / "k.json").exists()


def test_repeated_pulse_times_and_unknown_positions_are_refused(edf, stim_ds, tacs_ds,
                                                                 tmp_path):
    log = _pulses(tmp_path, ["2,60,C-B60,C3,biphasic", "2,60,C-B60,C3,biphasic"])
    with pytest.raises(InputError, match="more than one pulse at 2.0 s"):
        ingest_tms_eeg(edf, stim_ds, subject="01", task="tep", stim_log=log, line_freq=50)
    session = tmp_path / "session.yaml"
    session.write_text(SESSION.replace("position: F3", "position: XYZ"))
    with pytest.raises(InputError, match="not a 10-10"):
        ingest_tacs(session, tacs_ds, subject="06", unblinding_key=tmp_path / "k.json",
                    new_key=True)
