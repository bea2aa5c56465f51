"""``apply_anonymization``: write a plan, prove it clean with phi-scan, then record it.

Everything is first written to a staging folder next to the output. The staging folder
is scanned (phi-scan plus a search for the real subject labels); only a clean result is
moved into the output dataset and saved with DataLad. A failure at any point leaves the
output as it was.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from neurotwin_db import datalad as dl
from neurotwin_db._io import atomic_target, copy_file, write_bytes
from neurotwin_db.curation.anonymize import _rules as rules
from neurotwin_db.curation.anonymize._key import PseudonymKey
from neurotwin_db.curation.anonymize._plan import (
    SKIPPED,
    AnonymizationPlan,
    Change,
    source_id,
)
from neurotwin_db.curation.phi import Identifiers, anonymization_record, scan_phi
from neurotwin_db.errors import NeurotwinError
from neurotwin_db.progress import Progress, ProgressCallback, ignore_progress
from neurotwin_db.report import Issue, Report, Severity

log = logging.getLogger(__name__)
TEXT_CHECKED = (".json", ".tsv", ".txt", ".md", ".bval", ".bvec", ".vhdr", ".vmrk", "README",
                "CHANGES")


class LeakError(NeurotwinError, RuntimeError):
    """The anonymized output still holds identifiers; nothing was written."""

    def __init__(self, report: Report) -> None:
        self.report = report
        errors = report.at_least(Severity.ERROR)
        first = errors.issues[0]
        super().__init__(f"anonymize stopped: phi-scan still finds {len(errors)} identifier(s) "
                         f"in the result, e.g. {first.code} in {first.path}"
                         f"{' at ' + first.location if first.location else ''}; nothing was "
                         "written (all of them are listed above)")


@dataclass
class AnonymizationResult:
    """What an apply wrote, removed and found."""

    out: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    report: Report = field(default_factory=Report)
    saved: bool = False


def apply_anonymization(plan: AnonymizationPlan, key: PseudonymKey, *,
                        identifiers: Identifiers | None = None,
                        progress: ProgressCallback = ignore_progress) -> AnonymizationResult:
    """Write ``plan`` into its output dataset, check it, and record it with DataLad."""
    out = plan.out
    _check_output(out, plan)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ntdb-anonymize-", dir=out.parent))
    try:
        targets = _stage(plan, staging, progress)
        report = scan_phi(staging, identifiers=identifiers)
        report.extend(_label_leaks(staging, targets, plan.subjects))
        if report.failed():
            raise LeakError(report)
        result = _publish(plan, staging, targets)
        result.report = report
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for label in plan.subjects:
        key.record(label, plan.dataset.name)
    return result


def _check_output(out: Path, plan: AnonymizationPlan) -> None:
    if plan.in_place:
        if (out / ".gitmodules").is_file():
            raise NeurotwinError(f"{out} has subdatasets, which an in-place run cannot "
                                 "rewrite; write a shareable copy with --out DIR instead")
    else:
        inside, target = plan.dataset.resolve(), out.resolve()
        if target in inside.parents or inside in target.parents:
            raise NeurotwinError(f"{out} is inside {plan.dataset} (or the other way round); "
                                 "the shareable dataset must live apart from the raw one")
        if out.exists() and any(out.iterdir()) and not dl.is_dataset(out):
            raise NeurotwinError(f"{out} exists and is not a DataLad dataset; give a new "
                                 "folder, or the dataset an earlier anonymize run created")
        if dl.is_dataset(out) and _existing(out):
            made = anonymization_record(out).get("source")
            if made != source_id(plan.dataset):
                raise NeurotwinError(
                    f"{out} is a dataset that an anonymize run of {plan.dataset.name} did not "
                    "create; it would be overwritten, so give a new folder for --out")
    if dl.is_dataset(out) and dl.git(out, "status", "--porcelain", "--untracked-files=all"
                                     ).strip():
        raise NeurotwinError(f"{out} has unsaved changes; save or discard them first "
                             f"(datalad status -d {out})")


def _stage(plan: AnonymizationPlan, staging: Path, progress: ProgressCallback) -> set[str]:
    """Write every change; a file that fails is listed and the others go on."""
    todo = [c for c in plan.changes if c.target and c.action not in ("drop", "companion")]
    failed = []
    for done, change in enumerate(todo, start=1):
        try:
            _write(plan, change, staging)
        except NeurotwinError as exc:
            log.info("anonymize: %s", exc)
            failed.append(str(exc))
        progress(Progress(change.target or "", done, len(todo), "anonymized"))
    if failed:
        more = f" (and {len(failed) - 1} more file(s): see the log)" if len(failed) > 1 else ""
        raise NeurotwinError(f"{failed[0]}{more}; nothing was written")
    return {p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()}


def _write(plan: AnonymizationPlan, change: Change, staging: Path) -> None:
    assert change.target is not None
    target = staging / change.target
    target.parent.mkdir(parents=True, exist_ok=True)
    source = plan.dataset / change.source if change.source else None
    if change.content is not None:
        write_bytes(target, change.content, overwrite=True)
    elif change.action == "nifti":
        _rewrite_nifti(source, target)
    elif change.action == "deface":
        from neurotwin_db.curation.anonymize.deface import deface_file

        try:
            deface_file(source, target)
        except NeurotwinError as exc:
            raise NeurotwinError(f"cannot deface {change.source}: {exc}; if this image has no "
                                 "face, re-run with --no-deface") from None
    elif change.action == "eeg":
        from neurotwin_db.curation.anonymize.eeg import rewrite_eeg_header

        label = rules.subject_of(change.source or "")
        rewrite_eeg_header(source, target,
                           subject=f"sub-{change.subject}" if change.subject else "",
                           shift=plan.shifts.get(label or ""))
    elif change.action == "nwb":
        from neurotwin_db.curation.anonymize.nwb import rewrite_nwb

        label = rules.subject_of(change.source or "")
        rewrite_nwb(source, target, subject=change.subject, shift=plan.shifts.get(label or ""))
    else:
        copy_file(source, target)


def _rewrite_nifti(source: Path, target: Path) -> None:
    raw = source.read_bytes()
    packed = source.name.endswith(".gz")
    try:
        data = gzip.decompress(raw) if packed else raw
        new, notes = rules.clean_nifti(data)
    except (OSError, EOFError) as exc:
        raise NeurotwinError(f"{source} is not a readable NIfTI file ({exc}); repair or "
                             "remove it, then re-run") from None
    except NeurotwinError as exc:
        raise NeurotwinError(f"{source}: {exc}; repair or remove it, then re-run") from None
    with atomic_target(target) as tmp:
        if not notes:
            tmp.write_bytes(raw if not packed else rules.gzip_bytes(data))
        else:
            tmp.write_bytes(rules.gzip_bytes(new) if packed else new)


def _label_leaks(staging: Path, targets: set[str], subjects: dict[str, str]) -> list[Issue]:
    """Real subject labels left in names or text (phi-scan cannot know them)."""
    real = [label for label, pseudo in subjects.items() if label != pseudo]
    if not real:
        return []
    pattern = re.compile(r"sub-(" + "|".join(map(re.escape, real)) + r")(?![A-Za-z0-9])")
    issues = []
    for rel in sorted(targets):
        if pattern.search(rel):
            issues.append(Issue("PHI_REAL_LABEL", Severity.ERROR, "a real subject label is "
                                "left in the name", PurePosixPath(rel)))
        elif rel.endswith(TEXT_CHECKED) and pattern.search(
                (staging / rel).read_text(encoding="utf-8", errors="replace")):
            issues.append(Issue("PHI_REAL_LABEL", Severity.ERROR, "a real subject label is "
                                "left in the content", PurePosixPath(rel)))
    return issues


def _publish(plan: AnonymizationPlan, staging: Path, targets: set[str]) -> AnonymizationResult:
    out = plan.out
    created = not dl.is_dataset(out)
    if created:
        dl.create_dataset(out)
    result = AnonymizationResult(out)
    try:
        for rel in sorted(targets):
            new, old = staging / rel, out / rel
            if old.is_file() and _same(new, old):
                result.unchanged.append(rel)
                continue
            old.parent.mkdir(parents=True, exist_ok=True)
            if old.is_symlink():
                old.unlink()
            os.replace(new, old)
            result.written.append(rel)
        for rel in _existing(out):
            if rel not in targets:
                (out / rel).unlink()
                result.removed.append(rel)
        _prune_empty(out)
        if result.written or result.removed:
            dl.save(out, f"anonymize {plan.dataset.name}",
                    record={"action": "anonymize", "source": plan.dataset.name,
                            "policy": plan.policy_version, "subjects": len(plan.subjects),
                            "written": len(result.written), "removed": len(result.removed)})
            result.saved = True
    except BaseException:
        _restore(out, created)
        raise
    return result


def _same(new: Path, old: Path) -> bool:
    return new.stat().st_size == old.stat().st_size and new.read_bytes() == old.read_bytes()


def _existing(out: Path) -> list[str]:
    found = []
    for folder, dirs, names in os.walk(out):
        dirs[:] = [d for d in dirs if d not in SKIPPED]
        rel = Path(folder).relative_to(out)
        found += [(rel / n).as_posix() for n in names if n not in SKIPPED]
    return found


def _prune_empty(out: Path) -> None:
    for folder, dirs, _ in os.walk(out, topdown=False):
        for d in dirs:
            path = Path(folder) / d
            if d not in SKIPPED and path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def _restore(out: Path, created: bool) -> None:
    """Put the output back as it was before this run (it was clean, so git can)."""
    if created:
        shutil.rmtree(out, ignore_errors=True)
        return
    subprocess.run(["git", "-C", str(out), "reset", "--quiet", "--hard", "HEAD"], check=False)
    subprocess.run(["git", "-C", str(out), "clean", "-fdq"], check=False)
