"""Plan, then apply: every ingest first lists what it would write, then writes it.

A plan is data (``--dry-run`` prints it). Applying it refuses to replace different
content without ``overwrite``, writes each file atomically, removes what it wrote if
anything fails, updates participants.tsv and scans.tsv, and records everything with
one DataLad save.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurotwin_db import datalad as dl
from neurotwin_db._io import copy_file, write_bytes, write_json, write_text
from neurotwin_db.curation._skeleton import participants_columns
from neurotwin_db.curation.ingest._tables import merge_participant, merge_scans
from neurotwin_db.errors import InputError, OutputExistsError
from neurotwin_db.progress import Progress, ProgressCallback, ignore_progress


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One file to put in the dataset: copied from ``source`` or written from ``content``."""

    target: str  # relative to the dataset root
    source: Path | None = None
    content: bytes | None = None

    def same_as(self, path: Path) -> bool:
        """Whether ``path`` already holds exactly this content."""
        if not path.exists():
            return False
        if self.content is not None:
            return path.read_bytes() == self.content
        return self.source is not None and filecmp.cmp(self.source, path, shallow=False)


@dataclass
class IngestPlan:
    """Everything one ingest would change in a dataset."""

    dataset: Path
    modality: str
    subject: str
    session: str | None
    species: str = "homo sapiens"
    files: list[PlannedFile] = field(default_factory=list)
    participant: dict[str, str | None] = field(default_factory=dict)
    scans: list[tuple[str, str | None]] = field(default_factory=list)  # (target, acq_time)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    updates: dict[str, str] = field(default_factory=dict)  # dataset files merged, not replaced
    source: str = ""

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (what ``--dry-run`` prints)."""
        return {"dataset": str(self.dataset), "subject": self.subject,
                "session": self.session,
                "files": [f.target for f in self.files] + sorted(self.updates),
                "skipped": [{"item": w, "reason": r} for w, r in self.skipped]}


@dataclass
class ApplyResult:
    """What applying a plan did."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    saved: bool = False


# which registered dataset modalities each ingest may write into
ACCEPTS = {"mri": ("mri", "rodent", "multi"), "eeg": ("eeg", "multi"),
           "tms-eeg": ("tms-eeg", "multi"), "tacs": ("tacs", "multi"),
           "rodent": ("rodent", "multi")}


def check_dataset(dataset: Path, kind: str | None = None) -> Path:
    """The dataset root, if it is a BIDS DataLad dataset fit for a ``kind`` ingest."""
    dataset = Path(dataset).resolve()
    if not (dataset / "dataset_description.json").is_file():
        raise InputError(f"{dataset} is not a BIDS dataset (no dataset_description.json); "
                         f"create one with `ntdb dataset add DB NAME --modality ...`")
    if not dl.is_dataset(dataset):
        raise InputError(f"{dataset} is not a DataLad dataset; every ingest is recorded with "
                         f"DataLad: create the dataset with `ntdb dataset add`")
    registry = dataset.parent / ".ntdb" / "registry.json"
    if kind is not None and registry.is_file():
        entries = json.loads(registry.read_text(encoding="utf-8")).get("datasets", [])
        modality = next((e["modality"] for e in entries if e.get("path") == dataset.name), None)
        if modality is not None and modality not in ACCEPTS[kind]:
            raise InputError(f"{dataset.name} is registered as a {modality} dataset; "
                             f"`ingest {kind}` writes into {' or '.join(ACCEPTS[kind])} "
                             f"datasets (add one with `ntdb dataset add DB NAME --modality "
                             f"{ACCEPTS[kind][0]}`)")
    return dataset


