"""FIF recordings: list the identifying ``info`` entries, re-save anonymized with MNE."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from neurotwin_db.curation.anonymize.eeg._common import EVENT_PREFIX, _read_with_mne
from neurotwin_db.errors import InputError


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
