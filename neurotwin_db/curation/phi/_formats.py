"""One reader per file format: each returns the identifiers it finds as ``Issue`` objects."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from neurotwin_db.curation.phi._match import (
    COMPACT_DATE,
    ISO_DATE,
    PERSON_NAME,
    PSEUDONYM,
    Identifiers,
    free_text_hits,
    looks_like_date,
    mask,
)
from neurotwin_db.curation.phi._policy import Policy
from neurotwin_db.report import Issue, Severity

ERROR, WARNING, HINT = Severity.ERROR, Severity.WARNING, Severity.HINT
HINT_ANONYMIZE = "ntdb anonymize DATASET --out SHAREABLE"
MAX_TEXT_BYTES = 20 * 1024 * 1024
# Keys whose values name software, hardware or the dataset, not a participant.
_DESCRIPTIVE_KEYS = frozenset({"Name", "Authors", "Funding", "Acknowledgements",
                               "HowToAcknowledge", "ReferencesAndLinks", "EthicsApprovals",
                               "License", "DatasetDOI",
                               "GeneratedBy", "SourceDatasets", "CodeURL", "Version",
                               "Description", "URL", "DOI"})


@dataclass(frozen=True)
class ScanContext:
    """What every reader needs: the policy, the known identifiers and the dataset state."""

    policy: Policy
    identifiers: Identifiers
    dates_shifted: bool = False
    schema_keys: frozenset[str] = frozenset()


def finding(code: str, severity: Severity, rel: str, message: str, *,
            location: str | None = None, value: Any = None,
            hint: str | None = HINT_ANONYMIZE) -> Issue:
    """An Issue for ``rel`` with the offending value masked."""
    return Issue(code, severity, message, PurePosixPath(rel), hint,
                 location=location, value=None if value is None else mask(str(value)))


def check_value(value: str, rel: str, location: str, ctx: ScanContext, *,
                severity: Severity = ERROR, dates: bool = False) -> list[Issue]:
    """Known identifiers, contact details, LAST^FIRST names (and dates, if asked) in a value."""
    issues = []
    hit = ctx.identifiers.find(value)
    if hit is not None:
        issues.append(finding("PHI_KNOWN_IDENTIFIER", ERROR, rel,
                              f"holds {article(hit.kind)} from the identifiers list",
                              location=location, value=hit.matched))
    for hit in free_text_hits(value):
        # a caret is also how DICOM splits descriptions ("Research^Brain"): only PN
        # elements (checked apart) are names for sure
        level = WARNING if hit.kind.startswith("person name") else severity
        issues.append(finding("PHI_PATTERN", level, rel, f"looks like {article(hit.kind)}",
                              location=location, value=hit.matched))
    if dates and not ctx.dates_shifted:
        day = looks_like_date(value)
        if day and _is_path(value):
            issues.append(finding("PHI_DATE_NOT_SHIFTED", WARNING, rel,
                                  "refers to a file whose name holds a date",
                                  location=location, value=day))
        elif day:
            issues.append(finding("PHI_DATE_NOT_SHIFTED", ERROR, rel,
                                  "holds an absolute date and the dataset's dates are not "
                                  "marked as shifted", location=location, value=day))
    return issues


def article(noun: str) -> str:
    """``noun`` with "a" or "an" before it."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _is_path(value: str) -> bool:
    return "sub-" in value or ("/" in value and " " not in value.strip())


def is_date_value(value: str) -> bool:
    """Whether a whole value is a date or datetime (not a name that contains one)."""
    return bool(ISO_DATE.match(value.strip()) or COMPACT_DATE.fullmatch(value.strip()))


# --- DICOM -------------------------------------------------------------------------------

_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"})
# Only these can hold free text (numbers, codes, times and UIDs cannot hold a name).
_TEXT_VRS = frozenset({"LO", "SH", "LT", "ST", "UT", "UC", "UR", "AE"})
_ANONYMOUS = frozenset({"", "ANONYMOUS", "ANON", "REMOVED", "X", "NONE", "N/A"})
_PATIENT_AGE = 0x00101010


