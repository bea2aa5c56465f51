"""Identifying fields in EEG file headers: list them, and write anonymized copies.

:func:`eeg_header_fields` lists what a header holds (for the PHI scanner);
:func:`rewrite_eeg_header` writes an anonymized copy and proves it by reading it back.
Formats: EDF/BDF (EDF+/BDF+), BrainVision (``.vhdr`` + ``.vmrk`` + data), FIF and EEGLAB
``.set`` (MATLAB v5/v7, with or without ``.fdt``).

What is kept, on purpose:

- Events: EDF+ annotation texts, BrainVision marker descriptions, FIF annotations and
  EEGLAB event types are the recording's events (mne-bids copies them to
  ``events.tsv``). They are listed with a location starting ``"event: "``
  (:func:`is_event_field`) so a reviewer sees them, and they are copied unchanged.
- Sex and handedness are removed from headers too (``participants.tsv`` keeps them).
- Signal-level EDF fields (labels, transducer type, prefiltering) and FIF
  digitisation points are neither listed nor changed.
- BrainVision: every ``[Comment]`` line, unknown section and ``;`` note that is not
  writer boilerplate is dropped (the amplifier/impedance tables Recorder writes there
  go too). Channel, binary and coordinate settings are kept.
- FIF: only single-file recordings; a split recording (``-1.fif`` parts) is refused.
  The machine id MNE writes into FIF block ids is the writing computer's, not the
  patient's, and is not listed.
- EEGLAB: MATLAB v7.3 (HDF5) files are refused with a message on how to re-save them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from neurotwin_db._io import atomic_target
from neurotwin_db.errors import InputError

logger = logging.getLogger(__name__)

KINDS = frozenset({"name", "birthdate", "date", "id", "sex", "person", "device", "text"})
# Kinds that may not survive rewrite_eeg_header (event texts excepted).
REMOVED_KINDS = frozenset({"name", "birthdate", "id", "person", "device", "text"})
SUPPORTED = {".edf": "EDF", ".bdf": "BDF", ".vhdr": "BrainVision", ".fif": "FIF",
             ".set": "EEGLAB"}
EVENT_PREFIX = "event: "
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_PSEUDONYM = re.compile(r"sub-[A-Za-z0-9]+")
_MNE_PLACEHOLDERS = {"mne_anonymize",
                     "Anonymized using a time shift to preserve age at acquisition"}
_EDF_YEARS = (1985, 2084)
_TRUNCATION_SIGNS = ("Invalid tag", "truncat", "does not match the file size",
                     "shorter than expected")
_EDF_PATIENT = (("code", "id"), ("sex", "sex"), ("birthdate", "birthdate"), ("name", "name"))
_EDF_RECORDING = (("startdate", "date"), ("admincode", "id"), ("technician", "person"),
                  ("equipment", "device"))


@dataclass(frozen=True)
class HeaderField:
    """One identifying value found in a header.

    Dates are given in ISO 8601 (``1948-03-15``, ``2024-05-06T10:11:12``); ``location``
    says where the value sits in the file.
    """

    location: str
    value: str
    kind: str


def is_event_field(field: HeaderField) -> bool:
    """Whether ``field`` is an event/annotation text (kept by :func:`rewrite_eeg_header`)."""
    return field.location.startswith(EVENT_PREFIX)


def eeg_header_fields(path: Path) -> list[HeaderField]:
    """List the non-empty identifying fields in the header of the recording at ``path``.

    Anonymous placeholders (EDF+ ``X``, MNE's ``mne_anonymize``, ``sub-<label>``
    pseudonyms) are left out. Raises :class:`InputError` for unsupported, unreadable
    or truncated files.
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file; pass an EEG recording")
    out: list[HeaderField] = []
    add = _collector(out)
    {"EDF": _edf_fields, "BDF": _edf_fields, "BrainVision": _brainvision_fields,
     "FIF": _fif_fields, "EEGLAB": _eeglab_fields}[fmt](path, add)
    return out


