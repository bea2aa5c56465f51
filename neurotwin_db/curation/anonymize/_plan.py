"""``plan_anonymization``: what anonymize will do to each file, before anything is written.

The plan is pure: it reads the raw dataset and returns a list of :class:`Change`
objects (``--dry-run`` prints them). Small files (sidecars, tables, text) are computed
in full here; large ones (images, EEG, NWB) carry the action that ``apply`` runs.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath

from neurotwin_db import __version__
from neurotwin_db.curation.anonymize import _rules as rules
from neurotwin_db.curation.anonymize._key import PseudonymKey
from neurotwin_db.curation.phi import ANONYMIZATION_RECORD, Policy, load_policy
from neurotwin_db.curation.phi._formats import scan_text
from neurotwin_db.curation.phi._policy import DATASET_POLICY
from neurotwin_db.curation.phi._scan import reader_for
from neurotwin_db.errors import InputError


class AlreadyAnonymizedError(InputError):
    """The dataset is the output of an earlier anonymize run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        super().__init__(f"{root} is already anonymized ({ANONYMIZATION_RECORD} exists); "
                         "anonymize the raw dataset it came from instead")

FACE_SUFFIXES = frozenset({"T1w", "T2w", "FLAIR", "T2starw", "PDw", "T1map", "T2map",
                           "UNIT1", "inplaneT1", "inplaneT2", "angio"})
EEG_HEADERS = (".edf", ".bdf", ".vhdr", ".fif", ".set")
EEG_COMPANIONS = (".eeg", ".vmrk", ".fdt")
DROPPED_TOP = {"sourcedata": "sourcedata/ holds identifiable sources (share DICOM with "
                             "ntdb anonymize-dicom)",
               ".ntdb": "ntdb's private bookkeeping"}
TOP_LEVEL = frozenset({"dataset_description.json", "README", "README.md", "README.txt",
                       "README.rst", "CHANGES", "LICENSE", "participants.tsv",
                       "participants.json", "samples.tsv", "samples.json",
                       "genetic_info.json", ".bidsignore", "anonymization.json",
                       "phi-policy.yaml", "CITATION.cff"})
# sub-01_ses-1_task-rest_eeg.edf, task-rest_eeg.json: key-value pairs, then a suffix
BIDS_NAME = re.compile(r"^(?:[a-z]+-[A-Za-z0-9+]+_)*[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*$")
SKIPPED = frozenset({".git", ".datalad", ".gitattributes", ".gitmodules"})
README_NOTE = (
    "\n\n## Anonymization\n\n"
    "This dataset was anonymized with neurotwin-db {version} (privacy policy {policy}):\n"
    "subject labels are keyed pseudonyms; every date was shifted by a secret number of\n"
    "days per subject, so intervals within a subject are kept but calendar dates are not\n"
    "real; identifying sidecar fields, table columns and file-header fields were removed;\n"
    "ages above 89 are given as 89{deface}.\n"
)


@dataclass(frozen=True)
class Change:
    """One file of the raw dataset and what becomes of it in the shareable one."""

    source: str | None  # relative to the raw dataset; None for generated files
    target: str | None  # relative to the output; None when the file is dropped
    action: str         # copy, sidecar, table, text, nifti, deface, eeg, nwb, record, drop
    notes: tuple[str, ...] = ()
    content: bytes | None = field(default=None, repr=False)  # computed in the plan
    subject: str | None = None  # the pseudonym the file belongs to

    def describe(self) -> dict[str, object]:
        """A JSON-friendly view (for --dry-run and --json)."""
        return {"source": self.source, "target": self.target, "action": self.action,
                "notes": list(self.notes)}


@dataclass
class AnonymizationPlan:
    """Everything anonymize will write, for one dataset."""

    dataset: Path
    out: Path
    subjects: dict[str, str]  # real label -> pseudonym
    changes: list[Change]
    policy_version: str
    deface: bool
    shifts: dict[str, timedelta] = field(default_factory=dict, repr=False)  # secret

    @property
    def in_place(self) -> bool:
        """Whether the dataset is rewritten in place (its history keeps the originals)."""
        return self.out.resolve() == self.dataset.resolve()

    def describe(self) -> dict[str, object]:
        """A JSON-friendly view of the plan: real labels are not shown."""
        return {"dataset": str(self.dataset), "out": str(self.out),
                "subjects": len(self.subjects), "policy": self.policy_version,
                "changes": [c.describe() for c in self.changes]}