def _elements(ds: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every element with the path of the sequences above it (its own tag not included)."""
    for elem in ds:
        yield prefix, elem
        if elem.VR == "SQ" and elem.value:
            for i, item in enumerate(elem.value):
                yield from _elements(item, f"{_where(prefix, elem)}[{i}] > ")


def _where(prefix: str, elem: Any) -> str:
    return f"{prefix}({elem.tag.group:04X},{elem.tag.element:04X}) {elem.keyword or '?'}"


@lru_cache(maxsize=8)
def _deny_tags(keywords: frozenset[str]) -> frozenset[int]:
    from pydicom.datadict import tag_for_keyword

    return frozenset(t for t in map(tag_for_keyword, keywords) if t is not None)


def _check_complete(ds: Any, path: Path) -> None:
    """Raise EOFError for a truncated file (pydicom stops quietly at the end of a file)."""
    if len(ds) == 0:
        raise EOFError("no data elements after the file meta header (truncated?)")
    raw = ds.get_item("PixelData") if "PixelData" in ds else None
    tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
    if tell is not None and length not in (None, 0xFFFFFFFF) and \
            tell + length > path.stat().st_size:
        raise EOFError(f"pixel data needs {length} bytes at offset {tell}, past the end of "
                       "the file (truncated)")


def scan_dicom(path: Path, rel: str, ctx: ScanContext) -> list[Issue]:
    """Every element of a DICOM file (nested sequences and private tags too), and pixel risk."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from neurotwin_db.curation.phi._pixels import pixel_risk

    try:
        ds = pydicom.dcmread(path, defer_size="4 KB")
        _check_complete(ds, path)
        risk = pixel_risk(ds)
        elements = list(_elements(ds))
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        return [unreadable(rel, "DICOM", exc)]
    return dicom_findings(ds, elements, risk, rel, ctx)


def dicom_findings(ds: Any, elements: list[tuple[str, Any]] | None, risk: str | None,
                   rel: str, ctx: ScanContext) -> list[Issue]:
    """The findings for a DICOM dataset already in memory (``elements`` from its walk)."""
    elements = list(_elements(ds)) if elements is None else elements
    issues = []
    if risk:
        issues.append(finding("PHI_PIXEL_RISK", ERROR, rel,
                              f"pixels may show identifiers: {risk}",
                              hint="quarantine it: ntdb anonymize-dicom SRC OUT"))
    identity_removed = str(ds.get("PatientIdentityRemoved", "")).upper() == "YES"
    dates_ok = ctx.dates_shifted or str(
        ds.get("LongitudinalTemporalInformationModified", "")).upper() in {"MODIFIED", "REMOVED"}
    private = []
    deny = _deny_tags(ctx.policy.dicom_deny_keywords)
    for prefix, elem in elements:
        tag, vr = elem.tag, elem.VR
        if tag.is_private:
            if vr != "SQ" and not tag.is_private_creator:
                private.append(_where(prefix, elem))
            continue
        if vr in _BINARY_VRS or tag.group == 0x7FE0 or elem.value is None:
            continue
        if vr not in _TEXT_VRS and vr not in ("PN", "DA", "DT", "AS") and tag not in deny \
                and not ctx.identifiers:
            continue  # numbers, codes, times and UIDs
        text = str(elem.value).strip()
        if not text:
            continue
        where = _where(prefix, elem)
        pseudonymous = identity_removed and PSEUDONYM.match(text)
        if vr == "PN":
            if text.upper() not in _ANONYMOUS and not pseudonymous:
                issues.append(finding("PHI_DICOM_NAME", ERROR, rel, "holds a person's name",
                                      location=where, value=text))
        elif vr in ("DA", "DT"):
            if not dates_ok:
                issues.append(finding("PHI_DICOM_DATE", ERROR, rel,
                                      "holds a date that is not marked as shifted",
                                      location=where, value=text))
        elif tag == _PATIENT_AGE:
            if _years(text) > 89:
                issues.append(finding("PHI_AGE_OVER_89", ERROR, rel, "ages above 89 identify",
                                      location=where, value=text))
        elif tag in deny:
            if not pseudonymous and text.upper() not in _ANONYMOUS:
                issues.append(finding("PHI_DICOM_ELEMENT", ERROR, rel,
                                      f"{elem.keyword} identifies a person, site or device",
                                      location=where, value=text))
        elif vr in _TEXT_VRS:
            issues += check_value(text, rel, where, ctx)
            continue
        if ctx.identifiers:
            issues += [i for i in check_value(text, rel, where, ctx)
                       if i.code == "PHI_KNOWN_IDENTIFIER"]
    if private:
        issues.append(finding("PHI_DICOM_PRIVATE_TAGS", ERROR, rel,
                              f"{len(private)} private element(s) can hold anything, "
                              "identifiers included", location="; ".join(private[:3]) +
                              ("; ..." if len(private) > 3 else ""),
                              hint="ntdb anonymize-dicom SRC OUT (removes all private tags)"))
    return issues


def _years(age: str) -> float:
    """A DICOM AS value (``095Y``, ``030M``) in years; 0 when it cannot be read."""
    try:
        number, unit = int(age[:-1]), age[-1].upper()
    except (ValueError, IndexError):
        return 0.0
    return number / {"Y": 1, "M": 12, "W": 52.18, "D": 365.25}.get(unit, 1e9)


# --- NIfTI -------------------------------------------------------------------------------

NIFTI_TEXT_FIELDS = ("descrip", "aux_file", "intent_name", "db_name")


def scan_nifti(path: Path, rel: str, ctx: ScanContext) -> list[Issue]:
    """The NIfTI text fields and header extensions."""
    import nibabel as nib

    try:
        header = nib.load(path).header
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad files
        return [unreadable(rel, "NIfTI", exc)]
    issues = []
    for name in NIFTI_TEXT_FIELDS:
        if name not in header:
            continue
        text = bytes(header[name].item()).split(b"\0")[0].decode("latin-1").strip()
        if not text:
            continue
        found = check_value(text, rel, f"header {name}", ctx, dates=True)
        issues += found or [finding("PHI_NIFTI_TEXT", WARNING, rel,
                                    "free text in the header may identify the participant",
                                    location=f"header {name}", value=text)]
    for i, ext in enumerate(getattr(header, "extensions", []) or []):
        content = ext.get_content() if hasattr(ext, "get_content") else ext._content
        raw = content if isinstance(content, bytes) else str(content).encode()
        issues.append(finding("PHI_NIFTI_EXTENSION", ERROR, rel,
                              f"header extension (code {ext.get_code()}, {len(raw)} bytes) can "
                              "hold a whole DICOM header", location=f"extension {i}"))
        issues += check_value(raw.decode("latin-1"), rel, f"extension {i}", ctx, dates=True)
    return issues


# --- JSON --------------------------------------------------------------------------------

_SUSPECT_KEY_WORDS = ("serial", "patient", "birth", "address", "phone", "email", "e-mail",
                      "operator", "physician", "technician", "experimenter", "institution")


def scan_json(path: Path, rel: str, ctx: ScanContext) -> list[Issue]:
    """Denied keys, and values that look like names, dates, addresses, phones or serials."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [unreadable(rel, "JSON", exc)]
    description = PurePosixPath(rel).name == "dataset_description.json"
    issues: list[Issue] = []
    for keypath, key, value in _walk_json(data):
        if _empty(value):
            continue
        if key in ctx.policy.deny_keys and key not in _DESCRIPTIVE_KEYS:
            issues.append(finding("PHI_JSON_KEY", ERROR, rel,
                                  f"{key} identifies a person, site or device",
                                  location=keypath, value=value))
            continue
        known = key in ctx.schema_keys or key in ctx.policy.allow_keys
        if not known and any(w in key.lower() for w in _SUSPECT_KEY_WORDS):
            issues.append(finding("PHI_JSON_KEY", ERROR, rel,
                                  f"{key} is not a BIDS field and its name suggests an "
                                  "identifier", location=keypath, value=value))
            continue
        if not isinstance(value, str):
            continue
        soft = description or key in _DESCRIPTIVE_KEYS
        versioned = key.endswith(("Software", "SoftwareVersion", "SoftwareVersions", "Version"))
        issues += check_value(value, rel, keypath, ctx, severity=WARNING if soft else ERROR,
                              dates=not (soft or versioned))
        if not known and not soft and PERSON_NAME.match(value.strip()):
            issues.append(finding("PHI_NAME_LIKE", WARNING, rel,
                                  f"{key} is not a BIDS field and its value looks like a "
                                  "person's name", location=keypath, value=value))
    return issues


def _walk_json(node: Any, keypath: str = "", key: str = "") -> Iterator[tuple[str, str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            path = f"{keypath}.{k}" if keypath else str(k)
            yield path, str(k), v
            if isinstance(v, dict | list):
                yield from _walk_json(v, path, str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            path = f"{keypath}[{i}]"
            if isinstance(v, dict | list):
                yield from _walk_json(v, path, key)
            else:
                yield path, key, v


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


# --- TSV ---------------------------------------------------------------------------------


def scan_tsv(path: Path, rel: str, ctx: ScanContext) -> list[Issue]:
    """Identifying columns, unshifted dates, ages over 89 and identifiers in cells."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else \
            path.read_bytes()
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter="\t"))
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile, csv.Error) as exc:
        return [unreadable(rel, "TSV", exc)]
    if not rows:
        return []
    headerless = path.name.endswith(".gz")  # physio/stim .tsv.gz: columns are in the JSON
    header = [f"column {i + 1}" for i in range(len(rows[0]))] if headerless else rows[0]
    body = rows if headerless else rows[1:]
    issues: list[Issue] = []
    for c, column in enumerate(header):
        values = [(r, row[c]) for r, row in enumerate(body, start=2 - headerless)
                  if c < len(row) and row[c] not in ("", "n/a")]
        if not values:
            continue
        if not headerless and ctx.policy.denies_column(column) and not (
                column == "name" and _suffix(rel) in ctx.policy.name_column_tables):
            issues += [finding("PHI_TSV_COLUMN", ERROR, rel,
                               f"column {column!r} holds direct identifiers",
                               location=f"column {column}, row {row}", value=value)
                       for row, value in values]
            continue
        issues += _tsv_column(rel, column, values, ctx)
    return issues