def rewrite_eeg_header(src: Path, dst: Path, *, subject: str,
                       shift: timedelta | None) -> list[str]:
    """Write an anonymized copy of recording ``src`` to ``dst``; return what changed.

    Parameters
    ----------
    src
        The recording (``.edf``, ``.bdf``, ``.vhdr``, ``.fif``, ``.set``); never modified.
    dst
        The new file, same extension. BrainVision ``.vmrk``/data and EEGLAB ``.fdt``
        companions are written next to it, named after its stem.
    subject
        ``sub-<label>`` to put where the patient code goes, or ``""`` for none.
    shift
        Whole days (normally negative) added to every date, times kept; ``None`` keeps
        the dates.

    Returns
    -------
    list[str]
        Human-readable changes (locations only, never the removed values).

    Raises
    ------
    InputError
        For unsupported, unreadable or truncated input, bad arguments, an EDF date
        outside 1985-2084 after the shift, or a copy that fails its read-back check.

    Notes
    -----
    The copy is written to a hidden folder next to ``dst`` and read back (headers and
    MNE) before it is moved into place (replacing existing files): if a name, birth
    date, id, person, device or free text remains, or a date is not the original plus
    ``shift``, nothing is written.
    """
    src, dst = Path(src), Path(dst)
    fmt = _format_of(src)
    if dst.suffix.lower() != src.suffix.lower():
        raise InputError(f"output {dst} must have the extension of {src} "
                         f"({src.suffix}); formats are not converted here")
    if subject and not _PSEUDONYM.fullmatch(subject):
        raise InputError(f"subject={subject!r} is not a BIDS subject such as 'sub-p1a2b3c4d'; "
                         "pass 'sub-<letters and digits>' or '' for none")
    if shift is not None and (shift % timedelta(days=1) or shift > timedelta(0)):
        raise InputError(f"shift={shift!r} is not a negative whole number of days; pass "
                         "e.g. PseudonymKey.date_offset(label), or None to keep dates")
    before = eeg_header_fields(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=f".{dst.name}.") as stage:
        staged = Path(stage) / dst.name
        writer = {"EDF": _rewrite_edf, "BDF": _rewrite_edf, "BrainVision": _rewrite_brainvision,
                  "FIF": _rewrite_fif, "EEGLAB": _rewrite_eeglab}[fmt]
        notes, outputs = writer(src, staged, subject, shift)
        sources = {p.resolve() for p in _inputs_of(src)}
        if any((dst.parent / p.name).resolve() in sources for p in outputs):
            raise InputError(f"{dst} would overwrite the input {src} or its companion files; "
                             "write the anonymized copy elsewhere")
        after = _check_copy(src, staged, before, subject, shift)
        for out in outputs:  # the main file last, so it never points at missing parts
            with atomic_target(dst.parent / out.name) as tmp:
                os.replace(out, tmp)
    return _describe(before, after, shift) + notes


# -- shared helpers -----------------------------------------------------------------------

def _format_of(path: Path) -> str:
    fmt = SUPPORTED.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path} has an unsupported extension {path.suffix!r}; supported EEG "
                         f"formats are {', '.join(SUPPORTED)}")
    return fmt


def _collector(out: list[HeaderField]) -> Callable[[str, object, str], None]:
    def add(location: str, value: object, kind: str) -> None:
        text = value.isoformat() if isinstance(value, date) else str(value).strip()
        if text.lower() in {"", "x"} or text in _MNE_PLACEHOLDERS or _PSEUDONYM.fullmatch(text):
            return
        out.append(HeaderField(location, text, kind))
    return add


def _unreadable(path: Path, fmt: str, reason: object) -> InputError:
    first = str(reason).splitlines()[0] if str(reason) else type(reason).__name__
    return InputError(f"{path} is not a readable {fmt} file ({first}); check that the copy "
                      "is complete (compare its size with the original) and copy it again")


def _iso_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, datetime) else None


