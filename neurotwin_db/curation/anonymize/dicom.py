"""De-identify DICOM files for sharing: ``ntdb anonymize-dicom SRC OUT``.

What happens to each file under SRC (in parallel, through :mod:`neurotwin_db.parallel`):

- Not DICOM (no ``DICM`` prefix), a DICOMDIR (an index full of patient names) or a
  missing annexed file: skipped and listed. Unreadable or truncated: failed and listed.
- Pixels that may show burned-in text (:func:`~neurotwin_db.curation.phi._pixels.pixel_risk`):
  the original is copied to the quarantine folder (default ``OUT-quarantine`` next to
  OUT, never inside it) and listed with the reason; nothing goes into OUT.
- Otherwise ntdb removes every private tag (at any depth), applies the deid recipe
  (default ``schemas/deid/deid.dicom.ntdb``; ``recipe=`` replaces it), zeroes the
  preamble, rebuilds the file meta group, checks the result and writes it atomically to
  ``OUT/<pseudonym>/<new StudyUID>/<new SeriesUID>/<new SOPUID>.dcm``: no part of a
  source name reaches OUT. The pixel data is written back byte for byte.

The key (:func:`~neurotwin_db.curation.anonymize.load_key`) fills three recipe hooks:
``var:ntdb_pseudonym`` (pseudonym of the original PatientID), ``var:ntdb_date_shift``
(that subject's secret offset in days: dates are shifted, so intervals survive) and
``func:ntdb_uid`` (keyed UIDs: the same UID maps to the same new UID in every file and run).
After the recipe, a file is refused (failed) unless PatientID is the pseudonym, PatientName
is the pseudonym or empty, the Study/Series/SOP Instance UIDs are the keyed ones, and none
of its own patient identifiers (ID, names, address; 6 characters or more) is left anywhere
in the bytes written. That guard is a safety net for custom recipes, not the mechanism.

How the recipe is applied, and why. deid parses the recipe (:class:`deid.config.DeidRecipe`)
and deid's own functions decide which fields an expression names
(:func:`deid.dicom.fields.expand_field_expression`), what a value becomes
(:func:`deid.utils.parse_value`) and how dates move (:func:`deid.dicom.actions.jitter_timestamp`).
deid's :class:`~deid.dicom.parser.DicomParser` runs those per action over every field of
every file: it converts every element, re-matches each expression against all fields and
deep-copies the matches (cProfile). On 5,000 files (benchmarks/bench_anonymize_dicom.py,
one process) that is 9 ms a file with deid's default recipe and 14 ms with this project's,
against 1.4 to 1.8 ms to read and write a file with pydicom alone. Which actions name a
field depends only on the field's place (its ancestors' tags, its tag and VR), so ntdb
asks deid once per place and caches the answer, then makes one pass per file that touches
only the elements some action names (the others stay raw bytes): 2.6 ms a file, atomic
write included. The result is the same dataset deid produces (a test compares both on
real files, for this recipe and deid's default one). Recipes whose matches depend on
values (``%values``/``%fields`` lists, ``values:``/``fields:`` targets, REMOVE with a
condition) or that name nested fields by path go through deid's DicomParser instead:
correct, just slower.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import pydicom
from deid.config import DeidRecipe
from deid.dicom.actions import deid_funcs, jitter_timestamp
from deid.dicom.fields import DicomField, FieldsWithLookups, expand_field_expression
from deid.dicom.parser import DicomParser
from deid.dicom.tags import add_tag, get_tag
from deid.logger import bot
from deid.logger.message import QUIET
from deid.utils import parse_value
from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from neurotwin_db._io import copy_file, write_bytes
from neurotwin_db.curation.anonymize._key import PseudonymKey, load_key
from neurotwin_db.curation.phi._pixels import pixel_risk
from neurotwin_db.errors import InputError, OutputExistsError
from neurotwin_db.progress import Progress
from neurotwin_db.report import Issue, Report, Severity

logger = logging.getLogger(__name__)

PROJECT_RECIPE = Path(str(files("neurotwin_db.schemas") / "deid" / "deid.dicom.ntdb"))
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
STANDARD_UID_ROOT = "1.2.840.10008."  # UIDs defined by the standard itself (PS3.5 9.1)
CLASS_UID_SUFFIXES = ("ClassUID", "SyntaxUID", "ClassUIDInFile", "SyntaxUIDInFile",
                      "SOPClassesInStudy", "CodingSchemeUID")
GUARD_KEYWORDS = ("PatientID", "PatientName", "OtherPatientIDs", "OtherPatientNames",
                  "PatientBirthName", "PatientMotherBirthName", "PatientAddress")
GUARD_MIN_LENGTH = 6  # shorter values occur by chance in numbers (e.g. "1234" in "0.12345")
INSTANCE_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
UNDEFINED_LENGTH = 0xFFFFFFFF
_GUARD_TAGS = {keyword: tag_for_keyword(keyword) for keyword in GUARD_KEYWORDS}
_UNKNOWN = object()  # a cache miss (None is a cached answer)
_UID_TAGS = {keyword: tag_for_keyword(keyword) for keyword in (*INSTANCE_UIDS, "SOPClassUID")}


@dataclass(frozen=True)
class DicomAnonymization:
    """What ``anonymize_dicom`` wrote (or would write), quarantined, skipped and failed.

    Paths of sources are relative to ``src``; written outputs are ``(source, output)``
    with output relative to ``out``.
    """

    src: Path
    out: Path
    quarantine: Path
    recipe: Path
    dry_run: bool
    written: list[tuple[str, str]] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "src": str(self.src), "out": str(self.out), "quarantine": str(self.quarantine),
            "recipe": str(self.recipe), "dry_run": self.dry_run,
            "written": [{"source": s, "output": o} for s, o in self.written],
            "quarantined": [{"path": p, "reason": r} for p, r in self.quarantined],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "failed": [{"path": p, "message": m} for p, m in self.failed],
        }

    def report(self) -> Report:
        """Quarantined files as warnings, failed files as errors, skipped files as hints."""
        report = Report()
        for path, reason in self.quarantined:
            report.add(Issue("DICOM_PIXEL_RISK", Severity.WARNING, reason, PurePosixPath(path),
                             hint=f"review or scrub the copy in {self.quarantine}"))
        for path, message in self.failed:
            report.add(Issue("DICOM_NOT_ANONYMIZED", Severity.ERROR, message,
                             PurePosixPath(path)))
        for path, reason in self.skipped:
            report.add(Issue("DICOM_SKIPPED", Severity.HINT, reason, PurePosixPath(path)))
        return report


def anonymize_dicom(src: Path, out: Path, *, key: PseudonymKey, recipe: Path | None = None,
                    quarantine: Path | None = None, scheduler: str | None = None,
                    jobs: int | None = None, overwrite: bool = False, dry_run: bool = False,
                    progress: Callable[[Progress], None] | None = None) -> DicomAnonymization:
    """De-identify every DICOM file under ``src`` into ``out`` (see the module docstring).

    Parameters
    ----------
    src, out
        Source folder (only read) and output folder (absent or empty unless ``overwrite``).
    key
        The pseudonym key: pseudonyms, date offsets and UIDs.
    recipe
        A deid recipe that replaces the project recipe (start from a copy of it).
    quarantine
        Where files whose pixels may show identifiers are copied (default: ``OUT-quarantine``).
    scheduler, jobs
        Dask scheduler address, or the number of local processes.
    overwrite
        Write into a non-empty ``out``/quarantine, replacing files of the same name.
    dry_run
        Do all the work in memory and report it, but write nothing.
    progress
        Called with a :class:`~neurotwin_db.progress.Progress` after each file.
    """
    from neurotwin_db.parallel import default_jobs, iter_tasks

    src, out = Path(src), Path(out)
    quarantine = Path(quarantine) if quarantine else out.parent / f"{out.name}-quarantine"
    recipe = Path(recipe) if recipe else PROJECT_RECIPE
    _check_places(src, out, quarantine, overwrite=overwrite)
    load_recipe(recipe)  # a bad recipe stops the run before any file is touched
    sources, skipped = _list_sources(src)
    # A new OUT is written as a hidden sibling folder and renamed into place at the end:
    # the whole output appears at once (or not at all), with one plain write per file.
    fresh = not dry_run and not (out.is_dir() and any(out.iterdir()))
    target = out.parent / f".{out.name}.partial-{os.getpid()}" if fresh else out
    job = _Job(src=str(src), out=str(target), quarantine=str(quarantine),
               recipe=str(recipe.resolve()),
               key=None if scheduler else key, key_path=str(key.path), dry_run=dry_run,
               overwrite=overwrite, fresh=fresh)
    workers = 1 if scheduler is None and jobs == 1 else (jobs or default_jobs())
    size = max(1, min(64, math.ceil(len(sources) / (4 * workers))))
    batches = [(job, tuple(sources[i:i + size])) for i in range(0, len(sources), size)]
    result = DicomAnonymization(src, out, quarantine, recipe, dry_run, skipped=skipped)
    subjects: set[str] = set()
    done = len(skipped)
    total = len(sources) + len(skipped)
    try:
        if fresh:
            target.mkdir(parents=True)
        for _, outcomes in iter_tasks(_run_batch, batches, jobs=jobs, scheduler=scheduler):
            for outcome in outcomes:
                done += 1
                _collect(result, outcome, subjects)
                if progress is not None:
                    progress(Progress(outcome.rel, done, total, outcome.status))
        if fresh:
            if out.is_dir():
                out.rmdir()  # it was empty
            os.replace(target, out)
    except BaseException:
        if fresh:
            shutil.rmtree(target, ignore_errors=True)
        raise
    _flag_duplicates(result)
    if not dry_run:
        for subject in sorted(subjects):
            key.record(subject, dataset=out.name)
    for name in ("written", "quarantined", "skipped", "failed"):
        getattr(result, name).sort()
    return result


def load_recipe(path: Path) -> _Recipe:
    """Parse a deid recipe once per process; a recipe deid cannot read is an InputError."""
    return _load_recipe(str(Path(path).resolve()))


# --- the run: places, sources, outcomes -------------------------------------------------


class _Outcome(NamedTuple):
    rel: str
    status: str  # written, quarantined, skipped, failed
    detail: str  # output path, reason or message
    subject: str = ""  # original PatientID of a written file (for the key's mapping file)


@dataclass(frozen=True)
class _Job:
    src: str
    out: str
    quarantine: str
    recipe: str
    key: PseudonymKey | None  # None with a Dask scheduler: the secret stays off the network
    key_path: str
    dry_run: bool
    overwrite: bool
    fresh: bool = False  # writing into a private folder that is renamed at the end


def _check_places(src: Path, out: Path, quarantine: Path, *, overwrite: bool) -> None:
    if not src.is_dir():
        raise InputError(f"source folder {src} does not exist or is not a folder; pass the "
                         "folder that holds the DICOM files")
    real_src, real_out, real_q = src.resolve(), out.resolve(), quarantine.resolve()
    if real_out.is_relative_to(real_src) or real_src.is_relative_to(real_out):
        raise InputError(f"output folder {out} and source folder {src} overlap; choose an "
                         "output folder outside the source")
    if real_q.is_relative_to(real_out) or real_q.is_relative_to(real_src):
        raise InputError(f"quarantine folder {quarantine} is inside {out} or {src}; it holds "
                         "identifiable originals, so put it elsewhere (--quarantine DIR)")
    for folder, flag in ((out, "OUT"), (quarantine, "--quarantine")):
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{flag} {folder} is a file, not a folder; choose a folder")
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            raise InputError(f"{flag} folder {folder} is not empty; choose a new folder or "
                             "pass --overwrite to replace files of the same name")


def _list_sources(src: Path) -> tuple[list[str], list[tuple[str, str]]]:
    sources, skipped = [], []
    for folder, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in (".git", ".datalad"))
        for name in sorted(names):
            path = Path(folder, name)
            rel = path.relative_to(src).as_posix()
            if path.is_file():
                sources.append(rel)
            elif path.is_symlink():
                skipped.append((rel, "broken link (annexed content not present? run "
                                     "`datalad get` first)"))
    return sources, skipped


def _collect(result: DicomAnonymization, outcome: _Outcome, subjects: set[str]) -> None:
    if outcome.status == "written":
        result.written.append((outcome.rel, outcome.detail))
        subjects.add(outcome.subject)
    else:
        getattr(result, outcome.status).append((outcome.rel, outcome.detail))


def _flag_duplicates(result: DicomAnonymization) -> None:
    first: dict[str, str] = {}
    kept = []
    for source, output in sorted(result.written):
        if output in first:
            result.failed.append((source, f"same SOPInstanceUID as {first[output]} (both "
                                          f"become {output}); only one copy is kept"))
        else:
            first[output] = source
            kept.append((source, output))
    result.written[:] = kept


def _run_batch(task: tuple[_Job, tuple[str, ...]]) -> list[_Outcome]:
    """Worker: anonymize a batch of files (top level so process pools can pickle it)."""
    job, rels = task
    key = job.key or _load_key(job.key_path)
    recipe = _load_recipe(job.recipe)
    # pydicom logs every oddity of a file at WARNING (with the raw value, which may be an
    # identifier); a worker has no handler, so they would reach stderr. Failures are
    # reported per file instead.
    chatty = logging.getLogger("pydicom")
    level = chatty.level
    chatty.setLevel(logging.ERROR)
    try:
        with _quiet_deid(), contextlib.redirect_stdout(io.StringIO()):
            return [_one(job, key, recipe, rel) for rel in rels]
    finally:
        chatty.setLevel(level)


@lru_cache(maxsize=4)
def _load_key(path: str) -> PseudonymKey:
    return load_key(Path(path))


def _one(job: _Job, key: PseudonymKey, recipe: _Recipe, rel: str) -> _Outcome:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcome = _anonymize_file(job, key, recipe, rel)
        for warning in caught:
            logger.debug("%s: %s", rel, warning.message)
        return outcome
    except _Refused as exc:
        return _Outcome(rel, "failed", str(exc))
    except OutputExistsError:
        return _Outcome(rel, "failed", "another file of this run has the same "
                                       "SOPInstanceUID (a duplicate copy?); only one is kept")
    except OSError as exc:
        return _Outcome(rel, "failed", f"cannot read or write it: {exc}")
    except Exception as exc:  # one bad file must not stop the others; say what happened
        logger.debug("%s failed", rel, exc_info=True)
        return _Outcome(rel, "failed", f"{type(exc).__name__}: {exc}; the file may be "
                                       "corrupt (check it with `dcmdump` or pydicom)")


class _Refused(Exception):
    """A file that must not be written; the message says why and what to do."""


# --- one file ---------------------------------------------------------------------------


def _anonymize_file(job: _Job, key: PseudonymKey, recipe: _Recipe, rel: str) -> _Outcome:
    path = Path(job.src, rel)
    with path.open("rb") as handle:
        data = handle.read(132)
        if data[128:132] != b"DICM":
            return _Outcome(rel, "skipped", "not a DICOM file (no DICM prefix at byte 128)")
        data += handle.read()
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:  # any failure to parse untrusted bytes means a broken file
        raise _Refused(f"cannot read it as DICOM ({type(exc).__name__}: {exc}); the file "
                       "is corrupt or truncated: copy it again from the scanner or "
                       "archive") from None
    _check_complete(ds)
    needles = _identifiers(ds)  # raw bytes, before pydicom decodes anything
    if ds.file_meta.get("MediaStorageSOPClassUID") == DICOMDIR_SOP_CLASS or 0x00041220 in ds:
        return _Outcome(rel, "skipped", "DICOMDIR (an index that lists patient names); "
                                        "dropped, readers do not need it")
    reason = pixel_risk(ds)
    if reason is not None:
        if not job.dry_run:
            copy_file(path, Path(job.quarantine, rel))
        return _Outcome(rel, "quarantined", f"pixels may show identifiers: {reason}")
    originals = {kw: _uid_of(ds, kw) for kw in INSTANCE_UIDS}
    syntax = ds.file_meta.get("TransferSyntaxUID")
    missing = [kw for kw, value in originals.items() if not value]
    missing += [] if _uid_of(ds, "SOPClassUID") else ["SOPClassUID"]
    missing += [] if syntax else ["TransferSyntaxUID"]
    if missing:
        raise _Refused(f"lacks {', '.join(missing)}, which every DICOM image has; the file "
                       "is corrupt, incomplete or not an image")
    subject = str(ds.get("PatientID", "") or "").strip()
    if not subject:
        raise _Refused("has no PatientID, so it cannot get a pseudonym; give the source "
                       "series a PatientID before anonymizing it")
    pseudonym = key.pseudonym(subject)
    texts = recipe.apply(ds, {"ntdb_pseudonym": pseudonym,
                              "ntdb_date_shift": key.date_offset(subject).days,
                              "ntdb_uid": _uid_hook(key)})
    for tag in [tag for tag in ds.keys() if tag.is_private]:  # a recipe may ADD them
        del ds[tag]
    age = str(ds.get("PatientAge", "") or "")
    if re.fullmatch(r"\d{3}Y", age) and int(age[:3]) > 89:
        ds.PatientAge = "089Y"  # ages above 89 identify (HIPAA safe harbor)
    new = {kw: key.uid(value) for kw, value in originals.items()}
    _check_result(ds, recipe, pseudonym, new)
    if not recipe.is_project:
        _check_phi(ds, rel)  # a user's recipe: every element through phi-scan's check
    _check_free_text(_kept_text(ds, []) if texts is None else texts)
    payload = _encode(ds, syntax)
    leaked = [name for name, needle in needles if needle in payload]
    if leaked:
        raise _Refused(f"its {', '.join(sorted(set(leaked)))} would still be in the output; "
                       f"add a rule that removes it to the recipe ({recipe.path.name})")
    target = "/".join((pseudonym, new["StudyInstanceUID"], new["SeriesInstanceUID"],
                       new["SOPInstanceUID"] + ".dcm"))
    if job.fresh:
        _write_new(Path(job.out, target), payload)
    elif not job.dry_run:
        write_bytes(Path(job.out, target), payload, overwrite=job.overwrite)
    return _Outcome(rel, "written", target, subject)


def _write_new(path: Path, payload: bytes) -> None:
    """Write a file that must not exist yet, in a folder no one else sees (no temp file)."""
    try:
        try:
            handle = open(path, "xb")
        except FileNotFoundError:  # the series' first file: make its folder (once)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "xb")
        with handle:
            handle.write(payload)
    except FileExistsError:
        raise OutputExistsError(path) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _check_phi(ds: Dataset, rel: str) -> None:
    """The result must pass phi-scan's DICOM check before it is written."""
    from neurotwin_db.curation.phi._formats import ERROR, dicom_findings

    left = [i for i in dicom_findings(ds, None, None, rel, _phi_context())
            if i.severity >= ERROR]
    if left:
        first = left[0]
        raise _Refused(f"phi-scan still finds {first.code} in {first.location} "
                       f"({first.message}); add a rule that removes it to the recipe")


