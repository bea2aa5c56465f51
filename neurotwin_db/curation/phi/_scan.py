"""``scan_phi``: read every file of a dataset or folder and report each identifier found."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath

from neurotwin_db.curation.phi import _formats as fmt
from neurotwin_db.curation.phi._match import EMAIL, Identifiers, looks_like_date
from neurotwin_db.curation.phi._policy import Policy, load_policy
from neurotwin_db.errors import InputError
from neurotwin_db.parallel import iter_tasks
from neurotwin_db.progress import Progress, ProgressCallback, ignore_progress
from neurotwin_db.report import Issue, Report, Severity

ANONYMIZATION_RECORD = PurePosixPath(".ntdb") / "anonymization.json"
SKIP_DIRS = frozenset({".git", ".datalad"})
EEG_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".fif", ".set")
NIFTI_EXTENSIONS = (".nii", ".nii.gz", ".hdr")
HDF5_EXTENSIONS = (".nwb", ".h5", ".hdf5")
DICOM_EXTENSIONS = (".dcm", ".ima", ".dicom")
# In-process below this many files: starting worker processes costs more than it saves.
PARALLEL_FROM = 200
Reader = Callable[[Path, str, fmt.ScanContext], list[Issue]]


def anonymization_record(root: Path) -> dict[str, object]:
    """What ``ntdb anonymize`` recorded about a dataset (``.ntdb/anonymization.json``)."""
    path = Path(root) / ANONYMIZATION_RECORD
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def dataset_root(path: Path) -> Path | None:
    """The BIDS dataset that holds ``path`` (the folder with dataset_description.json)."""
    for folder in [path, *path.parents] if path.is_dir() else path.parents:
        if (folder / "dataset_description.json").is_file():
            return folder
    return None


def _schema_keys() -> frozenset[str]:
    from neurotwin_db.bidspath import bids_schema

    metadata = bids_schema().objects.metadata
    return frozenset(entry["name"] for entry in metadata.values())


def reader_for(path: Path, policy: Policy) -> Reader | str | None:
    """The reader for ``path``; a companion's name if another file covers it; None if unknown."""
    name = path.name.lower()
    suffix = path.suffix.lower()
    if name.endswith(NIFTI_EXTENSIONS):
        return fmt.scan_nifti
    if name.endswith((".tsv", ".tsv.gz")):
        return fmt.scan_tsv
    if suffix == ".json":
        return fmt.scan_json
    if suffix in EEG_EXTENSIONS:
        return fmt.scan_eeg
    if suffix in DICOM_EXTENSIONS or name == "dicomdir":
        return fmt.scan_dicom
    if suffix in HDF5_EXTENSIONS:
        return fmt.scan_hdf5
    if suffix == ".vmrk" or suffix in policy.text_extensions or path.name in policy.text_names:
        return fmt.scan_text
    companion = policy.covered_by_companion.get(suffix)
    if companion:
        return companion
    if suffix in ("", ".gz") and _is_dicom(path):
        return fmt.scan_dicom
    return None


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def scan_file(path: Path, rel: str, ctx: fmt.ScanContext) -> list[Issue]:
    """Scan one file (its name is checked by :func:`scan_names`)."""
    issues: list[Issue] = []
    if path.is_symlink() and not path.exists():
        return issues + [fmt.finding(
            "PHI_CONTENT_ABSENT", Severity.ERROR, rel,
            "its annexed content is not present, so it cannot be checked",
            hint=f"datalad get {rel}, then scan again")]
    reader = reader_for(path, ctx.policy)
    if reader is None:
        return issues + [fmt.finding(
            "PHI_UNSCANNED", Severity.WARNING, rel,
            f"no reader for {path.suffix or 'files without an extension'}: it was not "
            "scanned; check it by hand", hint="remove it, or add it to .bidsignore after a "
            "manual check")]
    if isinstance(reader, str):
        if path.with_suffix(reader).exists():
            return issues  # the header file next to it is scanned instead
        return issues + [fmt.finding(
            "PHI_UNSCANNED", Severity.WARNING, rel,
            f"a data file whose {reader} header is missing: it was not scanned",
            hint=None)]
    if path.stat().st_size == 0:
        return issues + [fmt.finding("PHI_EMPTY_FILE", Severity.HINT, rel,
                                     "the file is empty: nothing to scan", hint=None)]
    return issues + reader(path, rel, ctx)