def _describe(before: list[HeaderField], after: list[HeaderField],
              shift: timedelta | None) -> list[str]:
    kept = {f.location for f in after}
    changes, events = [], 0
    for f in before:
        if is_event_field(f):
            events += 1
        elif f.kind == "date" and f.location in kept:
            if shift:
                changes.append(f"shifted {f.location} by {shift.days} days")
        elif f not in after:
            changes.append(f"removed {f.location}")
    if events:
        changes.append(f"kept {events} event text(s) unchanged; review them for names")
    return changes


def _inputs_of(path: Path) -> list[Path]:
    fmt = _format_of(path)
    found = [path]
    if fmt == "BrainVision":
        common = _ini_entries(_read_ini(path), "Common Infos")
        found += [_companion(path, common[k]) for k in ("DataFile", "MarkerFile")
                  if k in common]
    elif fmt == "EEGLAB":
        found.append(path.with_suffix(".fdt"))
    return found


def _read_with_mne(path: Path, **kwargs: Any) -> Any:
    """``mne.io.read_raw`` (lazy); truncation and read failures become InputError."""
    import mne

    reader = mne.io.read_raw_fif if path.suffix.lower() == ".fif" else mne.io.read_raw
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = reader(path, preload=False, verbose="warning", **kwargs)
    except Exception as exc:  # MNE raises many types for unreadable files
        raise _unreadable(path, _format_of(path), exc) from None
    checked = _format_of(path) not in ("EDF", "BDF")  # _read_edf_layout checks those sizes
    for item in caught:
        if checked and any(sign in str(item.message) for sign in _TRUNCATION_SIGNS):
            raise _unreadable(path, _format_of(path), f"truncated: {item.message}")
        logger.debug("reading %s: %s", path.name, item.message)
    return raw


def _check_copy(src: Path, staged: Path, before: list[HeaderField], subject: str,
                shift: timedelta | None) -> list[HeaderField]:
    """Read the staged copy back; raise if anything identifying is left."""
    after = eeg_header_fields(staged)
    delta = shift or timedelta(0)
    problems = [f"{f.location} still set" for f in after
                if f.kind in REMOVED_KINDS and not is_event_field(f)]
    old_dates = {f.location: f.value for f in before if f.kind == "date"}
    for f in (f for f in after if f.kind == "date"):
        old, new = _iso_datetime(old_dates.get(f.location, "")), _iso_datetime(f.value)
        if old is None or new is None or new != old + delta:
            problems.append(f"{f.location} is not the original date shifted by {delta.days} days")
    raw_src, raw_dst = _read_with_mne(src), _read_with_mne(staged)
    old_date, new_date = raw_src.info["meas_date"], raw_dst.info["meas_date"]
    if (old_date is None) != (new_date is None) or (old_date and new_date != old_date + delta):
        problems.append("MNE's meas_date is not the original shifted")
    info = raw_dst.info.get("subject_info") or {}
    for key in ("first_name", "middle_name", "last_name", "birthday", "his_id"):
        if info.get(key) not in (None, "", "X", "0", "mne_anonymize", subject):
            problems.append(f"MNE still reads subject_info[{key!r}]")
    if raw_dst.info.get("experimenter") not in (None, "", "mne_anonymize"):
        problems.append("MNE still reads an experimenter")
    if (raw_dst.n_times, raw_dst.ch_names) != (raw_src.n_times, raw_src.ch_names):
        problems.append("the signal changed size or channels")
    if problems:
        raise InputError(f"the anonymized copy of {src} failed its read-back check "
                         f"({'; '.join(problems)}); nothing was written. Inspect {src} with "
                         "`eeg_header_fields` and anonymize this file by hand")
    return after


# -- EDF / BDF ----------------------------------------------------------------------------

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


# -- BrainVision --------------------------------------------------------------------------

_BV_SECTIONS = {"Common Infos", "Binary Infos", "ASCII Infos", "Channel Infos", "Coordinates",
                "Marker Infos", "Comment"}
_BV_NOTES = re.compile(r";\s*($|Data created by the Vision Recorder|Written using pybv|"
                       r"Exported using pybv|Data orientation|Sampling interval|Each entry|<|"
                       r"Fields are delimited|Commas in|Data synchroni[sz]ed)", re.IGNORECASE)