def _check_free_text(texts: list[bytes]) -> None:
    """No e-mail, phone number or postal address in the text elements the recipe kept.

    The project recipe removes names, dates, IDs, devices and private tags (the tests run
    the full phi-scan on its results); what it keeps on purpose (SeriesDescription,
    ProtocolName, ...) is free text, checked here in one pass over those values.
    """
    text = b"\n".join(texts)
    for what, pattern in _free_text_patterns():
        found = pattern.search(text)
        if found:
            raise _Refused(f"a kept text element holds {what} "
                           f"({found.group(0)[:1].decode('latin-1')}...); add a rule that "
                           "removes it to the recipe (or fix the source series)")


_TEXT_VRS = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})


def _append_text(raw: Any, parts: list[bytes]) -> None:
    """Add one text element's value, as bytes (raw where it is still raw)."""
    value = raw.value
    if value:
        parts.append(value if isinstance(value, bytes) else str(value).encode("utf-8"))


def _kept_text(container: Dataset, parts: list[bytes]) -> list[bytes]:
    """The values of every text element, nested ones too, as bytes (raw where still raw)."""
    for tag in container.keys():
        raw = container.get_item(tag)
        vr = _vr(raw)
        if vr in _TEXT_VRS:
            _append_text(raw, parts)
        elif vr == "SQ":
            for item in container[tag].value or ():
                _kept_text(item, parts)
    return parts