def scan_names(rels: list[str], ctx: fmt.ScanContext) -> list[Issue]:
    """Identifiers in file and folder names; each folder is reported once, at the top."""
    issues = []
    reported: dict[str, set[str]] = {}  # folder -> the offending tokens reported for it
    folders = sorted({p.as_posix() for rel in rels for p in PurePosixPath(rel).parents
                      if p.as_posix() != "."})
    for rel in folders + sorted(rels):
        part = PurePosixPath(rel).name
        above = set().union(*(reported.get(p.as_posix(), set())
                              for p in PurePosixPath(rel).parents))
        hit = ctx.identifiers.find(part)
        day = None if ctx.dates_shifted else looks_like_date(part)
        if hit is not None:
            issue = fmt.finding("PHI_FILENAME", Severity.ERROR, rel,
                                f"the name holds {fmt.article(hit.kind)}",
                                location=f"name {part}",
                                value=hit.matched, hint="rename it")
            token = hit.matched
        elif EMAIL.search(part):
            issue = fmt.finding("PHI_FILENAME", Severity.ERROR, rel,
                                "the name holds an e-mail address", location=f"name {part}",
                                value=part, hint="rename it")
            token = part
        elif day:
            issue = fmt.finding("PHI_FILENAME", Severity.WARNING, rel, "the name holds a date",
                                location=f"name {part}", value=day, hint="rename it")
            token = day
        else:
            continue
        if token not in above:
            issues.append(issue)
        reported[rel] = above | {token}
    return issues


def list_files(root: Path) -> list[Path]:
    """Every file under ``root`` (or ``root`` itself), skipping git and DataLad internals."""
    if root.is_file() or (root.is_symlink() and not root.exists()):
        return [root]
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        files += [Path(folder) / n for n in sorted(names) if n != ".git"]
    return files


def _scan_batch(batch: list[tuple[str, str]], ctx: fmt.ScanContext) -> list[Issue]:
    out = []
    for path, rel in batch:
        out += scan_file(Path(path), rel, ctx)
    return out


def scan_phi(path: Path, *, identifiers: Identifiers | None = None,
             jobs: int | None = None, scheduler: str | None = None,
             progress: ProgressCallback = ignore_progress) -> Report:
    """Read every file under ``path`` and report each identifier found (masked).

    Dates count as shifted when the dataset's ``.ntdb/anonymization.json`` says so (it is
    written by ``ntdb anonymize``).
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise InputError(f"{path} does not exist; give a dataset, a folder or a file to scan")
    root = dataset_root(path.resolve()) if path.exists() else None
    base = path if path.is_dir() else path.parent
    ctx = fmt.ScanContext(
        policy=load_policy(root),
        identifiers=identifiers or Identifiers(),
        dates_shifted=bool(root and anonymization_record(root).get("dates_shifted")),
        schema_keys=_schema_keys())
    files = list_files(path)
    items = [(str(f), f.relative_to(base).as_posix()) for f in files]
    size = max(1, len(items) // (4 * max(jobs or 2, 1)))
    batches = [items[i:i + size] for i in range(0, len(items), size)] if items else []
    report = Report(scan_names([rel for _, rel in items], ctx))
    done = 0
    workers = 1 if len(items) < PARALLEL_FROM and not scheduler else jobs
    for index, issues in iter_tasks(partial(_scan_batch, ctx=ctx), batches, jobs=workers,
                                    scheduler=scheduler):
        report.extend(issues)
        done += len(batches[index])
        progress(Progress(batches[index][-1][1], done, len(items), "scanned"))
    report.issues.sort(key=lambda i: (str(i.path), i.location or "", i.code))
    return report
