"""Pure anonymization rules: new names, scrubbed sidecars and tables, clean NIfTI headers.

Every function takes content and returns new content plus a list of what changed, so a
plan can show the changes before anything is written.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from neurotwin_db.curation.phi import Policy
from neurotwin_db.errors import InputError

AGE_CAP = 89
_SUBJECT = re.compile(r"sub-([A-Za-z0-9]+)")
_SESSION_DATE = re.compile(r"ses-((?:19|20)\d{6})(?![A-Za-z0-9])")
_INLINE_DATETIME = re.compile(r"(?<!\d)(?:19|20)\d\d-[01]\d-[0-3]\d(?:T\d\d:\d\d(?::\d\d"
                              r"(?:\.\d+)?)?)?(?!\d)")
_TEXT_DATE = re.compile(r"(?<![\d.])(?:(?:19|20)\d\d-[01]\d-[0-3]\d|[0-3]?\d\.[01]?\d\."
                        r"(?:19|20)\d\d)(?!\d)")
_DATETIME = re.compile(r"^(\d{4}-\d\d-\d\d)(T\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)?$")


def subject_of(rel: str) -> str | None:
    """The subject label a BIDS path belongs to (from its ``sub-`` folder or name)."""
    found = _SUBJECT.search(rel)
    return found.group(1) if found else None


def replace_labels(text: str, subjects: Mapping[str, str],
                   shift: timedelta | None = None) -> str:
    """Replace every ``sub-<label>`` with its pseudonym (whole labels only).

    Session labels that are dates (``ses-20250513``) move by ``shift``, like every other
    date of the subject; without a shift they are left for phi-scan to report.
    """
    def swap(match: re.Match[str]) -> str:
        label = match.group(1)
        return f"sub-{subjects[label]}" if label in subjects else match.group(0)

    def move(match: re.Match[str]) -> str:
        try:
            day = datetime.strptime(match.group(1), "%Y%m%d")
        except ValueError:
            return match.group(0)
        return f"ses-{day + shift:%Y%m%d}" if shift is not None else match.group(0)

    return _SESSION_DATE.sub(move, _SUBJECT.sub(swap, text))


def shift_inline_dates(text: str, shift: timedelta) -> str:
    """Move every ISO date or datetime written inside free text by ``shift``."""
    return _INLINE_DATETIME.sub(lambda m: shift_datetime(m.group(0), shift) or m.group(0),
                                text)


def scrub_text(text: str, *, keep_dates: bool = False) -> tuple[str, list[str]]:
    """Remove e-mail and postal addresses, phone numbers (and dates) from free text."""
    from neurotwin_db.curation.phi._match import ADDRESS, EMAIL, PHONE

    notes = []
    patterns = [("e-mail address", EMAIL), ("phone number", PHONE), ("address", ADDRESS)]
    if not keep_dates:
        patterns.append(("date", _TEXT_DATE))
    for what, pattern in patterns:
        text, count = pattern.subn(f"[{what} removed]", text)
        if count:
            notes.append(f"remove {count} {what}(es)" if what.endswith("ss") else
                         f"remove {count} {what}(s)")
    return text, notes


def shift_datetime(value: str, shift: timedelta) -> str | None:
    """``value`` moved by ``shift`` in the same ISO format, or None if it is not a date."""
    found = _DATETIME.match(value.strip())
    if not found:
        return None
    day, clock, _, _, zone = found.groups()
    if clock is None:
        return (datetime.fromisoformat(day) + shift).date().isoformat() + (zone or "")
    text = value.strip()[: len(day) + len(clock)]
    moved = datetime.fromisoformat(text) + shift
    fraction = found.group(4)
    out = moved.strftime("%Y-%m-%dT%H:%M" + (":%S" if found.group(3) else ""))
    if fraction:
        out += f".{moved.microsecond:06d}"[: len(fraction)]
    return out + (zone or "")


def scrub_sidecar(data: Mapping[str, Any], *, allowed: frozenset[str], policy: Policy,
                  shift: timedelta | None, subjects: Mapping[str, str]
                  ) -> tuple[dict[str, Any], list[str]]:
    """Keep BIDS-defined and allowed keys minus the deny list; shift or drop dates."""
    out: dict[str, Any] = {}
    notes = []
    for key, value in data.items():
        if key in policy.deny_keys:
            notes.append(f"drop {key} (identifying)")
            continue
        if key not in allowed and key not in policy.allow_keys:
            notes.append(f"drop {key} (not a BIDS field)")
            continue
        new, why = _scrub_value(value, shift, subjects)
        if why == "drop":
            notes.append(f"drop {key} (a date with no subject to shift it by)")
            continue
        if why:
            notes.append(f"{why} {key}")
        out[key] = new
    return out, notes


def _scrub_value(value: Any, shift: timedelta | None, subjects: Mapping[str, str]
                 ) -> tuple[Any, str]:
    if isinstance(value, str):
        moved = shift_datetime(value, shift) if shift is not None else None
        if moved is not None:
            return moved, "shift"
        if shift is None and _INLINE_DATETIME.search(value):
            return value, "drop"
        new = replace_labels(value, subjects, shift)
        if shift is not None:
            new = shift_inline_dates(new, shift)
        return new, "relabel or shift dates in" if new != value else ""
    if isinstance(value, list):
        items = [_scrub_value(v, shift, subjects) for v in value]
        return [v for v, why in items if why != "drop"], _summary(w for _, w in items)
    if isinstance(value, dict):
        pairs = {k: _scrub_value(v, shift, subjects) for k, v in value.items()}
        return ({k: v for k, (v, why) in pairs.items() if why != "drop"},
                _summary(w for _, w in pairs.values()))
    return value, ""


def _summary(whys: Iterable[str]) -> str:
    """What happened inside a list or object (a dropped item does not drop the container)."""
    found = [w for w in whys if w]
    return "shift or drop dates in" if "drop" in found else (found[0] if found else "")


def column_sidecar(data: Mapping[str, Any], *, policy: Policy
                   ) -> tuple[dict[str, Any], list[str]]:
    """A table's JSON (participants.json, events.json...): drop denied columns' entries."""
    out = {k: v for k, v in data.items() if not policy.denies_column(k)}
    notes = [f"drop column description {k} (identifying)" for k in data if k not in out]
    if isinstance(out.get("age"), dict):
        out["age"] = {**out["age"], "Maximum": AGE_CAP}
    return out, notes


def anonymize_table(text: str, rel: str, *, policy: Policy, subjects: Mapping[str, str],
                    shifts: Mapping[str, timedelta], name_tables: frozenset[str] = frozenset()
                    ) -> tuple[str, list[str]]:
    """Drop identifying columns, cap ages at 89, shift dates and relabel subjects in a TSV.

    ``shifts`` maps each real subject label to its offset; a row's subject comes from its
    ``participant_id`` or from the file's own path.
    """
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if not rows:
        return text, []
    header, body = rows[0], rows[1:]
    suffix = PurePosixPath(rel).name.split(".")[0].rsplit("_", 1)[-1]
    keep = [i for i, col in enumerate(header)
            if not policy.denies_column(col) or (col == "name" and suffix in name_tables)]
    notes = [f"drop column {header[i]} (identifying)" for i in range(len(header))
             if i not in keep]
    owner = subject_of(rel)
    dated = {header[i] for i in keep if policy.is_date_column(header[i]) or _all_dates(
        [row[i] for row in body if i < len(row)])}  # e.g. absolute times in events.tsv
    out_rows = [[header[i] for i in keep]]
    changed = {"shift": 0, "cap": 0}
    for row in body:
        row = row + [""] * (len(header) - len(row))
        label = subject_of(row[header.index("participant_id")]) if \
            "participant_id" in header else owner
        new = []
        for i in keep:
            col, value = header[i], row[i]
            if col in dated and value not in ("", "n/a"):
                if label not in shifts:
                    raise InputError(f"{rel}: column {col} holds a date in a row with no "
                                     "known subject; add participant_id or move the file "
                                     "under its sub- folder")
                moved = shift_datetime(value, shifts[label])
                if moved is None:
                    raise InputError(f"{rel}: column {col} value {value!r} is not an ISO "
                                     "date/time (YYYY-MM-DDThh:mm:ss); fix it, then re-run")
                value, changed["shift"] = moved, changed["shift"] + 1
            elif col == "age" and _over(value):
                value, changed["cap"] = str(AGE_CAP), changed["cap"] + 1
            new.append(replace_labels(value, subjects, shifts.get(label or "")))
        out_rows.append(new)
    if changed["shift"]:
        notes.append(f"shift {changed['shift']} date(s)")
    if changed["cap"]:
        notes.append(f"cap {changed['cap']} age(s) at {AGE_CAP}")
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t", lineterminator="\n").writerows(out_rows)
    return buffer.getvalue(), notes


def _all_dates(values: list[str]) -> bool:
    """Whether a column holds nothing but ISO dates/datetimes (and n/a)."""
    present = [v for v in values if v not in ("", "n/a")]
    return bool(present) and all(_DATETIME.match(v.strip()) for v in present)


def _over(value: str) -> bool:
    try:
        return float(value.rstrip("+")) > AGE_CAP
    except ValueError:
        return False


NIFTI_TEXT_FIELDS = ("descrip", "aux_file", "intent_name", "db_name")


def clean_nifti(data: bytes) -> tuple[bytes, list[str]]:
    """Clear the NIfTI text fields and drop header extensions; voxel bytes stay identical.

    ``data`` is the whole file (decompressed). Works on NIfTI-1 and NIfTI-2 single files.
    """
    import nibabel as nib

    sizes = {int.from_bytes(data[:4], "little"), int.from_bytes(data[:4], "big")}
    klass = nib.Nifti2Header if 540 in sizes else nib.Nifti1Header
    size = klass.sizeof_hdr
    try:
        header = klass.from_fileobj(io.BytesIO(data), check=False)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad headers
        raise InputError(f"not a NIfTI header ({exc})") from None
    notes = []
    for name in NIFTI_TEXT_FIELDS:
        if name in header and bytes(header[name].item()).strip(b"\0 "):
            header[name] = b""
            notes.append(f"clear {name}")
    offset = int(header["vox_offset"])
    if header.extensions:
        notes.append(f"drop {len(header.extensions)} header extension(s)")
        header.extensions.clear()
    if not notes:
        return data, []
    new_offset = size + 4
    header["vox_offset"] = new_offset
    block = header.binaryblock + b"\0\0\0\0"
    return block + data[offset:], notes


def gzip_bytes(data: bytes) -> bytes:
    """Compress deterministically (no file name, mtime 0): same input, same bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", filename="", mtime=0) as handle:
        handle.write(data)
    return buffer.getvalue()