@lru_cache(maxsize=1)
def _free_text_patterns() -> list[tuple[str, re.Pattern[bytes]]]:
    from neurotwin_db.curation.phi._match import ADDRESS, EMAIL, PHONE

    return [(what, re.compile(p.pattern.encode("utf-8"), p.flags & re.IGNORECASE))
            for what, p in (("an e-mail address", EMAIL), ("a phone number", PHONE),
                            ("a postal address", ADDRESS))]


@lru_cache(maxsize=1)
def _phi_context() -> Any:
    from neurotwin_db.curation.phi import Identifiers, load_policy
    from neurotwin_db.curation.phi._formats import ScanContext

    return ScanContext(policy=load_policy(), identifiers=Identifiers())


def _check_complete(ds: Dataset) -> None:
    """Refuse a file whose last element is shorter than its declared length."""
    tags = list(ds.keys())
    raw = ds.get_item(tags[-1]) if tags else None
    if isinstance(raw, RawDataElement) and raw.length != UNDEFINED_LENGTH \
            and raw.value is not None and len(raw.value) < raw.length:
        raise _Refused(f"is truncated: element {raw.tag} declares {raw.length} bytes but "
                       f"the file ends after {len(raw.value)}; copy it again from the "
                       "scanner or archive")


def _identifiers(ds: Dataset) -> list[tuple[str, bytes]]:
    """The raw bytes of this file's patient identifiers (and name parts) to guard against."""
    needles = []
    for keyword in GUARD_KEYWORDS:
        raw = ds.get_item(_GUARD_TAGS[keyword])
        value = getattr(raw, "value", None)
        if value is None:
            continue
        if not isinstance(value, bytes):
            value = str(value).encode("utf-8", "replace")
        parts = [value, *value.replace(b"=", b"^").replace(b"\\", b"^").split(b"^")]
        for part in parts:
            part = part.strip(b" \0")
            if len(part) >= GUARD_MIN_LENGTH:
                needles.append((keyword, part))
    return needles


