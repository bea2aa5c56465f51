"""A small real BIDS dataset that passes the whole deposit gate, built once per session.

Two simulated resting EEG recordings (MNE, EDF) go through ``ingest eeg`` into a raw
DataLad dataset and ``anonymize --out`` into a shareable one, which then gets what a
deposit needs: License, Funding (an EU grant), EthicsApprovals, README, CHANGES,
participants with species/age/sex/group, a CITATION.cff with ORCID and affiliations, a
source-dataset DOI and a paper DOI. It passes the official BIDS validator (0 errors)
and phi-scan. Tests copy it. Test modules load these fixtures with
``pytest_plugins = ["deposit_fixtures"]`` (one session-wide template) and import its
helpers, so pytest does not rewrite it: PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import click.testing
import pytest
from click.testing import CliRunner

from neurotwin_db import datalad as dl
from neurotwin_db.cli.main import cli

TOKEN = "tok-PLANTED-5ecr3t-7f3a9c2e1b"
PAPER_DOI = "10.1016/j.neuroimage.2023.119938"
SOURCE_DOI = "10.5281/zenodo.1234567"
ORCID = "0000-0002-1825-0097"
CITATION = f"""cff-version: 1.2.0
message: If you use this dataset, please cite it.
title: Resting EEG of the deposit tests
authors:
  - family-names: Lovelace
    given-names: Ada
    orcid: https://orcid.org/{ORCID}
    affiliation: Analytical Engine Society
  - family-names: Turing
    given-names: Alan
    affiliation: University of Manchester
keywords:
  - resting state
"""


def build_template(folder: Path) -> Path:
    """Build the shareable dataset under ``folder`` and return its root."""
    import mne
    from neurotwin_db.demo_datasets.eeg_rest import simulate_raw

    from neurotwin_db.curation import write_skeleton
    from neurotwin_db.curation.anonymize import apply_anonymization, load_key, plan_anonymization
    from neurotwin_db.curation.ingest import ingest_eeg

    raw_root = folder / "raw"
    dl.create_dataset(raw_root)
    write_skeleton(raw_root, "Resting EEG of the deposit tests", modality="eeg",
                   species="homo sapiens", authors=["Ada Lovelace"], license="CC-BY-4.0")
    dl.save(raw_root, "skeleton")
    for index, subject in enumerate(("01", "02")):
        raw = simulate_raw(seed=index)
        raw.crop(0, 8)
        raw.set_meas_date(datetime.datetime(2024, 3, 5 + index, 9, 30, tzinfo=datetime.UTC))
        recording = folder / f"rec{subject}.edf"
        mne.export.export_raw(recording, raw, fmt="edf", verbose="error")
        ingest_eeg(recording, raw_root, subject=subject, task="rest", line_freq=50)
    key = load_key(folder / "keys" / "pseudonym.key", new=True)
    share = folder / "share"
    apply_anonymization(plan_anonymization(raw_root, key, out=share), key)
    _complete(share)
    dl.save(share, "complete the deposit metadata")
    return share


def _complete(root: Path) -> None:
    desc = json.loads((root / "dataset_description.json").read_text())
    desc.pop("Authors", None)  # CITATION.cff lists them (BIDS: one or the other)
    desc.update({
        "Funding": ["European Union's Horizon 2020 research and innovation programme, grant "
                    "agreement No 101017716 (Neurotwin)"],
        "EthicsApprovals": ["Ethics committee of the deposit tests, approval 2024/001"],
        "ReferencesAndLinks": [f"https://doi.org/{PAPER_DOI}"],
        "SourceDatasets": [{"URL": "https://example.org/raw-eeg", "DOI": f"doi:{SOURCE_DOI}"}],
    })
    (root / "dataset_description.json").write_text(json.dumps(desc, indent=2) + "\n")
    (root / "CITATION.cff").write_text(CITATION)
    lines = (root / "participants.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    for row, (age, sex, group) in zip(rows, [("71", "F", "AD"), ("68", "M", "control")],
                                      strict=True):
        row.update(age=age, sex=sex, group=group)
    (root / "participants.tsv").write_text("\n".join(
        ["\t".join(header)] + ["\t".join(r[c] for c in header) for r in rows]) + "\n")
    readme = (root / "README.md").read_text()
    (root / "README.md").write_text(readme + "\nSimulated recordings; no person was recorded.\n")


@pytest.fixture(scope="session")
def deposit_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gate-passing dataset, built once per session (read-only: copy it)."""
    return build_template(tmp_path_factory.mktemp("deposit-template"))


@pytest.fixture
def shareable(deposit_template: Path, tmp_path: Path, deposit_env: None) -> Path:
    """A writable copy of the template dataset."""
    return Path(shutil.copytree(deposit_template, tmp_path / "eeg-rest", symlinks=True))


@pytest.fixture
def deposit_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Private state folder, no real keyring, fast retries, short timeouts, no token."""
    monkeypatch.setenv("NTDB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("NTDB_DEPOSIT_BACKOFF", "0.01")
    monkeypatch.setenv("NTDB_DEPOSIT_RETRIES", "3")
    monkeypatch.setenv("NTDB_DEPOSIT_TIMEOUT", "5")
    for name in ("ZENODO_TOKEN", "ZENODO_SANDBOX_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    """Run ``ntdb ARGS`` in-process."""
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def save(root: Path, message: str = "test change") -> None:
    """Record every change in ``root`` with DataLad."""
    dl.save(root, message)


def set_description(root: Path, **changes: object) -> None:
    """Change dataset_description.json fields (None removes one) and save."""
    path = root / "dataset_description.json"
    desc = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            desc.pop(key, None)
        else:
            desc[key] = value
    path.write_text(json.dumps(desc, indent=2) + "\n")
    save(root)


def description(root: Path) -> dict[str, object]:
    """dataset_description.json as a dict."""
    return json.loads((root / "dataset_description.json").read_text())


def tags(root: Path) -> list[str]:
    """The dataset's git tags."""
    return dl.git(root, "tag", "--list").decode().split()
