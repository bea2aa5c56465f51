"""EDF/BDF (and EDF+/BDF+) headers: list their identifying fields, write anonymized copies.

Only the 256-byte main header is rewritten; signal headers and data records are copied
byte for byte.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from neurotwin_db.curation.anonymize.eeg._common import EVENT_PREFIX, _unreadable
from neurotwin_db.errors import InputError

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_EDF_YEARS = (1985, 2084)
_EDF_PATIENT = (("code", "id"), ("sex", "sex"), ("birthdate", "birthdate"), ("name", "name"))
_EDF_RECORDING = (("startdate", "date"), ("admincode", "id"), ("technician", "person"),
                  ("equipment", "device"))


@dataclass(frozen=True)
class _EdfLayout:
    kind: str  # "EDF" or "BDF"
    plus: bool  # EDF+/BDF+ (structured patient/recording subfields)
    header: str  # the 256-byte main header, latin-1
    header_bytes: int
    record_bytes: int
    n_records: int
    annotations: tuple[tuple[int, int], ...]  # (offset in record, length) per channel


def _read_edf_layout(path: Path) -> _EdfLayout:
    kind = "BDF" if path.suffix.lower() == ".bdf" else "EDF"
    with path.open("rb") as handle:
        head = handle.read(256)
        if len(head) < 256:
            raise _unreadable(path, kind, "shorter than the 256-byte header")
        if head[:8] not in (b"0       ", b"\xffBIOSEMI"):
            raise _unreadable(path, kind, "no EDF or BDF version field")
        width = 3 if head[:8] == b"\xffBIOSEMI" else 2
        text = head.decode("latin-1")
        try:
            header_bytes, n_records, ns = int(text[184:192]), int(text[236:244]), int(text[252:])
        except ValueError:
            raise _unreadable(path, kind, "header sizes are not numbers") from None
        if ns <= 0 or header_bytes != 256 * (ns + 1):
            raise _unreadable(path, kind, f"header size {header_bytes} does not fit {ns} signals")
        signals = handle.read(ns * 256).decode("latin-1")
    if len(signals) < ns * 256:
        raise _unreadable(path, kind, "the signal headers are truncated")
    labels = [signals[i * 16:(i + 1) * 16].strip() for i in range(ns)]
    try:
        counts = [int(signals[ns * 216 + i * 8:ns * 216 + (i + 1) * 8]) for i in range(ns)]
    except ValueError:
        raise _unreadable(path, kind, "samples per record are not numbers") from None
    record_bytes = sum(counts) * width
    data_bytes = path.stat().st_size - header_bytes
    if record_bytes <= 0:
        raise _unreadable(path, kind, "data records are empty")
    if n_records < 0:  # -1: unknown while recording
        n_records = data_bytes // record_bytes
    elif data_bytes < n_records * record_bytes:
        raise _unreadable(path, kind, f"truncated: {n_records} data records need "
                          f"{n_records * record_bytes} bytes, the file holds {data_bytes}")
    spans, offset = [], 0
    for label, count in zip(labels, counts, strict=True):
        if label in ("EDF Annotations", "BDF Annotations"):
            spans.append((offset, count * width))
        offset += count * width
    plus = text[192:196] in ("EDF+", "BDF+")
    return _EdfLayout(kind, plus, text, header_bytes, record_bytes, n_records, tuple(spans))


def _edf_date(text: str) -> date | None:
    match = re.fullmatch(r"(\d\d)-([A-Za-z]{3})-(\d{4})", text)
    if not match or match[2].upper() not in _MONTHS:
        return None
    try:
        return date(int(match[3]), _MONTHS.index(match[2].upper()) + 1, int(match[1]))
    except ValueError:
        return None


def _edf_start(header: str) -> datetime | None:
    day = re.fullmatch(r"(\d\d)\.(\d\d)\.(\d\d|yy)", header[168:176].strip())
    time = re.fullmatch(r"(\d\d)\.(\d\d)\.(\d\d)", header[176:184].strip())
    if not day or not time:
        return None
    if day[3] == "yy":  # after 2084 the year lives only in the EDF+ Startdate
        startdate = _edf_date((header[88:168].split() + ["", ""])[1])
        if startdate is None:
            return None
        year = startdate.year
    else:
        year = int(day[3]) + (1900 if int(day[3]) >= 85 else 2000)
    try:
        return datetime(year, int(day[2]), int(day[1]), *(int(t) for t in time.groups()))
    except ValueError:
        return None


def _edf_annotations(path: Path, layout: _EdfLayout) -> Iterator[str]:
    with path.open("rb") as handle:
        for record in range(layout.n_records):
            for offset, length in layout.annotations:
                handle.seek(layout.header_bytes + record * layout.record_bytes + offset)
                for tal in handle.read(length).split(b"\0"):
                    for text in tal.split(b"\x14")[1:]:  # [0] is the onset/duration
                        if text.strip():
                            yield text.decode("utf-8", "replace")


def _edf_fields(path: Path, add: Callable[[str, object, str], None]) -> None:
    layout = _read_edf_layout(path)
    kind, head = layout.kind, layout.header
    patient, recording = head[8:88].strip(), head[88:168].strip()
    subfields = {"patient": (patient.split() if layout.plus else [], _EDF_PATIENT),
                 "recording": (recording.split()[1:] if recording.startswith("Startdate")
                               else [], _EDF_RECORDING)}
    for field, (values, names) in subfields.items():
        for i, value in enumerate(values):
            label, what = names[i] if i < len(names) else ("additional", "text")
            if what in ("birthdate", "date"):
                shown: object = _edf_date(value) or value
            else:  # EDF+ writes spaces inside a subfield as underscores
                shown = value if what == "id" else value.replace("_", " ")
            add(f"{kind} {field} field: {label}", shown, what)
    if not layout.plus:
        add(f"{kind} patient field", patient, "name")
    if not recording.startswith("Startdate"):
        add(f"{kind} recording field", recording, "text")
    add(f"{kind} start date and time", _edf_start(head) or head[168:184], "date")
    for i, text in enumerate(_edf_annotations(path, layout)):
        add(f"{EVENT_PREFIX}{kind}+ annotation {i + 1}", text, "text")


def _edf_in_range(value: date, src: Path) -> None:
    low, high = _EDF_YEARS
    if not low <= value.year <= high:
        raise InputError(f"shifting the dates of {src} gives year {value.year}; EDF/BDF headers "
                         f"store only {low}-{high}. Use a smaller date shift for this subject")


def _rewrite_edf(src: Path, staged: Path, subject: str,
                 shift: timedelta | None) -> tuple[list[str], list[Path]]:
    layout = _read_edf_layout(src)
    head, delta = layout.header, shift or timedelta(0)
    start = _edf_start(head)
    if start is None:
        raise InputError(f"cannot read the start date/time of {src} ({head[168:184]!r}); fix "
                         "it to dd.mm.yy / hh.mm.ss before anonymizing")
    start += delta
    _edf_in_range(start, src)
    patient = f"{subject or 'X'} X X X" if layout.plus else subject or "X"
    recording = "X"
    if layout.plus or head[88:168].startswith("Startdate"):
        old = _edf_date((head[88:168].split() + ["", ""])[1])
        new = old + delta if old else None
        if new:
            _edf_in_range(new, src)
        shown = f"{new.day:02d}-{_MONTHS[new.month - 1]}-{new.year}" if new else "X"
        recording = f"Startdate {shown} X X X"
    header = (head[:8] + patient.ljust(80) + recording.ljust(80)
              + start.strftime("%d.%m.%y%H.%M.%S") + head[184:])
    shutil.copyfile(src, staged)
    with staged.open("r+b") as handle:  # only the main header; data records stay identical
        handle.write(header.encode("latin-1"))
    return [f"{layout.kind} patient field set to {patient!r}"], [staged]