def _uid_hook(key: PseudonymKey) -> _UidHook:
    return _UidHook(key)


class _UidHook:
    """The recipe function ``ntdb_uid``: keyed UIDs; standard and class UIDs stay as they are.

    deid calls it with a converted element; the recipe engine hands it elements that are
    still raw bytes through :meth:`raw`, which gives the same UIDs without decoding them.
    """

    def __init__(self, key: PseudonymKey) -> None:
        self.key = key

    def __call__(self, field: Any = None, **_: Any) -> Any:
        element = field.element
        if element.keyword.endswith(CLASS_UID_SUFFIXES) or not element.value:
            return None
        values = element.value if element.VM > 1 else [element.value]
        new = [self._one(str(v)) for v in values]
        return new if element.VM > 1 else new[0]

    def raw(self, raw: RawDataElement) -> RawDataElement:
        """The element with keyed UIDs, still raw (its bytes are written as they are)."""
        if keyword_for_tag(raw.tag).endswith(CLASS_UID_SUFFIXES) or not raw.value:
            return raw
        values = raw.value.decode("ascii").rstrip("\0 ").split("\\")
        value = "\\".join(self._one(v.strip()) for v in values).encode("ascii")
        value += b"\0" * (len(value) % 2)  # UI values pad to even length with NUL
        return raw._replace(value=value, length=len(value))

    def _one(self, uid: str) -> str:
        return uid if not uid or uid.startswith(STANDARD_UID_ROOT) else self.key.uid(uid)