_BV_CODES = {"New Segment", "Stimulus", "Response", "SyncStatus"}  # descriptions are codes


@dataclass(frozen=True)
class _Ini:
    path: Path
    lines: list[str]
    encoding: str
    newline: str


def _read_ini(path: Path) -> _Ini:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.strerror}); the BrainVision header "
                         "points at it: check that all three files were copied") from None
    utf8 = re.search(rb"^\s*Codepage\s*=\s*UTF-8", data, re.MULTILINE | re.IGNORECASE)
    text = data.decode("utf-8" if utf8 else "latin-1", "surrogateescape")
    lines = text.splitlines()
    if not lines or "Brain" not in lines[0] or "Vision" not in lines[0]:
        raise _unreadable(path, "BrainVision", "first line is not a Brain Vision identifier")
    return _Ini(path, lines, "utf-8" if utf8 else "latin-1", "\r\n" if "\r\n" in text else "\n")


def _ini_lines(ini: _Ini) -> Iterator[tuple[int, str | None, str, bool]]:
    """Yield (line number, section, line, keep): keep is False for free text."""
    section: str | None = None
    for number, line in enumerate(ini.lines, start=1):
        stripped = line.strip()
        if number == 1 or not stripped:
            yield number, section, line, True
        elif stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            yield number, section, line, section in _BV_SECTIONS
        elif stripped.startswith(";"):
            yield number, section, line, bool(_BV_NOTES.match(stripped))
        else:
            yield number, section, line, (section in _BV_SECTIONS and section != "Comment"
                                         and "=" in stripped)


def _ini_entries(ini: _Ini, wanted: str) -> dict[str, str]:
    entries = {}
    for _, section, line, keep in _ini_lines(ini):
        if keep and section == wanted and "=" in line and not line.lstrip().startswith(";"):
            key, value = line.split("=", 1)
            entries[key.strip()] = value.strip()
    return entries


def _companion(vhdr: Path, name: str) -> Path:
    """The file a header entry names, relative to the header."""
    return vhdr.parent / name


def _vmrk_date(text: str) -> datetime | None:
    if not re.fullmatch(r"\d{20}", text) or not text.strip("0"):
        return None
    try:
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(microsecond=int(text[14:]))
    except ValueError:
        return None


def _markers(ini: _Ini) -> Iterator[tuple[str, list[str]]]:
    for key, value in _ini_entries(ini, "Marker Infos").items():
        if re.fullmatch(r"Mk\d+", key):
            yield key, value.split(",")


def _free_text(ini: _Ini, name: str, add: Callable[[str, object, str], None]) -> None:
    for number, section, line, keep in _ini_lines(ini):
        if not keep and not line.strip().startswith("["):
            where = "comment" if line.strip().startswith(";") else f"[{section}]"
            add(f"{name} {where} line {number}", line, "text")


def _brainvision_fields(path: Path, add: Callable[[str, object, str], None]) -> None:
    vhdr = _read_ini(path)
    _free_text(vhdr, "vhdr", add)
    marker = _ini_entries(vhdr, "Common Infos").get("MarkerFile")
    if not marker:
        return
    vmrk = _read_ini(_companion(path, marker))
    _free_text(vmrk, "vmrk", add)
    for key, parts in _markers(vmrk):
        kind = parts[0]
        if len(parts) > 5 and parts[5].strip("0 "):
            add(f"vmrk {key} {kind} date", _vmrk_date(parts[5]) or parts[5], "date")
        if len(parts) > 1 and kind not in _BV_CODES:
            add(f"{EVENT_PREFIX}vmrk {key} {kind}", parts[1].replace(r"\1", ","), "text")


def _clean_ini(ini: _Ini, edit: Callable[[str | None, str, str], str]) -> bytes:
    """Kept lines only; ``edit(section, key, value)`` gives each entry's new value."""
    out = []
    for number, section, line, keep in _ini_lines(ini):
        if not keep:
            continue
        if number > 1 and "=" in line and not line.lstrip().startswith(";"):
            key, value = line.split("=", 1)
            line = f"{key}={edit(section, key.strip(), value)}"
        out.append(line)
    return (ini.newline.join(out) + ini.newline).encode(ini.encoding, "surrogateescape")