def _suffix(rel: str) -> str:
    return PurePosixPath(rel).name.split(".")[0].rsplit("_", 1)[-1]


def _tsv_column(rel: str, column: str, values: list[tuple[int, str]],
                ctx: ScanContext) -> list[Issue]:
    issues = []
    dated = [(r, v) for r, v in values if is_date_value(v)]
    if dated and not ctx.dates_shifted and (ctx.policy.is_date_column(column)
                                            or len(dated) == len(values)):
        row, value = dated[0]
        issues.append(finding("PHI_DATE_NOT_SHIFTED", ERROR, rel,
                              f"column {column!r} holds {len(dated)} absolute date(s) and the "
                              "dataset's dates are not marked as shifted",
                              location=f"column {column}, row {row}", value=value))
    if column.lower() == "age":
        for row, value in values:
            try:
                old = float(value.rstrip("+")) > 89
            except ValueError:
                continue
            if old:
                issues.append(finding("PHI_AGE_OVER_89", ERROR, rel,
                                      "ages above 89 identify; cap them at 89",
                                      location=f"column age, row {row}", value=value))
    for row, value in values:
        if _numeric(value):
            continue
        issues += [i for i in check_value(value, rel, f"column {column}, row {row}", ctx)]
    return issues


def _numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


# --- EEG headers, HDF5, text ---------------------------------------------------------------

