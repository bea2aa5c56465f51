"""Neurotwin rules: rules file <-> checks, and one planted defect per rule on real datasets.

The clean bases are copies of the demo's TMS-EEG and tACS datasets (made by `ntdb ingest
tms-eeg|tacs`), completed to be ready to deposit and given a nested derivative. Each test
plants one defect and expects exactly that rule's code among the neurotwin findings.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from neurotwin_db.curation.validate import CHECKS, load_rules, validate_dataset
from neurotwin_db.curation.validate._rules import _rule
from neurotwin_db.errors import InputError
from neurotwin_db.modelling import SourceDataset, derivative_description

DOI = "10.5281/zenodo.1234567"
ORCID = "0000-0002-1825-0097"  # ORCID's documented example iD (Josiah Carberry)
COMPLETE = {"Authors": [f"Ada Steward (ORCID {ORCID})", "Bo Steward"],
            "Funding": ["Neurotwin, EU Horizon 2020 grant 101017716"],
            "EthicsApprovals": ["Ethics committee of the demo, approval 2025-001"]}


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _edit(path: Path, change: Callable[[dict], object]) -> None:
    data = _json(path)
    change(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def _complete(root: Path) -> Path:
    _edit(root / "dataset_description.json", lambda d: d.update(COMPLETE))
    return root


def _derivative(folder: Path, sources: list[SourceDataset], **extra: object) -> Path:
    folder.mkdir(parents=True)
    description = derivative_description("Test derivative", "ntdb-test", sources)
    (folder / "dataset_description.json").write_text(json.dumps({**description, **extra}))
    (folder / "README.md").write_text("# Test derivative\n")
    return folder


@pytest.fixture(scope="module")
def bases(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Neurotwin-clean copies of the demo's tms-eeg and tacs-home (never modified)."""
    out = tmp_path_factory.mktemp("bases")
    tms = _complete(Path(shutil.copytree(demo_db / "tms-eeg", out / "tms-eeg", symlinks=True)))
    _derivative(tms / "derivatives" / "ntdb-test", [SourceDataset("bids::", "abc")])
    tacs = _complete(Path(shutil.copytree(demo_db / "tacs-home", out / "tacs-home",
                                          symlinks=True)))
    return {"tms": tms, "tacs": tacs}