def _rewrite_brainvision(src: Path, staged: Path, subject: str,
                         shift: timedelta | None) -> tuple[list[str], list[Path]]:
    vhdr = _read_ini(src)
    common = _ini_entries(vhdr, "Common Infos")
    if not common.get("DataFile"):
        raise InputError(f"{src} has no DataFile= entry in [Common Infos]; it is not a "
                         "complete BrainVision header")
    data = staged.with_suffix(Path(common["DataFile"]).suffix or ".eeg")
    marker = staged.with_suffix(".vmrk") if common.get("MarkerFile") else None
    names = {"DataFile": data.name, "MarkerFile": marker.name if marker else ""}

    def edit(section: str | None, key: str, value: str) -> str:
        if section == "Common Infos" and key in names:
            return names[key]
        if section == "Marker Infos" and shift and re.fullmatch(r"Mk\d+", key):
            parts = value.split(",")
            when = _vmrk_date(parts[5]) if len(parts) > 5 else None
            if when:
                parts[5] = (when + shift).strftime("%Y%m%d%H%M%S%f")
            return ",".join(parts)
        return value

    try:
        shutil.copyfile(_companion(src, common["DataFile"]), data)
    except OSError as exc:
        raise InputError(f"cannot copy the data file {common['DataFile']} named in {src} "
                         f"({exc.strerror}); copy it next to the header") from None
    outputs = [data]
    if marker:
        marker.write_bytes(_clean_ini(_read_ini(_companion(src, common["MarkerFile"])), edit))
        outputs.append(marker)
    staged.write_bytes(_clean_ini(vhdr, edit))
    return [f"BrainVision files written as {', '.join(p.name for p in outputs)} "
            f"and {staged.name}"], [*outputs, staged]


# -- FIF ----------------------------------------------------------------------------------

def _read_fif(path: Path) -> Any:
    return _read_with_mne(path, allow_maxshield=True)


def _fif_stamp(secs: int, usecs: int) -> datetime | None:
    if int(secs) == 0 or int(usecs) == 2**31 - 1:  # MNE's "no date"
        return None
    return datetime.fromtimestamp(int(secs), UTC) + timedelta(microseconds=int(usecs))


def _fif_fields(path: Path, add: Callable[[str, object, str], None]) -> None:
    raw = _read_fif(path)
    info = raw.info
    kinds = {"first_name": "name", "middle_name": "name", "last_name": "name",
             "birthday": "birthdate", "his_id": "id", "id": "id", "sex": "sex"}
    labels = {"sex": {1: "male", 2: "female"}, "hand": {1: "right", 2: "left", 3: "ambidextrous"}}
    for key, value in (info.get("subject_info") or {}).items():
        if value is not None and value != 0 and value != "0":
            shown = labels.get(key, {}).get(value, value)
            add(f"FIF subject_info.{key}", shown, kinds.get(key, "text"))
    add("FIF meas_date", info["meas_date"] or "", "date")
    add("FIF experimenter", info.get("experimenter") or "", "person")
    add("FIF description", info.get("description") or "", "text")
    add("FIF proj_name", info.get("proj_name") or "", "text")
    add("FIF utc_offset", info.get("utc_offset") or "", "date")
    for key in ("file_id", "meas_id"):
        stamp = info.get(key) and _fif_stamp(info[key]["secs"], info[key]["usecs"])
        add(f"FIF {key} timestamp", stamp or "", "date")
    for key, value in (info.get("device_info") or {}).items():
        add(f"FIF device_info.{key}", value or "", "device")
    helium = info.get("helium_info") or {}
    add("FIF helium_info.meas_date", helium.get("meas_date") or "", "date")
    add("FIF helium_info.orig_file_guid", helium.get("orig_file_guid") or "", "id")
    for i, record in enumerate(info.get("proc_history") or []):
        add(f"FIF proc_history[{i}].experimenter", record.get("experimenter") or "", "person")
        stamp = record.get("date")
        add(f"FIF proc_history[{i}].date", _fif_stamp(*stamp) if stamp is not None else "",
            "date")
    for i, text in enumerate(raw.annotations.description):
        add(f"{EVENT_PREFIX}FIF annotation {i + 1}", text, "text")