_EEG_ERROR_KINDS = {"name": "a name", "birthdate": "a birth date", "id": "an ID",
                    "person": "a member of staff's name", "device": "a device identifier",
                    "text": "free text"}


def scan_eeg(path: Path, rel: str, ctx: ScanContext) -> list[Issue]:
    """EDF/BDF, BrainVision, FIF and EEGLAB header fields."""
    from neurotwin_db.curation.anonymize.eeg import eeg_header_fields, is_event_field
    from neurotwin_db.errors import NeurotwinError

    try:
        fields = eeg_header_fields(path)
    except NeurotwinError as exc:
        return [unreadable(rel, "EEG", exc)]
    issues = []
    for field in fields:
        if is_event_field(field):  # event labels are data (events.tsv): checked as text
            issues += check_value(field.value, rel, field.location, ctx)
        elif field.kind in _EEG_ERROR_KINDS:
            issues.append(finding("PHI_EEG_HEADER", ERROR, rel,
                                  f"the header holds {_EEG_ERROR_KINDS[field.kind]}",
                                  location=field.location,
                                  value=field.value))
        elif field.kind == "date" and not ctx.dates_shifted:
            issues.append(finding("PHI_DATE_NOT_SHIFTED", ERROR, rel,
                                  "the recording date is not marked as shifted",
                                  location=field.location, value=field.value))
        else:
            issues += [i for i in check_value(field.value, rel, field.location, ctx)
                       if i.code == "PHI_KNOWN_IDENTIFIER"]
    return issues


