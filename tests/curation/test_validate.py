"""ntdb validate: agreement with the official BIDS validator, the CLI, and bad input.

The official validator is always the real one (bids-validator-deno from the venv), run
here with the same pinned schema to compare against.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurotwin_db.cli.cmd_validate import validate
from neurotwin_db.curation.validate import ValidatorError, bids_error_codes, validate_dataset
from neurotwin_db.errors import InputError
from neurotwin_db.progress import Progress
from neurotwin_db.report import Report, Severity

VALIDATOR = Path(sys.executable).parent / "bids-validator-deno"
SCHEMA = Path(str(resources.files("bidsschematools") / "data" / "schema.json")).as_uri()
PARTICIPANTS_JSON = {
    "participant_id": {"Description": "Participant label."},
    "species": {"Description": "Species."},
    "age": {"Description": "Age.", "Units": "year"},
    "sex": {"Description": "Sex.", "Levels": {"F": "female", "M": "male"}},
    "group": {"Description": "Study group.", "Levels": {"AD": "Alzheimer's disease",
                                                         "control": "control"}}}


def official(root: Path) -> list[dict]:
    """The real validator's issues (ignored ones left out), on the pinned schema."""
    proc = subprocess.run([str(VALIDATOR), "--json", "--schema", SCHEMA, str(root)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode in (0, 16), proc.stderr[-2000:]
    return [i for i in json.loads(proc.stdout)["issues"]["issues"]
            if i["severity"] in ("error", "warning")]


def run_cli(*args: str) -> tuple[int, str, dict | None]:
    result = CliRunner().invoke(validate, [str(a) for a in args])
    document = json.loads(result.stdout) if "json" in args and result.exit_code < 2 else None
    return result.exit_code, result.output, document


def assert_agrees(root: Path) -> dict:
    code, output, document = run_cli(root, "--format", "json")
    expected = official(root)
    errors = {i["code"] for i in expected if i["severity"] == "error"}
    bids = [i for i in document["issues"] if i["source"] == "bids"]
    assert {i["code"] for i in bids if i["severity"] == "error"} == errors
    # nothing dropped or changed: same code, severity and file for every finding
    assert Counter((i["code"], i["severity"], i["path"]) for i in bids) == Counter(
        (i["code"], i["severity"], i["location"].strip("/") or None) for i in expected)
    assert code == (1 if errors or document["counts"]["error"] else 0)
    return document


@pytest.mark.parametrize("name", ["synthetic", "ds005", "ds000117", "7t_trt"])
def test_bids_errors_agree_with_the_official_validator(pybids_examples: Path,
                                                       name: str) -> None:
    document = assert_agrees(pybids_examples / name)
    assert document["counts"]["by_source"]["bids"] > 0
    assert document["sources"]["bids"]["schema"] == SCHEMA
    assert document["sources"]["bids"]["schema_version"] == json.loads(
        Path(SCHEMA.removeprefix("file://")).read_text())["schema_version"]


@pytest.mark.parametrize("name", ["mri-template", "mri-dicom", "eeg-rest", "tms-eeg", "tacs-home",
                                  "mouse-ephys", "shareable/eeg-rest", "shareable/mri-template"])
def test_bids_errors_agree_on_demo_datasets(demo_db: Path, name: str) -> None:
    """The raw demo datasets, and the anonymized ones the demo deposited."""
    from neurotwin_db.demo_datasets.demo import shareable_path

    folder, _, dataset = name.rpartition("/")
    document = assert_agrees((shareable_path(demo_db) if folder else demo_db) / dataset)
    assert "bids" not in {i["source"] for i in document["issues"]
                          if i["severity"] == "error"}


def test_bids_errors_agree_on_a_broken_demo_dataset(demo_db: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(demo_db / "tms-eeg", tmp_path / "tms", symlinks=True))
    sidecar = root / "sub-01/eeg/sub-01_task-tep_eeg.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()),
                                   "SamplingFrequency": "fast"}))
    (root / "sub-01/eeg/sub-01_task-tep_notes.txt").write_text("not BIDS\n")
    document = assert_agrees(root)
    assert {"JSON_SCHEMA_VALIDATION_ERROR", "NOT_INCLUDED"} <= {
        i["code"] for i in document["issues"] if i["source"] == "bids"}


