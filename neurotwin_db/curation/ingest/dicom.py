"""MRI ingest: DICOM series -> BIDS with the real dcm2niix, named by a heuristic table."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurotwin_db import datalad as dl
from neurotwin_db.bidspath import BIDSPath, check_label
from neurotwin_db.curation.ingest._heuristic import Rule, classify, fieldmap_suffix, load_rules
from neurotwin_db.curation.ingest._plan import (
    ApplyResult,
    IngestPlan,
    PlannedFile,
    apply_plan,
    check_dataset,
    fingerprint,
    json_bytes,
)
from neurotwin_db.errors import InputError
from neurotwin_db.progress import ProgressCallback, ignore_progress

_STEM = re.compile(r"^(?P<date>\d{8})(?P<time>\d{6})_(?P<series>\d+)(?P<rest>.*)$")
_EXTENSIONS = (".nii.gz", ".json", ".bval", ".bvec")


@dataclass(frozen=True, slots=True)
class Series:
    """One series as dcm2niix converted it."""

    stem: str
    outputs: dict[str, Path]  # extension -> converted file
    sidecar: dict[str, Any]
    study_date: str  # YYYYMMDD, from dcm2niix's %t
    number: int

    @property
    def label(self) -> str:
        """A human-readable name for messages."""
        return f"series {self.number} ({self.sidecar.get('SeriesDescription', '?')})"


def dcm2niix_binary() -> str:
    """The dcm2niix executable that the dcm2niix wheel ships."""
    try:
        import dcm2niix

        return str(dcm2niix.bin)
    except ImportError:
        found = shutil.which("dcm2niix")
        if found is None:
            raise InputError("dcm2niix is not installed; `pip install dcm2niix`") from None
        return found


def convert(src: Path, workdir: Path) -> list[Series]:
    """Run dcm2niix on ``src`` into ``workdir`` (``-b y -ba y -z y``); return the series."""
    src = Path(src)
    if not src.is_dir():
        raise InputError(f"{src} is not a folder of DICOM files; pass the folder that holds "
                         f"one subject's session")
    proc = subprocess.run([dcm2niix_binary(), "-b", "y", "-ba", "y", "-z", "y",
                           "-f", "%t_%s", "-o", str(workdir), str(src)],
                          capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    for line in log.splitlines():
        if "File not large enough" in line or "Unable to open" in line:
            bad = line.rsplit(":", 1)[-1].strip()
            raise InputError(f"DICOM file {bad} is truncated or unreadable (dcm2niix: "
                             f"{line.strip()}); replace it with a complete copy and retry")
    series = _collect(workdir)
    if not series:
        detail = next((ln.strip() for ln in log.splitlines() if "rror" in ln), "no images")
        raise InputError(f"no DICOM images found in {src} ({detail}); point to the folder "
                         f"that holds the .dcm files")
    return series


def _collect(workdir: Path) -> list[Series]:
    groups: dict[str, dict[str, Path]] = defaultdict(dict)
    for path in workdir.iterdir():
        ext = next((e for e in _EXTENSIONS if path.name.endswith(e)), None)
        if ext is not None:
            groups[path.name[: -len(ext)]][ext] = path
    series = []
    for stem, outputs in groups.items():
        match = _STEM.match(stem)
        if ".nii.gz" not in outputs or ".json" not in outputs or match is None:
            continue
        sidecar = json.loads(outputs[".json"].read_text(encoding="utf-8"))
        series.append(Series(stem, outputs, sidecar, match["date"], int(match["series"])))
    return sorted(series, key=lambda s: (s.number, s.stem))


def acq_time(series: Series) -> str | None:
    """BIDS acq_time (YYYY-MM-DDThh:mm:ss) from the study date and AcquisitionTime.

    >>> s = Series("x", {}, {"AcquisitionTime": "20:29:59.925000"}, "20040826", 1)
    >>> acq_time(s)
    '2004-08-26T20:29:59.925000'
    """
    time = str(series.sidecar.get("AcquisitionTime", "")).strip()
    date = series.study_date
    if not time or not date or date == "00000000":
        return None
    return f"{date[:4]}-{date[4:6]}-{date[6:]}T{time}"


def plan_dicom(src: Path, dataset: Path, *, subject: str, workdir: Path,
               session: str | None = None, task: str | None = None,
               heuristic: Path | None = None, species: str = "homo sapiens") -> IngestPlan:
    """Convert ``src`` in ``workdir`` and plan where each series goes in ``dataset``."""
    dataset = check_dataset(dataset, "mri")
    check_label("sub", subject)
    if session is not None:
        check_label("ses", session)
    if task is not None:
        check_label("task", task)
    rules = load_rules(heuristic)
    plan = IngestPlan(dataset, "mri", subject, session, species=species,
                      source=fingerprint([p for p in Path(src).rglob("*") if p.is_file()]),
                      participant={"participant_id": f"sub-{subject}", "species": species})
    placed: list[tuple[Series, Rule, BIDSPath]] = []
    for series in convert(src, workdir):
        rule = classify(series.sidecar, rules)
        if rule is None:
            plan.skipped.append((series.label, "no heuristic rule matched"))
        elif rule.skip:
            plan.skipped.append((series.label, f"rule {rule.name!r} skips it"))
        else:
            placed.append((series, rule, _bids_path(series, rule, subject, session, task)))
    for series, _, path in _number_runs(placed):
        sidecar = dict(series.sidecar)
        if path.suffix == "bold":
            sidecar.setdefault("TaskName", path.get("task"))
        for ext, converted in series.outputs.items():
            target = path.with_(extension=ext).relpath
            if ext == ".json":
                plan.files.append(PlannedFile(target, content=json_bytes(sidecar)))
            else:
                plan.files.append(PlannedFile(target, source=converted))
        plan.scans.append((path.with_(extension=".nii.gz").relpath, acq_time(series)))
    if not placed:
        raise InputError(f"no series in {src} could be named: "
                         f"{'; '.join(f'{w}: {r}' for w, r in plan.skipped)}; "
                         f"adjust the heuristic (--heuristic FILE)")
    return plan


def _bids_path(series: Series, rule: Rule, subject: str, session: str | None,
               task: str | None) -> BIDSPath:
    suffix = fieldmap_suffix(series.sidecar) if rule.suffix == "fieldmap" else rule.suffix
    entities: dict[str, str] = {"sub": subject}
    if session:
        entities["ses"] = session
    if suffix == "bold":
        found = rule.task_pattern.search(str(series.sidecar.get("SeriesDescription", ""))) \
            if rule.task_pattern else None
        entities["task"] = task or (re.sub(r"[^A-Za-z0-9]", "", found.group(1))
                                    if found else "rest")
    return BIDSPath.create(datatype=rule.datatype, suffix=suffix, **entities)


def _number_runs(placed: list[tuple[Series, Rule, BIDSPath]]
                 ) -> list[tuple[Series, Rule, BIDSPath]]:
    """Series that would share a name get run-1, run-2, ... in series order."""
    counts: dict[str, int] = defaultdict(int)
    for _, _, path in placed:
        counts[path.relpath] += 1
    seen: dict[str, int] = defaultdict(int)
    numbered = []
    for series, rule, path in placed:
        if counts[path.relpath] > 1:
            seen[path.relpath] += 1
            path = path.with_(run=seen[path.relpath])
        numbered.append((series, rule, path))
    return numbered


def keep_source(src: Path, private: Path, *, subject: str, session: str | None) -> int:
    """Copy the DICOMs into ``private/sourcedata/`` (a separate DataLad dataset); one save."""
    private = Path(private).resolve()
    if not dl.is_dataset(private):
        if private.exists() and any(private.iterdir()):
            raise InputError(f"--keep-source {private} exists but is not a DataLad dataset; "
                             f"pass a new folder or an existing private dataset")
        dl.create_dataset(private, text2git=False)
    folder = private / "sourcedata" / f"sub-{subject}" / (f"ses-{session}" if session else "")
    files = [p for p in Path(src).rglob("*") if p.is_file()]
    for path in files:
        target = folder / "dicom" / path.relative_to(src)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    dl.save(private, f"keep DICOM sources of sub-{subject}",
            record={"action": "keep-source", "subject": subject, "files": len(files)})
    return len(files)


def ingest_dicom(src: Path, dataset: Path, *, subject: str, session: str | None = None,
                 task: str | None = None, heuristic: Path | None = None,
                 species: str = "homo sapiens", private: Path | None = None,
                 overwrite: bool = False, dry_run: bool = False,
                 progress: ProgressCallback = ignore_progress
                 ) -> tuple[IngestPlan, ApplyResult | None]:
    """Convert, name and record one subject's DICOM folder in a BIDS dataset.

    The DICOM files are only read. With ``private`` they are also copied into that
    separate DataLad dataset (never into the shareable one).
    """
    src = Path(src).resolve()
    if private is not None and Path(private).resolve().is_relative_to(Path(dataset).resolve()):
        raise InputError(f"--keep-source {private} is inside the shareable dataset {dataset}; "
                         f"DICOMs must stay in a separate private dataset")
    with tempfile.TemporaryDirectory(prefix="ntdb-dcm2niix-") as tmp:
        plan = plan_dicom(src, dataset, subject=subject, workdir=Path(tmp), session=session,
                          task=task, heuristic=heuristic, species=species)
        if dry_run:
            return plan, None
        result = apply_plan(plan, overwrite=overwrite, progress=progress)
    if private is not None:
        keep_source(src, private, subject=subject, session=session)
    return plan, result
