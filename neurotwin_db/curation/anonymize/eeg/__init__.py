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

import os
import tempfile
from datetime import timedelta
from pathlib import Path

from neurotwin_db._io import atomic_target
from neurotwin_db.curation.anonymize.eeg._brainvision import (
    _brainvision_fields,
    _companion,
    _ini_entries,
    _read_ini,
    _rewrite_brainvision,
)
from neurotwin_db.curation.anonymize.eeg._common import (
    _PSEUDONYM,
    EVENT_PREFIX,
    KINDS,
    REMOVED_KINDS,
    SUPPORTED,
    HeaderField,
    _collector,
    _format_of,
    _iso_datetime,
    _read_with_mne,
    is_event_field,
)
from neurotwin_db.curation.anonymize.eeg._edf import _edf_fields, _rewrite_edf
from neurotwin_db.curation.anonymize.eeg._eeglab import _eeglab_fields, _rewrite_eeglab
from neurotwin_db.curation.anonymize.eeg._fif import _fif_fields, _rewrite_fif
from neurotwin_db.errors import InputError

__all__ = [
    "EVENT_PREFIX",
    "HeaderField",
    "KINDS",
    "REMOVED_KINDS",
    "SUPPORTED",
    "eeg_header_fields",
    "is_event_field",
    "rewrite_eeg_header",
]


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


# -- read-back check ---------------------------------------------------------------------

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