def _uid_of(ds: Dataset, keyword: str) -> str:
    """A UID element's value, read from its raw bytes where it is still raw (no decoding)."""
    value = getattr(ds.get_item(_UID_TAGS[keyword]), "value", None)
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip("\0 ")
    return str(value or "")


def _check_result(ds: Dataset, recipe: _Recipe, pseudonym: str, new: dict[str, str]) -> None:
    hint = f"the recipe ({recipe.path.name}) must keep the rules of the project recipe"
    if str(ds.get("PatientID", "")) != pseudonym:
        raise _Refused(f"PatientID is not the pseudonym after the recipe; {hint} "
                       "('REPLACE PatientID var:ntdb_pseudonym')")
    if str(ds.get("PatientName", "") or "") not in ("", pseudonym):
        raise _Refused(f"PatientName is neither the pseudonym nor empty; {hint}")
    for keyword, uid in new.items():
        if _uid_of(ds, keyword) != uid:
            raise _Refused(f"{keyword} is not the keyed UID after the recipe; {hint} "
                           "('REPLACE select:VR:UI func:ntdb_uid')")


def _encode(ds: Dataset, syntax: str) -> bytes:
    """The file's bytes: zero preamble, file meta rebuilt from the de-identified dataset.

    pydicom's own writers, called directly: ``dcmwrite`` would deep-copy the new file
    meta and validate it twice. The bytes are those ``save_as(...,
    enforce_file_format=True)`` writes (tested); a deflated or private transfer syntax
    still goes through it.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    uid = meta.TransferSyntaxUID
    buffer = DicomBytesIO()
    if uid.is_private or not uid.is_transfer_syntax or uid == DeflatedExplicitVRLittleEndian:
        ds.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()
    buffer.write(ds.preamble + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    if "PixelData" in ds:  # as dcmwrite: encapsulated pixel data has undefined length
        ds["PixelData"].is_undefined_length = uid.is_compressed
    buffer.is_implicit_VR, buffer.is_little_endian = uid.is_implicit_VR, uid.is_little_endian
    write_dataset(buffer, ds)
    return buffer.getvalue()


# --- the recipe -------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_deid() -> Iterator[list[str]]:
    """Silence deid's logger (it prints to stdout/stderr) and hand back what it said."""
    level, start, said = bot.level, len(bot.history), []
    bot.level = QUIET
    try:
        yield said
    finally:
        said.extend(bot.history[start:])
        del bot.history[start:]
        bot.level = level