def _files(root: Path) -> list[str]:
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED)
        rel = Path(folder).relative_to(root)
        out += [(rel / n).as_posix() for n in sorted(names) if n not in SKIPPED]
    return out


def _subjects(root: Path, files: list[str]) -> list[str]:
    labels = {rules.subject_of(f) for f in files if f.startswith("sub-")}
    table = root / "participants.tsv"
    if table.is_file():
        lines = table.read_text(encoding="utf-8").splitlines()
        labels |= {rules.subject_of(line.split("\t")[0]) for line in lines[1:]}
    return sorted(label for label in labels if label)


def plan_anonymization(dataset: Path, key: PseudonymKey, *, out: Path | None = None,
                       deface: bool = True, policy: Policy | None = None) -> AnonymizationPlan:
    """Plan the anonymization of ``dataset`` into ``out`` (in place when ``out`` is None)."""
    root = Path(dataset).absolute()
    if not (root / "dataset_description.json").is_file():
        raise InputError(f"{root} is not a BIDS dataset (no dataset_description.json); "
                         "give the raw dataset's root folder")
    if (root / ANONYMIZATION_RECORD).is_file():
        raise AlreadyAnonymizedError(root)
    policy = policy or load_policy(root)
    files = _files(root)
    missing = [f for f in files if (root / f).is_symlink() and not (root / f).exists()]
    if missing:
        raise InputError(f"{len(missing)} file(s) have no content here, e.g. {missing[0]}; "
                         f"run `datalad get -d {root} .` first")
    subjects = {label: key.pseudonym(label) for label in _subjects(root, files)}
    shifts = {label: key.date_offset(label) for label in subjects}
    allowed = _schema_keys()
    changes = [_change(root, rel, subjects, shifts, allowed, policy, deface) for rel in files]
    plan = AnonymizationPlan(root, Path(out).absolute() if out else root, subjects, changes,
                             policy.version, deface, shifts)
    plan.changes += _records(plan)
    return plan


def _schema_keys() -> frozenset[str]:
    from neurotwin_db.bidspath import bids_schema

    return frozenset(entry["name"] for entry in bids_schema().objects.metadata.values())


def _change(root: Path, rel: str, subjects: dict[str, str], shifts: dict[str, timedelta],
            allowed: frozenset[str], policy: Policy, deface: bool) -> Change:
    top = rel.split("/", 1)[0]
    if rel == DATASET_POLICY.as_posix():
        return Change(rel, rel, "copy", ("the dataset's own, stricter privacy policy",))
    if top in DROPPED_TOP and "/" in rel:
        return Change(rel, None, "drop", (DROPPED_TOP[top],))
    label = rules.subject_of(rel)
    shift = shifts.get(label or "")
    target = rules.replace_labels(rel, subjects, shift)
    pseudo = subjects.get(label) if label else None
    name = PurePosixPath(rel).name
    lower = name.lower()
    path = root / rel
    why_not = _unshareable(path, rel, policy)
    if why_not:
        return Change(rel, None, "drop", (why_not,))
    if lower.endswith(".json"):
        content, notes = _json(path, rel, subjects, shift, allowed, policy)
        return Change(rel, target, "sidecar", tuple(notes), content, pseudo)
    if lower.endswith(".tsv"):
        text, notes = rules.anonymize_table(
            path.read_text(encoding="utf-8"), rel, policy=policy, subjects=subjects,
            shifts=shifts, name_tables=policy.name_column_tables)
        return Change(rel, target, "table", tuple(notes), text.encode(), pseudo)
    if lower.endswith((".nii", ".nii.gz")):
        suffix = name.split(".")[0].rsplit("_", 1)[-1]
        if deface and suffix in FACE_SUFFIXES:
            return Change(rel, target, "deface", ("remove the face", "clear header text"),
                          subject=pseudo)
        return Change(rel, target, "nifti", ("clear header text and extensions",),
                      subject=pseudo)
    if lower.endswith(EEG_HEADERS):
        return Change(rel, target, "eeg", ("rewrite the recording header",), subject=pseudo)
    if lower.endswith(EEG_COMPANIONS):
        return Change(rel, target, "companion", ("written with its header file",),
                      subject=pseudo)
    if lower.endswith(".nwb"):
        return Change(rel, target, "nwb", ("relabel the subject, shift dates, drop "
                                           "experimenter and institution",), subject=pseudo)
    if lower.endswith((".bval", ".bvec")):
        return Change(rel, target, "copy", ("numbers only",), subject=pseudo)
    if reader_for(path, policy) is scan_text:
        text = path.read_text(encoding="utf-8", errors="replace")
        new, notes = rules.scrub_text(rules.replace_labels(text, subjects, shift),
                                      keep_dates=name == "CHANGES")  # release dates
        if new != text and not notes:
            notes = ["relabel subjects"]
        return Change(rel, target, "text", tuple(notes), new.encode(), pseudo)
    return Change(rel, target, "copy", ("copied unchanged; phi-scan checks it",),
                  subject=pseudo)