def scan_hdf5(path: Path, rel: str, ctx: ScanContext) -> list[Issue]:
    """String attributes and small string datasets of an HDF5 file (NWB)."""
    import h5py
    import numpy as np

    issues: list[Issue] = []

    def visit(name: str, obj: Any) -> None:
        if name.startswith("specifications"):
            return  # NWB caches its own schema here (with the schema authors' addresses)
        for key, value in obj.attrs.items():
            issues.extend(_hdf5_value(value, rel, f"{name or '/'}@{key}", ctx))
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in ("S", "O", "U") and \
                obj.size <= 1000:
            for value in np.ravel(obj[()]):
                issues.extend(_hdf5_value(value, rel, name, ctx))

    try:
        with h5py.File(path, "r") as handle:
            visit("", handle)
            handle.visititems(visit)
    except (OSError, ValueError) as exc:
        return [unreadable(rel, "HDF5", exc)]
    return issues


def _hdf5_value(value: Any, rel: str, location: str, ctx: ScanContext) -> list[Issue]:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str) or not value.strip():
        return []
    issues = check_value(value, rel, location, ctx)
    leaf = location.rsplit("/", 1)[-1].lower()
    if "experimenter" in leaf:
        issues.append(finding("PHI_PERSON", WARNING, rel,
                              "names a member of staff (personal data, not a participant's)",
                              location=location, value=value))
    return issues


def scan_text(path: Path, rel: str, ctx: ScanContext) -> list[Issue]:
    """Contact details and known identifiers in README, code and other text files."""
    try:
        raw = path.read_bytes()[:MAX_TEXT_BYTES]
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return [unreadable(rel, "text", exc)]
    text = raw.decode("utf-8", "replace")
    issues = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            issues += check_value(line, rel, f"line {number}", ctx, severity=WARNING)
    return issues


def unreadable(rel: str, kind: str, exc: BaseException) -> Issue:
    """A file the scanner could not read: never a silent pass."""
    return finding("PHI_UNREADABLE", ERROR, rel,
                   f"cannot be read as {kind} ({type(exc).__name__}: {exc}); it was not "
                   "scanned", hint="repair or remove the file, then scan again")