@lru_cache(maxsize=8)
def _load_recipe(path: str) -> _Recipe:
    if not Path(path).is_file():
        raise InputError(f"deid recipe {path} does not exist; pass an existing file to "
                         "--recipe (start from a copy of the project recipe "
                         f"{PROJECT_RECIPE})")
    with _quiet_deid() as said, contextlib.redirect_stdout(io.StringIO()):
        try:
            parsed = DeidRecipe(path)
        except (Exception, SystemExit) as exc:  # deid exits or raises on bad syntax
            said.append(str(exc))
            parsed = None
    said = [re.sub(r"\x1b\[[0-9;]*m", "", message).strip() for message in said]  # colours
    problems = [m for m in said if m.startswith(("WARNING", "ERROR", "ABORT"))]
    if parsed is None or parsed.deid is None or problems or not parsed.get_actions():
        why = "; ".join(problems) or "it has no %header actions"
        raise InputError(f"deid recipe {path} cannot be used: {why}; see the deid recipe "
                         "format and schemas/deid/README.md")
    return _Recipe(Path(path), parsed)


class _Place(NamedTuple):
    """What the recipe does at one place (ancestors' tags, tag, VR as read)."""

    actions: tuple[int, ...]  # indexes into _Recipe.actions, in recipe order
    protected: bool  # named by a REPLACE or JITTER rule, so REMOVE leaves it (as in deid)
    vr: str
    name: str  # deid's nested name, e.g. ReferencedImageSequence__ReferencedSOPInstanceUID
    uid: str  # deid's nested uid, without item indexes


