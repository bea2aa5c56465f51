"""Shared pieces of the EEG header anonymizers: the field record, constants and helpers.

Each format module (``_edf``, ``_brainvision``, ``_fif``, ``_eeglab``) reports fields
through :func:`_collector` and raises :func:`_unreadable` errors; the package
``__init__`` dispatches to them by :func:`_format_of`.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from neurotwin_db.errors import InputError

# The package's name, as when all of this lived in one eeg.py module.
logger = logging.getLogger(__package__)

KINDS = frozenset({"name", "birthdate", "date", "id", "sex", "person", "device", "text"})
# Kinds that may not survive rewrite_eeg_header (event texts excepted).
REMOVED_KINDS = frozenset({"name", "birthdate", "id", "person", "device", "text"})
SUPPORTED = {".edf": "EDF", ".bdf": "BDF", ".vhdr": "BrainVision", ".fif": "FIF",
             ".set": "EEGLAB"}
EVENT_PREFIX = "event: "
_PSEUDONYM = re.compile(r"sub-[A-Za-z0-9]+")
_MNE_PLACEHOLDERS = {"mne_anonymize",
                     "Anonymized using a time shift to preserve age at acquisition"}
_TRUNCATION_SIGNS = ("Invalid tag", "truncat", "does not match the file size",
                     "shorter than expected")


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