def _unshareable(path: Path, rel: str, policy: Policy) -> str | None:
    """Why a file cannot go into the shareable dataset, if it cannot."""
    name = PurePosixPath(rel).name
    if name.startswith(".") and name not in (".bidsignore",) and \
            not rel.startswith(".ntdb/"):
        return "a hidden file: review it and add it by hand if it must be shared"
    reader = reader_for(path, policy)
    if reader is None:
        return ("phi-scan cannot read this type of file, so it cannot be shown to be free "
                "of identifiers; review it and add it by hand")
    if isinstance(reader, str) and not path.with_suffix(reader).exists():
        return f"a data file without its {reader} header"
    top = rel.split("/", 1)[0]
    if top != "code" and name not in TOP_LEVEL and not BIDS_NAME.match(name):
        return "not a BIDS file name, so its name may identify; rename it or add it by hand"
    return None


def _json(path: Path, rel: str, subjects: dict[str, str], shift: timedelta | None,
          allowed: frozenset[str], policy: Policy) -> tuple[bytes, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); fix it, then re-run") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a JSON object; BIDS sidecars are objects")
    if PurePosixPath(rel).name == "dataset_description.json":
        new, notes = data, []
    elif path.with_name(path.name[:-5] + ".tsv").is_file() or \
            path.name in ("participants.json", "sessions.json", "scans.json"):
        new, notes = rules.column_sidecar(data, policy=policy)
    else:
        new, notes = rules.scrub_sidecar(data, allowed=allowed, policy=policy, shift=shift,
                                         subjects=subjects)
    return (json.dumps(new, indent=2, ensure_ascii=False) + "\n").encode(), notes


def source_id(root: Path) -> str:
    """The raw dataset's DataLad id (its folder name if it is not a DataLad dataset)."""
    import configparser

    config = configparser.ConfigParser()
    try:
        config.read(root / ".datalad" / "config", encoding="utf-8")
        return config.get('datalad "dataset"', "id")
    except (configparser.Error, OSError):
        return root.name


def _records(plan: AnonymizationPlan) -> list[Change]:
    """The README note and ``.ntdb/anonymization.json`` (no key, no offsets)."""
    faces = sorted(c.target for c in plan.changes if c.action == "deface" and c.target)
    record = {"tool": "neurotwin-db", "version": __version__, "policy": plan.policy_version,
              "source": source_id(plan.dataset),
              "pseudonymized": True, "dates_shifted": True, "ages_capped_at": rules.AGE_CAP,
              "defaced": faces}
    out = [Change(None, ANONYMIZATION_RECORD.as_posix(), "record",
                  ("what was done (no key, no offsets)",),
                  (json.dumps(record, indent=2) + "\n").encode())]
    note = README_NOTE.format(version=__version__, policy=plan.policy_version,
                              deface="; faces were removed from anatomical images"
                              if faces else "")
    readme = next((c for c in plan.changes if c.target == "README" or (
        c.target and c.target.startswith("README."))), None)
    if readme is None:
        out.append(Change(None, "README", "record", ("note the anonymization",),
                          ("# Dataset" + note).encode()))
    elif b"## Anonymization" not in (readme.content or b""):
        index = plan.changes.index(readme)
        plan.changes[index] = Change(readme.source, readme.target, "text",
                                     (*readme.notes, "note the anonymization"),
                                     (readme.content or b"").rstrip() + note.encode())
    return out