class _Recipe:
    """A parsed deid recipe, applied in one pass per file (or by deid's DicomParser)."""

    def __init__(self, path: Path, recipe: DeidRecipe) -> None:
        self.path, self.recipe = path, recipe
        self.is_project = path.resolve() == PROJECT_RECIPE.resolve()
        self.actions = [(a["action"].upper(), a["field"], a.get("value"))
                        for a in recipe.get_actions()]
        self.slow = _needs_deid_parser(recipe, self.actions)
        self.protected = [f for a, f, _ in self.actions if a in ("REPLACE", "JITTER")]
        self.has_keep = any(a == "KEEP" for a, _, _ in self.actions)
        self.adds: dict[int, int] = {}  # action index -> tag
        for index, (action, name, _) in enumerate(self.actions):
            if action == "ADD":
                tag = get_tag(name) or (add_tag(name) if _is_hex(name) else None)
                if tag is None:
                    raise InputError(f"deid recipe {path}: ADD {name} names no DICOM "
                                     "keyword or tag; fix the spelling")
                self.adds[index] = int(tag["tag"])
        self._places: dict[tuple[tuple[int, ...], int, str | None], _Place] = {}
        self._skip = _deid_skip_tags()
        self._shifts: dict[tuple[str, str, int], Any] = {}

    def apply(self, ds: Dataset, lookup: dict[str, Any]) -> list[bytes] | None:
        """De-identify ``ds`` in place: private tags go first, then the recipe's actions.

        Returns the values of the text elements the walk kept (the recipe's own ADD values
        aside), or None when deid's parser did the work.
        """
        if self.slow:
            _remove_private(ds)
            parser = DicomParser(ds, recipe=self.recipe)
            for name, value in lookup.items():
                parser.define(name, value)
            parser.parse()
            return None
        tags = [int(tag) for tag in ds.keys() if not tag & 0x10000]
        keep = {tag for tag in tags if self.has_keep and any(
            self.actions[i][0] == "KEEP" for i in self._place((), tag, ds.get_item(tag)).actions)}
        walked = {tag for tag in tags if tag not in keep and tag not in self._skip}
        texts: list[bytes] = []
        self._walk(ds, ds, (), keep, lookup, texts)
        created: set[int] = set()
        for index, tag in self.adds.items():  # ADDs of elements the walk did not meet
            if tag not in walked and tag not in created and self._add(ds, ds, index, tag,
                                                                        lookup):
                created.add(tag)
        return texts

    def _walk(self, ds: Dataset, container: Dataset, path: tuple[int, ...], keep: set[int],
              lookup: dict[str, Any], texts: list[bytes]) -> None:
        places, skip = self._places, self._skip
        for tag in list(container.keys()):
            number = int(tag)  # plain ints: BaseTag compares in Python, slowly
            if number & 0x10000:  # odd group: private
                del container[tag]
                continue
            if number in skip or number in keep:
                continue
            raw = container.get_item(tag)
            place = places.get((path, number, raw.VR)) or self._place(path, number, raw)
            if place.actions and not self._run(ds, container, tag, place, lookup):
                continue
            if place.vr in _TEXT_VRS:
                _append_text(container.get_item(tag), texts)
            elif place.vr == "SQ":
                for item in container[tag].value or ():
                    self._walk(ds, item, (*path, number), keep, lookup, texts)

    def _run(self, ds: Dataset, container: Dataset, tag: int, place: _Place,
             lookup: dict[str, Any], after: int = -1) -> bool:
        """Apply the actions that name one element, in recipe order; False if it is gone."""
        present = True
        for index in place.actions:
            action, _, value = self.actions[index]
            if index <= after:
                continue
            if action == "ADD":
                present = self._add(ds, container, index, tag, lookup, run_rest=False)
                continue
            if not present or action == "KEEP":
                continue
            if action == "REMOVE":
                if not place.protected:
                    del container[tag]
                    present = False
            elif action == "BLANK":
                container[tag].value = None
            elif action == "REPLACE" and _raw_uid(container, tag, value, lookup):
                continue
            elif action == "JITTER" and self._raw_jitter(container, tag, place, value, lookup):
                continue
            else:
                dfield = DicomField(container[tag], place.name, place.uid)
                if action == "JITTER":
                    if not dfield.element.value:
                        continue
                    days = parse_value(item=lookup, dicom=ds, value=value, field=dfield,
                                       funcs=deid_funcs)
                    value = None if days is None else self._shift(dfield, days)
                    if value in (None, ""):
                        continue
                new = parse_value(item=lookup, dicom=ds, value=value, field=dfield,
                                  funcs=deid_funcs)
                if new is not None:
                    dfield.element.value = new
        return present

    def _raw_jitter(self, container: Dataset, tag: int, place: _Place, value: Any,
                    lookup: dict[str, Any]) -> bool:
        """JITTER a still-raw date whose shift is already known, on its bytes; else False.

        The first time a date is met it takes deid's path (which fills the cache); the same
        date in later files is shifted here without decoding the element.
        """
        raw = container.get_item(tag)
        if not (isinstance(raw, RawDataElement) and isinstance(value, str)
                and value[:4].lower() == "var:" and place.vr in ("DA", "DT")):
            return False
        text = (raw.value or b"").decode("ascii", "replace").strip("\0 ")
        days = lookup.get(value[4:])
        if not text or days is None:
            return True  # nothing to shift, or no such variable: deid leaves it too
        shifted = self._shifts.get((place.vr, text, int(days)), _UNKNOWN)
        if shifted is _UNKNOWN:
            return False
        if shifted not in (None, ""):
            encoded = str(shifted).encode("ascii")
            encoded += b" " * (len(encoded) % 2)  # DA/DT values pad to even length
            container[tag] = raw._replace(value=encoded, length=len(encoded))
        return True

    def _add(self, ds: Dataset, container: Dataset, index: int, tag: int,
             lookup: dict[str, Any], run_rest: bool = True) -> bool:
        name = self.actions[index][1]
        value = parse_value(item=lookup, value=self.actions[index][2], field=name, dicom=ds,
                            funcs=deid_funcs)
        if value is None:
            return tag in container
        if tag in container:
            container[tag].value = value
        else:
            vr = dictionary_VR(tag) if keyword_for_tag(tag) else "ST"
            container[tag] = DataElement(tag, vr, value)
        if run_rest:  # a new element meets the actions after its ADD, as in deid
            place = self._place((), tag, container.get_item(tag))
            self._run(ds, container, tag, place, lookup, after=index)
        return True

    def _place(self, path: tuple[int, ...], tag: int, raw: Any) -> _Place:
        """Ask deid which actions name an element at this place (once per place)."""
        known = self._places.get((path, tag, raw.VR))
        if known is not None:
            return known
        vr = _vr(raw)
        element = DataElement(tag, vr, None)
        name = "__".join([keyword_for_tag(t) for t in path] + [element.keyword])
        uid = "__*__".join(str(Tag(t)) for t in (*path, tag))
        fields = FieldsWithLookups({uid: DicomField(element, name, uid)})
        exact = {key for table in fields.lookup_tables.values() for key in table}

        def names(expression: str) -> bool:
            if ":" not in expression and expression.lower() != "all":
                return expression.lower() in exact  # deid's exact match, without the lists
            return bool(expand_field_expression(expression, None, fields))

        actions = tuple(i for i, (action, expr, _) in enumerate(self.actions)
                        if (action == "ADD" and not path and self.adds[i] == tag)
                        or (action != "ADD" and names(expr)))
        place = _Place(actions, any(names(expr) for expr in self.protected), vr, name, uid)
        self._places[(path, tag, raw.VR)] = place
        return place

    def _shift(self, dfield: DicomField, days: Any) -> Any:
        """Shift a date with deid's jitter (cached: the same dates recur in many files)."""
        memo = (dfield.element.VR, str(dfield.element.value), int(days))
        if memo not in self._shifts:
            if len(self._shifts) > 100_000:
                self._shifts.clear()
            try:
                self._shifts[memo] = jitter_timestamp(field=dfield, value=days)
            except (ValueError, OverflowError) as exc:
                raise _Refused(f"cannot shift the date {dfield.element.value!r} in "
                               f"{dfield.element.keyword or dfield.element.tag} ({exc}); add "
                               f"'BLANK {dfield.element.keyword}' before the JITTER rules "
                               "of a custom recipe (--recipe)") from None
        return self._shifts[memo]