def _rewrite_fif(src: Path, staged: Path, subject: str,
                 shift: timedelta | None) -> tuple[list[str], list[Path]]:
    raw = _read_fif(src)
    if len(raw.filenames) > 1:
        raise InputError(f"{src} is split into {len(raw.filenames)} files; split FIF "
                         "recordings are not supported: merge them with MNE first")
    days = -(shift // timedelta(days=1)) if shift else 0
    try:
        raw.anonymize(daysback=None if raw.info["meas_date"] is None else days, verbose="error")
    except (RuntimeError, ValueError) as exc:  # e.g. a shifted date before 1970
        raise InputError(f"MNE cannot shift the dates of {src} by {days} days back ({exc}); "
                         "use a smaller date shift for this subject") from None
    raw.info["subject_info"] = {"his_id": subject} if subject else None
    raw.info["experimenter"] = None
    raw.info["description"] = None
    raw.info["device_info"] = None  # type, model, serial, site
    fmt = raw.orig_format if raw.orig_format in ("single", "double", "int", "short") else "single"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. names outside MNE's conventions
        raw.save(staged, fmt=fmt, overwrite=True, verbose="error")
    if len(list(staged.parent.iterdir())) > 1:
        raise InputError(f"the anonymized copy of {src} is over 2 GB and would be split; "
                         "split FIF recordings are not supported")
    return [f"FIF re-saved by MNE ({fmt} samples)"], [staged]


# -- EEGLAB -------------------------------------------------------------------------------

_SET_TEXT = ("setname", "comments", "history", "filename", "filepath")
_MAT_HEADER = "MATLAB 5.0 MAT-file, anonymized by neurotwin_db"


def _load_set(path: Path) -> tuple[dict[str, Any], Any]:
    """The MAT variables and the EEG fields (the ``EEG`` struct or the variables)."""
    from scipy.io import loadmat

    with path.open("rb") as handle:
        head = handle.read(128)
    if b"MATLAB 7.3" in head:
        raise InputError(f"{path} is a MATLAB v7.3 (HDF5) .set file, which is not supported; "
                         "re-save it in EEGLAB as v6/v7 (pop_editoptions('option_saveversion6',"
                         " 1), then pop_saveset)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mat = loadmat(path, mat_dtype=False)
    except Exception as exc:  # scipy raises many types for corrupt files
        raise _unreadable(path, "EEGLAB", exc) from None
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    return mat, mat["EEG"] if "EEG" in mat else mat


def _get(eeg: Any, name: str) -> Any:
    if isinstance(eeg, dict):
        return eeg.get(name)
    return eeg[name][0, 0] if name in (eeg.dtype.names or ()) else None


def _put(eeg: Any, name: str, value: Any) -> None:
    """Replace field ``name`` if the file has it (no new fields are added)."""
    if isinstance(eeg, dict):
        if name in eeg:
            eeg[name] = value
    elif name in (eeg.dtype.names or ()):
        eeg[name][0, 0] = value


def _mat_text(value: Any) -> str:
    import numpy as np

    if isinstance(value, str):
        return value.strip()
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return "\n".join(row.rstrip() for row in value.ravel()).strip()
    if isinstance(value, np.ndarray) and value.dtype == object:
        return "\n".join(t for t in (_mat_text(v) for v in value.ravel()) if t)
    return ""


def _mat_leaves(value: Any, where: str, change: Callable[[str, Any], Any] | None = None,
                ) -> Iterator[tuple[str, Any]]:
    """Yield (path, value) for every leaf of a MATLAB struct/cell; ``change`` replaces it."""
    import numpy as np

    if isinstance(value, np.ndarray) and value.dtype.names:
        for i, index in enumerate(np.ndindex(value.shape)):
            for name in value.dtype.names:
                item = value[name][index]
                label = f"{where}.{name}" if value.size == 1 else f"{where}({i + 1}).{name}"
                yield from _mat_leaves(item, label, change)
                if change is not None:
                    value[name][index] = change(label, item)
    elif isinstance(value, np.ndarray) and value.dtype == object:
        for i, item in enumerate(value.reshape(-1)):
            yield from _mat_leaves(item, f"{where}{{{i + 1}}}", change)
    else:
        yield where, value


def _t0(value: Any) -> datetime | None:
    import numpy as np

    flat = np.asarray(value).ravel() if np.asarray(value).dtype.kind in "fiu" else ()
    if len(flat) != 6:
        return None
    try:
        whole = datetime(*(int(v) for v in flat[:5]))
        return whole + timedelta(seconds=float(flat[5]))
    except (ValueError, OverflowError):
        return None


def _eeglab_fields(path: Path, add: Callable[[str, object, str], None]) -> None:
    with path.open("rb") as handle:
        header = handle.read(116).decode("latin-1")
    _, eeg = _load_set(path)
    created = re.search(r"Created on:\s*(.+?)\s*$", header.rstrip("\0 "))
    if created:
        try:
            add("MAT header creation date",
                datetime.strptime(created[1], "%a %b %d %H:%M:%S %Y"), "date")
        except ValueError:
            add("MAT header creation date", created[1], "date")
    add("EEGLAB EEG.subject", _mat_text(_get(eeg, "subject")), "id")
    for name in _SET_TEXT:
        add(f"EEGLAB EEG.{name}", _mat_text(_get(eeg, name)), "text")
    etc = _get(eeg, "etc")
    for where, leaf in _mat_leaves(etc, "EEGLAB EEG.etc") if etc is not None else ():
        if where.endswith(".T0") and _t0(leaf):
            add(where, _t0(leaf), "date")
        else:
            add(where, _mat_text(leaf), "text")
    events = _get(eeg, "event")
    if events is not None and getattr(events, "dtype", None) is not None and events.dtype.names:
        for i, item in enumerate(events.reshape(-1)):
            if "type" in events.dtype.names:
                add(f"{EVENT_PREFIX}EEGLAB EEG.event({i + 1}).type", _mat_text(item["type"]),
                    "text")


def _rewrite_eeglab(src: Path, staged: Path, subject: str,
                    shift: timedelta | None) -> tuple[list[str], list[Path]]:
    import numpy as np
    from scipy.io import savemat

    mat, eeg = _load_set(src)
    _put(eeg, "subject", np.array(subject))
    _put(eeg, "setname", np.array(subject))
    for name in _SET_TEXT[1:]:
        _put(eeg, name, np.array(""))

    def scrub(where: str, leaf: Any) -> Any:
        if where.endswith(".T0") and _t0(leaf) is not None:
            new = _t0(leaf) + (shift or timedelta(0))
            seconds = new.second + new.microsecond / 1e6
            return np.array([[new.year, new.month, new.day, new.hour, new.minute, seconds]])
        return np.array("") if _mat_text(leaf) else leaf

    etc = _get(eeg, "etc")
    if etc is not None:
        for _ in _mat_leaves(etc, "EEG.etc", scrub):
            pass
    outputs = []
    data = _mat_text(_get(eeg, "data"))
    if data:  # the samples live in a separate .fdt file
        fdt = staged.with_suffix(".fdt")
        try:
            shutil.copyfile(src.parent / data, fdt)
        except OSError as exc:
            raise InputError(f"cannot copy {data} named in {src} ({exc.strerror}); copy the "
                             ".fdt file next to the .set file") from None
        _put(eeg, "data", np.array(fdt.name))
        outputs.append(fdt)
    if _get(eeg, "datfile") is not None:
        _put(eeg, "datfile", np.array(outputs[0].name if outputs else ""))
    savemat(staged, mat, appendmat=False, long_field_names=True, oned_as="row")
    with staged.open("r+b") as handle:  # scipy writes the current time in the header
        handle.write(_MAT_HEADER.ljust(116).encode("ascii"))
    return ["EEGLAB .set re-saved (MATLAB v5)"], [*outputs, staged]