def tiny(root: Path, *, subjects: int = 1) -> Path:
    """A plain BIDS dataset, valid and ready to deposit (behavioural data only)."""
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "tiny", "BIDSVersion": "1.10.0", "DatasetType": "raw", "License": "CC0-1.0",
        "Authors": ["Ada Steward", "Bo Steward"], "Funding": ["Neurotwin"],
        "EthicsApprovals": ["Demo committee 2025-001"]}))
    (root / "README.md").write_text("# tiny\n\nBehavioural responses of made-up "
                                    "participants, written by the neurotwin-db tests.\n")
    (root / "CHANGES").write_text("1.0.0 2025-01-01\n  - First release.\n")
    (root / "participants.json").write_text(json.dumps(PARTICIPANTS_JSON))
    rows = "".join(f"sub-{n:02d}\thomo sapiens\t70\tF\tcontrol\n"
                   for n in range(1, subjects + 1))
    (root / "participants.tsv").write_text(f"participant_id\tspecies\tage\tsex\tgroup\n{rows}")
    for n in range(1, subjects + 1):
        beh = root / f"sub-{n:02d}" / "beh"
        beh.mkdir(parents=True)
        (beh / f"sub-{n:02d}_task-rest_beh.tsv").write_text("response_time\tresponse\n"
                                                             "0.5\tleft\n")
        (beh / f"sub-{n:02d}_task-rest_beh.json").write_text(json.dumps({
            "TaskName": "rest", "response_time": {"Description": "RT", "Units": "s"},
            "response": {"Description": "Key pressed."}}))
    return root


def test_a_valid_dataset_ready_to_deposit_exits_0(tmp_path: Path) -> None:
    root = tiny(tmp_path / "tiny")
    code, output, _ = run_cli(root)
    assert code == 0, output
    assert "0 errors" in output and ": valid" in output
    assert "bids-validator 3." in output and "neurotwin rules" in output
    assert "phi-scan" in output


def test_findings_are_grouped_by_code_with_a_count_of_files(tmp_path: Path) -> None:
    root = tiny(tmp_path / "tiny", subjects=12)
    for n in range(1, 13):  # a tACS marker without its stimulation sidecar, 12 times
        beh = root / f"sub-{n:02d}/beh/sub-{n:02d}_task-rest_beh.json"
        beh.write_text(json.dumps({**json.loads(beh.read_text()),
                                   "ElectricalStimulation": True}))
        (root / f"sub-{n:02d}/eeg").mkdir()
        (root / f"sub-{n:02d}/eeg/sub-{n:02d}_task-tacs_eeg.json").write_text(json.dumps(
            {"TaskName": "tacs", "ElectricalStimulation": True}))
    code, output, _ = run_cli(root, "--no-bids")
    lines = output.splitlines()
    headers = [line for line in lines if "NTDB_STIM_SIDECAR_MISSING" in line]
    assert headers == ["ERROR NTDB_STIM_SIDECAR_MISSING [neurotwin] (12 files): tES "
                       "(tACS/tDCS) session sub-01/eeg/sub-01_task-tacs_eeg.json has no "
                       "stimulation sidecar sub-01/nibs/sub-01_task-tacs_nibs.json"]
    assert "    … and 9 more" in lines
    assert len(lines) < 12
    assert code == 1


def test_min_severity_hides_findings_but_not_the_verdict(tmp_path: Path) -> None:
    root = tiny(tmp_path / "tiny")
    described = {**PARTICIPANTS_JSON, "age": {"Units": "year"}}
    (root / "participants.json").write_text(json.dumps(described))
    code, output, _ = run_cli(root, "--no-bids")
    assert code == 0 and "WARNING NTDB_PARTICIPANTS_COLUMN_UNDESCRIBED" in output
    code, output, _ = run_cli(root, "--no-bids", "--min-severity", "error")
    assert code == 0 and "NTDB_PARTICIPANTS_COLUMN_UNDESCRIBED" not in output
    assert "1 below --min-severity not shown" in output
    code, _, document = run_cli(root, "--no-bids", "--min-severity", "error",
                                "--format", "json")
    assert document["issues"] == [] and document["counts"]["warning"] == 1
    assert document["valid"] is True and document["min_severity"] == "error"
    # an error is never hidden from the exit status
    (root / "CHANGES").unlink()
    code, output, _ = run_cli(root, "--no-bids", "--min-severity", "error")
    assert code == 1 and "NTDB_NO_CHANGES" in output