def _needs_deid_parser(recipe: DeidRecipe, actions: list[tuple[str, str, Any]]) -> bool:
    if recipe.get_values_lists() or recipe.get_fields_lists():
        return True
    for action, target, value in actions:
        if target.lower().startswith(("values:", "fields:")) or "__" in target:
            return True
        if action == "REMOVE" and value:
            return True
    return False


def _raw_uid(container: Dataset, tag: int, value: Any, lookup: dict[str, Any]) -> bool:
    """Apply ``func:ntdb_uid`` to a still-raw element without decoding it; False if not."""
    hook = lookup.get(value[5:]) if isinstance(value, str) and value[:5] == "func:" else None
    raw = container.get_item(tag)
    if not isinstance(hook, _UidHook) or not isinstance(raw, RawDataElement):
        return False
    container[tag] = hook.raw(raw)
    return True


def _vr(raw: Any) -> str:
    """The VR pydicom gives an element once read (explicit, else from the dictionary)."""
    vr = raw.VR
    if vr is None or vr == "UN":
        vr = dictionary_VR(raw.tag) if dictionary_has_tag(raw.tag) else (vr or "UN")
    return vr


def _is_hex(name: str) -> bool:
    return len(name) == 8 and all(c in "0123456789abcdefABCDEF" for c in name)


def _remove_private(ds: Dataset) -> None:
    for tag in list(ds.keys()):
        if tag.is_private:
            del ds[tag]
        elif _vr(ds.get_item(tag)) == "SQ":
            for item in ds[tag].value or ():
                _remove_private(item)


@lru_cache(maxsize=1)
def _deid_skip_tags() -> frozenset[int]:
    """The elements deid never touches (its config.json ``get.skip``: pixel data, LUTs)."""
    config = json.loads((files("deid.dicom") / "config.json").read_text(encoding="utf-8"))
    tags = (tag_for_keyword(keyword) for keyword in config["get"]["skip"])
    return frozenset(tag for tag in tags if tag is not None)