@pytest.fixture
def copy_base(bases: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    def _copy(name: str) -> Path:
        return Path(shutil.copytree(bases[name], tmp_path / name, symlinks=True))
    return _copy


def ntdb_codes(root: Path) -> set[str]:
    report = validate_dataset(root, bids=False, phi=False)
    for issue in report:  # every template field was filled
        assert not re.search(r"\{\w+\}", issue.message), issue.message
    return {i.code for i in report if report.source_of(i) == "neurotwin"}


def test_every_rule_has_one_check_and_every_check_a_rule() -> None:
    codes = [r.code for r in load_rules()]
    assert len(codes) == len(set(codes))
    assert set(codes) == set(CHECKS)


@pytest.mark.parametrize(("entry", "message"), [
    ({"severity": "fatal", "message": "m", "selector": {"target": "dataset"}}, "severity"),
    ({"severity": "error", "message": "m", "selector": {"target": "file"}}, "target"),
    ({"severity": "error", "message": "m", "selector": {"target": "dataset", "x": 1}},
     "selector keys"),
    ({"severity": "error", "selector": {"target": "dataset"}}, "no message"),
])
def test_a_wrong_rule_entry_is_refused(entry: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _rule("NTDB_NO_LICENSE", entry)


def test_a_rule_without_a_check_is_refused() -> None:
    with pytest.raises(InputError, match="no check function"):
        _rule("NTDB_NOT_A_RULE", {"severity": "error", "message": "m",
                                  "selector": {"target": "dataset"}})


def test_the_bases_are_clean(bases: dict[str, Path]) -> None:
    for root in bases.values():
        assert ntdb_codes(root) == set()
    # the nested derivative and both kinds of stimulation session are seen
    assert (bases["tms"] / "derivatives/ntdb-test/dataset_description.json").is_file()
    assert len(list(bases["tacs"].glob("sub-01/ses-*/nibs/*_nibs.json"))) == 2


def _description(change: Callable[[dict], object]) -> Callable[[Path], None]:
    return lambda root: _edit(root / "dataset_description.json", change)


def _participants(change: Callable[[list[list[str]]], list[list[str]]]
                  ) -> Callable[[Path], None]:
    def plant(root: Path) -> None:
        path = root / "participants.tsv"
        rows = [line.split("\t") for line in path.read_text().splitlines()]
        path.write_text("".join("\t".join(r) + "\n" for r in change(rows)))
    return plant


def _nested(change: Callable[[dict], object]) -> Callable[[Path], None]:
    return lambda root: _edit(root / "derivatives/ntdb-test/dataset_description.json", change)


TMS_SIDECAR = "sub-01/nibs/sub-01_task-tep_nibs.json"
TACS_EEG_SIDECAR = "sub-01/ses-01/nibs/sub-01_ses-01_task-tacs_nibs.json"
TACS_ALONE_SIDECAR = "sub-01/ses-02/nibs/sub-01_ses-02_task-tacs_nibs.json"
PLANTED = [
    ("tms", "NTDB_NO_LICENSE", _description(lambda d: d.pop("License"))),
    ("tms", "NTDB_BAD_LICENSE", _description(lambda d: d.update(License="free for all"))),
    ("tms", "NTDB_NO_AUTHORS", _description(lambda d: d.update(Authors=[]))),
    ("tms", "NTDB_BAD_ORCID", _description(lambda d: d["Authors"].append(
        "Cy Steward, https://orcid.org/0000-0002-1825-0098"))),
    ("tms", "NTDB_NO_FUNDING", _description(lambda d: d.pop("Funding"))),
    ("tms", "NTDB_NO_ETHICS", _description(lambda d: d.update(EthicsApprovals=[""]))),
    ("tms", "NTDB_NO_README", lambda root: (root / "README.md").unlink()),
    ("tms", "NTDB_NO_CHANGES", lambda root: (root / "CHANGES").write_text("\n")),
    ("tms", "NTDB_NO_PARTICIPANTS", lambda root: (root / "participants.tsv").unlink()),
    ("tms", "NTDB_PARTICIPANTS_COLUMN_MISSING",
     _participants(lambda rows: [r[:-1] for r in rows])),  # the group column
    ("tms", "NTDB_PARTICIPANTS_COLUMN_UNDESCRIBED",
     lambda root: _edit(root / "participants.json", lambda d: d["age"].pop("Description"))),
    ("tms", "NTDB_STIM_SIDECAR_MISSING", lambda root: (root / TMS_SIDECAR).unlink()),
    ("tacs", "NTDB_STIM_SIDECAR_MISSING", lambda root: (root / TACS_EEG_SIDECAR).unlink()),
    ("tms", "NTDB_STIM_SIDECAR_INVALID",
     lambda root: _edit(root / TMS_SIDECAR, lambda d: d.update(PulseCount=0))),
    ("tacs", "NTDB_STIM_SIDECAR_INVALID",
     lambda root: _edit(root / TACS_ALONE_SIDECAR, lambda d: d["StimulusSet"][0].update(
         CurrentAmplitude=-2))),
    ("tacs", "NTDB_STIM_SIDECAR_INVALID",
     lambda root: (root / TACS_EEG_SIDECAR).write_text("{not json")),
    ("tms", "NTDB_DERIVATIVE_NO_GENERATEDBY", _nested(lambda d: d.pop("GeneratedBy"))),
    ("tms", "NTDB_DERIVATIVE_NO_SOURCES", _nested(lambda d: d.update(SourceDatasets=[]))),
    ("tms", "NTDB_SOURCE_DOI_NOT_CITED", lambda root: _cite_deposited_sibling(root)),
]


def _cite_deposited_sibling(root: Path) -> None:
    """The nested derivative also used another local dataset, which has a DOI."""
    sibling = root.parent / "atlas"
    sibling.mkdir()
    (sibling / "dataset_description.json").write_text(json.dumps(
        {"Name": "atlas", "BIDSVersion": "1.10.0", "DatasetDOI": f"doi:{DOI}"}))
    _nested(lambda d: d["SourceDatasets"].append({"URL": "../../../atlas"}))(root)


@pytest.mark.parametrize(("base", "code", "plant"), PLANTED,
                         ids=[f"{b}-{c}-{n}" for n, (b, c, _) in enumerate(PLANTED)])
def test_planted_defect_triggers_exactly_its_rule(copy_base, base: str, code: str,
                                                  plant: Callable[[Path], None]) -> None:
    root = copy_base(base)
    plant(root)
    assert ntdb_codes(root) == {code}


def test_the_stimulation_findings_point_at_the_session(copy_base) -> None:
    root = copy_base("tms")
    (root / TMS_SIDECAR).unlink()
    (issue,) = [i for i in validate_dataset(root, bids=False, phi=False)]
    assert str(issue.path) == "sub-01/eeg/sub-01_task-tep_events.tsv"
    assert "TMS-EEG session" in issue.message and TMS_SIDECAR in issue.message
    root = copy_base("tacs")
    _edit(root / TACS_EEG_SIDECAR, lambda d: d["StimulusSet"][0].update(Frequency="40 Hz"))
    (issue,) = [i for i in validate_dataset(root, bids=False, phi=False)]
    assert str(issue.path) == TACS_EEG_SIDECAR
    assert issue.location == "StimulusSet/0/Frequency" and "nibs_tes" in issue.message


def test_orcids_in_citation_cff_are_checked(copy_base) -> None:
    root = copy_base("tms")
    _edit(root / "dataset_description.json", lambda d: d.pop("Authors"))
    (root / "CITATION.cff").write_text(
        "cff-version: 1.2.0\nmessage: cite it\ntitle: t\nauthors:\n"
        "  - family-names: Steward\n    given-names: Ada\n"
        "    orcid: https://orcid.org/0000-0002-1825-009X\n")
    report = validate_dataset(root, bids=False, phi=False)
    (issue,) = list(report)  # CITATION.cff's authors count as Authors
    assert (issue.code, str(issue.path)) == ("NTDB_BAD_ORCID", "CITATION.cff")
    assert "check digit should be 7" in issue.message


def test_a_nested_derivative_need_not_cite_its_own_dataset(copy_base) -> None:
    """It is deposited in that dataset's record, whose DOI exists only after the deposit."""
    root = copy_base("tms")
    _edit(root / "dataset_description.json", lambda d: d.update(DatasetDOI=f"doi:{DOI}"))
    assert ntdb_codes(root) == set()
    _nested(lambda d: d["SourceDatasets"].append({"URL": "../.."}))(root)
    assert ntdb_codes(root) == set()


def test_a_nested_derivative_that_cites_an_outside_doi_passes(copy_base) -> None:
    root = copy_base("tms")
    _cite_deposited_sibling(root)
    _nested(lambda d: d["SourceDatasets"][-1].update(DOI=f"https://doi.org/{DOI.upper()}"))(
        root)
    assert ntdb_codes(root) == set()


@pytest.mark.parametrize("how", ["relative", "absolute", "file-url", "dataset-link"])
def test_doi_of_a_local_source_dataset_must_be_cited(copy_base, tmp_path: Path,
                                                     how: str) -> None:
    raw = copy_base("tms")
    _edit(raw / "dataset_description.json", lambda d: d.update(DatasetDOI=DOI))
    url = {"relative": "../tms", "absolute": str(raw), "file-url": raw.as_uri(),
           "dataset-link": "bids:raw:"}[how]
    links = {"DatasetLinks": {"raw": "../tms"}} if how == "dataset-link" else {}
    extra = {**links, "License": "CC-BY-4.0", **COMPLETE}
    derivative = _derivative(tmp_path / "fits", [SourceDataset(url, "v1")], **extra)
    (derivative / "CHANGES").write_text("1.0.0\n  - first\n")
    report = validate_dataset(derivative, bids=False, phi=False)
    assert [(i.code, i.value) for i in report] == [("NTDB_SOURCE_DOI_NOT_CITED", DOI)]
    assert "tms" in report.issues[0].message or "raw" in report.issues[0].message
    _edit(derivative / "dataset_description.json",
          lambda d: d["SourceDatasets"][0].update(DOI=f"doi:{DOI}"))
    assert ntdb_codes(derivative) == set()


def test_a_derivative_validated_on_its_own_needs_no_participants(tmp_path: Path) -> None:
    derivative = _derivative(tmp_path / "fits", [SourceDataset("https://example.org/ds", "1")],
                             License="CC0-1.0", **COMPLETE)
    (derivative / "CHANGES").write_text("1.0.0\n  - first\n")
    assert ntdb_codes(derivative) == set()
    _edit(derivative / "dataset_description.json", lambda d: d.pop("SourceDatasets"))
    assert ntdb_codes(derivative) == {"NTDB_DERIVATIVE_NO_SOURCES"}