def test_json_document(tmp_path: Path) -> None:
    root = tiny(tmp_path / "tiny")
    (root / "sub-01/beh/empty_beh.txt").write_text("")
    code, _, document = run_cli(root, "--format", "json", "--min-severity", "hint")
    assert code == 1
    assert set(document) == {"dataset", "valid", "min_severity", "sources", "counts",
                             "issues"}
    assert set(document["sources"]) == {"bids", "neurotwin", "phi"}
    assert document["sources"]["bids"]["version"] not in ("", "unknown")
    by_source = {i["source"] for i in document["issues"]}
    assert by_source == {"bids", "phi"}  # NOT_INCLUDED and an empty file
    assert sum(document["counts"]["by_code"].values()) == len(document["issues"])
    code, _, document = run_cli(root, "--format", "json", "--no-bids")
    assert "bids" not in document["sources"] and code == 0


def test_library_api(tmp_path: Path) -> None:
    root = tiny(tmp_path / "tiny")
    (root / "sub-01/beh/empty_beh.txt").write_text("")
    events: list[Progress] = []
    report = validate_dataset(root, bids=True, phi=False, identifiers=None,
                              progress=events.append)
    assert isinstance(report, Report) and report.failed()
    expected = {i["code"] for i in official(root) if i["severity"] == "error"}
    assert bids_error_codes(report) == expected and "EMPTY_FILE" in expected
    assert [e.item for e in events] == ["bids", "neurotwin"]
    assert all(i.severity in (Severity.ERROR, Severity.WARNING) for i in report)
    assert all(i.dataset == "tiny" for i in report)


@pytest.mark.parametrize(("make", "message"), [
    (lambda tmp: tmp / "missing", "does not exist"),
    (lambda tmp: tmp, "has no dataset_description.json"),
    (lambda tmp: (tmp / "file.txt", (tmp / "file.txt").write_text("x"))[0], "is a file"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, make, message: str) -> None:
    code, output, _ = run_cli(make(tmp_path))
    assert code == 2 and message in output
    assert len(output.strip().splitlines()) == 1
    with pytest.raises(InputError, match=message):
        validate_dataset(make(tmp_path))


def test_validator_missing_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tiny(tmp_path / "tiny")
    monkeypatch.setenv("NTDB_BIDS_VALIDATOR", str(tmp_path / "no-such-validator"))
    code, output, _ = run_cli(root)
    assert code == 2 and "NTDB_BIDS_VALIDATOR" in output
    assert run_cli(root, "--no-bids")[0] == 0  # --no-bids does not need it


def test_validator_crash_is_exit_2(tmp_path: Path) -> None:
    """The real validator crashes on a file name that is not UTF-8."""
    root = tiny(tmp_path / "tiny")
    with open(os.path.join(os.fsencode(root), b"notes-\xff.txt"), "wb") as handle:
        handle.write(b"x")
    code, output, _ = run_cli(root)
    assert code == 2 and "bids-validator-deno failed" in output and "exit 1" in output
    assert len(output.strip().splitlines()) == 1
    with pytest.raises(ValidatorError):
        validate_dataset(root, phi=False)


def test_unreadable_validator_output_is_exit_2(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = tiny(tmp_path / "tiny")
    monkeypatch.setenv("NTDB_BIDS_VALIDATOR", shutil.which("echo"))  # exits 0, not JSON
    code, output, _ = run_cli(root)
    assert code == 2 and "not a JSON report" in output and "exit 0" in output


def test_identifiers_reach_the_phi_scan(tmp_path: Path) -> None:
    root = tiny(tmp_path / "tiny")
    (root / "README.md").write_text("# tiny\n\nRecorded from Johanna Testperson at home.\n")
    known = tmp_path / "known.txt"
    known.write_text("Johanna Testperson\n")
    assert run_cli(root, "--no-bids")[0] == 0
    code, _, document = run_cli(root, "--no-bids", "--identifiers", known, "--format", "json")
    assert code == 1
    assert {(i["source"], i["path"]) for i in document["issues"]
            if i["severity"] == "error"} == {("phi", "README.md")}