def apply_plan(plan: IngestPlan, *, overwrite: bool = False,
               progress: ProgressCallback = ignore_progress) -> ApplyResult:
    """Write the plan into its dataset and record it with one DataLad save."""
    root = plan.dataset
    result = ApplyResult()
    todo = []
    for item in plan.files:
        if item.same_as(root / item.target):
            result.unchanged.append(item.target)
        else:
            todo.append(item)
    clashes = [f.target for f in todo if (root / f.target).exists() or
               (root / f.target).is_symlink()]
    if clashes and not overwrite:
        more = f" and {len(clashes) - 1} more" if len(clashes) > 1 else ""
        raise OutputExistsError(root / clashes[0], flag=f"--overwrite ({len(clashes)} "
                                f"different file(s): {clashes[0]}{more})")
    tables = _table_updates(plan)
    tables = {p: t for p, t in tables.items() if not (root / p).is_file() or
              (root / p).read_text(encoding="utf-8") != t}
    if not todo and not tables:
        return result  # the same input again: nothing to do
    replaced = [f.target for f in todo if (root / f.target).exists() or
                (root / f.target).is_symlink()] + [p for p in tables if (root / p).exists()]
    written: list[Path] = []
    try:
        for done, item in enumerate(todo, start=1):
            written.append(_put(root, item))
            result.written.append(item.target)
            progress(Progress(item.target, done, len(todo), "written"))
        for path, text in tables.items():
            write_text(root / path, text, overwrite=True)
            result.written.append(path)
        if "participants.tsv" in tables and _describe_columns(root, plan.species):
            result.written.append("participants.json")
    except BaseException:
        _roll_back(root, written, replaced)
        raise
    session = f" ses-{plan.session}" if plan.session else ""
    # only what this ingest wrote is committed: other changes in the dataset stay as they are
    dl.save(root, f"ingest {plan.modality} sub-{plan.subject}{session}",
            paths=result.written,
            record={"action": f"ingest-{plan.modality}", "subject": plan.subject,
                    "session": plan.session, "source": plan.source,
                    "overwrite": bool(replaced), "files": len(result.written)})
    result.saved = True
    parent = root.parent
    if (parent / ".ntdb" / "config.json").is_file() and dl.is_dataset(parent):
        dl.save(parent, f"record {root.name} after ingest", paths=[root.name],
                record={"action": "ingest", "dataset": root.name})
    return result


def _roll_back(root: Path, written: list[Path], replaced: list[str]) -> None:
    """Undo a failed apply: remove new files, restore replaced ones from the last commit."""
    for path in written:
        path.unlink(missing_ok=True)
    if replaced:
        dl.git(root, "checkout", "HEAD", "--", *replaced)


def _put(root: Path, item: PlannedFile) -> Path:
    target = root / item.target
    if target.is_symlink():  # an annexed file being replaced: drop the link, not the object
        target.unlink()
    if item.content is not None:
        return write_bytes(target, item.content, overwrite=True)
    assert item.source is not None
    return copy_file(item.source, target)


def _table_updates(plan: IngestPlan) -> dict[str, str]:
    root = plan.dataset
    updates: dict[str, str] = dict(plan.updates)
    if plan.participant:
        path = root / "participants.tsv"
        text = path.read_text(encoding="utf-8") if path.is_file() else None
        updates["participants.tsv"] = merge_participant(
            text, plan.participant, source=str(path))
    if plan.scans:
        folder = f"sub-{plan.subject}" + (f"/ses-{plan.session}" if plan.session else "")
        stem = f"sub-{plan.subject}" + (f"_ses-{plan.session}" if plan.session else "")
        scans = f"{folder}/{stem}_scans.tsv"
        text = (root / scans).read_text(encoding="utf-8") if (root / scans).is_file() else None
        rows = [(target.removeprefix(folder + "/"), time) for target, time in plan.scans]
        updates[scans] = merge_scans(text, rows)
    return updates


def _describe_columns(root: Path, species: str) -> bool:
    """Give every participants.tsv column a description in participants.json."""
    path = root / "participants.json"
    described = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    header = (root / "participants.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")
    known = participants_columns(species)
    missing = {c: known.get(c, {"Description": c}) for c in header if c not in described}
    if missing:
        write_json(path, {**described, **missing}, overwrite=True)
    return bool(missing)


def fingerprint(paths: list[Path]) -> str:
    """A short hash of source files (names relative to their folder, sizes, contents).

    Commit records carry this instead of source paths, which can hold personal names
    or reveal a blinded condition.
    """
    digest = hashlib.blake2b(digest_size=12)
    for path in sorted(paths):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 16))  # the header: enough to tell recordings apart
    return digest.hexdigest()


def ignore_draft(plan: IngestPlan, pattern: str, note: str) -> None:
    """Plan adding ``pattern`` (with a comment) to .bidsignore, for draft-BEP files."""
    path = plan.dataset / ".bidsignore"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    lines = plan.updates.get(".bidsignore", "").splitlines() or lines
    if pattern not in lines:
        plan.updates[".bidsignore"] = "\n".join([*lines, f"# {note}", pattern]) + "\n"


def json_bytes(payload: dict[str, Any]) -> bytes:
    """Indented UTF-8 JSON, as every sidecar is written."""
    return (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode()
